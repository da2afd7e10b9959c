//! Helpers shared by the integration tests: the broker, waiting on conditions, reading offsets.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use kafka_listener::{AckMode, ContainerFactory, EmbeddedKafka};

/// Logs to the test output when RUST_LOG is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A fresh embedded cluster with the given topics (`kafka_listener::test::embedded_kafka`).
pub fn embedded(topics: &[(&str, i32)]) -> EmbeddedKafka {
    init_tracing();
    kafka_listener::test::embedded_kafka(topics).expect("embedded kafka with its topics")
}

/// A factory on this cluster with the given ack mode.
///
/// The mock cluster waits `session.timeout.ms - 1 s` for members when a group's membership
/// changes; a short session timeout (with heartbeats to match) keeps rebalances quick.
pub fn factory(kafka: &EmbeddedKafka, ack_mode: AckMode) -> ContainerFactory {
    ContainerFactory::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .set("session.timeout.ms", "3000")
        .set("heartbeat.interval.ms", "300")
        .ack_mode(ack_mode)
        .build()
        .expect("factory")
}

/// A factory builder on this cluster for a group protocol: the classic one with the suite's
/// short session (as [`factory`]), or KIP-848's, whose timing the broker owns (the embedded
/// broker's heartbeat interval is set to 300 ms here, its session timeout to 6 s).
pub fn protocol_factory(
    kafka: &EmbeddedKafka,
    protocol: kafka_listener::GroupProtocol,
    ack_mode: AckMode,
) -> kafka_listener::ContainerFactoryBuilder {
    let builder = ContainerFactory::builder().bootstrap_servers(kafka.bootstrap_servers()).ack_mode(ack_mode);
    match protocol {
        kafka_listener::GroupProtocol::Classic => {
            builder.set("session.timeout.ms", "3000").set("heartbeat.interval.ms", "300")
        }
        _ => {
            kafka.set_consumer_group_heartbeat_interval(Duration::from_millis(300));
            kafka.set_consumer_group_session_timeout(Duration::from_secs(6));
            builder.group_protocol(protocol)
        }
    }
}

