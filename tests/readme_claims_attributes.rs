//! README claims no other test covered (issue 11, part A): a listener on several topics, the
//! attribute forms of `auto_startup`, `properties`, `ack_mode` and `${ENV}` / `${ENV:default}`
//! placeholders, `client_id_prefix` as the broker receives it, the typed security settings, and
//! the keyless (KIP-480 sticky) path of `DefaultPartitioner`.
//!
//! The `#[kafka_listener]` functions below are linked into this whole test binary: each has an id,
//! topic and group of its own (all starting with `rc-`), and every test starts only its own with
//! `only([...])`, on an embedded cluster of its own.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use common::*;
use kafka_listener::prelude::*;
use kafka_listener::{Error, SaslMechanism};

const WAIT: Duration = Duration::from_secs(20);

/// Starts only the annotated listeners `ids`, with `factory` as the default factory and a manual
/// variant of it named "manual".
async fn start_only(ids: &[&str], factory: ContainerFactory) -> kafka_listener::Result<RunningListeners> {
    let manual = factory.to_builder().ack_mode(AckMode::Manual).build().unwrap();
    ListenerRegistry::from_annotations()
        .only(ids.iter().copied())
        .with_default_factory(factory)
        .with_factory("manual", manual)
        .start()
        .await
}

/// (topic, partition, offset, payload) of each record a probe saw, as a set.
fn landed(probe: &Probe) -> BTreeSet<(String, i32, i64, String)> {
    probe
        .seen()
        .into_iter()
        .map(|r| {
            let payload = r.payload_str().unwrap_or_default().to_string();
            (r.topic, r.partition, r.offset, payload)
        })
        .collect()
}

fn expected(records: &[(&str, i32, i64, &str)]) -> BTreeSet<(String, i32, i64, String)> {
    records.iter().map(|(t, p, o, v)| (t.to_string(), *p, *o, v.to_string())).collect()
}

fn offsets(pairs: &[(i32, i64)]) -> BTreeMap<i32, i64> {
    pairs.iter().copied().collect()
}

// --- 1. `topics = [...]`: one listener, the records of both topics ------------------------------

/// Records on two topics: "-a" with two partitions, "-b" with one.
fn produce_two_topics(kafka: &EmbeddedKafka, a: &str, b: &str) {
    produce(kafka, a, &[(0, "k", "a0-0".into()), (0, "k", "a0-1".into()), (1, "k", "a1-0".into())]);
    produce(kafka, b, &[(0, "k", "b0-0".into()), (0, "k", "b0-1".into()), (0, "k", "b0-2".into())]);
}

fn both_topics(a: &str, b: &str) -> BTreeSet<(String, i32, i64, String)> {
    expected(&[
        (a, 0, 0, "a0-0"),
        (a, 0, 1, "a0-1"),
        (a, 1, 0, "a1-0"),
        (b, 0, 0, "b0-0"),
        (b, 0, 1, "b0-1"),
        (b, 0, 2, "b0-2"),
    ])
}

static TWO_TOPICS: LazyLock<Probe> = LazyLock::new(Probe::open);

