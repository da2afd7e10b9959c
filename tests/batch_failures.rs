//! Batch listeners that fail: `BatchListenerFailed` names the record, other errors retry the batch.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use kafka_listener::error_handler::{dlt_headers, DeadLetterRecoverer, FixedBackOff};
use kafka_listener::extract::DELIVERY_ATTEMPT_HEADER;
use kafka_listener::prelude::*;

/// Each invocation: the (offset, delivery attempt from the header) of its records.
type Invocations = Arc<Mutex<Vec<Vec<(i64, i32)>>>>;

/// A batch listener failing at the record `bad` while `fails(attempt)` says so, naming its index.
fn naming_listener(id: &str, invocations: &Invocations, fails: fn(i32) -> bool) -> Endpoint {
    let log = invocations.clone();
    Endpoint::new(id).topic(id).group(id).batch_handler(move |records: Vec<ConsumerRecord>| {
        let seen: Vec<(i64, i32)> = records
            .iter()
            .map(|r| {
                let attempt = r.headers.get(DELIVERY_ATTEMPT_HEADER).expect("the delivery attempt header");
                (r.offset, i32::from_be_bytes(attempt.try_into().unwrap()))
            })
            .collect();
        log.lock().unwrap().push(seen.clone());
        let bad = records.iter().position(|r| r.payload_str() == Some("bad"));
        let result = match bad {
            Some(index) if fails(seen[index].1) => {
                Err(BatchListenerFailed::new(index, ListenerError::msg("bad record")).into())
            }
            _ => Ok::<(), ListenerError>(()),
        };
        std::future::ready(result)
    })
}

/// A batch factory with this error handler whose records carry the delivery attempt header.
fn attempt_header_factory(kafka: &EmbeddedKafka, handler: DefaultErrorHandler) -> ContainerFactory {
    factory(kafka, AckMode::Batch).to_builder().delivery_attempt_header(true).error_handler(handler).build().unwrap()
}

fn ten_with_bad_at_5() -> Vec<(i32, &'static str, String)> {
    (0..10).map(|i| (0, "k", if i == 5 { "bad".to_string() } else { format!("ok-{i}") })).collect()
}

/// What each invocation handled: all its records, or, where the record `bad` (offset 5) failed
/// (at an attempt below `succeeded_at`), the records before it.
fn succeeded(log: &[Vec<(i64, i32)>], succeeded_at: i32) -> Vec<Vec<(i64, i32)>> {
    log.iter()
        .map(|i| match i.iter().position(|(o, a)| *o == 5 && *a < succeeded_at) {
            Some(failed) => i[..failed].to_vec(),
            None => i.clone(),
        })
        .collect()
}