/// A factory whose consumers must poll at least every second (`max.poll.interval.ms=1000`, with a
/// 1 s session): a wait that stopped polling would cost the group a rebalance.
pub fn impatient_factory(kafka: &EmbeddedKafka) -> kafka_listener::ContainerFactoryBuilder {
    ContainerFactory::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .set("session.timeout.ms", "1000")
        .set("heartbeat.interval.ms", "200")
        .set("max.poll.interval.ms", "1000")
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

/// The committed offsets of `group` on `topic`, read back from the broker
/// (`kafka_listener::test::committed_offsets`); partitions without a commit are left out.
pub async fn committed(bootstrap: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    kafka_listener::test::committed_offsets(bootstrap, group, topic)
        .await
        .expect("committed offsets")
        .into_iter()
        .filter_map(|(partition, offset)| offset.map(|o| (partition, o)))
        .collect()
}

/// Waits until the committed offsets of `group` on `topic` equal `expected`.
pub async fn wait_committed(bootstrap: &str, group: &str, topic: &str, expected: BTreeMap<i32, i64>) {
    wait_committed_within(bootstrap, group, topic, expected, Duration::from_secs(20)).await;
}

/// [`wait_committed`] with a deadline of its own.
pub async fn wait_committed_within(
    bootstrap: &str,
    group: &str,
    topic: &str,
    expected: BTreeMap<i32, i64>,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
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

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use kafka_listener::{Acknowledgment, ConsumerRecord};

/// Records what a handler saw and holds the handler back until the test releases each offset.
#[derive(Clone)]
pub struct Probe {
    pub seen: Arc<Mutex<Vec<ConsumerRecord>>>,
    released: Arc<AtomicI64>,
    acks: Arc<Mutex<Vec<(i64, Acknowledgment)>>>,
}

impl Probe {
    /// Handlers return at once.
    pub fn open() -> Self {
        Self::with_release(i64::MAX)
    }

    /// Handlers wait until their offset is released.
    pub fn gated() -> Self {
        Self::with_release(0)
    }

    fn with_release(released: i64) -> Self {
        Probe { seen: Arc::default(), released: Arc::new(AtomicI64::new(released)), acks: Arc::default() }
    }

    /// Lets handlers of offsets up to `offset` return.
    pub fn release_through(&self, offset: i64) {
        self.released.store(offset + 1, Ordering::SeqCst);
    }

    pub fn release_all(&self) {
        self.released.store(i64::MAX, Ordering::SeqCst);
    }

    /// Called by a handler: records the record, then waits for its release (60 s at most).
    pub async fn handle(&self, record: ConsumerRecord) {
        let offset = record.offset;
        self.seen.lock().unwrap().push(record);
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.released.load(Ordering::SeqCst) <= offset && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// A listener `id` on `topic` in `group` whose handler is [`handle`](Self::handle).
    pub fn endpoint(&self, id: &str, topic: &str, group: &str) -> kafka_listener::Endpoint {
        let probe = self.clone();
        kafka_listener::Endpoint::new(id).topic(topic).group(group).handler(move |record: ConsumerRecord| {
            let probe = probe.clone();
            async move { probe.handle(record).await }
        })
    }

    pub fn keep_ack(&self, offset: i64, ack: Acknowledgment) {
        self.acks.lock().unwrap().push((offset, ack));
    }

    pub fn ack_of(&self, offset: i64) -> Acknowledgment {
        self.acks.lock().unwrap().iter().find(|(o, _)| *o == offset).map(|(_, a)| a.clone()).expect("ack kept")
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn seen(&self) -> Vec<ConsumerRecord> {
        self.seen.lock().unwrap().clone()
    }

    /// The payloads seen, as text.
    pub fn payloads(&self) -> Vec<String> {
        self.seen().iter().map(|r| r.payload_str().unwrap_or_default().to_string()).collect()
    }
}

/// `n` records `v0..v{n-1}` on partition 0 with key `k`.
pub fn numbered(n: usize) -> Vec<(i32, &'static str, String)> {
    (0..n).map(|i| (0, "k", format!("v{i}"))).collect()
}

/// Asserts that `condition` holds for the whole `window`.
pub async fn assert_stays<F: Future<Output = bool>>(what: &str, window: Duration, mut condition: impl FnMut() -> F) {
    let until = Instant::now() + window;
    while Instant::now() < until {
        assert!(condition().await, "no longer true: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Asserts that the committed offsets of `group` on `topic` stay `expected` for `window`.
pub async fn assert_committed_stays(
    what: &str,
    bootstrap: &str,
    group: &str,
    topic: &str,
    expected: BTreeMap<i32, i64>,
    window: Duration,
) {
    let until = Instant::now() + window;
    while Instant::now() < until {
        let now = committed(bootstrap, group, topic).await;
        assert_eq!(now, expected, "no longer true: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Every record a collecting listener received.
pub type Landed = Arc<Mutex<Vec<ConsumerRecord>>>;

/// Starts a listener (id and group = `topic`) that keeps every record of `topic`.
pub async fn collect(kafka: &EmbeddedKafka, topic: &str) -> (kafka_listener::RunningListeners, Landed) {
    let landed: Landed = Arc::default();
    let sink = landed.clone();
    let running = kafka_listener::ListenerRegistry::empty()
        .with_default_factory(factory(kafka, AckMode::Batch))
        .register(kafka_listener::Endpoint::new(topic).topic(topic).group(topic).handler(
            move |record: ConsumerRecord| {
                sink.lock().unwrap().push(record);
                std::future::ready(())
            },
        ))
        .start()
        .await
        .unwrap();
    (running, landed)
}

/// Waits for `expected` records on a dead-letter topic and returns them (no more than expected).
pub async fn dead_letters(kafka: &EmbeddedKafka, topic: &str, expected: usize) -> Vec<ConsumerRecord> {
    let (reader, landed) = collect(kafka, topic).await;
    wait_until("the dead letters", Duration::from_secs(20), || landed.lock().unwrap().len() >= expected).await;
    reader.shutdown().await.unwrap();
    let letters = landed.lock().unwrap().clone();
    assert_eq!(letters.len(), expected);
    letters
}

/// Starts these listeners with `factory` as the registry's default factory.
pub async fn start_listeners(
    factory: ContainerFactory,
    endpoints: impl IntoIterator<Item = kafka_listener::Endpoint>,
) -> kafka_listener::RunningListeners {
    endpoints
        .into_iter()
        .fold(kafka_listener::ListenerRegistry::empty().with_default_factory(factory), |registry, endpoint| {
            registry.register(endpoint)
        })
        .start()
        .await
        .unwrap()
}

/// A producer listener that records every outcome: `ok <topic>-<partition>@<offset>` or
/// `error <topic>: <error>`.
#[derive(Default, Clone)]
pub struct ProducerOutcomes(pub std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl ProducerOutcomes {
    /// The outcomes so far, oldest first.
    pub fn outcomes(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// How many sends failed.
    pub fn errors(&self) -> usize {
        self.outcomes().iter().filter(|o| o.starts_with("error ")).count()
    }
}

impl kafka_listener::producer::ProducerListener for ProducerOutcomes {
    fn on_success(&self, metadata: &kafka_listener::RecordMetadata) {
        let outcome = format!("ok {}-{}@{}", metadata.topic(), metadata.partition(), metadata.offset());
        self.0.lock().unwrap().push(outcome);
    }

    fn on_error(&self, topic: &str, error: &kafka_listener::Error) {
        self.0.lock().unwrap().push(format!("error {topic}: {error}"));
    }
}

/// Log lines kept in memory: a `tracing_subscriber` writer (`fmt().with_writer(logs.clone())`).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Logs {
    /// Everything captured.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }

    /// The captured lines that contain `part`.
    pub fn lines_with(&self, part: &str) -> Vec<String> {
        self.text().lines().filter(|l| l.contains(part)).map(str::to_string).collect()
    }

    /// Waits (20 s at most) until a captured line contains every one of `parts`.
    pub async fn wait_for_line(&self, what: &str, parts: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.text().lines().any(|line| parts.iter().all(|part| line.contains(part))) {
            if Instant::now() >= deadline {
                let text = self.text();
                let lines: Vec<&str> = text.lines().collect();
                panic!(
                    "timed out waiting for the log line of {what} (a line with all of {parts:?}); the last lines captured:\n{}",
                    lines[lines.len().saturating_sub(30)..].join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An example's binary, built if needed (`cargo test` builds the examples, `--test NAME` alone
/// does not).
pub fn example(name: &str) -> std::path::PathBuf {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo");
    assert!(status.success(), "building example {name}");
    let deps = std::env::current_exe().unwrap();
    deps.parent().unwrap().parent().unwrap().join("examples").join(name)
}

/// Container events as a factory's event listener saw them, in order.
pub type Events = std::sync::Arc<std::sync::Mutex<Vec<kafka_listener::prelude::ContainerEvent>>>;

/// `builder` with an event listener that keeps every event, and where they are kept.
pub fn recording_events(
    builder: kafka_listener::ContainerFactoryBuilder,
) -> (kafka_listener::ContainerFactoryBuilder, Events) {
    let events: Events = Events::default();
    let sink = events.clone();
    (builder.event_listener(move |event| sink.lock().unwrap().push(event.clone())), events)
}
