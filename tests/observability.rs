//! Observability: the `process` and `send` spans (fields and nesting, read by a capturing
//! subscriber layer), the metrics (read from the `metrics` debugging recorder), and the
//! listeners' health (liveness and readiness through a broker outage, a stuck handler, a stop).
//!
//! One subscriber and one recorder serve every test of this binary (both are process-wide):
//! each test uses listener ids, groups and topics of its own and reads only what carries them.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::*;
use kafka_listener::error_handler::{DeadLetterRecoverer, FixedBackOff, RetryTopics, StopContainerErrorHandler};
use kafka_listener::observability::{self as obs, ConsumerState};
use kafka_listener::prelude::*;
use metrics::{Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::registry::{AtomicStorage, Registry};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanValues};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

// ---- a capturing subscriber layer ----

#[derive(Debug, Clone)]
struct CapturedSpan {
    seq: usize,
    name: String,
    target: String,
    parent: Option<usize>,
    fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct CapturedEvent {
    /// The span the event happened in (its `seq`).
    span: Option<usize>,
    message: String,
}

#[derive(Default)]
struct Captured {
    spans: Vec<CapturedSpan>,
    /// Live span ids to their `seq` (ids are reused once a span closes).
    live: HashMap<u64, usize>,
    events: Vec<CapturedEvent>,
}

struct Capture(Arc<Mutex<Captured>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut captured = self.0.lock().unwrap();
        let parent = ctx.span(id).and_then(|s| s.parent()).and_then(|p| captured.live.get(&p.id().into_u64()).copied());
        let seq = captured.spans.len();
        captured.spans.push(CapturedSpan {
            seq,
            name: attrs.metadata().name().to_string(),
            target: attrs.metadata().target().to_string(),
            parent,
            fields,
        });
        captured.live.insert(id.into_u64(), seq);
    }

    fn on_record(&self, id: &Id, values: &SpanValues<'_>, _ctx: Context<'_, S>) {
        let mut captured = self.0.lock().unwrap();
        if let Some(&seq) = captured.live.get(&id.into_u64()) {
            values.record(&mut Fields(&mut captured.spans[seq].fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let mut captured = self.0.lock().unwrap();
        let span = ctx.event_span(event).and_then(|s| captured.live.get(&s.id().into_u64()).copied());
        captured.events.push(CapturedEvent { span, message: fields.remove("message").unwrap_or_default() });
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        self.0.lock().unwrap().live.remove(&id.into_u64());
    }
}

/// A recorder that keeps every value until read, and reads without resetting (the
/// `DebuggingRecorder`'s snapshots reset counters and gauges, which tests running side by side
/// would take from each other): metrics-util's registry with atomic storage.
struct Keeping(Arc<Registry<Key, AtomicStorage>>);

impl Recorder for Keeping {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> metrics::Counter {
        self.0.get_or_create_counter(key, |c| metrics::Counter::from_arc(c.clone()))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> metrics::Gauge {
        self.0.get_or_create_gauge(key, |g| metrics::Gauge::from_arc(g.clone()))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> metrics::Histogram {
        self.0.get_or_create_histogram(key, |h| metrics::Histogram::from_arc(h.clone()))
    }
}

/// A metric's value as read: a counter's count, a gauge's value, a histogram's samples.
#[derive(Debug, Clone)]
enum Value {
    Counter(u64),
    Gauge(f64),
    Histogram(Vec<f64>),
}

struct Observed {
    captured: Arc<Mutex<Captured>>,
    registry: Arc<Registry<Key, AtomicStorage>>,
}

/// Installs the capturing subscriber and the recorder, once for the binary.
fn observed() -> &'static Observed {
    static OBSERVED: OnceLock<Observed> = OnceLock::new();
    OBSERVED.get_or_init(|| {
        let captured = Arc::new(Mutex::new(Captured::default()));
        let subscriber = tracing_subscriber::registry().with(Capture(captured.clone()));
        tracing::subscriber::set_global_default(subscriber).expect("the first subscriber");
        let registry = Arc::new(Registry::atomic());
        metrics::set_global_recorder(Keeping(registry.clone())).expect("the first recorder");
        Observed { captured, registry }
    })
}

impl Observed {
    fn spans(&self) -> Vec<CapturedSpan> {
        self.captured.lock().unwrap().spans.clone()
    }

    fn events(&self) -> Vec<CapturedEvent> {
        self.captured.lock().unwrap().events.clone()
    }

    /// The `process` spans of a listener.
    fn process_spans(&self, listener: &str) -> Vec<CapturedSpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == "process" && s.fields.get("kafka_listener.id").map(String::as_str) == Some(listener))
            .collect()
    }

    /// Every metric of `name` whose labels include `labels`: (labels, value).
    fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Vec<(BTreeMap<String, String>, Value)> {
        let matching = |key: &Key| {
            let all: BTreeMap<String, String> =
                key.labels().map(|l| (l.key().to_string(), l.value().to_string())).collect();
            (key.name() == name && labels.iter().all(|(k, v)| all.get(*k).map(String::as_str) == Some(*v)))
                .then_some(all)
        };
        let mut found = Vec::new();
        for (key, counter) in self.registry.get_counter_handles() {
            found.extend(matching(&key).map(|l| (l, Value::Counter(counter.load(Ordering::SeqCst)))));
        }
        for (key, gauge) in self.registry.get_gauge_handles() {
            found.extend(matching(&key).map(|l| (l, Value::Gauge(f64::from_bits(gauge.load(Ordering::SeqCst))))));
        }
        for (key, histogram) in self.registry.get_histogram_handles() {
            found.extend(matching(&key).map(|l| (l, Value::Histogram(histogram.data()))));
        }
        found
    }

    /// The sum of the counters (or of the histograms' sample counts) of `name` with these labels.
    fn count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.metric(name, labels)
            .into_iter()
            .map(|(_, v)| match v {
                Value::Counter(n) => n,
                Value::Histogram(samples) => samples.len() as u64,
                other => panic!("{name} is not a counter or histogram: {other:?}"),
            })
            .sum()
    }

    /// The gauge of `name` with these labels (the first).
    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.metric(name, labels).into_iter().find_map(|(_, v)| match v {
            Value::Gauge(g) => Some(g),
            _ => None,
        })
    }
}

