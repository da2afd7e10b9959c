//! Offsets whose commit a rebalance rejected are not dropped: the consumers of one listener join
//! together, hand processed offsets to each other, and a clean shutdown commits everything that
//! was handled (issue 10, scenario 10; the embedded broker rejects commits during any rebalance).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use kafka_listener::prelude::*;

const RECORDS: usize = 20_000;

fn sum(offsets: &std::collections::BTreeMap<i32, i64>) -> i64 {
    offsets.values().sum()
}

/// 3 partitions, 20,000 records; a Batch listener with concurrency 3 and a Manual-ack listener in
/// another group; the registry is stopped once all are handled. Both groups end with all 20,000
/// committed — in half the runs nothing was. The broker does not wait for a group's members
/// (initial rebalance delay 0), so the first consumer gets all partitions, handles everything
/// while its siblings join and sees its commits rejected: what it processed is handed to them.
/// Run a few times, each with fresh groups.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_shutdown_after_a_fast_start_commits_everything_handled() {
    let kafka = embedded(&[("fast-start", 3)]);
    kafka.set_initial_rebalance_delay(Duration::ZERO);
    let bootstrap = kafka.bootstrap_servers();
    let records: Vec<(i32, String, String)> =
        (0..RECORDS).map(|i| ((i % 3) as i32, format!("k{i}"), format!("{{\"n\":{i}}}"))).collect();
    for (partition, key, payload) in &records {
        kafka.produce_to("fast-start", *partition, Some(key.as_bytes()), payload.as_bytes()).unwrap();
    }
    kafka.flush().unwrap();
    for run in 0..3 {
        let (batch_group, manual_group) = (format!("fast-batch-{run}"), format!("fast-manual-{run}"));
        let batch_seen = Arc::new(AtomicUsize::new(0));
        let manual_seen = Arc::new(AtomicUsize::new(0));
        let (b, m) = (batch_seen.clone(), manual_seen.clone());
        let batch =
            Endpoint::new(batch_group.clone()).topic("fast-start").group(batch_group.clone()).concurrency(3).handler(
                move |_: String| {
                    b.fetch_add(1, Ordering::Relaxed);
                    std::future::ready(())
                },
            );
        let manual = Endpoint::new(manual_group.clone())
            .topic("fast-start")
            .group(manual_group.clone())
            .container_factory("manual")
            .handler(move |_: String, ack: Acknowledgment| {
                m.fetch_add(1, Ordering::Relaxed);
                ack.acknowledge();
                std::future::ready(())
            });
        let base = factory(&kafka, AckMode::Batch);
        let running = ListenerRegistry::empty()
            .with_default_factory(base.clone())
            .with_factory("manual", base.to_builder().ack_mode(AckMode::Manual).build().unwrap())
            .register(batch)
            .register(manual)
            .start()
            .await
            .unwrap();
        wait_until("all handled by both listeners", Duration::from_secs(60), || {
            batch_seen.load(Ordering::Relaxed) >= RECORDS && manual_seen.load(Ordering::Relaxed) >= RECORDS
        })
        .await;
        running.shutdown().await.unwrap();
        let batch_committed = committed(&bootstrap, &batch_group, "fast-start").await;
        let manual_committed = committed(&bootstrap, &manual_group, "fast-start").await;
        assert_eq!(sum(&batch_committed), RECORDS as i64, "run {run}: batch listener committed {batch_committed:?}");
        assert_eq!(sum(&manual_committed), RECORDS as i64, "run {run}: manual listener committed {manual_committed:?}");
    }
}

/// The consumer that handled a partition cannot commit (every commit is rejected, as during a
/// rebalance) and loses the partition in a rebalance: the listener's consumer that gets it next
/// starts where the first one stopped and commits its offsets — nothing is handled twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processed_offsets_whose_commit_was_rejected_are_handed_to_the_next_consumer() {
    use kafka_listener::embedded::{RDKafkaApiKey, RDKafkaRespErr};
    let kafka = embedded(&[("handoff", 1), ("handoff-other", 1)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, "handoff", &numbered(100));
    kafka
        .fail_requests(RDKafkaApiKey::OffsetCommit, &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS; 500])
        .unwrap();
    let probe = Probe::open();
    let base = factory(&kafka, AckMode::Batch);
    let running = start_listeners(base.clone(), [probe.endpoint("handoff", "handoff", "handoff").concurrency(2)]).await;
    wait_until("all 100 handled", Duration::from_secs(20), || probe.count() == 100).await;
    assert!(committed(&bootstrap, "handoff", "handoff").await.is_empty(), "every commit was rejected");

    // A member for another topic joins: the group rebalances, the revocation's commit is rejected
    // too, and `handoff-0` goes to one of the listener's two consumers.
    let joiner = start_listeners(
        base,
        [Endpoint::new("handoff-joiner").topic("handoff-other").group("handoff").handler(|_: String| async {})],
    )
    .await;
    let container = running.container("handoff").unwrap();
    wait_until("the rebalance", Duration::from_secs(30), || {
        container.revocations() > 0 && !container.assignment().is_empty()
    })
    .await;
    kafka.clear_request_errors(RDKafkaApiKey::OffsetCommit).unwrap();
    wait_committed(&bootstrap, "handoff", "handoff", [(0, 100)].into()).await;
    produce(&kafka, "handoff", &[(0, "k", "after".to_string())]);
    wait_committed(&bootstrap, "handoff", "handoff", [(0, 101)].into()).await;
    joiner.shutdown().await.unwrap();
    running.shutdown().await.unwrap();
    assert_eq!(probe.count(), 101, "no record handled twice: the next consumer started at the handed-over offset");
}

/// Where the broker waits for a new group's members (the embedded broker does, 100 ms by
/// default), the consumers of a listener subscribe together and share the first assignment: each
/// consumer's first assignment is one of the three partitions. (What happens after it is the
/// broker's: under a loaded 2-core machine the mock cluster sometimes rebalances a settled group
/// again, before and after this change alike, so later generations are not asserted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumers_of_a_listener_join_the_first_generation_together() {
    let kafka = embedded(&[("together", 3)]);
    kafka.set_initial_rebalance_delay(Duration::from_secs(1));
    produce(&kafka, "together", &(0..30).map(|i| (i % 3, "k", format!("v{i}"))).collect::<Vec<_>>());
    let probe = Probe::open();
    let (factory, events) = recording_events(factory(&kafka, AckMode::Batch).to_builder());
    let factory = factory.build().unwrap();
    let running = start_listeners(factory, [probe.endpoint("together", "together", "together").concurrency(3)]).await;
    wait_until("all 30 handled", Duration::from_secs(20), || probe.count() == 30).await;
    running.shutdown().await.unwrap();
    let mut first: Vec<(usize, usize)> = Vec::new();
    for event in events.lock().unwrap().iter() {
        if let ContainerEvent::PartitionsAssigned { consumer, partitions, .. } = event {
            if !first.iter().any(|(c, _)| c == consumer) {
                first.push((*consumer, partitions.len()));
            }
        }
    }
    first.sort();
    assert_eq!(first, [(0, 1), (1, 1), (2, 1)], "each consumer's first assignment: one partition, in one generation");
}
