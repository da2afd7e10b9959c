//! Concurrency, shutdown, rebalance and container control on the embedded broker.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use kafka_listener::container::ContainerEvent;
use kafka_listener::prelude::*;
use kafka_listener::Error;

type Log = Arc<Mutex<Vec<(i32, i64, String)>>>;

/// A handler that logs (partition, offset, thread name), taking `delay` per record.
fn logging(id: &str, topic: &str, group: &str, log: &Log, delay: Duration) -> Endpoint {
    let log = log.clone();
    Endpoint::new(id).topic(topic).group(group).handler(move |meta: Meta| {
        let log = log.clone();
        async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let thread = std::thread::current().name().unwrap_or_default().to_string();
            log.lock().unwrap().push((meta.partition, meta.offset, thread));
        }
    })
}

fn in_order_per_partition(log: &[(i32, i64, String)]) -> bool {
    let mut last: HashMap<i32, i64> = HashMap::new();
    log.iter().all(|(p, o, _)| last.insert(*p, *o).is_none_or(|before| before < *o))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_three_on_three_partitions() {
    let kafka = embedded(&[("spread", 3)]);
    let log: Log = Arc::default();
    let factory = factory(&kafka, AckMode::Batch).to_builder().concurrency(3).build().unwrap();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(logging("spread", "spread", "spread", &log, Duration::ZERO))
        .start()
        .await
        .unwrap();
    let container = running.container("spread").unwrap();
    assert_eq!(container.concurrency(), 3);
    wait_until("one partition per consumer", Duration::from_secs(30), || {
        container.consumer_assignments().iter().all(|a| a.len() == 1)
    })
    .await;
    assert_eq!(container.assignment().len(), 3);
    let records: Vec<_> = (0..300).map(|i| (i % 3, "k", format!("v{i}"))).collect();
    produce(&kafka, "spread", &records);
    wait_until("300 records", Duration::from_secs(30), || log.lock().unwrap().len() == 300).await;
    wait_committed(&kafka.bootstrap_servers(), "spread", "spread", [(0, 100), (1, 100), (2, 100)].into()).await;
    running.shutdown().await.unwrap();

    let log = log.lock().unwrap().clone();
    assert!(in_order_per_partition(&log), "records of a partition are handled in order");
    let mut threads_of: BTreeMap<i32, HashSet<String>> = BTreeMap::new();
    for (p, _, thread) in &log {
        threads_of.entry(*p).or_default().insert(thread.clone());
    }
    assert!(threads_of.values().all(|t| t.len() == 1), "each partition handled by one consumer: {threads_of:?}");
    let threads: HashSet<_> = threads_of.values().flatten().collect();
    assert_eq!(threads.len(), 3, "three consumers: {threads:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_the_handler_commits_and_nothing_runs_twice() {
    let kafka = embedded(&[("stop", 1)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, "stop", &numbered(10));
    let probe = Probe::gated();
    let endpoint = |probe: &Probe| {
        let p = probe.clone();
        Endpoint::new("stop").topic("stop").group("stop").handler(move |r: ConsumerRecord| {
            let p = p.clone();
            async move { p.handle(r).await }
        })
    };
    let start = |probe: &Probe| {
        ListenerRegistry::empty()
            .with_default_factory(factory(&kafka, AckMode::Batch))
            .register(endpoint(probe))
            .start()
    };
    let running = start(&probe).await.unwrap();
    probe.release_through(4);
    wait_until("record 5 in its handler", Duration::from_secs(20), || probe.count() == 6).await;
    let shutdown = tokio::spawn(running.shutdown());
    assert_stays("shutdown waits for the handler in flight", Duration::from_millis(300), || {
        let finished = shutdown.is_finished();
        async move { !finished }
    })
    .await;
    probe.release_all();
    shutdown.await.unwrap().unwrap();
    assert_eq!(probe.payloads().len(), 10, "the records in hand were finished");
    assert_eq!(committed(&bootstrap, "stop", "stop").await, [(0, 10)].into());

    // The group resumes where it stopped: only new records are handled.
    produce(&kafka, "stop", &[(0, "k", "v10".to_string())]);
    let again = Probe::open();
    let running = start(&again).await.unwrap();
    wait_committed(&bootstrap, "stop", "stop", [(0, 11)].into()).await;
    running.shutdown().await.unwrap();
    assert_eq!(again.payloads(), ["v10"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_timeout_leaves_the_stuck_record_uncommitted() {
    let kafka = embedded(&[("stuck", 1)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, "stuck", &numbered(3));
    let probe = Probe::gated();
    let factory =
        factory(&kafka, AckMode::Record).to_builder().shutdown_timeout(Duration::from_millis(500)).build().unwrap();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(probe.endpoint("stuck", "stuck", "stuck"))
        .start()
        .await
        .unwrap();
    probe.release_through(0);
    wait_until("record 1 in its handler", Duration::from_secs(20), || probe.count() == 2).await;
    wait_committed(&bootstrap, "stuck", "stuck", [(0, 1)].into()).await;
    let result = running.shutdown().await;
    assert!(matches!(result, Err(Error::ShutdownTimeout { ref listener, .. }) if listener == "stuck"), "{result:?}");
    assert_eq!(committed(&bootstrap, "stuck", "stuck").await, [(0, 1)].into(), "never past the stuck record");
    probe.release_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_joins_and_takes_over_partitions() {
    second_instance_joins("range,roundrobin", Duration::from_micros(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_joins_with_cooperative_rebalancing() {
    // Cooperative rebalancing keeps the first instance working while the group rebalances: it
    // needs more work left for the second instance to take some.
    second_instance_joins("cooperative-sticky", Duration::from_millis(2)).await;
}

async fn second_instance_joins(assignment_strategy: &str, per_record: Duration) {
    let kafka = embedded(&[("shared", 4)]);
    let bootstrap = kafka.bootstrap_servers();
    let records: Vec<_> = (0..2000).map(|i| (i % 4, "k", format!("v{i}"))).collect();
    produce(&kafka, "shared", &records);
    let log: Log = Arc::default();
    // How many records had been handled when the first instance's partitions were revoked.
    let at_revocation: Arc<Mutex<Option<usize>>> = Arc::default();
    let (handled, revoked) = (log.clone(), at_revocation.clone());
    let factory = factory(&kafka, AckMode::Batch)
        .to_builder()
        .max_poll_records(50)
        .set("partition.assignment.strategy", assignment_strategy)
        .event_listener(move |event| {
            if let ContainerEvent::PartitionsRevoked { listener, .. } = event {
                let mut revoked = revoked.lock().unwrap();
                if listener == "first" && revoked.is_none() {
                    *revoked = Some(handled.lock().unwrap().len());
                }
            }
        })
        .build()
        .unwrap();
    let start = |id: &str| {
        ListenerRegistry::empty()
            .with_default_factory(factory.clone())
            .register(logging(id, "shared", "shared", &log, per_record))
            .start()
    };
    let first = start("first").await.unwrap();
    wait_until("the first instance is working", Duration::from_secs(20), || log.lock().unwrap().len() >= 200).await;
    let before_join = log.lock().unwrap().len();
    let second = start("second").await.unwrap();
    wait_until("both instances own partitions", Duration::from_secs(30), || {
        first.container("first").unwrap().assignment().len() == 2
            && second.container("second").unwrap().assignment().len() == 2
    })
    .await;
    wait_committed(&bootstrap, "shared", "shared", (0..4).map(|p| (p, 500)).collect()).await;
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();

    let log = log.lock().unwrap().clone();
    let distinct: HashSet<_> = log.iter().map(|(p, o, _)| (*p, *o)).collect();
    assert_eq!(distinct.len(), 2000, "every record handled");
    let threads: HashSet<_> = log.iter().map(|(_, _, t)| t.clone()).collect();
    assert_eq!(threads.len(), 2, "both instances handled records: {threads:?}");
    // Per partition: each record follows the one before it, except where a rebalance hands the
    // partition over: the consumer then resumes at or before the next unhandled record (the
    // at-least-once window), never after it.
    for partition in 0..4 {
        let offsets: Vec<i64> = log.iter().filter(|(p, _, _)| *p == partition).map(|(_, o, _)| *o).collect();
        let mut next = 0i64;
        for offset in offsets {
            assert!(offset <= next, "partition {partition}: {offset} handled before {next}");
            next = offset + 1;
        }
        assert_eq!(next, 500, "partition {partition} handled to its end");
    }
    // What a rebalance may redo is what was in flight: records handled but not committed when
    // the partitions were revoked. Batch mode commits after each batch (max.poll.records = 50),
    // so before the second instance joined that is at most the batch being handled; from its
    // join until the revocation the mock cluster rejects commits (unlike Kafka, it moves the
    // group straight to its joining state), so those records may all be handled again. Nothing
    // handled before that window, and no more than the window, may run twice.
    let during_rebalance = at_revocation.lock().unwrap().expect("the first instance's partitions were revoked");
    let window = (before_join.saturating_sub(50), during_rebalance);
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    for (index, (p, o, _)) in log.iter().enumerate() {
        if !seen.insert((*p, *o)) {
            let first = log.iter().position(|(q, r, _)| (q, r) == (p, o)).unwrap();
            assert!(
                first >= window.0,
                "{p}@{o} handled twice (at {first} and {index}), but it was handled before the rebalance \
                 ({before_join} handled when the second instance started)"
            );
            duplicates += 1;
        }
    }
    assert!(
        duplicates <= window.1 - window.0,
        "{duplicates} records handled twice: more than the {} in flight during the rebalance",
        window.1 - window.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_pause_resume_stop_and_start() {
    let kafka = embedded(&[("ctl", 1)]);
    let bootstrap = kafka.bootstrap_servers();
    let log: Log = Arc::default();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .register(logging("ctl", "ctl", "ctl", &log, Duration::ZERO).auto_startup(false))
        .start()
        .await
        .unwrap();
    let container = running.container("ctl").unwrap();
    assert!(!container.is_running(), "auto_startup = false");
    running.start("ctl").unwrap();
    assert!(container.is_running());
    wait_until("partition assigned", Duration::from_secs(20), || container.assignment().len() == 1).await;

    container.pause();
    assert!(container.is_pause_requested());
    wait_until("the consumer paused", Duration::from_secs(10), || container.is_paused()).await;
    produce(&kafka, "ctl", &numbered(3));
    assert_stays("nothing handled while paused", Duration::from_millis(500), || {
        let n = log.lock().unwrap().len();
        async move { n == 0 }
    })
    .await;
    assert_eq!(container.assignment().len(), 1, "a paused consumer keeps its partitions");
    container.resume();
    assert!(!container.is_pause_requested());
    wait_until("3 records after resume", Duration::from_secs(20), || log.lock().unwrap().len() == 3).await;

    running.stop("ctl").await.unwrap();
    assert!(!container.is_running());
    assert!(matches!(running.start("nope"), Err(kafka_listener::Error::UnknownListener(_))));
    assert_eq!(committed(&bootstrap, "ctl", "ctl").await, [(0, 3)].into());
    produce(&kafka, "ctl", &[(0, "k", "v3".into())]);
    container.start().unwrap();
    wait_committed(&bootstrap, "ctl", "ctl", [(0, 4)].into()).await;
    running.shutdown().await.unwrap();
    assert_eq!(log.lock().unwrap().iter().map(|(_, o, _)| *o).collect::<Vec<_>>(), [0, 1, 2, 3]);
}
