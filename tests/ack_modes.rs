//! Each ack mode commits at the points it defines, read back from the broker, and never past an
//! unhandled record.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use kafka_listener::prelude::*;

const T: &str = "acks";

fn none() -> BTreeMap<i32, i64> {
    BTreeMap::new()
}

fn at(offset: i64) -> BTreeMap<i32, i64> {
    [(0, offset)].into()
}

async fn start(factory: ContainerFactory, endpoint: Endpoint) -> RunningListeners {
    ListenerRegistry::empty().with_default_factory(factory).register(endpoint).start().await.unwrap()
}

fn gated_endpoint(probe: &Probe, group: &str) -> Endpoint {
    probe.endpoint(group, T, group)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_commits_after_each_record() {
    let kafka = embedded(&[(T, 1)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, T, &numbered(4));
    let probe = Probe::gated();
    let running = start(factory(&kafka, AckMode::Record), gated_endpoint(&probe, "record")).await;
    for n in 0..4i64 {
        wait_until("the handler holds the next record", Duration::from_secs(20), || probe.count() == n as usize + 1)
            .await;
        // Record n is in its handler: exactly the records before it are committed.
        let expected = if n == 0 { none() } else { at(n) };
        wait_committed(&bootstrap, "record", T, expected.clone()).await;
        let what = "nothing committed past the record in its handler";
        assert_committed_stays(what, &bootstrap, "record", T, expected, Duration::from_millis(200)).await;
        probe.release_through(n);
    }
    wait_committed(&bootstrap, "record", T, at(4)).await;
    running.shutdown().await.unwrap();
    assert_eq!(probe.payloads(), ["v0", "v1", "v2", "v3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_commits_after_the_records_of_a_poll() {
    let kafka = embedded(&[(T, 1)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, T, &numbered(6));
    let probe = Probe::gated();
    let factory = factory(&kafka, AckMode::Batch).to_builder().max_poll_records(3).build().unwrap();
    let running = start(factory, gated_endpoint(&probe, "batch")).await;

    // The first poll is records 0..3; record 1 is in its handler, 0 is done: nothing committed.
    probe.release_through(0);
    wait_until("record 1 in its handler", Duration::from_secs(20), || probe.count() == 2).await;
    assert_committed_stays(
        "no commit before the poll is done",
        &bootstrap,
        "batch",
        T,
        none(),
        Duration::from_millis(300),
    )
    .await;
    // Records 0..=3 done, 4 in its handler: the first poll (0..3) is committed, record 3 is not.
    probe.release_through(3);
    wait_until("record 4 in its handler", Duration::from_secs(20), || probe.count() == 5).await;
    wait_committed(&bootstrap, "batch", T, at(3)).await;
    assert_committed_stays(
        "the second poll is not committed before it is done",
        &bootstrap,
        "batch",
        T,
        at(3),
        Duration::from_millis(300),
    )
    .await;
    probe.release_all();
    wait_committed(&bootstrap, "batch", T, at(6)).await;
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_commits_every_ack_count_records_and_the_rest_on_shutdown() {
    let kafka = embedded(&[(T, 1)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, T, &numbered(5));
    let probe = Probe::gated();
    let factory = factory(&kafka, AckMode::Count).to_builder().ack_count(2).build().unwrap();
    let running = start(factory, gated_endpoint(&probe, "count")).await;
    probe.release_through(2);
    wait_until("record 3 in its handler", Duration::from_secs(20), || probe.count() == 4).await;
    wait_committed(&bootstrap, "count", T, at(2)).await;
    probe.release_all();
    wait_until("all handled", Duration::from_secs(20), || probe.count() == 5).await;
    wait_committed(&bootstrap, "count", T, at(4)).await;
    assert_committed_stays(
        "the fifth record alone does not reach the count",
        &bootstrap,
        "count",
        T,
        at(4),
        Duration::from_millis(300),
    )
    .await;
    running.shutdown().await.unwrap();
    assert_eq!(committed(&bootstrap, "count", T).await, at(5), "shutdown commits what was processed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_commits_once_ack_time_has_elapsed() {
    let kafka = embedded(&[(T, 1)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, T, &numbered(3));
    let probe = Probe::open();
    let ack_time = Duration::from_secs(3);
    let factory = factory(&kafka, AckMode::Time).to_builder().ack_time(ack_time).build().unwrap();
    let started = Instant::now();
    let running = start(factory, gated_endpoint(&probe, "time")).await;
    wait_until("all handled", Duration::from_secs(20), || probe.count() == 3).await;
    // No further record comes: only the time can trigger the commit. A lower bound only (a
    // loaded machine makes everything later, never earlier): not before ack_time has passed
    // since the container started, so not per record or per batch.
    let mut first_commit = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while first_commit.is_none() {
        assert!(Instant::now() < deadline, "no time-based commit");
        let offsets = committed(&bootstrap, "time", T).await;
        if offsets == at(3) {
            first_commit = Some(started.elapsed());
        } else {
            assert!(offsets.is_empty(), "a commit of part of what was handled: {offsets:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_commit = first_commit.unwrap();
    assert!(first_commit >= ack_time, "committed after {first_commit:?}, before ack_time {ack_time:?}");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_time_commits_on_count_when_it_comes_first() {
    let kafka = embedded(&[(T, 1)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, T, &numbered(4));
    let probe = Probe::gated();
    let factory = factory(&kafka, AckMode::CountTime)
        .to_builder()
        .ack_count(3)
        .ack_time(Duration::from_secs(600))
        .build()
        .unwrap();
    let running = start(factory, gated_endpoint(&probe, "count-time")).await;
    probe.release_through(2);
    wait_until("record 3 in its handler", Duration::from_secs(20), || probe.count() == 4).await;
    wait_committed(&bootstrap, "count-time", T, at(3)).await;
    probe.release_all();
    running.shutdown().await.unwrap();
    assert_eq!(committed(&bootstrap, "count-time", T).await, at(4));
}

fn acking_endpoint(probe: &Probe, group: &str, skip: i64, hold: bool) -> Endpoint {
    let probe = probe.clone();
    Endpoint::new(group).topic(T).group(group).handler(move |record: ConsumerRecord, ack: Acknowledgment| {
        let probe = probe.clone();
        async move {
            let offset = record.offset;
            probe.keep_ack(offset, ack.clone());
            if offset != skip {
                ack.acknowledge();
            }
            if hold {
                probe.handle(record).await;
            } else {
                probe.seen.lock().unwrap().push(record);
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_commits_only_acknowledged_records_in_contiguous_order() {
    let kafka = embedded(&[(T, 1)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, T, &numbered(5));
    let probe = Probe::open();
    let running = start(factory(&kafka, AckMode::Manual), acking_endpoint(&probe, "manual", 2, false)).await;
    wait_until("all handled", Duration::from_secs(20), || probe.count() == 5).await;
    // 0, 1, 3, 4 acknowledged; 2 not: only 0..2 may be committed.
    wait_committed(&bootstrap, "manual", T, at(2)).await;
    assert_committed_stays(
        "an unacknowledged record holds back the commit",
        &bootstrap,
        "manual",
        T,
        at(2),
        Duration::from_millis(400),
    )
    .await;
    // Acknowledged late, from another task: the contiguous prefix now runs to the end.
    let ack = probe.ack_of(2);
    tokio::spawn(async move { ack.acknowledge() }).await.unwrap();
    wait_committed(&bootstrap, "manual", T, at(5)).await;
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_immediate_commits_at_acknowledge() {
    let kafka = embedded(&[(T, 1)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, T, &numbered(2));
    let probe = Probe::gated();
    let running =
        start(factory(&kafka, AckMode::ManualImmediate), acking_endpoint(&probe, "immediate", -1, true)).await;
    wait_until("record 0 in its handler", Duration::from_secs(20), || probe.count() == 1).await;
    // Acknowledged, and the handler has not returned: the commit is already there.
    wait_committed(&bootstrap, "immediate", T, at(1)).await;
    probe.release_all();
    wait_committed(&bootstrap, "immediate", T, at(2)).await;
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_acks_from_spawned_tasks_out_of_order() {
    let kafka = embedded(&[(T, 1)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, T, &numbered(6));
    let probe = Probe::open();
    let p = probe.clone();
    let endpoint = Endpoint::new("spawned").topic(T).group("spawned").handler(
        move |record: ConsumerRecord, ack: Acknowledgment| {
            let probe = p.clone();
            async move {
                probe.keep_ack(record.offset, ack);
                probe.seen.lock().unwrap().push(record);
            }
        },
    );
    let running = start(factory(&kafka, AckMode::Manual), endpoint).await;
    wait_until("all handled", Duration::from_secs(20), || probe.count() == 6).await;
    // Acknowledge from tasks in reverse order; the commit advances only when 0 is done.
    for offset in (1..6).rev() {
        let ack = probe.ack_of(offset);
        tokio::spawn(async move { ack.acknowledge() }).await.unwrap();
    }
    assert_committed_stays(
        "nothing committed while record 0 is unacknowledged",
        &bootstrap,
        "spawned",
        T,
        none(),
        Duration::from_millis(400),
    )
    .await;
    let ack = probe.ack_of(0);
    tokio::spawn(async move { ack.acknowledge() }).await.unwrap();
    wait_committed(&bootstrap, "spawned", T, at(6)).await;
    running.shutdown().await.unwrap();
}