#[kafka_listener(id = "rc-two-topics", topics = ["rc-two-topics-a", "rc-two-topics-b"], group = "rc-two-topics")]
async fn two_topics(record: ConsumerRecord) {
    TWO_TOPICS.handle(record).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_topics_list_delivers_both_topics_and_commits_on_both() {
    let (a, b) = ("rc-two-topics-a", "rc-two-topics-b");
    let kafka = embedded(&[(a, 2), (b, 1), ("rc-two-topics-other", 1)]);
    produce_two_topics(&kafka, a, b);
    produce(&kafka, "rc-two-topics-other", &[(0, "k", "not subscribed".into())]);
    let running = start_only(&["rc-two-topics"], factory(&kafka, AckMode::Batch)).await.unwrap();
    wait_until("six records from both topics", WAIT, || TWO_TOPICS.count() >= 6).await;
    let bootstrap = kafka.bootstrap_servers();
    wait_committed(&bootstrap, "rc-two-topics", a, offsets(&[(0, 2), (1, 1)])).await;
    wait_committed(&bootstrap, "rc-two-topics", b, offsets(&[(0, 3)])).await;
    running.shutdown().await.unwrap();
    assert_eq!(TWO_TOPICS.count(), 6, "each record once: {:?}", landed(&TWO_TOPICS));
    assert_eq!(landed(&TWO_TOPICS), both_topics(a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_topics_delivers_both_topics_and_commits_on_both() {
    let (a, b) = ("rc-code-topics-a", "rc-code-topics-b");
    let kafka = embedded(&[(a, 2), (b, 1)]);
    produce_two_topics(&kafka, a, b);
    let probe = Probe::open();
    let handler = probe.clone();
    let endpoint = Endpoint::new("rc-code-topics").topics([a, b]).group("rc-code-topics").handler(
        move |record: ConsumerRecord| {
            let probe = handler.clone();
            async move { probe.handle(record).await }
        },
    );
    let running = start_listeners(factory(&kafka, AckMode::Batch), [endpoint]).await;
    wait_until("six records from both topics", WAIT, || probe.count() >= 6).await;
    let bootstrap = kafka.bootstrap_servers();
    wait_committed(&bootstrap, "rc-code-topics", a, offsets(&[(0, 2), (1, 1)])).await;
    wait_committed(&bootstrap, "rc-code-topics", b, offsets(&[(0, 3)])).await;
    running.shutdown().await.unwrap();
    assert_eq!(probe.count(), 6, "each record once: {:?}", landed(&probe));
    assert_eq!(landed(&probe), both_topics(a, b));
}

// --- 2a. `auto_startup = false`: nothing consumed until started by id -----------------------------

static HELD: LazyLock<Probe> = LazyLock::new(Probe::open);

#[kafka_listener(id = "rc-held", topic = "rc-held", group = "rc-held", auto_startup = false)]
async fn held(record: ConsumerRecord) {
    HELD.handle(record).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_auto_startup_false_waits_for_start_by_id() {
    let kafka = embedded(&[("rc-held", 1)]);
    produce(&kafka, "rc-held", &numbered(3));
    let bootstrap = kafka.bootstrap_servers();
    let running = start_only(&["rc-held"], factory(&kafka, AckMode::Batch)).await.unwrap();
    let container = running.container("rc-held").expect("the container exists while not started");
    assert!(!container.is_running(), "auto_startup = false: not running after start()");
    assert_stays("nothing handled while not started", Duration::from_millis(1500), || {
        std::future::ready(HELD.count() == 0)
    })
    .await;
    assert_eq!(committed(&bootstrap, "rc-held", "rc-held").await, BTreeMap::new(), "nothing committed");

    running.start("rc-held").unwrap();
    assert!(running.container("rc-held").unwrap().is_running());
    wait_until("the records after start by id", WAIT, || HELD.count() >= 3).await;
    wait_committed(&bootstrap, "rc-held", "rc-held", offsets(&[(0, 3)])).await;
    running.shutdown().await.unwrap();
    assert_eq!(HELD.payloads(), ["v0", "v1", "v2"]);
}

// --- 2b. `properties = [...]`: a consumer property with an observable effect ---------------------

static SPREAD: LazyLock<Probe> = LazyLock::new(Probe::open);

/// Two single-partition topics, two consumers: librdkafka's default `range` assignor gives both
/// partitions to the same consumer (partition 0 of each topic goes to the first member);
/// `roundrobin` gives one to each.
#[kafka_listener(
    id = "rc-props",
    topics = ["rc-props-a", "rc-props-b"],
    group = "rc-props",
    concurrency = 2,
    properties = ["partition.assignment.strategy=roundrobin"]
)]
async fn spread(record: ConsumerRecord) {
    SPREAD.handle(record).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_properties_reach_the_consumers() {
    let kafka = embedded(&[("rc-props-a", 1), ("rc-props-b", 1)]);
    produce(&kafka, "rc-props-a", &[(0, "k", "a".into())]);
    produce(&kafka, "rc-props-b", &[(0, "k", "b".into())]);
    let running = start_only(&["rc-props"], factory(&kafka, AckMode::Batch)).await.unwrap();
    let container = running.container("rc-props").unwrap();
    wait_until("one partition per consumer (roundrobin)", WAIT, || {
        let each = container.consumer_assignments();
        each.len() == 2 && each.iter().all(|owned| owned.len() == 1)
    })
    .await;
    let mut owned: Vec<TopicPartition> = container.consumer_assignments().concat();
    owned.sort();
    assert_eq!(owned, [("rc-props-a".to_string(), 0), ("rc-props-b".to_string(), 0)]);
    wait_until("both records", WAIT, || SPREAD.count() >= 2).await;
    running.shutdown().await.unwrap();
    assert_eq!(landed(&SPREAD), expected(&[("rc-props-a", 0, 0, "a"), ("rc-props-b", 0, 0, "b")]));
}

#[kafka_listener(
    id = "rc-bad-prop",
    topic = "rc-bad-prop",
    group = "rc-bad-prop",
    properties = ["fetch.wait.max.ms=soon"]
)]
async fn bad_prop(_record: ConsumerRecord) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_property_with_a_bad_value_fails_start_naming_listener_and_property() {
    let kafka = embedded(&[("rc-bad-prop", 1)]);
    let error = start_only(&["rc-bad-prop"], factory(&kafka, AckMode::Batch)).await.expect_err("a bad property value");
    assert!(matches!(error, Error::Validation(_)), "{error:?}");
    let problems = error.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.listener.as_deref() == Some("rc-bad-prop") && p.message.contains("fetch.wait.max.ms")),
        "{problems:?}"
    );
    let text = error.to_string();
    assert!(text.contains("listener `rc-bad-prop`") && text.contains("fetch.wait.max.ms"), "{text}");
}

