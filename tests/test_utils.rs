//! `kafka_listener::test` (feature `test-utils`) and the offset queries it stands on: every
//! partition in every answer, waits with deadlines whose errors say what was seen.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use kafka_listener::prelude::*;
use kafka_listener::support::Admin;
use kafka_listener::{test, Error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_queries_answer_for_every_partition() {
    let kafka = embedded(&[("queried", 3)]);
    // Partition 0: 4 records, 1: 2 records, 2: none.
    produce(
        &kafka,
        "queried",
        &[(0, "a", "1".into()), (0, "a", "2".into()), (0, "a", "3".into()), (0, "a", "4".into())],
    );
    produce(&kafka, "queried", &[(1, "b", "1".into()), (1, "b", "2".into())]);
    let admin = Admin::new(kafka.bootstrap_servers());
    assert_eq!(admin.end_offsets("queried").unwrap(), BTreeMap::from([(0, 4), (1, 2), (2, 0)]));
    assert_eq!(admin.beginning_offsets("queried").unwrap(), BTreeMap::from([(0, 0), (1, 0), (2, 0)]));
    assert_eq!(
        admin.committed_offsets("nobody", "queried").unwrap(),
        BTreeMap::from([(0, None), (1, None), (2, None)]),
        "partitions without a commit are in the map, as None"
    );
    assert_eq!(admin.lag("nobody", "queried").unwrap(), BTreeMap::from([(0, 4), (1, 2), (2, 0)]));

    // A group that handled partition 0 only (a listener assigned that partition).
    let running = start_listeners(
        factory(&kafka, AckMode::Record),
        [Endpoint::new("half")
            .topic_partitions("queried", [0], "beginning")
            .group("half")
            .handler(|_: String| std::future::ready(()))],
    )
    .await;
    wait_committed(&kafka.bootstrap_servers(), "half", "queried", [(0, 4)].into()).await;
    running.shutdown().await.unwrap();
    let committed = admin.committed_offsets("half", "queried").unwrap();
    assert_eq!(committed, BTreeMap::from([(0, Some(4)), (1, None), (2, None)]));
    let end = admin.end_offsets("queried").unwrap();
    assert_eq!(committed.keys().collect::<Vec<_>>(), end.keys().collect::<Vec<_>>(), "the same partitions");
    assert_eq!(admin.lag("half", "queried").unwrap(), BTreeMap::from([(0, 0), (1, 2), (2, 0)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_utilities_wait_for_assignment_records_and_commits() {
    let kafka = test::embedded_kafka([NewTopic::new("utilities", 2), NewTopic::new("utilities-out", 1)]).unwrap();
    let bootstrap = kafka.bootstrap_servers();
    let template = KafkaTemplate::builder().bootstrap_servers(&bootstrap).build().unwrap();
    let forward = template.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .register(Endpoint::new("utilities").topic("utilities").group("utilities").handler(move |text: String| {
            let forward = forward.clone();
            async move {
                forward.send("utilities-out", text.to_uppercase()).await?;
                Ok::<(), ListenerError>(())
            }
        }))
        .start()
        .await
        .unwrap();
    let assigned = test::wait_for_assignment(&running, "utilities", 2, Duration::from_secs(20)).await.unwrap();
    assert_eq!(assigned, [("utilities".to_string(), 0), ("utilities".to_string(), 1)]);
    template.send_all(["a", "b", "c"].map(|t| template.send("utilities", t).partition(0))).await.into_result().unwrap();

    let out = test::records(&bootstrap, "utilities-out", 3, Duration::from_secs(20)).await.unwrap();
    let payloads: Vec<_> = out.iter().map(|r| r.payload_str().unwrap().to_string()).collect();
    assert_eq!(payloads, ["A", "B", "C"]);
    let end = test::wait_for_committed(&bootstrap, "utilities", "utilities", Duration::from_secs(20)).await.unwrap();
    assert_eq!(end, BTreeMap::from([(0, 3), (1, 0)]));
    assert_eq!(
        test::committed_offsets(&bootstrap, "utilities", "utilities").await.unwrap(),
        BTreeMap::from([(0, Some(3)), (1, None)])
    );
    assert_eq!(test::lag(&bootstrap, "utilities", "utilities").await.unwrap(), BTreeMap::from([(0, 0), (1, 0)]));

    // Deadlines: each error says what it waited for and what it saw.
    let error = test::records(&bootstrap, "utilities-out", 5, Duration::from_millis(800)).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }) && error.to_string().contains("read 3"), "{error}");
    let error = test::wait_for_assignment(&running, "utilities", 3, Duration::from_millis(200)).await.unwrap_err();
    assert!(
        error.to_string().contains("3 partition(s)") && error.to_string().contains("[utilities-0, utilities-1]"),
        "{error}"
    );
    let error = test::wait_for_assignment(&running, "nope", 1, Duration::from_millis(200)).await.unwrap_err();
    assert!(error.to_string().contains("`nope`") && error.to_string().contains(r#"["utilities"]"#), "{error}");
    running.shutdown().await.unwrap();
    template.send("utilities", "d").partition(1).await.unwrap();
    let error =
        test::wait_for_committed(&bootstrap, "utilities", "utilities", Duration::from_millis(500)).await.unwrap_err();
    assert!(error.to_string().contains("end offsets {0: 3, 1: 1}"), "{error}");
}
