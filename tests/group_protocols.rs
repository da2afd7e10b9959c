//! The container's group behaviour under both consumer group protocols, on the embedded broker
//! (librdkafka 2.12's mock cluster serves KIP-848's ConsumerGroupHeartbeat): a second instance
//! joining, commits at revocation, pause across rebalances, seeks, and shutdown handing the
//! partitions over. Each scenario runs once per protocol.
//!
//! Under the classic protocol the group moves every partition at a rebalance (eager), under
//! the consumer protocol only those that change owner (incremental): the assertions hold for both.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use kafka_listener::prelude::*;
use kafka_listener::GroupProtocol::{self, Classic, Consumer};

const WAIT: Duration = Duration::from_secs(40);

/// (instance, partition, offset) of every record handled, in order.
type Log = Arc<Mutex<Vec<(&'static str, i32, i64)>>>;

fn logging(instance: &'static str, topic: &str, log: &Log, per_record: Duration) -> Endpoint {
    let log = log.clone();
    Endpoint::new(instance).topic(topic).group(topic).handler(move |meta: Meta| {
        let log = log.clone();
        async move {
            if !per_record.is_zero() {
                tokio::time::sleep(per_record).await;
            }
            log.lock().unwrap().push((instance, meta.partition, meta.offset));
        }
    })
}

fn handled_by(log: &Log, instance: &str) -> usize {
    log.lock().unwrap().iter().filter(|(i, _, _)| *i == instance).count()
}

/// Every record handled, and per partition in offset order but for a restart at or before the
/// next unhandled record where a rebalance handed the partition over (never past it).
fn assert_complete_and_ordered(log: &Log, partitions: i32, per_partition: i64) {
    let log = log.lock().unwrap().clone();
    for partition in 0..partitions {
        let mut next = 0i64;
        for offset in log.iter().filter(|(_, p, _)| *p == partition).map(|(_, _, o)| *o) {
            assert!(offset <= next, "partition {partition}: {offset} handled before {next}");
            next = offset + 1;
        }
        assert_eq!(next, per_partition, "partition {partition} handled to its end");
    }
}

async fn start(factory: &ContainerFactory, endpoint: Endpoint) -> RunningListeners {
    ListenerRegistry::empty().with_default_factory(factory.clone()).register(endpoint).start().await.unwrap()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_a_second_instance_takes_over_partitions() {
    second_instance_takes_over(Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_protocol_a_second_instance_takes_over_partitions() {
    second_instance_takes_over(Consumer).await;
}

async fn second_instance_takes_over(protocol: GroupProtocol) {
    let topic = "joined";
    let kafka = embedded(&[(topic, 4)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, topic, &(0..1200).map(|i| (i % 4, "k", format!("v{i}"))).collect::<Vec<_>>());
    let factory = protocol_factory(&kafka, protocol, AckMode::Batch).max_poll_records(20).build().unwrap();
    assert_eq!(factory.group_protocol(), protocol);
    kafka.track_requests();
    let log: Log = Arc::default();
    let first = start(&factory, logging("first", topic, &log, Duration::from_millis(2))).await;
    wait_until("the first instance is working", WAIT, || handled_by(&log, "first") >= 100).await;
    let second = start(&factory, logging("second", topic, &log, Duration::from_millis(2))).await;
    let (a, b) = (first.container("first").unwrap(), second.container("second").unwrap());
    wait_until("two partitions each", WAIT, || a.assignment().len() == 2 && b.assignment().len() == 2).await;
    wait_committed(&bootstrap, topic, topic, (0..4).map(|p| (p, 300)).collect()).await;
    assert!(handled_by(&log, "second") > 0, "the second instance handled records");
    assert!(a.revocations() >= 1, "the first instance gave partitions up");
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();
    assert_complete_and_ordered(&log, 4, 300);
    // The group really ran the protocol: Kafka's API keys 11 (JoinGroup) and 68
    // (ConsumerGroupHeartbeat).
    let requests = kafka.requests();
    let count = |api: i16| requests.iter().filter(|r| r.api_key == api).count();
    match protocol {
        Classic => {
            assert!(count(11) >= 2 && count(68) == 0, "JoinGroup {}, ConsumerGroupHeartbeat {}", count(11), count(68))
        }
        _ => assert!(count(11) == 0 && count(68) >= 2, "JoinGroup {}, ConsumerGroupHeartbeat {}", count(11), count(68)),
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_revoked_partitions_are_committed_at_revocation() {
    committed_at_revocation(Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_protocol_revoked_partitions_are_committed_at_revocation() {
    committed_at_revocation(Consumer).await;
}

/// Count mode with a count never reached: only the revocation (and the stop) commit.
async fn committed_at_revocation(protocol: GroupProtocol) {
    let topic = "revoked";
    let kafka = embedded(&[(topic, 2)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, topic, &(0..20).map(|i| (i % 2, "k", format!("v{i}"))).collect::<Vec<_>>());
    let mut builder = protocol_factory(&kafka, protocol, AckMode::Count).ack_count(1000);
    if protocol == Classic {
        // Incremental, as the consumer protocol is; and a longer session: the mock cluster waits
        // `session.timeout.ms` - 1 s for members to rejoin, and when a loaded machine lets the
        // first instance miss that window, the broker syncs without it, and its late join starts
        // another rebalance in whose join phase the mock refuses the revocation's commit (a real
        // broker accepts commits of the current generation then; readme_claims_containers.rs).
        builder = builder.set("partition.assignment.strategy", "cooperative-sticky").set("session.timeout.ms", "10000");
    }
    let factory = builder.build().unwrap();
    let log: Log = Arc::default();
    let first = start(&factory, logging("first", topic, &log, Duration::ZERO)).await;
    wait_until("the first instance handled all 20", WAIT, || handled_by(&log, "first") == 20).await;
    assert_committed_stays(
        "no commit: the count is far",
        &bootstrap,
        topic,
        topic,
        BTreeMap::new(),
        Duration::from_millis(300),
    )
    .await;

    let second = start(&factory, logging("second", topic, &log, Duration::ZERO)).await;
    let (a, b) = (first.container("first").unwrap(), second.container("second").unwrap());
    wait_until("one partition each", WAIT, || a.assignment().len() == 1 && b.assignment().len() == 1).await;
    let moved = b.assignment()[0].partition;
    let kept = a.assignment()[0].partition;
    // The moved partition was committed when it was revoked; the kept one was not.
    wait_committed(&bootstrap, topic, topic, [(moved, 10)].into()).await;
    assert_eq!(committed(&bootstrap, topic, topic).await.get(&kept), None, "the kept partition is not committed");

    produce(&kafka, topic, &(0..10).map(|i| (i % 2, "k", format!("more{i}"))).collect::<Vec<_>>());
    wait_until("the new records handled", WAIT, || log.lock().unwrap().len() == 30).await;
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();
    let log = log.lock().unwrap().clone();
    let second_saw: Vec<(i32, i64)> = log.iter().filter(|(i, _, _)| *i == "second").map(|(_, p, o)| (*p, *o)).collect();
    assert_eq!(second_saw, (10..15).map(|o| (moved, o)).collect::<Vec<_>>(), "the new owner started at the commit");
    let distinct: BTreeSet<(i32, i64)> = log.iter().map(|(_, p, o)| (*p, *o)).collect();
    assert_eq!(distinct.len(), 30, "each record handled once");
    assert_eq!(committed(&bootstrap, topic, topic).await, [(0, 15), (1, 15)].into(), "the stops committed the rest");
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_a_paused_listener_stays_paused_across_rebalances_and_a_stop_hands_over() {
    paused_across_rebalances(Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_protocol_a_paused_listener_stays_paused_across_rebalances_and_a_stop_hands_over() {
    paused_across_rebalances(Consumer).await;
}

/// A paused instance keeps every partition it is given paused — those it keeps, and those a
/// leaving member hands back (added incrementally under the consumer protocol); the leaving
/// member's stop commits what it handled, and the paused instance, once resumed, starts there.
async fn paused_across_rebalances(protocol: GroupProtocol) {
    let topic = "paused";
    let kafka = embedded(&[(topic, 2)]);
    let bootstrap = kafka.bootstrap_servers();
    let factory = protocol_factory(&kafka, protocol, AckMode::Record).build().unwrap();
    let log: Log = Arc::default();
    let first = start(&factory, logging("first", topic, &log, Duration::ZERO)).await;
    let a = first.container("first").unwrap();
    wait_until("the first instance owns both partitions", WAIT, || a.assignment().len() == 2).await;
    a.pause();
    wait_until("paused", WAIT, || a.is_paused()).await;

    let second = start(&factory, logging("second", topic, &log, Duration::ZERO)).await;
    let b = second.container("second").unwrap();
    wait_until("one partition each", WAIT, || a.assignment().len() == 1 && b.assignment().len() == 1).await;
    let (moved, kept) = (b.assignment()[0].partition, a.assignment()[0].partition);
    produce(&kafka, topic, &(0..10).map(|i| (i % 2, "k", format!("v{i}"))).collect::<Vec<_>>());
    wait_until("the second instance handled its partition's 5", WAIT, || handled_by(&log, "second") == 5).await;

    // The second instance leaves: its stop commits, and its partition goes back to the first.
    second.shutdown().await.unwrap();
    wait_committed(&bootstrap, topic, topic, [(moved, 5)].into()).await;
    wait_until("the first instance owns both partitions again", WAIT, || a.assignment().len() == 2).await;
    produce(&kafka, topic, &(0..4).map(|i| (i % 2, "k", format!("w{i}"))).collect::<Vec<_>>());
    assert_stays("nothing handled while paused, on either partition", Duration::from_millis(1500), || {
        std::future::ready(handled_by(&log, "first") == 0)
    })
    .await;
    assert!(a.is_paused(), "still paused");

    a.resume();
    wait_until("the first instance handled the rest", WAIT, || handled_by(&log, "first") == 9).await;
    first.shutdown().await.unwrap();
    let first_saw: Vec<(i32, i64)> =
        log.lock().unwrap().iter().filter(|(i, _, _)| *i == "first").map(|(_, p, o)| (*p, *o)).collect();
    let on = |p: i32| first_saw.iter().filter(|(q, _)| *q == p).map(|(_, o)| *o).collect::<Vec<_>>();
    assert_eq!(on(kept), (0..7).collect::<Vec<_>>(), "its own partition, from the start");
    assert_eq!(on(moved), vec![5, 6], "the handed-back partition, from the second instance's commit");
    assert_eq!(committed(&bootstrap, topic, topic).await, [(0, 7), (1, 7)].into());
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_seeks_move_a_running_listener() {
    seeks(Classic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_protocol_seeks_move_a_running_listener() {
    seeks(Consumer).await;
}

async fn seeks(protocol: GroupProtocol) {
    let topic = "seeks";
    let kafka = embedded(&[(topic, 1)]);
    let bootstrap = kafka.bootstrap_servers();
    let factory = protocol_factory(&kafka, protocol, AckMode::Record).build().unwrap();
    let log: Log = Arc::default();
    let running = start(&factory, logging("seeker", topic, &log, Duration::ZERO)).await;
    let container = running.container("seeker").unwrap();
    produce(&kafka, topic, &numbered(6));
    wait_until("6 handled", WAIT, || log.lock().unwrap().len() == 6).await;
    container.seek(topic, 0, SeekTo::Offset(2)).unwrap();
    wait_until("2..6 handled again", WAIT, || log.lock().unwrap().len() == 10).await;
    container.seek(topic, 0, SeekTo::Beginning).unwrap();
    wait_until("all 6 again", WAIT, || log.lock().unwrap().len() == 16).await;
    wait_committed(&bootstrap, topic, topic, [(0, 6)].into()).await;
    running.shutdown().await.unwrap();
    let offsets: Vec<i64> = log.lock().unwrap().iter().map(|(_, _, o)| *o).collect();
    assert_eq!(offsets, [0, 1, 2, 3, 4, 5, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
}