fn field<'s>(span: &'s CapturedSpan, name: &str) -> &'s str {
    span.fields.get(name).map(String::as_str).unwrap_or_else(|| panic!("span without {name}: {span:?}"))
}

// ---- spans and metrics of a record listener ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_delivery_runs_in_a_process_span_with_messaging_fields_and_metrics_count_it() {
    let observed = observed();
    let kafka = embedded(&[("obs-orders", 1), ("obs-orders-dlt", 1)]);
    kafka.produce("obs-orders", Some(b"k-0"), b"ok-0").unwrap();
    kafka.produce("obs-orders", Some(b"k-1"), b"bad").unwrap();
    kafka.produce("obs-orders", None, b"ok-2").unwrap();
    kafka.flush().unwrap();
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    // One retry, then the dead-letter topic.
    let handler = DefaultErrorHandler::new()
        .backoff(FixedBackOff { interval: Duration::from_millis(10), max_retries: 1 })
        .recoverer(DeadLetterRecoverer::new(template));
    let factory =
        factory(&kafka, AckMode::Record).to_builder().client_id("obs-client").error_handler(handler).build().unwrap();
    let handled = Arc::new(AtomicUsize::new(0));
    let counted = handled.clone();
    let endpoint = Endpoint::new("obs-orders").topic("obs-orders").group("obs-billing").handler(move |text: String| {
        let counted = counted.clone();
        async move {
            // The handler's own span and an event after a real wait: both inside `process`.
            let inner = tracing::info_span!("pricing");
            inner.in_scope(|| tracing::info!("priced {text}"));
            tokio::time::sleep(Duration::from_millis(1)).await;
            tracing::info!("after the wait: {text}");
            if text == "bad" {
                return Err(ListenerError::msg("cannot bill"));
            }
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    let running = start_listeners(factory, [endpoint]).await;
    wait_until("two records handled", Duration::from_secs(30), || handled.load(Ordering::SeqCst) == 2).await;
    let letters = dead_letters(&kafka, "obs-orders-dlt", 1).await;
    assert_eq!(letters[0].payload_str(), Some("bad"));
    wait_committed(&kafka.bootstrap_servers(), "obs-billing", "obs-orders", BTreeMap::from([(0, 3)])).await;
    running.shutdown().await.unwrap();

    // Spans: ok-0, bad (attempts 1 and 2), ok-2.
    let spans = observed.process_spans("obs-orders");
    let summary: Vec<(String, String)> = spans
        .iter()
        .map(|s| {
            (field(s, "messaging.kafka.offset").to_string(), field(s, "kafka_listener.delivery_attempt").to_string())
        })
        .collect();
    let expected: Vec<(String, String)> =
        [("0", "1"), ("1", "1"), ("1", "2"), ("2", "1")].iter().map(|(o, a)| (o.to_string(), a.to_string())).collect();
    assert_eq!(summary, expected, "one span per delivery, retries with their attempt");
    for span in &spans {
        assert_eq!(span.target, "kafka_listener");
        assert_eq!(field(span, "messaging.system"), "kafka");
        assert_eq!(field(span, "messaging.operation.name"), "process");
        assert_eq!(field(span, "messaging.operation.type"), "process");
        assert_eq!(field(span, "messaging.destination.name"), "obs-orders");
        assert_eq!(field(span, "messaging.destination.partition.id"), "0");
        assert_eq!(field(span, "messaging.consumer.group.name"), "obs-billing");
        assert_eq!(field(span, "messaging.client.id"), "obs-client-0");
        assert_eq!(field(span, "otel.kind"), "consumer");
    }
    assert_eq!(field(&spans[0], "messaging.kafka.message.key"), "k-0");
    assert!(!spans[3].fields.contains_key("messaging.kafka.message.key"), "a record without a key has none");
    assert!(!spans[0].fields.contains_key("error.type"), "{:?}", spans[0]);
    for failed in &spans[1..3] {
        assert_eq!(field(failed, "error.type"), "handler");
        assert_eq!(field(failed, "otel.status_code"), "error");
    }

    // The handler's span and events are inside its record's span, before and after its wait.
    let all = observed.spans();
    let events = observed.events();
    for span in &spans {
        let offset = field(span, "messaging.kafka.offset");
        let text = ["ok-0", "bad", "ok-2"][offset.parse::<usize>().unwrap()];
        let pricing = all.iter().find(|s| s.name == "pricing" && s.parent == Some(span.seq));
        assert!(pricing.is_some(), "the handler's span inside delivery {span:?}");
        let after =
            events.iter().filter(|e| e.span == Some(span.seq) && e.message == format!("after the wait: {text}"));
        assert_eq!(after.count(), 1, "the handler's event after its wait, inside {span:?}");
    }
    // The dead-letter send: a `send` span inside the last delivery of the failed record.
    let send = all.iter().find(|s| s.name == "send" && s.parent == Some(spans[2].seq)).expect("the DLT send's span");
    assert_eq!(field(send, "messaging.operation.name"), "send");
    assert_eq!(field(send, "messaging.destination.name"), "obs-orders-dlt");
    assert_eq!(field(send, "messaging.kafka.offset"), "0");
    assert_eq!(field(send, "otel.kind"), "producer");

    // Metrics.
    let labels = [("messaging.destination.name", "obs-orders"), ("kafka_listener.id", "obs-orders")];
    let group = [("messaging.consumer.group.name", "obs-billing"), ("kafka_listener.id", "obs-orders")];
    assert_eq!(observed.count(obs::CONSUMED_MESSAGES, &labels), 3);
    assert_eq!(observed.count(obs::ERRORS, &[labels[0], labels[1], ("error.type", "handler")]), 2);
    assert_eq!(observed.count(obs::RETRIES, &labels), 1);
    assert_eq!(observed.count(obs::DEAD_LETTERS, &labels), 1);
    let durations = observed.metric(obs::PROCESS_DURATION, &labels);
    let failed: usize = durations
        .iter()
        .filter(|(l, _)| l.get("error.type").map(String::as_str) == Some("handler"))
        .map(|(_, v)| if let Value::Histogram(samples) = v { samples.len() } else { 0 })
        .sum();
    assert_eq!(observed.count(obs::PROCESS_DURATION, &labels), 4, "one duration per delivery: {durations:?}");
    assert_eq!(failed, 2, "failed deliveries carry error.type");
    assert!(observed.count(obs::COMMITS, &[group[0], group[1], ("result", "ok")]) >= 1);
    assert_eq!(observed.count(obs::COMMITS, &[group[0], group[1], ("result", "failed")]), 0);
    assert!(observed.count(obs::REBALANCES, &group) >= 1);
    assert_eq!(observed.count(obs::SENT_MESSAGES, &[("messaging.destination.name", "obs-orders-dlt")]), 1);
    for (labels, _) in observed.metric(obs::CONSUMED_MESSAGES, &labels) {
        assert!(labels.keys().all(|k| !k.contains("key") && !k.contains("offset")), "{labels:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_one_process_span_with_its_message_count() {
    let observed = observed();
    let kafka = embedded(&[("obs-batches", 1)]);
    for i in 0..5 {
        kafka.produce("obs-batches", None, format!("r{i}").as_bytes()).unwrap();
    }
    kafka.flush().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = seen.clone();
    let endpoint = Endpoint::new("obs-batches").topic("obs-batches").group("obs-batches").batch_handler(
        move |batch: Vec<String>| {
            tracing::info!(records = batch.len(), "batch handled");
            counted.fetch_add(batch.len(), Ordering::SeqCst);
            std::future::ready(())
        },
    );
    let running = start_listeners(factory(&kafka, AckMode::Batch), [endpoint]).await;
    wait_until("five records", Duration::from_secs(30), || seen.load(Ordering::SeqCst) == 5).await;
    running.shutdown().await.unwrap();
    let spans = observed.process_spans("obs-batches");
    let counts: usize = spans.iter().map(|s| field(s, "messaging.batch.message_count").parse::<usize>().unwrap()).sum();
    assert_eq!(counts, 5, "{spans:?}");
    for span in &spans {
        assert_eq!(field(span, "messaging.destination.name"), "obs-batches");
        assert_eq!(field(span, "messaging.destination.partition.id"), "0");
        assert!(!span.fields.contains_key("messaging.kafka.offset"));
    }
    let events = observed.events();
    let inside = events.iter().filter(|e| e.message == "batch handled" && spans.iter().any(|s| Some(s.seq) == e.span));
    assert_eq!(inside.count(), spans.len(), "each batch's event inside its span");
    assert_eq!(observed.count(obs::PROCESS_DURATION, &[("kafka_listener.id", "obs-batches")]), spans.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_run_as_tasks_by_key_still_run_inside_their_records_span() {
    let observed = observed();
    let kafka = embedded(&[("obs-keys", 2)]);
    for i in 0..20 {
        kafka
            .produce_to("obs-keys", i % 2, Some(format!("key-{}", i % 5).as_bytes()), format!("r{i}").as_bytes())
            .unwrap();
    }
    kafka.flush().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = seen.clone();
    let endpoint =
        Endpoint::new("obs-keys").topic("obs-keys").group("obs-keys").processing_order(ProcessingOrder::Key).handler(
            move |text: String| {
                let counted = counted.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    tracing::info!("keyed {text}");
                    counted.fetch_add(1, Ordering::SeqCst);
                }
            },
        );
    let running = start_listeners(factory(&kafka, AckMode::Record), [endpoint]).await;
    wait_until("twenty records", Duration::from_secs(30), || seen.load(Ordering::SeqCst) == 20).await;
    running.shutdown().await.unwrap();
    let spans = observed.process_spans("obs-keys");
    assert_eq!(spans.len(), 20);
    let events = observed.events();
    for span in &spans {
        let inside = events.iter().filter(|e| e.span == Some(span.seq) && e.message.starts_with("keyed r")).count();
        assert_eq!(inside, 1, "the task's event inside its record's span: {span:?}");
    }
    assert_eq!(observed.count(obs::PROCESS_DURATION, &[("kafka_listener.id", "obs-keys")]), 20);
    assert_eq!(observed.count(obs::CONSUMED_MESSAGES, &[("kafka_listener.id", "obs-keys")]), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_topic_forward_is_a_send_span_inside_the_failed_delivery() {
    let observed = observed();
    let kafka = embedded(&[("obs-flaky", 1), ("obs-flaky-retry", 1), ("obs-flaky-dlt", 1)]);
    kafka.produce("obs-flaky", None, b"flaky").unwrap();
    kafka.flush().unwrap();
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let handled = Arc::new(AtomicUsize::new(0));
    let counted = handled.clone();
    let endpoint = Endpoint::new("obs-flaky")
        .topic("obs-flaky")
        .group("obs-flaky")
        .retry_topics(RetryTopics::new().attempts(2).backoff(Duration::from_millis(100)).single_topic(true))
        .handler(move |_: String, meta: Meta| {
            // Fails on the main topic, succeeds on the retry topic.
            let result = if meta.delivery_attempt() == 1 { Err(ListenerError::msg("not yet")) } else { Ok(()) };
            if result.is_ok() {
                counted.fetch_add(1, Ordering::SeqCst);
            }
            std::future::ready(result)
        });
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Record))
        .with_template(template)
        .register(endpoint)
        .start()
        .await
        .unwrap();
    wait_until("handled on the retry topic", Duration::from_secs(30), || handled.load(Ordering::SeqCst) == 1).await;
    running.shutdown().await.unwrap();
    let spans = observed.spans();
    let failed = spans
        .iter()
        .find(|s| {
            s.name == "process"
                && s.fields.get("messaging.destination.name").map(String::as_str) == Some("obs-flaky")
                && s.fields.get("error.type").map(String::as_str) == Some("handler")
        })
        .expect("the failed delivery's span");
    let forward = spans
        .iter()
        .find(|s| {
            s.name == "send"
                && s.fields.get("messaging.destination.name").map(String::as_str) == Some("obs-flaky-retry")
        })
        .expect("the forward's send span");
    assert_eq!(forward.parent, Some(failed.seq), "the forward happens inside the failed delivery: {forward:?}");
    let retried = spans
        .iter()
        .find(|s| {
            s.name == "process"
                && s.fields.get("messaging.destination.name").map(String::as_str) == Some("obs-flaky-retry")
        })
        .expect("the retry topic's delivery span");
    assert_eq!(field(retried, "kafka_listener.delivery_attempt"), "2", "{retried:?}");
    assert!(!retried.fields.contains_key("error.type"));
}

// ---- gauges ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lag_gauge_follows_the_backlog_down_to_zero_and_pauses_are_counted() {
    let observed = observed();
    let kafka = embedded(&[("obs-lag", 2)]);
    let probe = Probe::gated();
    let factory = factory(&kafka, AckMode::Record).to_builder().set("statistics.interval.ms", "200").build().unwrap();
    let running = start_listeners(factory, [probe.endpoint("obs-lag", "obs-lag", "obs-lag")]).await;
    wait_until("assigned", Duration::from_secs(60), || running.container("obs-lag").unwrap().assignment().len() == 2)
        .await;
    for i in 0..10 {
        kafka.produce_to("obs-lag", 0, None, format!("r{i}").as_bytes()).unwrap();
    }
    kafka.flush().unwrap();
    let lag = |partition: &str| {
        observed.gauge(
            obs::CONSUMER_LAG,
            &[("kafka_listener.id", "obs-lag"), ("messaging.destination.partition.id", partition)],
        )
    };
    // The first record is handled and committed, the second waits in its handler: the lag
    // (from the committed offset) shows the other nine.
    probe.release_through(0);
    wait_until("lag 9 on partition 0", Duration::from_secs(30), || lag("0") == Some(9.0)).await;
    // Partition 1 never had a record: nothing to read, lag 0.
    wait_until("lag 0 on the empty partition 1", Duration::from_secs(30), || lag("1") == Some(0.0)).await;
    probe.release_all();
    wait_until("lag 0 on partition 0", Duration::from_secs(30), || lag("0") == Some(0.0)).await;

    let paused = || observed.gauge(obs::PAUSED_PARTITIONS, &[("kafka_listener.id", "obs-lag")]);
    running.pause("obs-lag").unwrap();
    wait_until("two partitions paused", Duration::from_secs(30), || paused() == Some(2.0)).await;
    running.resume("obs-lag").unwrap();
    wait_until("none paused", Duration::from_secs(30), || paused() == Some(0.0)).await;
    running.shutdown().await.unwrap();
}

// ---- health ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_turns_off_during_a_broker_outage_and_on_when_it_ends() {
    observed();
    let kafka = embedded(&[("obs-health", 1)]);
    let factory = factory(&kafka, AckMode::Record)
        .to_builder()
        .broker_outage_threshold(Duration::from_millis(1500))
        .set("statistics.interval.ms", "300")
        .build()
        .unwrap();
    let probe = Probe::open();
    let idle = Probe::open().endpoint("obs-later", "obs-health", "obs-later").auto_startup(false);
    let running = start_listeners(factory, [probe.endpoint("obs-health", "obs-health", "obs-health"), idle]).await;
    let health = || running.health();
    wait_until("ready", Duration::from_secs(60), || health().is_ready()).await;
    let listener = health().listener("obs-health").cloned().unwrap();
    assert!(listener.live && listener.ready);
    assert_eq!(listener.consumers[0].state, ConsumerState::Running);
    assert_eq!(listener.consumers[0].assignment, vec![TopicPartition::new("obs-health", 0)]);
    assert!(health().listener("obs-later").unwrap().consumers.is_empty(), "not started");
    assert!(health().is_live());

    kafka.broker_down(1).unwrap();
    wait_until("not ready while the broker is down", Duration::from_secs(60), || !health().is_ready()).await;
    let down = health();
    assert!(down.is_live(), "an outage is not a reason to restart: {down:?}");
    assert!(down.listener("obs-health").unwrap().consumers[0].brokers_unreachable_ms.unwrap() >= 1500);
    kafka.broker_up(1).unwrap();
    wait_until("ready again once the broker is back", Duration::from_secs(60), || health().is_ready()).await;
    // And it works again.
    kafka.produce("obs-health", None, b"after").unwrap();
    kafka.flush().unwrap();
    wait_until("a record after the outage", Duration::from_secs(60), || {
        probe.payloads().contains(&"after".to_string())
    })
    .await;

    // A listener stopped on request counts for neither.
    running.stop("obs-health").await.unwrap();
    let stopped = health();
    assert!(stopped.listener("obs-health").unwrap().stopped_on_request);
    assert!(stopped.is_live() && stopped.is_ready(), "{stopped:?}");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_handler_makes_the_consumer_non_responsive_and_a_stopped_container_failed() {
    observed();
    let kafka = embedded(&[("obs-stuck", 1), ("obs-stopped", 1)]);
    let stuck = Arc::new(AtomicBool::new(true));
    let released = stuck.clone();
    let factory =
        factory(&kafka, AckMode::Record).to_builder().non_responsive_after(Duration::from_millis(500)).build().unwrap();
    let endpoint = Endpoint::new("obs-stuck").topic("obs-stuck").group("obs-stuck").handler(move |_: String| {
        // Stays in the poll thread (no wait the runtime could take over) until released.
        while released.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::future::ready(())
    });
    let failed_once = Arc::new(AtomicBool::new(false));
    let failing = Endpoint::new("obs-stopped")
        .topic("obs-stopped")
        .group("obs-stopped")
        .error_handler(StopContainerErrorHandler)
        .handler(move |_: String| {
            // Fails the first time only: after a restart the record is handled.
            let result =
                if failed_once.swap(true, Ordering::SeqCst) { Ok(()) } else { Err(ListenerError::msg("once")) };
            std::future::ready(result)
        });
    let running = start_listeners(factory, [endpoint, failing]).await;
    wait_until("live and ready", Duration::from_secs(60), || {
        let h = running.health();
        h.is_live() && h.listener("obs-stuck").unwrap().ready
    })
    .await;
    kafka.produce("obs-stuck", None, b"stuck").unwrap();
    kafka.flush().unwrap();
    let non_responsive = |h: &kafka_listener::Health| {
        matches!(h.listener("obs-stuck").unwrap().consumers[0].state, ConsumerState::NonResponsive { .. })
    };
    wait_until("non-responsive", Duration::from_secs(30), || non_responsive(&running.health())).await;
    assert!(!running.health().is_live());
    stuck.store(false, Ordering::SeqCst);
    wait_until("responsive again", Duration::from_secs(30), || !non_responsive(&running.health())).await;

    kafka.produce("obs-stopped", None, b"fails").unwrap();
    kafka.flush().unwrap();
    wait_until("failed", Duration::from_secs(30), || {
        matches!(&running.health().listener("obs-stopped").unwrap().consumers[0].state,
            ConsumerState::Failed { reason } if reason.contains("error handler"))
    })
    .await;
    let health = running.health();
    assert!(!health.is_live() && !health.is_ready(), "{health:?}");
    assert!(health.listener("obs-stuck").unwrap().live, "the other listener is fine");

    // Restarting it: refused while its consumer still stops, done once it has stopped.
    let container = running.container("obs-stopped").unwrap();
    wait_until("restarted", Duration::from_secs(30), || match running.start("obs-stopped") {
        Ok(()) => true,
        Err(kafka_listener::Error::StillStopping { listener }) => {
            assert_eq!(listener, "obs-stopped");
            false
        }
        Err(other) => panic!("{other}"),
    })
    .await;
    assert!(container.is_running(), "a start that returned Ok started it");
    wait_until("live again, the record handled", Duration::from_secs(60), || {
        matches!(running.health().listener("obs-stopped").unwrap().consumers[0].state, ConsumerState::Running)
            && container.committed(Duration::from_secs(5)).is_ok_and(|c| c.values().all(|o| *o == Some(1)))
    })
    .await;
    assert!(running.health().is_live());
    running.shutdown().await.unwrap();
}
