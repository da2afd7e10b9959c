//! Broker faults on the embedded broker (librdkafka's mock error injection): failing commits,
//! failing fetches, the broker down for seconds, a dead-letter topic that refuses records. Each
//! time: nothing lost, nothing committed past unhandled work, the listener recovers by itself.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use kafka_listener::embedded::{RDKafkaApiKey, RDKafkaRespErr};
use kafka_listener::error_handler::DeadLetterRecoverer;
use kafka_listener::prelude::*;
use kafka_listener::support::Admin;
use RDKafkaRespErr::*;

/// Per partition, the offsets handled, in the order they were handled.
type Handled = Arc<Mutex<BTreeMap<i32, Vec<i64>>>>;

fn recording(id: &str, topic: &str, handled: &Handled) -> Endpoint {
    let log = handled.clone();
    Endpoint::new(id).topic(topic).group(id).handler(move |meta: Meta| {
        log.lock().unwrap().entry(meta.partition).or_default().push(meta.offset);
        std::future::ready(())
    })
}

/// Checks, until `stop`, that no committed offset passes the records handled (offsets of a
/// partition are handled in order from 0, so committed ≤ handled count). Returns the violations.
fn watch_commits(
    bootstrap: String,
    group: &str,
    topic: &str,
    handled: &Handled,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<String>> {
    let (group, topic, handled) = (group.to_string(), topic.to_string(), handled.clone());
    std::thread::spawn(move || {
        let admin = Admin::new(bootstrap);
        let mut violations = Vec::new();
        while !stop.load(Ordering::Acquire) {
            if let Ok(committed) = admin.committed_offsets(&group, &topic) {
                let handled = handled.lock().unwrap();
                for (partition, offset) in committed.into_iter().filter_map(|(p, o)| o.map(|o| (p, o))) {
                    let count = handled.get(&partition).map_or(0, |h| h.iter().max().map_or(0, |m| m + 1));
                    if offset > count {
                        violations.push(format!("partition {partition}: committed {offset}, handled through {count}"));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        violations
    })
}

/// `count` records spread over partitions 0 and 1.
fn two_partitions(count: i32) -> Vec<(i32, &'static str, String)> {
    (0..count).map(|i| (i % 2, "k", format!("r{i}"))).collect()
}

/// Every record handled exactly once, in offset order per partition.
fn assert_once_in_order(handled: &Handled, ends: &BTreeMap<i32, i64>) {
    let handled = handled.lock().unwrap();
    for (partition, end) in ends {
        let offsets = handled.get(partition).cloned().unwrap_or_default();
        assert_eq!(offsets, (0..*end).collect::<Vec<_>>(), "partition {partition}: each record once, in order");
    }
}

/// Every record handled at least once, first deliveries in offset order per partition.
fn assert_none_lost(handled: &Handled, ends: &BTreeMap<i32, i64>) -> usize {
    let handled = handled.lock().unwrap();
    let mut duplicates = 0;
    for (partition, end) in ends {
        let offsets = handled.get(partition).cloned().unwrap_or_default();
        let mut firsts = Vec::new();
        for offset in &offsets {
            if !firsts.contains(offset) {
                firsts.push(*offset);
            }
        }
        assert_eq!(firsts, (0..*end).collect::<Vec<_>>(), "partition {partition}: none lost, in order");
        duplicates += offsets.len() - firsts.len();
    }
    duplicates
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_commits_are_retried_and_never_run_ahead() {
    let kafka = embedded(&[("commit-faults", 2)]);
    produce(&kafka, "commit-faults", &two_partitions(400));
    let errors = [
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
        RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
    ];
    kafka.fail_requests(RDKafkaApiKey::OffsetCommit, &errors.repeat(4)).unwrap();
    let handled: Handled = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_commits(kafka.bootstrap_servers(), "commit-faults", "commit-faults", &handled, stop.clone());
    // Coordinator errors make the client look the coordinator up again; a session shorter than
    // that takes may be lost (then the records since the last commit are delivered again).
    let factory = ContainerFactory::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .ack_mode(AckMode::Record)
        .build()
        .unwrap();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(recording("commit-faults", "commit-faults", &handled))
        .start()
        .await
        .unwrap();
    let ends: BTreeMap<i32, i64> = [(0, 200), (1, 200)].into();
    // Under load, coordinator errors can cost the session (the client cannot heartbeat while it
    // looks the coordinator up again) more than once; each time the group is joined again.
    let bootstrap = kafka.bootstrap_servers();
    wait_committed_within(&bootstrap, "commit-faults", "commit-faults", ends.clone(), Duration::from_secs(90)).await;
    stop.store(true, Ordering::Release);
    running.shutdown().await.unwrap();
    let violations = watcher.join().unwrap();
    assert!(violations.is_empty(), "committed past handled records: {violations:?}");
    let duplicates = assert_none_lost(&handled, &ends);
    eprintln!("16 failed commit requests: {duplicates} records handled twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_fetches_lose_nothing() {
    let kafka = embedded(&[("fetch-faults", 2)]);
    produce(&kafka, "fetch-faults", &two_partitions(400));
    let errors = [
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR__TRANSPORT,
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART,
    ];
    kafka.fail_requests(RDKafkaApiKey::Fetch, &errors.repeat(3)).unwrap();
    let handled: Handled = Arc::default();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch).to_builder().max_poll_records(50).build().unwrap())
        .register(recording("fetch-faults", "fetch-faults", &handled))
        .start()
        .await
        .unwrap();
    let ends: BTreeMap<i32, i64> = [(0, 200), (1, 200)].into();
    wait_committed(&kafka.bootstrap_servers(), "fetch-faults", "fetch-faults", ends.clone()).await;
    running.shutdown().await.unwrap();
    assert_once_in_order(&handled, &ends);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_of_seconds_is_ridden_out() {
    const OUTAGE: Duration = Duration::from_secs(3);
    let kafka = embedded(&[("outage", 2)]);
    produce(&kafka, "outage", &two_partitions(200));
    let handled: Handled = Arc::default();
    // A session longer than the outage: the member is still in the group when the broker returns.
    let factory = ContainerFactory::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .build()
        .unwrap();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(recording("outage", "outage", &handled))
        .start()
        .await
        .unwrap();
    let bootstrap = kafka.bootstrap_servers();
    wait_committed(&bootstrap, "outage", "outage", [(0, 100), (1, 100)].into()).await;

    kafka.broker_down(-1).unwrap();
    // Records produced during the outage wait in the producer until the broker is back.
    for i in 200..400 {
        kafka.produce_to("outage", i % 2, Some(b"k"), format!("r{i}").as_bytes()).unwrap();
    }
    // The outage itself (not a wait for a condition).
    tokio::time::sleep(OUTAGE).await;
    kafka.broker_up(-1).unwrap();
    let up = Instant::now();
    kafka.flush().unwrap();
    let ends: BTreeMap<i32, i64> = [(0, 200), (1, 200)].into();
    wait_until("the records produced during the outage are handled", Duration::from_secs(60), || {
        let handled = handled.lock().unwrap();
        ends.iter().all(|(p, end)| handled.get(p).is_some_and(|h| h.contains(&(end - 1))))
    })
    .await;
    let recovered = up.elapsed();
    wait_committed(&bootstrap, "outage", "outage", ends.clone()).await;
    running.shutdown().await.unwrap();
    let duplicates = assert_none_lost(&handled, &ends);
    eprintln!(
        "broker down {OUTAGE:?}: all records handled {recovered:.2?} after it came back; {duplicates} handled twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_topic_refusing_records_holds_the_partition_until_it_takes_them() {
    let kafka = embedded(&[("dlt-faults", 1), ("dlt-faults-dlt", 1)]);
    produce(&kafka, "dlt-faults", &[(0, "k", "ok".into()), (0, "k", "bad".into()), (0, "k", "ok".into())]);
    let refusals = ProducerOutcomes::default();
    let template = KafkaTemplate::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .producer_listener(refusals.clone())
        .build()
        .unwrap();
    // Learn the dead-letter topic's partitions before produce requests start failing.
    template.partition_count("dlt-faults-dlt").await.unwrap();
    kafka.fail_requests(RDKafkaApiKey::Produce, &[RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 3]).unwrap();
    let handler = DefaultErrorHandler::new()
        .recoverer(DeadLetterRecoverer::new(template))
        .recovery_retry_interval(Duration::from_millis(200));
    let deliveries = Arc::new(Mutex::new(Vec::new()));
    let log = deliveries.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Record).to_builder().error_handler(handler).build().unwrap())
        .register(Endpoint::new("dlt-faults").topic("dlt-faults").group("dlt-faults").handler(
            move |text: String, meta: Meta| {
                log.lock().unwrap().push(meta.offset);
                let result = if text == "bad" { Err(ListenerError::fatal(ListenerError::msg("bad"))) } else { Ok(()) };
                std::future::ready(result)
            },
        ))
        .start()
        .await
        .unwrap();
    wait_committed(&kafka.bootstrap_servers(), "dlt-faults", "dlt-faults", [(0, 3)].into()).await;
    running.shutdown().await.unwrap();
    let deliveries = deliveries.lock().unwrap().clone();
    // Each refused dead letter delivers the record again; then one lands, and only then comes
    // the next record. (The 3 injected errors refuse at least 3 sends; librdkafka then fails
    // more sends to the topic locally, with the same error, until it refreshes its metadata.)
    let refused = refusals.errors();
    assert!(refused >= 3, "the 3 injected errors refused {refused} dead letters");
    let expected: Vec<i64> = [0].into_iter().chain(std::iter::repeat_n(1, refused + 1)).chain([2]).collect();
    assert_eq!(
        deliveries, expected,
        "the bad record again after each of {refused} refused dead letters, then the next"
    );
    let letters = dead_letters(&kafka, "dlt-faults-dlt", 1).await;
    assert_eq!(letters[0].payload_str(), Some("bad"));
}
