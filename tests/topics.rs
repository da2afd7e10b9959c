//! Topics declared once (`ListenerRegistry::with_topic(NewTopic)`, Spring's `NewTopic` beans):
//! created at start when missing, on the embedded broker as on a real one (tests/real_broker.rs),
//! before the listeners that read them start; refused declarations are start errors naming the
//! topic.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use kafka_listener::prelude::*;
use kafka_listener::support::Admin;
use kafka_listener::Error;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_topics_are_created_at_start_and_listened_to() {
    let kafka = embedded(&[]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .with_topic(NewTopic::new("declared", 3))
        .with_topics([NewTopic::new("declared-dlt", 2).config("retention.ms", "86400000")])
        .register(Endpoint::new("declared").topic("declared").group("declared").handler(move |text: String| {
            sink.lock().unwrap().push(text);
            std::future::ready(())
        }))
        .start()
        .await
        .unwrap();
    let admin = Admin::new(kafka.bootstrap_servers());
    assert_eq!(admin.partitions("declared").unwrap(), [0, 1, 2]);
    assert_eq!(admin.partitions("declared-dlt").unwrap(), [0, 1]);
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    template
        .send_all((0..3).map(|p| template.send("declared", format!("to {p}")).partition(p)))
        .await
        .into_result()
        .unwrap();
    wait_until("the three records", Duration::from_secs(20), || seen.lock().unwrap().len() == 3).await;
    running.shutdown().await.unwrap();

    // Declared again (a restart): the topics exist, nothing changes, start succeeds.
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .with_topic(NewTopic::new("declared", 3))
        .start()
        .await
        .unwrap();
    running.shutdown().await.unwrap();
    assert_eq!(admin.partitions("declared").unwrap(), [0, 1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declaration_the_broker_refuses_is_a_start_error_naming_the_topic() {
    let kafka = embedded(&[]);
    let error = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        // One broker cannot hold three copies.
        .with_topic(NewTopic::new("overreplicated", 1).replication_factor(3))
        .start()
        .await
        .unwrap_err();
    let Error::Validation(problems) = &error else { panic!("{error}") };
    assert_eq!(problems.len(), 1, "{error}");
    let message = problems[0].to_string();
    assert!(message.contains("`overreplicated`") && message.contains("replication factor 3"), "{message}");

    let error = ListenerRegistry::empty().with_topic(NewTopic::new("nowhere", 1)).start().await.unwrap_err();
    assert!(error.to_string().contains("no default factory"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_creates_new_topics_on_the_embedded_broker_and_leaves_existing_ones() {
    let kafka = embedded(&[("existing", 2)]);
    let admin = Admin::new(kafka.bootstrap_servers());
    admin.create_topics([NewTopic::new("fresh", 4), NewTopic::new("existing", 5)]).await.unwrap();
    assert_eq!(admin.partitions("fresh").unwrap().len(), 4);
    assert_eq!(admin.partitions("existing").unwrap().len(), 2, "an existing topic is left as it is");
    admin.create_topics([("pair", 1)]).await.unwrap();
    assert_eq!(admin.partitions("pair").unwrap(), [0]);
}