// --- 2c. `ack_mode = "..."` over the factory's ack mode ------------------------------------------

static MANUAL: LazyLock<Probe> = LazyLock::new(Probe::open);

#[kafka_listener(id = "rc-ack-manual", topic = "rc-ack-manual", group = "rc-ack-manual", ack_mode = "manual")]
async fn ack_manual(record: ConsumerRecord, ack: Acknowledgment) {
    MANUAL.keep_ack(record.offset, ack);
    MANUAL.handle(record).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_ack_mode_manual_over_a_batch_factory_commits_only_acknowledged() {
    let kafka = embedded(&[("rc-ack-manual", 1)]);
    produce(&kafka, "rc-ack-manual", &numbered(3));
    let bootstrap = kafka.bootstrap_servers();
    // The default factory is Batch: it would commit 3 as soon as the poll's records returned.
    let running = start_only(&["rc-ack-manual"], factory(&kafka, AckMode::Batch)).await.unwrap();
    wait_until("three records handled", WAIT, || MANUAL.count() >= 3).await;
    assert_committed_stays(
        "nothing committed before an acknowledgment",
        &bootstrap,
        "rc-ack-manual",
        "rc-ack-manual",
        BTreeMap::new(),
        Duration::from_millis(1500),
    )
    .await;
    MANUAL.ack_of(0).acknowledge();
    MANUAL.ack_of(1).acknowledge();
    wait_committed(&bootstrap, "rc-ack-manual", "rc-ack-manual", offsets(&[(0, 2)])).await;
    assert_committed_stays(
        "the unacknowledged record stays uncommitted",
        &bootstrap,
        "rc-ack-manual",
        "rc-ack-manual",
        offsets(&[(0, 2)]),
        Duration::from_millis(1000),
    )
    .await;
    MANUAL.ack_of(2).acknowledge();
    wait_committed(&bootstrap, "rc-ack-manual", "rc-ack-manual", offsets(&[(0, 3)])).await;
    running.shutdown().await.unwrap();
}

static PER_RECORD: LazyLock<Probe> = LazyLock::new(Probe::gated);

#[kafka_listener(id = "rc-ack-record", topic = "rc-ack-record", group = "rc-ack-record", ack_mode = "record")]
async fn ack_record(record: ConsumerRecord) {
    PER_RECORD.handle(record).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_ack_mode_record_over_a_batch_factory_commits_each_record() {
    let kafka = embedded(&[("rc-ack-record", 1)]);
    produce(&kafka, "rc-ack-record", &numbered(3));
    let bootstrap = kafka.bootstrap_servers();
    let running = start_only(&["rc-ack-record"], factory(&kafka, AckMode::Batch)).await.unwrap();
    wait_until("the first record in the handler", WAIT, || PER_RECORD.count() >= 1).await;
    PER_RECORD.release_through(0);
    // With the factory's Batch mode nothing would be committed while records 1 and 2 are held.
    wait_committed(&bootstrap, "rc-ack-record", "rc-ack-record", offsets(&[(0, 1)])).await;
    wait_until("the second record in the handler", WAIT, || PER_RECORD.count() >= 2).await;
    PER_RECORD.release_through(1);
    wait_committed(&bootstrap, "rc-ack-record", "rc-ack-record", offsets(&[(0, 2)])).await;
    PER_RECORD.release_all();
    wait_committed(&bootstrap, "rc-ack-record", "rc-ack-record", offsets(&[(0, 3)])).await;
    running.shutdown().await.unwrap();
    assert_eq!(PER_RECORD.payloads(), ["v0", "v1", "v2"]);
}

// --- 2d. `${ENV}` and `${ENV:default}` placeholders in attribute values ----------------------------

static DEFAULTED: LazyLock<Probe> = LazyLock::new(Probe::open);

/// None of these variables is set: every value is its default.
#[kafka_listener(
    id = "${KL_RC_SURELY_UNSET_ID:rc-defaulted}",
    topic = "${KL_RC_SURELY_UNSET_TOPIC:rc-defaulted-topic}",
    group = "${KL_RC_SURELY_UNSET_GROUP:rc-defaulted-group}",
    concurrency = "${KL_RC_SURELY_UNSET_CONCURRENCY:2}"
)]
async fn defaulted(record: ConsumerRecord) {
    DEFAULTED.handle(record).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_placeholders_resolve_to_their_defaults() {
    for name in ["KL_RC_SURELY_UNSET_ID", "KL_RC_SURELY_UNSET_TOPIC", "KL_RC_SURELY_UNSET_GROUP"] {
        assert!(std::env::var_os(name).is_none(), "{name} must be unset for this test");
    }
    let kafka = embedded(&[("rc-defaulted-topic", 2)]);
    produce(&kafka, "rc-defaulted-topic", &[(0, "k", "p0".into()), (1, "k", "p1".into())]);
    // The id, resolved, is what `only` and `container` know.
    let running = start_only(&["rc-defaulted"], factory(&kafka, AckMode::Batch)).await.unwrap();
    let container = running.container("rc-defaulted").expect("the resolved id");
    assert_eq!(container.concurrency(), 2, "concurrency from its default");
    wait_until("both records", WAIT, || DEFAULTED.count() >= 2).await;
    let bootstrap = kafka.bootstrap_servers();
    wait_committed(&bootstrap, "rc-defaulted-group", "rc-defaulted-topic", offsets(&[(0, 1), (1, 1)])).await;
    running.shutdown().await.unwrap();
    assert_eq!(landed(&DEFAULTED), expected(&[("rc-defaulted-topic", 0, 0, "p0"), ("rc-defaulted-topic", 1, 0, "p1")]));
}

static FROM_ENV: LazyLock<Probe> = LazyLock::new(Probe::open);

/// `CARGO_PKG_NAME` is set in the test's environment by cargo (`cargo test` runs test binaries
/// with it), so the set-variable forms are tested without `std::env::set_var` (which would race
/// with librdkafka's threads reading the environment). The registry takes no resolver of its own.
#[kafka_listener(id = "rc-from-env", topic = "rc-${CARGO_PKG_NAME}", group = "${CARGO_PKG_NAME:not-the-default}-group")]
async fn from_env(record: ConsumerRecord) {
    FROM_ENV.handle(record).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_placeholders_resolve_set_variables_over_defaults() {
    let Ok(package) = std::env::var("CARGO_PKG_NAME") else {
        eprintln!("skipped: CARGO_PKG_NAME is not set (run the test through cargo test)");
        return;
    };
    assert_eq!(package, env!("CARGO_PKG_NAME"));
    let topic = format!("rc-{package}");
    let group = format!("{package}-group");
    let kafka = embedded(&[(topic.as_str(), 1)]);
    produce(&kafka, &topic, &numbered(2));
    let running = start_only(&["rc-from-env"], factory(&kafka, AckMode::Batch)).await.unwrap();
    wait_until("both records", WAIT, || FROM_ENV.count() >= 2).await;
    wait_committed(&kafka.bootstrap_servers(), &group, &topic, offsets(&[(0, 2)])).await;
    running.shutdown().await.unwrap();
    assert_eq!(landed(&FROM_ENV), expected(&[(topic.as_str(), 0, 0, "v0"), (topic.as_str(), 0, 1, "v1")]));
}

// --- 3. `client_id_prefix`: the client ids the broker receives -----------------------------------

/// A TCP proxy in front of a broker that reads the client id of every request it forwards (the
/// request header: size, api key, api version, correlation id, then the client id as an INT16
/// length and bytes, in every header version). The mock cluster keeps no client ids (it answers
/// neither DescribeGroups nor ListGroups), so this is how the test sees what the broker receives.
struct WireTap {
    address: String,
    client_ids: Arc<Mutex<BTreeSet<String>>>,
}

impl WireTap {
    fn start(upstream: String) -> WireTap {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the tap");
        let address = listener.local_addr().expect("tap address").to_string();
        let client_ids: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let ids = client_ids.clone();
        // Runs until the test binary exits.
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                let (Ok(mut from_client), Ok(mut to_server)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                let ids = ids.clone();
                std::thread::spawn(move || {
                    let _ = forward_requests(&mut from_client, &mut to_server, &ids);
                    let _ = to_server.shutdown(Shutdown::Both);
                });
                let (mut from_server, mut to_client) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_server, &mut to_client);
                    let _ = to_client.shutdown(Shutdown::Both);
                });
            }
        });
        WireTap { address, client_ids }
    }

    fn seen_with_prefix(&self, prefix: &str) -> BTreeSet<String> {
        self.client_ids.lock().unwrap().iter().filter(|id| id.starts_with(prefix)).cloned().collect()
    }
}

