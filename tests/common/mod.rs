//! Helpers shared by the integration tests: the broker, waiting on conditions, reading offsets.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use kafka_listener::support::Admin;
use kafka_listener::{AckMode, ContainerFactory, EmbeddedKafka};

/// Logs to the test output when RUST_LOG is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A fresh embedded cluster with the given topics.
pub fn embedded(topics: &[(&str, i32)]) -> EmbeddedKafka {
    init_tracing();
    let kafka = EmbeddedKafka::start(1).expect("embedded kafka");
    for (topic, partitions) in topics {
        kafka.create_topic(topic, *partitions).expect("create topic");
    }
    kafka
}

/// A factory on this cluster with the given ack mode.
pub fn factory(kafka: &EmbeddedKafka, ack_mode: AckMode) -> ContainerFactory {
    ContainerFactory::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .ack_mode(ack_mode)
        .build()
        .expect("factory")
}

/// Waits until `condition` holds, checking every 20 ms; panics with `what` after `timeout`.
pub async fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the async `condition` holds.
pub async fn wait_until_async<F: Future<Output = bool>>(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> F,
) {
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The committed offsets of `group` on `topic`, read back from the broker.
pub async fn committed(bootstrap: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let admin = Admin::new(bootstrap);
    let (group, topic) = (group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || admin.committed_offsets(&group, &topic))
        .await
        .expect("join")
        .expect("committed offsets")
}

/// Waits until the committed offsets of `group` on `topic` equal `expected`.
pub async fn wait_committed(bootstrap: &str, group: &str, topic: &str, expected: BTreeMap<i32, i64>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = committed(bootstrap, group, topic).await;
        if now == expected {
            return;
        }
        assert!(Instant::now() < deadline, "committed offsets of {group} on {topic}: {now:?}, expected {expected:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Produces `(partition, key, payload)` records and waits for delivery.
pub fn produce(kafka: &EmbeddedKafka, topic: &str, records: &[(i32, &str, String)]) {
    for (partition, key, payload) in records {
        kafka.produce_to(topic, *partition, Some(key.as_bytes()), payload.as_bytes()).expect("produce");
    }
    kafka.flush().expect("flush");
}
