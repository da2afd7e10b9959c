//! Record filters and interceptors: what the listener gets, and what is committed for the rest.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use kafka_listener::handler::{BatchInterceptor, RecordInterceptor};
use kafka_listener::prelude::*;
use kafka_listener::ListenerFailure;

static PAID: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn only_paid(record: &Record<'_>) -> bool {
    record.payload().is_some_and(|p| p.starts_with(b"paid"))
}

#[kafka_listener(id = "paid-only", topic = "payments-filtered", group = "paid-only", filter = only_paid)]
fn on_paid(text: String) {
    PAID.lock().unwrap().push(text);
}

fn four(kafka: &EmbeddedKafka, topic: &str) {
    produce(kafka, topic, &["paid:1", "free:2", "paid:3", "free:4"].map(|p| (0, "k", p.to_string())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_discards_records_and_commits_past_them() {
    let kafka = embedded(&[("payments-filtered", 1)]);
    four(&kafka, "payments-filtered");
    let running = ListenerRegistry::from_annotations()
        .only(["paid-only"])
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .start()
        .await
        .unwrap();
    wait_committed(&kafka.bootstrap_servers(), "paid-only", "payments-filtered", [(0, 4)].into()).await;
    // A poll whose records are all discarded is committed too.
    produce(&kafka, "payments-filtered", &[(0, "k", "free:5".into()), (0, "k", "free:6".into())]);
    wait_committed(&kafka.bootstrap_servers(), "paid-only", "payments-filtered", [(0, 6)].into()).await;
    running.shutdown().await.unwrap();
    assert_eq!(*PAID.lock().unwrap(), ["paid:1", "paid:3"], "the discarded ones are committed, not handled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ack_discarded_a_trailing_discarded_record_stays_uncommitted() {
    let kafka = embedded(&[("kept-open", 1)]);
    four(&kafka, "kept-open");
    let probe = Probe::open();
    let factory =
        factory(&kafka, AckMode::Record).to_builder().record_filter(only_paid).ack_discarded(false).build().unwrap();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(probe.endpoint("kept-open", "kept-open", "kept-open"))
        .start()
        .await
        .unwrap();
    wait_until("the paid records", Duration::from_secs(20), || probe.count() == 2).await;
    let bootstrap = kafka.bootstrap_servers();
    wait_committed(&bootstrap, "kept-open", "kept-open", [(0, 3)].into()).await;
    assert_committed_stays(
        "free:4 is not committed",
        &bootstrap,
        "kept-open",
        "kept-open",
        [(0, 3)].into(),
        Duration::from_millis(700),
    )
    .await;
    running.shutdown().await.unwrap();
    assert_eq!(probe.payloads(), ["paid:1", "paid:3"]);
}

#[derive(Default)]
struct Shouting {
    successes: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

struct Interceptor(Arc<Shouting>);

impl RecordInterceptor for Interceptor {
    fn intercept<'r>(&self, record: Record<'r>, _listener_id: &str) -> Option<Record<'r>> {
        if record.header("test").is_some() {
            return None;
        }
        let loud = record.payload().unwrap_or_default().to_ascii_uppercase();
        Some(record.with_payload(Some(loud)).with_header("intercepted", b"yes"))
    }

    fn success(&self, _record: &Record<'_>, _listener_id: &str) {
        self.0.successes.fetch_add(1, Ordering::Relaxed);
    }

    fn failure(&self, record: &Record<'_>, failure: &ListenerFailure, listener_id: &str) {
        let text = String::from_utf8_lossy(record.payload().unwrap_or_default());
        self.0.failures.lock().unwrap().push(format!("{listener_id}: {text}: {failure}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_interceptor_changes_skips_and_hears_the_outcome() {
    let kafka = embedded(&[("shout", 1)]);
    kafka.produce("shout", None, b"hello").unwrap();
    kafka.produce_with_headers("shout", None, b"ignored", &[("test", b"1")]).unwrap();
    kafka.produce("shout", None, b"fail").unwrap();
    kafka.flush().unwrap();
    let hooks = Arc::new(Shouting::default());
    let factory =
        factory(&kafka, AckMode::Batch).to_builder().record_interceptor(Interceptor(hooks.clone())).build().unwrap();
    let seen: Arc<Mutex<Vec<(String, Option<String>)>>> = Arc::default();
    let log = seen.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(Endpoint::new("shout").topic("shout").group("shout").blocking_handler(
            move |text: String, headers: Headers| -> Result<(), ListenerError> {
                log.lock().unwrap().push((text.clone(), headers.get_str("intercepted").map(str::to_string)));
                if text == "FAIL" {
                    return Err(ListenerError::fatal(ListenerError::msg("no shouting")));
                }
                Ok(())
            },
        ))
        .start()
        .await
        .unwrap();
    wait_committed(&kafka.bootstrap_servers(), "shout", "shout", [(0, 3)].into()).await;
    running.shutdown().await.unwrap();
    let yes = Some("yes".to_string());
    assert_eq!(*seen.lock().unwrap(), [("HELLO".to_string(), yes.clone()), ("FAIL".to_string(), yes)]);
    assert_eq!(hooks.successes.load(Ordering::Relaxed), 1);
    let failures = hooks.failures.lock().unwrap().clone();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].starts_with("shout: FAIL: handler failed: no shouting"), "{failures:?}");
}

struct DropMarked(Arc<Mutex<Vec<usize>>>);

impl BatchInterceptor for DropMarked {
    fn intercept<'r>(&self, records: Vec<Record<'r>>, _listener_id: &str) -> Vec<Record<'r>> {
        records.into_iter().filter(|r| r.payload() != Some(b"drop")).collect()
    }

    fn success(&self, records: &[Record<'_>], _listener_id: &str) {
        self.0.lock().unwrap().push(records.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_interceptor_leaves_records_out() {
    let kafka = embedded(&[("batched", 1)]);
    produce(&kafka, "batched", &["a", "drop", "b", "drop"].map(|p| (0, "k", p.to_string())));
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let factory =
        factory(&kafka, AckMode::Batch).to_builder().batch_interceptor(DropMarked(sizes.clone())).build().unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(Endpoint::new("batched").topic("batched").group("batched").batch_handler(
            move |batch: Vec<String>| {
                log.lock().unwrap().extend(batch);
                std::future::ready(())
            },
        ))
        .start()
        .await
        .unwrap();
    wait_committed(&kafka.bootstrap_servers(), "batched", "batched", [(0, 4)].into()).await;
    running.shutdown().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), ["a", "b"]);
    assert_eq!(sizes.lock().unwrap().iter().sum::<usize>(), 2, "success heard for the records handed over");
}

static FAILED_ONCE: AtomicUsize = AtomicUsize::new(0);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discarded_record_is_not_committed_before_the_records_ahead_of_it() {
    // paid:1 fails once and waits a back-off; free:2 behind it is discarded by the filter. The
    // wait commits what is done first: nothing, since paid:1 is not (the discarded record after
    // it must not move the committed offset past it).
    let kafka = embedded(&[("discard-behind", 1)]);
    produce(&kafka, "discard-behind", &[(0, "k", "paid:1".into()), (0, "k", "free:2".into())]);
    let backoff = kafka_listener::error_handler::FixedBackOff { interval: Duration::from_secs(3), max_retries: 1 };
    for mode in [AckMode::Batch, AckMode::Record] {
        FAILED_ONCE.store(0, Ordering::SeqCst);
        let group = format!("discard-behind-{mode:?}");
        let factory = factory(&kafka, mode)
            .to_builder()
            .record_filter(only_paid)
            .error_handler(DefaultErrorHandler::new().backoff(backoff))
            .build()
            .unwrap();
        let running = ListenerRegistry::empty()
            .with_default_factory(factory)
            .register(Endpoint::new(group.clone()).topic("discard-behind").group(group.clone()).blocking_handler(
                |_text: String| -> Result<(), ListenerError> {
                    if FAILED_ONCE.fetch_add(1, Ordering::SeqCst) == 0 {
                        return Err(ListenerError::msg("the first delivery fails"));
                    }
                    Ok(())
                },
            ))
            .start()
            .await
            .unwrap();
        let bootstrap = kafka.bootstrap_servers();
        wait_until("the first failure", Duration::from_secs(20), || FAILED_ONCE.load(Ordering::SeqCst) >= 1).await;
        assert_committed_stays(
            &format!("{mode:?}: nothing is committed while paid:1 waits for its retry"),
            &bootstrap,
            &group,
            "discard-behind",
            BTreeMap::new(),
            Duration::from_millis(1500),
        )
        .await;
        wait_committed(&bootstrap, &group, "discard-behind", [(0, 2)].into()).await;
        running.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discarded_record_waits_for_the_acknowledgment_of_the_record_ahead_of_it() {
    // paid:1 is acknowledged 2 s after its delivery; free:2 behind it is discarded. Nothing is
    // committed before that acknowledgment.
    let kafka = embedded(&[("discard-behind-ack", 1)]);
    produce(&kafka, "discard-behind-ack", &[(0, "k", "paid:1".into()), (0, "k", "free:2".into())]);
    let factory = factory(&kafka, AckMode::ManualImmediate).to_builder().record_filter(only_paid).build().unwrap();
    let delivered = Arc::new(AtomicUsize::new(0));
    let seen = delivered.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(Endpoint::new("discard-behind-ack").topic("discard-behind-ack").group("discard-behind-ack").handler(
            move |_text: String, ack: Acknowledgment| {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    ack.acknowledge();
                });
                std::future::ready(())
            },
        ))
        .start()
        .await
        .unwrap();
    let bootstrap = kafka.bootstrap_servers();
    wait_until("paid:1 delivered", Duration::from_secs(20), || delivered.load(Ordering::SeqCst) == 1).await;
    assert_committed_stays(
        "nothing is committed before paid:1 is acknowledged",
        &bootstrap,
        "discard-behind-ack",
        "discard-behind-ack",
        BTreeMap::new(),
        Duration::from_millis(1000),
    )
    .await;
    wait_committed(&bootstrap, "discard-behind-ack", "discard-behind-ack", [(0, 2)].into()).await;
    running.shutdown().await.unwrap();
}