fn forward_requests(from: &mut TcpStream, to: &mut TcpStream, ids: &Mutex<BTreeSet<String>>) -> std::io::Result<()> {
    loop {
        let mut size = [0u8; 4];
        from.read_exact(&mut size)?;
        let length = usize::try_from(i32::from_be_bytes(size)).unwrap_or(0).min(64 << 20);
        let mut frame = vec![0u8; length];
        from.read_exact(&mut frame)?;
        if frame.len() >= 10 {
            let id_length = i16::from_be_bytes([frame[8], frame[9]]);
            if let Ok(id_length) = usize::try_from(id_length) {
                if let Some(id) = frame.get(10..10 + id_length) {
                    ids.lock().unwrap().insert(String::from_utf8_lossy(id).into_owned());
                }
            }
        }
        to.write_all(&size)?;
        to.write_all(&frame)?;
    }
}

static PREFIXED: LazyLock<Probe> = LazyLock::new(Probe::open);

#[kafka_listener(
    id = "rc-client-ids",
    topic = "rc-client-ids",
    group = "rc-client-ids",
    concurrency = 2,
    client_id_prefix = "rc-prefix"
)]
async fn prefixed(record: ConsumerRecord) {
    PREFIXED.handle(record).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_id_prefix_names_each_consumer_on_the_wire() {
    let kafka = embedded(&[("rc-client-ids", 2), ("rc-no-prefix", 1)]);
    produce(&kafka, "rc-client-ids", &[(0, "k", "p0".into()), (1, "k", "p1".into())]);
    produce(&kafka, "rc-no-prefix", &numbered(1));
    let tap = WireTap::start(kafka.bootstrap_servers());
    let factory = ContainerFactory::builder()
        .bootstrap_servers(&tap.address)
        .set("session.timeout.ms", "3000")
        .set("heartbeat.interval.ms", "300")
        .build()
        .unwrap();
    // A listener without a prefix, for comparison: its consumers are named after its id.
    let plain = Probe::open();
    let handler = plain.clone();
    let running = ListenerRegistry::from_annotations()
        .only(["rc-client-ids", "rc-no-prefix"])
        .with_default_factory(factory)
        .register(Endpoint::new("rc-no-prefix").topic("rc-no-prefix").group("rc-no-prefix").handler(
            move |record: ConsumerRecord| {
                let probe = handler.clone();
                async move { probe.handle(record).await }
            },
        ))
        .start()
        .await
        .unwrap();
    wait_until("the records of both listeners", WAIT, || PREFIXED.count() >= 2 && plain.count() >= 1).await;
    wait_until("both prefixed consumers on the wire", WAIT, || tap.seen_with_prefix("rc-prefix").len() >= 2).await;
    running.shutdown().await.unwrap();
    let expected: BTreeSet<String> = ["rc-prefix-0", "rc-prefix-1"].map(String::from).into();
    assert_eq!(tap.seen_with_prefix("rc-prefix"), expected, "all ids: {:?}", tap.client_ids.lock().unwrap());
    assert_eq!(
        tap.seen_with_prefix("rc-client-ids"),
        BTreeSet::new(),
        "the prefix replaces the listener id: {:?}",
        tap.client_ids.lock().unwrap()
    );
    assert_eq!(tap.seen_with_prefix("rc-no-prefix"), ["rc-no-prefix-0".to_string()].into());
    assert_eq!(landed(&PREFIXED), expected_records_client_ids());
}

fn expected_records_client_ids() -> BTreeSet<(String, i32, i64, String)> {
    expected(&[("rc-client-ids", 0, 0, "p0"), ("rc-client-ids", 1, 0, "p1")])
}

// --- 4. Typed security settings -------------------------------------------------------------------

const SECRET: &str = "rc-SECRET-0xC0FFEE";

/// Records the properties the typed settings produce, in order.
#[derive(Default)]
struct Recorded(Vec<(String, String)>);

impl SecuritySettings for Recorded {
    fn with_property(mut self, key: &str, value: String) -> Self {
        self.0.push((key.to_string(), value));
        self
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn typed_security_settings_produce_these_librdkafka_properties() {
    let plain = Recorded::default().sasl(SaslMechanism::Plain, "svc", SECRET, false);
    assert_eq!(
        plain.0,
        pairs(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", "svc"),
            ("sasl.password", SECRET),
        ])
    );
    let scram = Recorded::default().sasl(SaslMechanism::ScramSha512, "svc", SECRET, true);
    assert_eq!(
        scram.0,
        pairs(&[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "svc"),
            ("sasl.password", SECRET),
        ])
    );
    let scram256 = Recorded::default().sasl(SaslMechanism::ScramSha256, "svc", SECRET, true);
    assert_eq!(scram256.0[1], ("sasl.mechanisms".to_string(), "SCRAM-SHA-256".to_string()));
    let ca = Recorded::default().ssl_ca_location("/etc/kafka/ca.pem");
    assert_eq!(ca.0, pairs(&[("ssl.ca.location", "/etc/kafka/ca.pem")]));
    let key = Recorded::default().ssl_client_key("/etc/kafka/client.pem", "/etc/kafka/client.key", SECRET);
    assert_eq!(
        key.0,
        pairs(&[
            ("ssl.certificate.location", "/etc/kafka/client.pem"),
            ("ssl.key.location", "/etc/kafka/client.key"),
            ("ssl.key.password", SECRET),
        ])
    );
}

#[test]
fn sasl_on_a_factory_and_a_template_reads_back_with_the_secret_redacted() {
    let builder =
        ContainerFactory::builder().bootstrap_servers("127.0.0.1:1").sasl(SaslMechanism::Plain, "svc", SECRET, false);
    let builder_debug = format!("{builder:?}");
    let factory = builder.build().unwrap();
    assert_eq!(factory.property("security.protocol"), Some("sasl_plaintext"));
    assert_eq!(factory.property("sasl.mechanisms"), Some("PLAIN"));
    assert_eq!(factory.property("sasl.username"), Some("svc"));
    assert_eq!(factory.property("sasl.password"), None, "a secret is not returned");
    for debug in [builder_debug, format!("{factory:?}"), format!("{:?}", factory.to_builder())] {
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(debug.contains(r#""sasl.password": "<redacted>""#), "{debug}");
        assert!(debug.contains(r#""security.protocol": "sasl_plaintext""#), "{debug}");
    }

    let builder =
        KafkaTemplate::builder().bootstrap_servers("127.0.0.1:1").sasl(SaslMechanism::Plain, "svc", SECRET, false);
    let builder_debug = format!("{builder:?}");
    let template = builder.build().unwrap();
    for debug in [builder_debug, format!("{template:?}")] {
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(debug.contains(r#""sasl.password": "<redacted>""#), "{debug}");
        assert!(debug.contains(r#""security.protocol": "sasl_plaintext""#), "{debug}");
        assert!(debug.contains(r#""sasl.mechanisms": "PLAIN""#), "{debug}");
        assert!(debug.contains(r#""sasl.username": "svc""#), "{debug}");
    }
}

/// Whether the librdkafka linked in was built with SSL (kafka-listener's `ssl` feature).
fn librdkafka_has_ssl() -> bool {
    let config = rdkafka::ClientConfig::new().create_native_config().expect("native config");
    let features = config.get("builtin.features").expect("builtin.features");
    features.split(',').any(|f| f.trim() == "ssl")
}

#[test]
fn ssl_settings_read_back_with_the_ssl_feature_and_fail_clearly_without_it() {
    let ssl = ContainerFactory::builder()
        .bootstrap_servers("127.0.0.1:1")
        .ssl_ca_location("/etc/kafka/ca.pem")
        .ssl_client_key("/etc/kafka/client.pem", "/etc/kafka/client.key", SECRET)
        .build();
    let sasl_ssl = ContainerFactory::builder()
        .bootstrap_servers("127.0.0.1:1")
        .sasl(SaslMechanism::Plain, "svc", SECRET, true)
        .build();
    if librdkafka_has_ssl() {
        let factory = ssl.unwrap();
        assert_eq!(factory.property("ssl.ca.location"), Some("/etc/kafka/ca.pem"));
        assert_eq!(factory.property("ssl.certificate.location"), Some("/etc/kafka/client.pem"));
        assert_eq!(factory.property("ssl.key.location"), Some("/etc/kafka/client.key"));
        assert_eq!(factory.property("ssl.key.password"), None, "a secret is not returned");
        let debug = format!("{factory:?}");
        assert!(!debug.contains(SECRET) && debug.contains(r#""ssl.key.password": "<redacted>""#), "{debug}");
        assert_eq!(sasl_ssl.unwrap().property("security.protocol"), Some("sasl_ssl"));
        return;
    }
    // Without the `ssl` feature: a configuration error naming an SSL property and the feature,
    // never the secret.
    for (what, result) in [("ssl settings", ssl), ("sasl over ssl", sasl_ssl)] {
        let error = result.expect_err(what);
        let Error::Config { setting, reason } = &error else { panic!("{what}: not a Config error: {error:?}") };
        assert!(setting.starts_with("ssl.") || setting == "security.protocol", "{what}: {setting}");
        assert!(reason.contains("`ssl` cargo feature"), "{what}: {reason}");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(SECRET), "{what}: {shown}");
    }
}

// --- 5. DefaultPartitioner, records without a key (KIP-480) --------------------------------------

/// The sticky partition changes after a batch's worth of bytes (16 KiB): with 1,000-byte values,
/// 17 records (the one that passes 16 KiB included) go to one partition, then the next 17 to another.
const STICKY_RUN: usize = 17;

/// The lengths of the runs of equal partitions, and the partition of each run.
fn runs(partitions: &[i32]) -> Vec<(i32, usize)> {
    let mut runs: Vec<(i32, usize)> = Vec::new();
    for &p in partitions {
        match runs.last_mut() {
            Some((last, n)) if *last == p => *n += 1,
            _ => runs.push((p, 1)),
        }
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_records_through_the_template_stick_to_one_partition_per_batch() {
    let kafka = embedded(&[("rc-sticky", 4)]);
    let template = KafkaTemplate::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .partitioner(DefaultPartitioner)
        .build()
        .unwrap();
    let value = "x".repeat(1000);
    let mut stored = Vec::new();
    for _ in 0..STICKY_RUN * 4 {
        let metadata = template.send("rc-sticky", value.as_str()).await.unwrap();
        assert_eq!(metadata.topic(), "rc-sticky");
        stored.push((metadata.partition(), metadata.offset()));
    }
    let partitions: Vec<i32> = stored.iter().map(|(p, _)| *p).collect();
    let runs = runs(&partitions);
    assert!(partitions.iter().all(|p| (0..4).contains(p)), "{partitions:?}");
    assert_eq!(runs.len(), 4, "four batches, each on one partition, the next elsewhere: {runs:?}");
    assert!(runs.iter().all(|(_, n)| *n == STICKY_RUN), "{runs:?}");
    // Where they landed: each partition's records at consecutive offsets from 0, in send order.
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for (partition, offset) in &stored {
        let expected = next.entry(*partition).or_insert(0);
        assert_eq!(offset, expected, "partition {partition}: {stored:?}");
        *expected += 1;
    }
}

#[test]
fn default_partitioner_sticky_state_is_per_topic_and_ignores_keyed_records() {
    let partitioner = DefaultPartitioner;
    let value = [7u8; 1000];
    let mut a = Vec::new();
    let mut b = Vec::new();
    for i in 0..STICKY_RUN * 3 {
        a.push(partitioner.partition("rc-direct-a", None, Some(&value), 5));
        b.push(partitioner.partition("rc-direct-b", None, Some(&value), 5));
        // Keyed records go by murmur2 and take no room in the sticky batch.
        let key = format!("key-{i}");
        assert_eq!(
            partitioner.partition("rc-direct-a", Some(key.as_bytes()), Some(&value), 5),
            kafka_listener::producer::java_partition(key.as_bytes(), 5)
        );
    }
    for (topic, partitions) in [("a", &a), ("b", &b)] {
        let runs = runs(partitions);
        assert!(partitions.iter().all(|p| (0..5).contains(p)), "{topic}: {partitions:?}");
        assert_eq!(runs.len(), 3, "{topic}: {runs:?}");
        assert!(runs.iter().all(|(_, n)| *n == STICKY_RUN), "{topic}: {runs:?}");
    }
    // One partition: always 0.
    assert!((0..40).all(|_| partitioner.partition("rc-direct-one", None, Some(&value), 1) == 0));
}
