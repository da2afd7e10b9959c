//! Listener types and extractors through #[kafka_listener]: what each handler saw, and what
//! happens to records it cannot take or fails on.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use kafka_listener::extract::{ConversionError, ListenerContext, RecordPart};
use kafka_listener::prelude::*;
use kafka_listener::FailedRecord;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Order {
    id: u64,
    amount: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct CustomerKey {
    customer: String,
}

/// Records every failure the container reports, then decides as the default handler does.
#[derive(Clone, Default)]
struct RecordingErrors {
    failures: Arc<Mutex<Vec<(i64, u32, bool, String)>>>,
    inner: DefaultErrorHandler,
}

impl ErrorHandler for RecordingErrors {
    fn handle_record(&self, failed: &FailedRecord<'_>) -> ErrorDecision {
        self.failures.lock().unwrap().push((
            failed.record.offset(),
            failed.attempt,
            failed.failure.is_retryable(),
            failed.failure.to_string(),
        ));
        self.inner.handle_record(failed)
    }
}

async fn run_only(kafka: &EmbeddedKafka, id: &str, factory: ContainerFactory) -> RunningListeners {
    ListenerRegistry::from_annotations()
        .only([id])
        .with_default_factory(factory.clone())
        .with_factory("manual", factory.to_builder().ack_mode(AckMode::Manual).build().unwrap())
        .with_state(AppState { tax: 0.25 })
        .start()
        .await
        .unwrap_or_else(|e| panic!("start {id} on {}: {e}", kafka.bootstrap_servers()))
}

// --- simple listener, plain fn: JSON payload, string key, metadata, headers -------------------

// Handlers only record what they saw; the tests assert on it (an assertion inside a handler would
// be a contained panic, retried, and show as a timeout instead of its message).
static SIMPLE: Mutex<Vec<(Order, String, Meta, Headers)>> = Mutex::new(Vec::new());

#[kafka_listener(id = "simple", topic = "simple", group = "simple")]
fn simple(order: Json<Order>, key: Key<String>, meta: Meta, headers: Headers) {
    SIMPLE.lock().unwrap().push((order.0, key.0, meta, headers));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_listener_gets_json_key_and_meta() {
    let kafka = embedded(&[("simple", 1)]);
    kafka.produce("simple", Some(b"c-1"), br#"{"id":1,"amount":2.5}"#).unwrap();
    kafka.produce("simple", Some(b"c-2"), br#"{"id":2,"amount":4.0}"#).unwrap();
    kafka.flush().unwrap();
    let running = run_only(&kafka, "simple", factory(&kafka, AckMode::Batch)).await;
    wait_until("2 orders", Duration::from_secs(20), || SIMPLE.lock().unwrap().len() == 2).await;
    running.shutdown().await.unwrap();
    let seen = SIMPLE.lock().unwrap().clone();
    assert_eq!(seen[0].0, Order { id: 1, amount: 2.5 });
    assert_eq!(seen[1].1, "c-2");
    assert_eq!((seen[1].2.topic.as_str(), seen[1].2.partition, seen[1].2.offset), ("simple", 0, 1));
    assert_eq!(seen[1].2.key.as_deref(), Some(&b"c-2"[..]));
    assert!(seen[0].2.timestamp.is_some());
    assert!(seen.iter().all(|(_, _, _, headers)| headers.is_empty()), "records without headers: {seen:?}");
}

// --- raw payload extractors and the whole record -------------------------------------------------

static RAW: Mutex<Vec<(Vec<u8>, Bytes, String, ConsumerRecord)>> = Mutex::new(Vec::new());

#[kafka_listener(id = "raw", topic = "raw", group = "raw")]
async fn raw(bytes: Vec<u8>, shared: Bytes, text: String, record: ConsumerRecord) {
    RAW.lock().unwrap().push((bytes, shared, text, record));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_extractors_and_consumer_record() {
    let kafka = embedded(&[("raw", 1)]);
    kafka.produce("raw", None, "héllo".as_bytes()).unwrap();
    kafka.flush().unwrap();
    let running = run_only(&kafka, "raw", factory(&kafka, AckMode::Record)).await;
    wait_until("1 record", Duration::from_secs(20), || RAW.lock().unwrap().len() == 1).await;
    running.shutdown().await.unwrap();
    let (bytes, shared, text, record) = RAW.lock().unwrap()[0].clone();
    assert_eq!(bytes, "héllo".as_bytes());
    assert_eq!(&shared[..], "héllo".as_bytes());
    assert_eq!(text, "héllo");
    assert_eq!(record.payload_str(), Some("héllo"));
    assert_eq!((record.topic.as_str(), record.partition, record.offset, record.key), ("raw", 0, 0, None));
}

// --- keys: JSON and big-endian integers ---------------------------------------------------------

static KEYS: Mutex<Vec<(String, i64)>> = Mutex::new(Vec::new());

#[kafka_listener(id = "json-key", topic = "json-key", group = "json-key")]
async fn json_key(key: Key<Json<CustomerKey>>) {
    KEYS.lock().unwrap().push((key.0 .0.customer, -1));
}

#[kafka_listener(id = "long-key", topic = "long-key", group = "long-key")]
async fn long_key(key: Key<i64>) {
    KEYS.lock().unwrap().push(("long".into(), key.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_decode_as_json_and_as_java_longs() {
    let kafka = embedded(&[("json-key", 1), ("long-key", 1)]);
    kafka.produce("json-key", Some(br#"{"customer":"acme"}"#), b"x").unwrap();
    kafka.produce("long-key", Some(&42i64.to_be_bytes()), b"x").unwrap();
    kafka.flush().unwrap();
    let factory = factory(&kafka, AckMode::Batch);
    let running = ListenerRegistry::from_annotations()
        .only(["json-key", "long-key"])
        .with_default_factory(factory)
        .start()
        .await
        .unwrap();
    wait_until("2 keys", Duration::from_secs(20), || KEYS.lock().unwrap().len() == 2).await;
    running.shutdown().await.unwrap();
    let mut keys = KEYS.lock().unwrap().clone();
    keys.sort();
    assert_eq!(keys, [("acme".to_string(), -1), ("long".to_string(), 42)]);
}

// --- application state and a user-defined extractor ---------------------------------------------

#[derive(Clone)]
struct AppState {
    tax: f64,
}

/// A user-defined extractor: a decimal number as text.
struct Cents(u64);

impl FromRecord for Cents {
    fn from_record(record: &Record<'_>, _cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
        let text = std::str::from_utf8(record.payload().unwrap_or_default())
            .map_err(|e| ConversionError::new::<Self>(record, RecordPart::Payload, e))?;
        text.trim().parse().map(Cents).map_err(|e| ConversionError::new::<Self>(record, RecordPart::Payload, e))
    }
}

static TAXED: Mutex<Vec<f64>> = Mutex::new(Vec::new());

#[kafka_listener(id = "state", topic = "state", group = "state")]
async fn with_state(cents: Cents, state: State<AppState>) {
    TAXED.lock().unwrap().push(cents.0 as f64 * state.tax);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_user_defined_extractors() {
    let kafka = embedded(&[("state", 1)]);
    kafka.produce("state", None, b"400").unwrap();
    kafka.flush().unwrap();
    let running = run_only(&kafka, "state", factory(&kafka, AckMode::Batch)).await;
    wait_until("1 record", Duration::from_secs(20), || TAXED.lock().unwrap().len() == 1).await;
    running.shutdown().await.unwrap();
    assert_eq!(TAXED.lock().unwrap()[0], 100.0);
}

// --- consumer-aware: the handle sees the assignment and seeks ------------------------------------

static WATCHED: Mutex<Vec<i64>> = Mutex::new(Vec::new());
static ASSIGNED: Mutex<Vec<TopicPartition>> = Mutex::new(Vec::new());

#[kafka_listener(id = "watch", topic = "watch", group = "watch")]
fn watch(meta: Meta, consumer: ConsumerHandle) {
    let mut seen = WATCHED.lock().unwrap();
    seen.push(meta.offset);
    if seen.len() == 1 {
        *ASSIGNED.lock().unwrap() = consumer.assignment().unwrap();
    }
    // Once, at offset 2: go back to offset 1.
    if meta.offset == 2 && seen.iter().filter(|&&o| o == 2).count() == 1 {
        consumer.seek(&meta.topic, meta.partition, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_aware_listener_seeks_back() {
    let kafka = embedded(&[("watch", 1)]);
    produce(&kafka, "watch", &numbered(4));
    let running = run_only(&kafka, "watch", factory(&kafka, AckMode::Batch)).await;
    wait_until("the records after the seek", Duration::from_secs(20), || WATCHED.lock().unwrap().len() == 6).await;
    running.shutdown().await.unwrap();
    assert_eq!(*WATCHED.lock().unwrap(), [0, 1, 2, 1, 2, 3]);
    assert_eq!(*ASSIGNED.lock().unwrap(), [("watch".to_string(), 0)]);
    assert_eq!(committed(&kafka.bootstrap_servers(), "watch", "watch").await, [(0, 4)].into());
}

// --- acknowledging + consumer-aware, on the manual factory ---------------------------------------

/// The listener id each call's consumer handle gave.
static ACK_AWARE: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[kafka_listener(id = "ack-aware", topic = "ack-aware", group = "ack-aware", container_factory = "manual")]
async fn ack_aware(ack: Acknowledgment, consumer: ConsumerHandle, _text: String) {
    ACK_AWARE.lock().unwrap().push(consumer.listener_id().to_string());
    ack.acknowledge();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_consumer_aware_listener() {
    let kafka = embedded(&[("ack-aware", 1)]);
    produce(&kafka, "ack-aware", &numbered(3));
    let running = run_only(&kafka, "ack-aware", factory(&kafka, AckMode::Batch)).await;
    wait_until("3 records", Duration::from_secs(20), || ACK_AWARE.lock().unwrap().len() == 3).await;
    wait_committed(&kafka.bootstrap_servers(), "ack-aware", "ack-aware", [(0, 3)].into()).await;
    running.shutdown().await.unwrap();
    assert_eq!(*ACK_AWARE.lock().unwrap(), ["ack-aware"; 3], "the consumer handle names its listener");
}

// --- batch listener: Vec<Json<T>> with an acknowledgment; an undecodable record in the middle ----

/// Each batch: the order ids, and the offsets of the `Meta`s that came with them.
static BATCHES: Mutex<Vec<(Vec<u64>, Vec<i64>)>> = Mutex::new(Vec::new());

#[kafka_listener(id = "batch", topic = "batch", group = "batch", batch = true, container_factory = "manual")]
async fn batch(orders: Vec<Json<Order>>, metas: Vec<Meta>, ack: Acknowledgment) {
    BATCHES.lock().unwrap().push((orders.iter().map(|o| o.id).collect(), metas.iter().map(|m| m.offset).collect()));
    ack.acknowledge();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_listener_gets_the_poll_and_skips_what_it_cannot_convert() {
    let kafka = embedded(&[("batch", 1)]);
    for id in 0..6u64 {
        let payload = if id == 3 { "not json".to_string() } else { format!(r#"{{"id":{id},"amount":1.0}}"#) };
        kafka.produce("batch", None, payload.as_bytes()).unwrap();
    }
    kafka.flush().unwrap();
    let errors = RecordingErrors::default();
    let factory = ContainerFactory::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .error_handler(errors.clone())
        .build()
        .unwrap();
    let running = run_only(&kafka, "batch", factory).await;
    wait_until("5 orders", Duration::from_secs(20), || {
        BATCHES.lock().unwrap().iter().map(|(ids, _)| ids.len()).sum::<usize>() == 5
    })
    .await;
    wait_committed(&kafka.bootstrap_servers(), "batch", "batch", [(0, 6)].into()).await;
    running.shutdown().await.unwrap();
    let seen = BATCHES.lock().unwrap().clone();
    for (ids, offsets) in &seen {
        assert_eq!(ids.len(), offsets.len(), "one Meta per converted record in each batch: {seen:?}");
        // Order `id` was produced at offset `id`.
        assert_eq!(
            ids.iter().map(|&id| id as i64).collect::<Vec<_>>(),
            *offsets,
            "the Metas are the orders' own: {seen:?}"
        );
    }
    let batches: Vec<Vec<u64>> = seen.into_iter().map(|(ids, _)| ids).collect();
    assert_eq!(batches.concat(), [0, 1, 2, 4, 5], "the records around the bad one, in order");
    assert!(
        batches.iter().all(|b| b.iter().all(|&id| id < 3) || b.iter().all(|&id| id > 3)),
        "a batch never spans the record that could not be converted: {batches:?}"
    );
    let failures = errors.failures.lock().unwrap().clone();
    assert_eq!(failures.len(), 1, "the bad record went to the error handler once: {failures:?}");
    let (offset, attempt, retryable, text) = &failures[0];
    assert_eq!((*offset, *attempt, *retryable), (3, 1, false));
    assert!(text.contains("batch-0@3"), "{text}");
}

// --- failures: bad JSON is not retried; handler errors are retried 9 times; panics are caught ---

static FAILING_CALLS: Mutex<Vec<i64>> = Mutex::new(Vec::new());

#[derive(Debug)]
struct Declined;

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("declined")
    }
}

impl std::error::Error for Declined {}

#[kafka_listener(id = "failing", topic = "failing", group = "failing")]
async fn failing(order: Json<Order>, meta: Meta) -> Result<(), ListenerError> {
    FAILING_CALLS.lock().unwrap().push(meta.offset);
    match order.id {
        1 => Err(Declined.into()),
        2 => panic!("order 2 makes the handler panic"),
        _ => Ok(()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_go_to_the_error_handler_and_the_container_keeps_running() {
    let kafka = embedded(&[("failing", 1)]);
    for payload in
        [r#"{"id":0,"amount":1}"#, r#"{"id":1,"amount":1}"#, r#"{"id":2,"amount":1}"#, "{bad", r#"{"id":4,"amount":1}"#]
    {
        kafka.produce("failing", None, payload.as_bytes()).unwrap();
    }
    kafka.flush().unwrap();
    let errors = RecordingErrors::default();
    let factory = ContainerFactory::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .ack_mode(AckMode::Record)
        .error_handler(errors.clone())
        .build()
        .unwrap();
    let running = run_only(&kafka, "failing", factory).await;
    wait_until("the last record", Duration::from_secs(30), || FAILING_CALLS.lock().unwrap().contains(&4)).await;
    wait_committed(&kafka.bootstrap_servers(), "failing", "failing", [(0, 5)].into()).await;
    running.shutdown().await.unwrap();

    let calls = FAILING_CALLS.lock().unwrap().clone();
    assert_eq!(calls.iter().filter(|&&o| o == 1).count(), 10, "an error: 1 attempt + 9 retries");
    assert_eq!(calls.iter().filter(|&&o| o == 2).count(), 10, "a panic is an error too");
    assert!(!calls.contains(&3), "the handler never sees an undecodable record");
    let failures = errors.failures.lock().unwrap().clone();
    let of = |offset: i64| failures.iter().filter(|f| f.0 == offset).cloned().collect::<Vec<_>>();
    assert_eq!(of(1).len(), 10);
    assert!(of(1).iter().all(|f| f.2 && f.3.contains("declined")));
    assert!(of(2)[0].3.contains("panicked: order 2 makes the handler panic"), "{:?}", of(2));
    let bad = of(3);
    assert_eq!(bad.len(), 1, "conversion failures are not retried");
    assert!(!bad[0].2);
    assert!(bad[0].3.contains("failing-0@3") && bad[0].3.contains("Order"), "{}", bad[0].3);
}

// --- nack: the record and the rest of the poll come again after the sleep -------------------------

static NACKED: Mutex<Vec<(i64, Instant)>> = Mutex::new(Vec::new());

#[kafka_listener(id = "nack", topic = "nack", group = "nack", container_factory = "manual")]
async fn nack(meta: Meta, ack: Acknowledgment) {
    let mut seen = NACKED.lock().unwrap();
    let first_time = !seen.iter().any(|(o, _)| *o == meta.offset);
    seen.push((meta.offset, Instant::now()));
    if meta.offset == 1 && first_time {
        ack.nack(Duration::from_millis(500));
    } else {
        ack.acknowledge();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_redelivers_the_record_and_the_rest_of_the_poll_after_the_sleep() {
    let kafka = embedded(&[("nack", 1)]);
    produce(&kafka, "nack", &numbered(3));
    let running = run_only(&kafka, "nack", factory(&kafka, AckMode::Batch)).await;
    wait_committed(&kafka.bootstrap_servers(), "nack", "nack", [(0, 3)].into()).await;
    running.shutdown().await.unwrap();
    let seen = NACKED.lock().unwrap().clone();
    let offsets: Vec<i64> = seen.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, [0, 1, 1, 2]);
    let waited = seen[2].1 - seen[1].1;
    assert!(waited >= Duration::from_millis(500), "redelivered after {waited:?}");
}

// --- a topic pattern subscribes to every matching topic --------------------------------------------

static PATTERN: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[kafka_listener(id = "pattern", topic_pattern = "metrics-.*", group = "pattern", client_id_prefix = "pattern-client")]
async fn pattern(meta: Meta) {
    PATTERN.lock().unwrap().push(meta.topic);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_pattern_subscribes_to_every_matching_topic() {
    let kafka = embedded(&[("metrics-cpu", 1), ("metrics-disk", 1), ("other", 1)]);
    for topic in ["metrics-cpu", "metrics-disk", "other"] {
        kafka.produce(topic, None, b"1").unwrap();
    }
    kafka.flush().unwrap();
    let running = run_only(&kafka, "pattern", factory(&kafka, AckMode::Batch)).await;
    wait_until("both metrics topics", Duration::from_secs(20), || PATTERN.lock().unwrap().len() == 2).await;
    assert_stays("the other topic is not consumed", Duration::from_millis(300), || {
        let n = PATTERN.lock().unwrap().len();
        async move { n == 2 }
    })
    .await;
    running.shutdown().await.unwrap();
    let mut topics = PATTERN.lock().unwrap().clone();
    topics.sort();
    assert_eq!(topics, ["metrics-cpu", "metrics-disk"]);
}

// --- headers -------------------------------------------------------------------------------------

static HEADERS: Mutex<Vec<(Headers, ConsumerRecord)>> = Mutex::new(Vec::new());

#[kafka_listener(id = "headers", topic = "headers", group = "headers")]
async fn headers(headers: Headers, record: ConsumerRecord) {
    HEADERS.lock().unwrap().push((headers, record));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_in_order_with_repeated_names() {
    let kafka = embedded(&[("headers", 1)]);
    kafka
        .produce_with_headers("headers", None, b"x", &[("trace", b"t-1"), ("tenant", b"acme"), ("trace", b"t-2")])
        .unwrap();
    kafka.flush().unwrap();
    let running = run_only(&kafka, "headers", factory(&kafka, AckMode::Batch)).await;
    wait_until("1 record", Duration::from_secs(20), || HEADERS.lock().unwrap().len() == 1).await;
    running.shutdown().await.unwrap();
    let (headers, record) = HEADERS.lock().unwrap()[0].clone();
    assert_eq!(headers.len(), 3);
    assert_eq!(headers.get_str("trace"), Some("t-2"), "the last header of a name wins");
    assert_eq!(headers.get("tenant"), Some(&b"acme"[..]));
    assert_eq!(headers.get("missing"), None);
    let names: Vec<_> = headers.iter().map(|(name, _)| name.to_string()).collect();
    assert_eq!(names, ["trace", "tenant", "trace"]);
    assert_eq!(record.headers, headers);
}

// --- an annotated function stays an ordinary function ----------------------------------------------

#[kafka_listener(id = "callable", topic = "callable", group = "callable")]
async fn callable(text: String) -> Result<(), ListenerError> {
    if text.is_empty() {
        return Err(ListenerError::msg("empty"));
    }
    Ok(())
}

#[tokio::test]
async fn annotated_functions_can_still_be_called() {
    assert!(callable("x".into()).await.is_ok());
    assert_eq!(callable(String::new()).await.unwrap_err().to_string(), "empty");
    let endpoints = ListenerRegistry::from_annotations();
    let endpoint = endpoints.endpoints().iter().find(|e| e.id() == "callable").expect("registered by the macro");
    assert_eq!(endpoint.topics_named(), ["callable"]);
    assert_eq!(endpoint.group_named(), Some("callable"));
    assert_eq!(endpoint.listener_type(), Some(ListenerType::Simple));
    assert!(!endpoint.is_batch());
    let batch = endpoints.endpoints().iter().find(|e| e.id() == "batch").unwrap();
    assert!(batch.is_batch());
    assert_eq!(batch.listener_type(), Some(ListenerType::Acknowledging));
    let watch = endpoints.endpoints().iter().find(|e| e.id() == "watch").unwrap();
    assert_eq!(watch.listener_type(), Some(ListenerType::ConsumerAware));
    let both = endpoints.endpoints().iter().find(|e| e.id() == "ack-aware").unwrap();
    assert_eq!(both.listener_type(), Some(ListenerType::AcknowledgingConsumerAware));
}
