//! Failure without loss: back-off that keeps the group, classification, dead-letter topics.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use kafka_listener::error_handler::{dlt_headers, DeadLetterRecoverer, FixedBackOff, StopContainerErrorHandler};
use kafka_listener::prelude::*;

type Deliveries = Arc<Mutex<Vec<(i64, u32, Instant)>>>;

/// A listener failing on the record with payload `bad` (fatally if `fatal`), logging deliveries.
fn failing(id: &str, topic: &str, deliveries: &Deliveries, fatal: bool) -> Endpoint {
    let log = deliveries.clone();
    Endpoint::new(id).topic(topic).group(id).handler(move |text: String, meta: Meta| {
        log.lock().unwrap().push((meta.offset, meta.delivery_attempt(), Instant::now()));
        let result = match (text.as_str(), fatal) {
            ("bad", false) => Err(ListenerError::msg("cannot handle bad")),
            ("bad", true) => Err(ListenerError::fatal(ListenerError::msg("bad forever"))),
            _ => Ok(()),
        };
        std::future::ready(result)
    })
}

fn records(payloads: &[&str]) -> Vec<(i32, &'static str, String)> {
    payloads.iter().map(|p| (0, "k", p.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_back_off_waits_between_deliveries_then_recovers() {
    let kafka = embedded(&[("backoff", 1)]);
    produce(&kafka, "backoff", &records(&["ok", "bad", "ok"]));
    let deliveries: Deliveries = Arc::default();
    let handler =
        DefaultErrorHandler::new().backoff(FixedBackOff { interval: Duration::from_millis(300), max_retries: 2 });
    let factory = factory(&kafka, AckMode::Record).to_builder().error_handler(handler).build().unwrap();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(failing("backoff", "backoff", &deliveries, false))
        .start()
        .await
        .unwrap();
    wait_committed(&kafka.bootstrap_servers(), "backoff", "backoff", [(0, 3)].into()).await;
    running.shutdown().await.unwrap();
    let log = deliveries.lock().unwrap().clone();
    let bad: Vec<_> = log.iter().filter(|(o, _, _)| *o == 1).collect();
    assert_eq!(
        bad.iter().map(|(_, a, _)| *a).collect::<Vec<_>>(),
        [1, 2, 3],
        "1 delivery + 2 retries, attempts visible"
    );
    for pair in bad.windows(2) {
        assert!(pair[1].2 - pair[0].2 >= Duration::from_millis(300), "the back-off is waited");
    }
    assert_eq!(log.iter().filter(|(o, _, _)| *o == 2).count(), 1, "the next record is handled once, after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_back_off_longer_than_max_poll_interval_keeps_the_group() {
    let kafka = embedded(&[("long-backoff", 1)]);
    produce(&kafka, "long-backoff", &records(&["bad", "ok"]));
    let deliveries: Deliveries = Arc::default();
    let handler =
        DefaultErrorHandler::new().backoff(FixedBackOff { interval: Duration::from_millis(3500), max_retries: 1 });
    let factory = impatient_factory(&kafka).error_handler(handler).build().unwrap();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(failing("long", "long-backoff", &deliveries, false))
        .start()
        .await
        .unwrap();
    wait_committed(&kafka.bootstrap_servers(), "long", "long-backoff", [(0, 2)].into()).await;
    let container = running.container("long").unwrap();
    assert_eq!(container.revocations(), 0, "a back-off 3.5 x max.poll.interval.ms caused no rebalance");
    running.shutdown().await.unwrap();
    let attempts: Vec<u32> =
        deliveries.lock().unwrap().iter().filter(|(o, _, _)| *o == 0).map(|(_, a, _)| *a).collect();
    assert_eq!(attempts, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_pill_goes_to_the_dead_letter_topic_with_springs_headers() {
    #[derive(serde::Deserialize)]
    struct Reading {
        #[allow(dead_code)]
        value: u32,
    }
    let kafka = embedded(&[("readings", 2), ("readings-dlt", 2)]);
    for i in 0..100 {
        let payload = if i == 42 { "{not json".to_string() } else { format!(r#"{{"value":{i}}}"#) };
        kafka.produce_to("readings", 1, Some(format!("sensor-{i}").as_bytes()), payload.as_bytes()).unwrap();
    }
    kafka.produce_with_headers("readings", None, b"also bad", &[("trace", b"t-9")]).unwrap();
    kafka.flush().unwrap();
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let handler = DefaultErrorHandler::new().recoverer(DeadLetterRecoverer::new(template));
    let factory = factory(&kafka, AckMode::Batch).to_builder().error_handler(handler).build().unwrap();
    let handled = Arc::new(Mutex::new(0));
    let counted = handled.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(Endpoint::new("readings").topic("readings").group("readings").handler(move |_: Json<Reading>| {
            *counted.lock().unwrap() += 1;
            std::future::ready(())
        }))
        .start()
        .await
        .unwrap();
    let letters = dead_letters(&kafka, "readings-dlt", 2).await;
    wait_until("99 readings", Duration::from_secs(20), || *handled.lock().unwrap() == 99).await;
    running.shutdown().await.unwrap();
    assert_eq!(*handled.lock().unwrap(), 99, "every other record handled once");

    let pill = letters.iter().find(|r| r.payload_str() == Some("{not json")).expect("the pill");
    assert_eq!(pill.partition, 1, "same partition as the original");
    assert_eq!(pill.key_str(), Some("sensor-42"), "key untouched");
    let h = &pill.headers;
    assert_eq!(h.get_str(dlt_headers::ORIGINAL_TOPIC), Some("readings"));
    assert_eq!(h.get(dlt_headers::ORIGINAL_PARTITION), Some(&1i32.to_be_bytes()[..]));
    assert_eq!(h.get(dlt_headers::ORIGINAL_OFFSET), Some(&42i64.to_be_bytes()[..]));
    assert_eq!(h.get_str(dlt_headers::ORIGINAL_CONSUMER_GROUP), Some("readings"));
    assert_eq!(h.get_str(dlt_headers::EXCEPTION_FQCN), Some("kafka_listener::extract::ConversionError"));
    let message = h.get_str(dlt_headers::EXCEPTION_MESSAGE).unwrap();
    assert!(message.contains("readings-1@42"), "{message}");
    // The type as the user wrote it, not its module path.
    assert!(message.contains("into `Json<Reading>`") && !message.contains("kafka_listener::"), "{message}");
    assert!(h.get(dlt_headers::ORIGINAL_TIMESTAMP).is_some());
    let other = letters.iter().find(|r| r.payload_str() == Some("also bad")).expect("the second pill");
    assert_eq!(other.headers.get_str("trace"), Some("t-9"), "original headers kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_errors_skip_retries_and_a_failing_dead_letter_topic_loses_nothing() {
    let kafka = embedded(&[("fatal", 1), ("fatal-dlt", 1), ("stuck-dlt", 1)]);
    produce(&kafka, "fatal", &records(&["ok", "bad", "ok"]));
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let handler = DefaultErrorHandler::new().recoverer(DeadLetterRecoverer::new(template));
    let deliveries: Deliveries = Arc::default();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch).to_builder().error_handler(handler).build().unwrap())
        .register(failing("fatal", "fatal", &deliveries, true))
        .start()
        .await
        .unwrap();
    wait_committed(&kafka.bootstrap_servers(), "fatal", "fatal", [(0, 3)].into()).await;
    running.shutdown().await.unwrap();
    assert_eq!(
        deliveries.lock().unwrap().iter().filter(|(o, _, _)| *o == 1).count(),
        1,
        "a fatal error is not retried"
    );
    let letters = dead_letters(&kafka, "fatal-dlt", 1).await;
    assert!(letters[0].headers.get_str(dlt_headers::EXCEPTION_MESSAGE).unwrap().contains("bad forever"));

    // The dead-letter topic's broker is unreachable: the record is not committed, and comes again.
    produce(&kafka, "stuck-dlt", &records(&["ok", "bad", "ok"]));
    let nowhere = KafkaTemplate::builder()
        .bootstrap_servers("127.0.0.1:1")
        .send_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let handler = DefaultErrorHandler::new()
        .max_retries(0)
        .recoverer(DeadLetterRecoverer::new(nowhere))
        .recovery_retry_interval(Duration::from_millis(100));
    let deliveries: Deliveries = Arc::default();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Record).to_builder().error_handler(handler).build().unwrap())
        .register(failing("stuck", "stuck-dlt", &deliveries, false))
        .start()
        .await
        .unwrap();
    wait_until("several deliveries of the stuck record", Duration::from_secs(20), || {
        deliveries.lock().unwrap().iter().filter(|(o, _, _)| *o == 1).count() >= 3
    })
    .await;
    assert_committed_stays(
        "nothing committed past the unrecovered record",
        &kafka.bootstrap_servers(),
        "stuck",
        "stuck-dlt",
        [(0, 1)].into(),
        Duration::from_millis(500),
    )
    .await;
    assert!(!deliveries.lock().unwrap().iter().any(|(o, _, _)| *o == 2), "the record after it waits");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stopping_error_handler_stops_and_commits_what_was_handled() {
    let kafka = embedded(&[("stopper", 1)]);
    produce(&kafka, "stopper", &records(&["ok", "ok", "bad", "ok"]));
    let deliveries: Deliveries = Arc::default();
    let factory =
        factory(&kafka, AckMode::Batch).to_builder().error_handler(StopContainerErrorHandler).build().unwrap();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(failing("stopper", "stopper", &deliveries, false))
        .start()
        .await
        .unwrap();
    let container = running.container("stopper").unwrap();
    wait_until("the container stops", Duration::from_secs(20), || !container.is_running()).await;
    assert_eq!(committed(&kafka.bootstrap_servers(), "stopper", "stopper").await, [(0, 2)].into());
    assert!(!deliveries.lock().unwrap().iter().any(|(o, _, _)| *o == 3), "nothing after the failed record");
    running.shutdown().await.unwrap();
}

// --- a listener's own error handler, named by the attribute ---------------------------------------

static OWN_HANDLER_SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn stop_on_failure() -> StopContainerErrorHandler {
    StopContainerErrorHandler
}

#[kafka_listener(id = "own-handler", topic = "own-handler", group = "own-handler", error_handler = stop_on_failure)]
async fn own_handler(text: String) -> Result<(), ListenerError> {
    OWN_HANDLER_SEEN.lock().unwrap().push(text.clone());
    if text == "bad" {
        return Err(ListenerError::msg("stop here"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_error_handler_attribute_overrides_the_factorys() {
    let kafka = embedded(&[("own-handler", 1)]);
    produce(&kafka, "own-handler", &records(&["ok", "bad", "ok"]));
    // The factory's handler would retry 9 times and skip; the listener's stops at once.
    let running = ListenerRegistry::from_annotations()
        .only(["own-handler"])
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .start()
        .await
        .unwrap();
    let container = running.container("own-handler").unwrap();
    wait_until("the container stops", Duration::from_secs(20), || !container.is_running()).await;
    running.shutdown().await.unwrap();
    assert_eq!(*OWN_HANDLER_SEEN.lock().unwrap(), ["ok", "bad"], "no retry, nothing after the failure");
    assert_eq!(committed(&kafka.bootstrap_servers(), "own-handler", "own-handler").await, [(0, 1)].into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_classified_not_retryable_are_recovered_at_once() {
    let kafka = embedded(&[("classified", 1)]);
    produce(&kafka, "classified", &records(&["ok", "bad", "ok"]));
    let deliveries: Deliveries = Arc::default();
    let handler = DefaultErrorHandler::new()
        .backoff(FixedBackOff { interval: Duration::from_millis(50), max_retries: 5 })
        .not_retryable(|failure| failure.to_string().contains("cannot handle"));
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch).to_builder().error_handler(handler).build().unwrap())
        .register(failing("classified", "classified", &deliveries, false))
        .start()
        .await
        .unwrap();
    wait_committed(&kafka.bootstrap_servers(), "classified", "classified", [(0, 3)].into()).await;
    running.shutdown().await.unwrap();
    assert_eq!(deliveries.lock().unwrap().iter().filter(|(o, _, _)| *o == 1).count(), 1, "classified: no retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_poison_pill_among_ten_thousand_records() {
    #[derive(serde::Deserialize)]
    struct Item {
        id: usize,
    }
    const TOTAL: usize = 10_000;
    const PILL: usize = 6_789;
    let kafka = embedded(&[("items", 3), ("items-dlt", 3)]);
    for i in 0..TOTAL {
        let payload = if i == PILL { "{\"id\": oops".to_string() } else { format!(r#"{{"id":{i}}}"#) };
        kafka.produce("items", Some(format!("item-{i}").as_bytes()), payload.as_bytes()).unwrap();
    }
    kafka.flush().unwrap();
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let handler = DefaultErrorHandler::new().recoverer(DeadLetterRecoverer::new(template));
    let counts = Arc::new(Mutex::new(vec![0u32; TOTAL]));
    let sink = counts.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch).to_builder().error_handler(handler).build().unwrap())
        .register(Endpoint::new("items").topic("items").group("items").handler(move |item: Json<Item>| {
            sink.lock().unwrap()[item.id] += 1;
            std::future::ready(())
        }))
        .start()
        .await
        .unwrap();
    let ends = kafka_listener::support::Admin::new(kafka.bootstrap_servers()).end_offsets("items").unwrap();
    wait_committed(&kafka.bootstrap_servers(), "items", "items", ends).await;
    running.shutdown().await.unwrap();

    let counts = counts.lock().unwrap().clone();
    assert_eq!(counts[PILL], 0, "the listener never sees the pill");
    let wrong: Vec<(usize, u32)> =
        counts.iter().enumerate().filter(|(i, n)| *i != PILL && **n != 1).map(|(i, n)| (i, *n)).collect();
    assert!(wrong.is_empty(), "records not handled exactly once: {wrong:?}");

    let letters = dead_letters(&kafka, "items-dlt", 1).await;
    let pill = &letters[0];
    assert_eq!(pill.payload_str(), Some("{\"id\": oops"), "raw bytes");
    assert_eq!(pill.key_str(), Some(format!("item-{PILL}").as_str()));
    let h = &pill.headers;
    let partition = i32::from_be_bytes(h.get(dlt_headers::ORIGINAL_PARTITION).unwrap().try_into().unwrap());
    assert_eq!(pill.partition, partition, "same partition as the original");
    assert_eq!(h.get_str(dlt_headers::ORIGINAL_TOPIC), Some("items"));
    assert!(h.get(dlt_headers::ORIGINAL_OFFSET).is_some_and(|o| o.len() == 8));
    assert_eq!(h.get_str(dlt_headers::ORIGINAL_CONSUMER_GROUP), Some("items"));
    assert_eq!(h.get_str(dlt_headers::ORIGINAL_TIMESTAMP_TYPE), Some("CreateTime"));
    assert!(h.get(dlt_headers::ORIGINAL_TIMESTAMP).is_some_and(|t| t.len() == 8));
    assert_eq!(h.get_str(dlt_headers::EXCEPTION_FQCN), Some("kafka_listener::extract::ConversionError"));
    let stacktrace = h.get_str(dlt_headers::EXCEPTION_STACKTRACE).unwrap();
    assert!(stacktrace.contains("expected value"), "the serde error in the chain: {stacktrace}");
    assert!(h.get_str(dlt_headers::EXCEPTION_MESSAGE).unwrap().contains("Item"), "names the target type");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_before_a_failed_one_are_committed_before_its_back_off() {
    let kafka = embedded(&[("before-backoff", 1)]);
    produce(&kafka, "before-backoff", &records(&["ok", "ok", "bad", "ok"]));
    let deliveries: Deliveries = Arc::default();
    let handler =
        DefaultErrorHandler::new().backoff(FixedBackOff { interval: Duration::from_millis(2500), max_retries: 1 });
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch).to_builder().error_handler(handler).build().unwrap())
        .register(failing("before-backoff", "before-backoff", &deliveries, false))
        .start()
        .await
        .unwrap();
    let bootstrap = kafka.bootstrap_servers();
    wait_committed(&bootstrap, "before-backoff", "before-backoff", [(0, 2)].into()).await;
    assert_eq!(
        deliveries.lock().unwrap().iter().filter(|(o, _, _)| *o == 2).count(),
        1,
        "committed during the back-off, before the retry"
    );
    wait_committed(&bootstrap, "before-backoff", "before-backoff", [(0, 4)].into()).await;
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_topic_with_fewer_partitions_gets_the_record_from_the_partitioner() {
    let kafka = embedded(&[("wide", 3), ("wide-dlt", 1)]);
    kafka.produce_to("wide", 2, Some(b"k"), b"bad").unwrap();
    kafka.flush().unwrap();
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let handler = DefaultErrorHandler::new().max_retries(0).recoverer(DeadLetterRecoverer::new(template));
    let deliveries: Deliveries = Arc::default();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch).to_builder().error_handler(handler).build().unwrap())
        .register(failing("wide", "wide", &deliveries, false))
        .start()
        .await
        .unwrap();
    let letters = dead_letters(&kafka, "wide-dlt", 1).await;
    running.shutdown().await.unwrap();
    assert_eq!(letters[0].partition, 0, "the DLT has no partition 2");
    assert_eq!(letters[0].headers.get(dlt_headers::ORIGINAL_PARTITION), Some(&2i32.to_be_bytes()[..]));
}

#[derive(Debug, thiserror::Error)]
#[error("the database is down")]
struct DatabaseDown;

#[derive(Debug, thiserror::Error)]
#[error("invalid amount")]
struct BadData;

/// The pattern `backoff_function` exists for: a database outage is retried for ever (valid
/// records wait for the database instead of being dead-lettered after the retries meant for bad
/// data), bad data fails fast to the dead-letter topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_back_off_function_retries_an_outage_for_ever_and_dead_letters_bad_data_fast() {
    use kafka_listener::error_handler::BackOff;
    let kafka = embedded(&[("payments", 1), ("payments-dlt", 1)]);
    produce(&kafka, "payments", &records(&["bad", "valid", "after"]));
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let outage: Arc<dyn BackOff> = Arc::new(FixedBackOff::unlimited(Duration::from_millis(20)));
    let handler = DefaultErrorHandler::new()
        .backoff(FixedBackOff { interval: Duration::ZERO, max_retries: 1 })
        .backoff_function(move |_record, failure| failure.find::<DatabaseDown>().map(|_| outage.clone()))
        .recoverer(DeadLetterRecoverer::new(template));
    let factory = factory(&kafka, AckMode::Record).to_builder().error_handler(handler).build().unwrap();
    let deliveries: Arc<Mutex<Vec<(String, u32)>>> = Arc::default();
    let log = deliveries.clone();
    // The database is down for the first 15 deliveries of "valid": more than the default 10.
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(Endpoint::new("payments").topic("payments").group("payments").handler(
            move |text: String, meta: Meta| {
                log.lock().unwrap().push((text.clone(), meta.delivery_attempt()));
                let result: Result<(), ListenerError> = match text.as_str() {
                    "bad" => Err(BadData.into()),
                    // Through anyhow, as a handler written with it returns it.
                    "valid" if meta.delivery_attempt() <= 15 => {
                        Err(ListenerError::from_anyhow(anyhow::Error::from(DatabaseDown).context("saving the balance")))
                    }
                    _ => Ok(()),
                };
                std::future::ready(result)
            },
        ))
        .start()
        .await
        .unwrap();
    wait_committed(&kafka.bootstrap_servers(), "payments", "payments", [(0, 3)].into()).await;
    running.shutdown().await.unwrap();
    let letters = dead_letters(&kafka, "payments-dlt", 1).await;
    assert_eq!(letters[0].payload_str(), Some("bad"), "only the bad record is dead-lettered");
    let seen = deliveries.lock().unwrap().clone();
    let attempts = |payload: &str| seen.iter().filter(|(p, _)| p == payload).map(|(_, a)| *a).collect::<Vec<_>>();
    assert_eq!(attempts("bad"), [1, 2], "bad data: the default back-off, 1 retry");
    assert_eq!(attempts("valid"), (1..=16).collect::<Vec<u32>>(), "the outage: retried until the database is back");
    assert_eq!(attempts("after"), [1]);
}
