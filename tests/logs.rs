//! What the logs say to a new user: the group join in progress (once per listener, at INFO), and
//! no WARN on a clean shutdown where nothing was lost (concurrency 3 on the embedded broker, whose
//! group refuses commits while it rebalances as each consumer leaves).
//!
//! This binary installs a global subscriber that keeps every line, so it holds these tests only.

mod common;

use std::time::Duration;

use common::*;
use kafka_listener::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_shutdown_of_three_consumers_warns_of_nothing_and_the_join_is_told_once() {
    let logs = Logs::default();
    tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_target(true)
        .init();
    let kafka = kafka_listener::test::embedded_kafka([NewTopic::new("quiet", 3)]).unwrap();
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let probe = Probe::open();
    // A 6 s session: when one of the three joins just after the others' join phase, the embedded
    // broker waits up to the session timeout for a member it still counts (with librdkafka's
    // 45 s default this outlasted the wait below on a loaded machine).
    let factory = ContainerFactory::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .concurrency(3)
        .set("session.timeout.ms", "6000")
        .build()
        .unwrap();
    let counter = probe.clone();
    let running = start_listeners(
        factory,
        [Endpoint::new("payments").topic("quiet").group("payments").handler(move |record: ConsumerRecord| {
            let counter = counter.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(3)).await;
                counter.handle(record).await;
            }
        })],
    )
    .await;
    if let Err(error) =
        kafka_listener::test::wait_for_assignment(&running, "payments", 3, Duration::from_secs(60)).await
    {
        let text = logs.text();
        let lines: Vec<&str> = text.lines().collect();
        panic!("{error}; the last log lines:\n{}", lines[lines.len().saturating_sub(60)..].join("\n"));
    }
    for round in 0..3 {
        let sent =
            template.send_all((0..30).map(|i| template.send("quiet", format!("{round}-{i}")).partition(i % 3))).await;
        sent.into_result().unwrap();
        wait_until("the round handled", Duration::from_secs(20), || probe.count() == 30 * (round as usize + 1)).await;
    }
    running.shutdown().await.unwrap();
    assert_eq!(probe.count(), 90);

    let joins = logs.lines_with("joining the consumer group");
    assert_eq!(joins.len(), 1, "told once per listener: {joins:?}");
    assert!(
        joins[0].contains("INFO") && joins[0].contains("payments") && joins[0].contains("session.timeout.ms = 6000 ms")
    );
    let warnings: Vec<String> =
        logs.lines_with(" WARN ").into_iter().filter(|l| l.contains("kafka_listener")).collect();
    assert!(warnings.is_empty(), "a clean shutdown with nothing pending warns of nothing: {warnings:#?}");
}