/// The offsets of these invocations, sorted: each record handled exactly once.
fn handled_offsets(invocations: &[Vec<(i64, i32)>]) -> Vec<i64> {
    let mut offsets: Vec<i64> = invocations.iter().flatten().map(|(o, _)| *o).collect();
    offsets.sort_unstable();
    offsets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_before_the_named_one_are_committed_and_it_is_retried_with_the_rest() {
    let kafka = embedded(&[("named", 1)]);
    produce(&kafka, "named", &ten_with_bad_at_5());
    let invocations: Invocations = Arc::default();
    let handler =
        DefaultErrorHandler::new().backoff(FixedBackOff { interval: Duration::from_millis(2500), max_retries: 3 });
    let factory = attempt_header_factory(&kafka, handler);
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(naming_listener("named", &invocations, |attempt| attempt < 2))
        .start()
        .await
        .unwrap();
    // During the back-off, the records before the failed one are committed, and no further.
    wait_committed(&kafka.bootstrap_servers(), "named", "named", [(0, 5)].into()).await;
    // Still in the back-off, whatever batches the polls made: the record failed once and was not
    // retried yet.
    let log = invocations.lock().unwrap().clone();
    assert!(log.iter().flatten().all(|(_, attempt)| *attempt == 1), "no retry before the back-off ended: {log:?}");
    assert_eq!(log.iter().flatten().filter(|(o, _)| *o == 5).count(), 1, "one failed delivery so far: {log:?}");
    wait_committed(&kafka.bootstrap_servers(), "named", "named", [(0, 10)].into()).await;
    running.shutdown().await.unwrap();
    // The poll may split the ten records into several batches; whatever the split:
    let log = invocations.lock().unwrap().clone();
    let with_bad: Vec<&Vec<(i64, i32)>> = log.iter().filter(|i| i.iter().any(|(o, _)| *o == 5)).collect();
    assert_eq!(with_bad.len(), 2, "one failed delivery of the record, one retry: {log:?}");
    assert!(with_bad[0].contains(&(5, 1)), "{log:?}");
    assert_eq!(with_bad[1][0], (5, 2), "the retry starts at the failed record: {log:?}");
    assert!(with_bad[1].iter().all(|(_, a)| *a == 2), "the rest behind it, in the same delivery: {log:?}");
    assert_eq!(handled_offsets(&succeeded(&log, 2)), (0..10).collect::<Vec<_>>(), "each handled once: {log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_record_that_keeps_failing_is_dead_lettered_alone() {
    let kafka = embedded(&[("named-dlt", 1), ("named-dlt-dlt", 1)]);
    produce(&kafka, "named-dlt", &ten_with_bad_at_5());
    let invocations: Invocations = Arc::default();
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let handler = DefaultErrorHandler::new().max_retries(2).recoverer(DeadLetterRecoverer::new(template));
    let factory = attempt_header_factory(&kafka, handler);
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(naming_listener("named-dlt", &invocations, |_| true))
        .start()
        .await
        .unwrap();
    wait_committed(&kafka.bootstrap_servers(), "named-dlt", "named-dlt", [(0, 10)].into()).await;
    running.shutdown().await.unwrap();
    let letters = dead_letters(&kafka, "named-dlt-dlt", 1).await;
    assert_eq!(letters[0].payload_str(), Some("bad"));
    assert_eq!(letters[0].headers.get(dlt_headers::ORIGINAL_OFFSET), Some(&5i64.to_be_bytes()[..]));
    let message = letters[0].headers.get_str(dlt_headers::EXCEPTION_MESSAGE).unwrap();
    assert!(message.contains("bad record") && !message.contains("of the batch"), "the record's own error: {message}");

    let log = invocations.lock().unwrap().clone();
    let attempts_of_bad: Vec<i32> = log.iter().flatten().filter(|(o, _)| *o == 5).map(|(_, a)| *a).collect();
    assert_eq!(attempts_of_bad, [1, 2, 3], "1 delivery + 2 retries of the failed record: {log:?}");
    let done = succeeded(&log, 4);
    let expected: Vec<i64> = (0..10).filter(|o| *o != 5).collect();
    assert_eq!(handled_offsets(&done), expected, "every other record handled once: {log:?}");
    let after: Vec<_> = done.iter().flatten().filter(|(o, _)| *o > 5).collect();
    assert!(after.iter().all(|(_, a)| *a == 1), "the records after it start over at attempt 1: {log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_other_batch_error_retries_the_batch_then_recovers_record_by_record() {
    let kafka = embedded(&[("whole", 1), ("whole-dlt", 1)]);
    produce(&kafka, "whole", &[(0, "k", "a".into()), (0, "k", "b".into()), (0, "k", "c".into())]);
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let handler = DefaultErrorHandler::new().max_retries(1).recoverer(DeadLetterRecoverer::new(template));
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let log = sizes.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch).to_builder().error_handler(handler).build().unwrap())
        .register(Endpoint::new("whole").topic("whole").group("whole").batch_handler(move |batch: Vec<String>| {
            log.lock().unwrap().push(batch.len());
            std::future::ready(Err::<(), _>(ListenerError::msg("the whole batch failed")))
        }))
        .start()
        .await
        .unwrap();
    wait_committed(&kafka.bootstrap_servers(), "whole", "whole", [(0, 3)].into()).await;
    running.shutdown().await.unwrap();
    // Whatever batches the polls make, each is delivered twice (once and one retry), then recovered.
    let sizes = sizes.lock().unwrap().clone();
    assert!(sizes.len() % 2 == 0 && sizes.chunks(2).all(|pair| pair[0] == pair[1]), "{sizes:?}");
    assert_eq!(sizes.iter().step_by(2).sum::<usize>(), 3, "{sizes:?}");
    let letters = dead_letters(&kafka, "whole-dlt", 3).await;
    let payloads: Vec<_> = letters.iter().map(|r| r.payload_str().unwrap().to_string()).collect();
    assert_eq!(payloads, ["a", "b", "c"], "recovered record by record, in order");
}

/// Recovers records by noting their offsets; refuses the record at offset 1 the first time.
struct RefusesOnce {
    calls: Arc<Mutex<Vec<(i64, bool)>>>,
}

impl kafka_listener::error_handler::Recoverer for RefusesOnce {
    fn recover(&self, failed: &kafka_listener::FailedRecord<'_>) -> Result<(), kafka_listener::Error> {
        let offset = failed.record.offset();
        let mut calls = self.calls.lock().unwrap();
        let refuse = offset == 1 && !calls.iter().any(|(o, _)| *o == 1);
        calls.push((offset, !refuse));
        if refuse {
            return Err(kafka_listener::Error::Recovery("refused once".into()));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_failing_mid_batch_recovers_no_record_twice() {
    let kafka = embedded(&[("half-recovered", 1)]);
    produce(&kafka, "half-recovered", &[(0, "k", "a".into()), (0, "k", "b".into()), (0, "k", "c".into())]);
    let calls: Arc<Mutex<Vec<(i64, bool)>>> = Arc::default();
    let handler = DefaultErrorHandler::new()
        .max_retries(0)
        .recovery_retry_interval(Duration::from_millis(200))
        .recoverer(RefusesOnce { calls: calls.clone() });
    let running =
        ListenerRegistry::empty()
            .with_default_factory(factory(&kafka, AckMode::Batch).to_builder().error_handler(handler).build().unwrap())
            .register(Endpoint::new("half-recovered").topic("half-recovered").group("half-recovered").batch_handler(
                |_: Vec<String>| std::future::ready(Err::<(), _>(ListenerError::msg("the batch fails"))),
            ))
            .start()
            .await
            .unwrap();
    wait_committed(&kafka.bootstrap_servers(), "half-recovered", "half-recovered", [(0, 3)].into()).await;
    running.shutdown().await.unwrap();
    let calls = calls.lock().unwrap().clone();
    let mut recovered: Vec<i64> = calls.iter().filter(|(_, ok)| *ok).map(|(o, _)| *o).collect();
    recovered.sort_unstable();
    assert_eq!(recovered, [0, 1, 2], "each record recovered exactly once: {calls:?}");
    assert_eq!(calls.iter().filter(|(o, ok)| *o == 1 && !ok).count(), 1, "{calls:?}");
}
