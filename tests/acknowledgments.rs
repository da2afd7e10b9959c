//! Acknowledgments count only for the delivery they were given with, waits commit what was
//! acknowledged before them, and a shutdown waits for acknowledgments still on their way
//! (issue 10, scenarios 1 to 3; offsets read back from the broker).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use kafka_listener::error_handler::FixedBackOff;
use kafka_listener::prelude::*;

fn at(offset: i64) -> BTreeMap<i32, i64> {
    [(0, offset)].into()
}

/// Every delivery a listener got: (offset, its acknowledgment), in order.
#[derive(Clone, Default)]
struct Deliveries(Arc<Mutex<Vec<(i64, Acknowledgment)>>>);

impl Deliveries {
    fn push(&self, offset: i64, ack: Acknowledgment) -> usize {
        let mut all = self.0.lock().unwrap();
        all.push((offset, ack));
        all.iter().filter(|(o, _)| *o == offset).count()
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The acknowledgment of the `nth` (1-based) delivery of `offset`.
    fn ack(&self, offset: i64, nth: usize) -> Acknowledgment {
        let all = self.0.lock().unwrap();
        all.iter().filter(|(o, _)| *o == offset).nth(nth - 1).map(|(_, a)| a.clone()).expect("delivered")
    }

    fn offsets(&self) -> Vec<i64> {
        self.0.lock().unwrap().iter().map(|(o, _)| *o).collect()
    }
}

fn manual(kafka: &EmbeddedKafka, shutdown: Duration) -> ContainerFactory {
    factory(kafka, AckMode::Manual).to_builder().shutdown_timeout(shutdown).build().unwrap()
}

/// Scenario 1: the partition is revoked and assigned back to the same consumer (another member
/// joins the group for another topic, eager assignment); during the second delivery of record 0
/// the first delivery's acknowledgment of record 9 arrives late, then record 0 is acknowledged.
/// Records 1..9 of the second delivery are never acknowledged: nothing past record 0 may be
/// committed (it was 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_acknowledgment_of_an_earlier_delivery_commits_nothing() {
    let kafka = embedded(&[("stale", 1), ("stale-other", 1)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, "stale", &numbered(10));
    let deliveries = Deliveries::default();
    let seen = deliveries.clone();
    let endpoint =
        Endpoint::new("stale").topic("stale").group("stale").handler(move |meta: Meta, ack: Acknowledgment| {
            let seen = seen.clone();
            async move {
                let nth = seen.push(meta.offset, ack.clone());
                if meta.offset == 0 && nth == 2 {
                    // A slow task of the first delivery finishes now.
                    seen.ack(9, 1).acknowledge();
                    ack.acknowledge();
                }
            }
        });
    // The revocation waits this long for acknowledgments that never come.
    let factory = manual(&kafka, Duration::from_millis(500));
    let running = start_listeners(factory.clone(), [endpoint]).await;
    wait_until("the first delivery of all 10 records", Duration::from_secs(20), || deliveries.count() == 10).await;

    // A member for another topic joins the group: everyone's partitions are revoked and assigned
    // again; `stale-0` goes back to the first consumer, from the committed offset (none).
    let other = Endpoint::new("stale-joiner").topic("stale-other").group("stale").handler(|_: String| async {});
    let joiner = start_listeners(factory, [other]).await;
    wait_until("the second delivery of all 10 records", Duration::from_secs(30), || deliveries.count() == 20).await;
    assert_eq!(deliveries.offsets(), (0..10).chain(0..10).collect::<Vec<_>>());

    wait_committed(&bootstrap, "stale", "stale", at(1)).await;
    let what = "only record 0 of the second delivery was acknowledged";
    assert_committed_stays(what, &bootstrap, "stale", "stale", at(1), Duration::from_millis(800)).await;
    joiner.shutdown().await.unwrap();
    running.shutdown().await.unwrap();
    assert_eq!(committed(&bootstrap, "stale", "stale").await, at(1), "nor at shutdown");
}

/// The same for deliveries restarted without a rebalance: a seek back, a nack, and an error
/// handler's retry. Acknowledgments of the deliveries before are ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgments_from_before_a_seek_a_nack_or_a_retry_are_ignored() {
    let kafka = embedded(&[("restart-seek", 1), ("restart-nack", 1), ("restart-retry", 1)]);
    let bootstrap = kafka.bootstrap_servers();
    for topic in ["restart-seek", "restart-nack", "restart-retry"] {
        produce(&kafka, topic, &numbered(4));
    }

    // Seek: record 3 (first delivery) seeks back to 1; on the second delivery of record 1 the first
    // delivery's acknowledgments of 1..3 arrive. Only records 0 and 1 (second delivery) are acked.
    let seek = Deliveries::default();
    let s = seek.clone();
    let seeking = Endpoint::new("restart-seek").topic("restart-seek").group("restart-seek").handler(
        move |meta: Meta, ack: Acknowledgment, consumer: ConsumerHandle| {
            let s = s.clone();
            async move {
                let nth = s.push(meta.offset, ack.clone());
                match (meta.offset, nth) {
                    (0, 1) => ack.acknowledge(),
                    (3, 1) => consumer.seek("restart-seek", 0, 1),
                    (1, 2) => {
                        (1..=3).for_each(|o| s.ack(o, 1).acknowledge());
                        ack.acknowledge();
                    }
                    _ => {}
                }
            }
        },
    );

    // Nack: record 1's first delivery acknowledges itself and nacks; its acknowledgment (from a
    // task, late) must not count for the second delivery, which is not acknowledged.
    let nack = Deliveries::default();
    let n = nack.clone();
    let nacking = Endpoint::new("restart-nack").topic("restart-nack").group("restart-nack").handler(
        move |meta: Meta, ack: Acknowledgment| {
            let n = n.clone();
            async move {
                let nth = n.push(meta.offset, ack.clone());
                match (meta.offset, nth) {
                    (0, _) => ack.acknowledge(),
                    (1, 1) => ack.nack(Duration::from_millis(300)),
                    (1, 2) => n.ack(1, 1).acknowledge(),
                    _ => {}
                }
            }
        },
    );

    // Retry: record 1's first attempt fails after handing its acknowledgment to a task that
    // acknowledges during the back-off; the second attempt succeeds without acknowledging.
    let retry = Deliveries::default();
    let r = retry.clone();
    let retrying = Endpoint::new("restart-retry")
        .topic("restart-retry")
        .group("restart-retry")
        .error_handler(
            DefaultErrorHandler::new().backoff(FixedBackOff { interval: Duration::from_millis(800), max_retries: 3 }),
        )
        .handler(move |meta: Meta, ack: Acknowledgment| {
            let r = r.clone();
            async move {
                let nth = r.push(meta.offset, ack.clone());
                match (meta.offset, nth) {
                    (0, _) => {
                        ack.acknowledge();
                        Ok(())
                    }
                    (1, 1) => {
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            ack.acknowledge();
                        });
                        Err(ListenerError::msg("failing once"))
                    }
                    _ => Ok(()),
                }
            }
        });

    let running = start_listeners(manual(&kafka, Duration::from_millis(500)), [seeking, nacking, retrying]).await;
    wait_until("the seek's second delivery", Duration::from_secs(20), || seek.count() == 7).await;
    wait_until("the nack's second delivery", Duration::from_secs(20), || nack.count() == 5).await;
    wait_until("the retry's second attempt and the rest", Duration::from_secs(20), || retry.count() == 5).await;
    assert_eq!(seek.offsets(), [0, 1, 2, 3, 1, 2, 3]);
    assert_eq!(nack.offsets(), [0, 1, 1, 2, 3]);
    assert_eq!(retry.offsets(), [0, 1, 1, 2, 3]);

    wait_committed(&bootstrap, "restart-seek", "restart-seek", at(2)).await;
    wait_committed(&bootstrap, "restart-nack", "restart-nack", at(1)).await;
    wait_committed(&bootstrap, "restart-retry", "restart-retry", at(1)).await;
    let window = Duration::from_millis(800);
    assert_committed_stays("seek: 2..3 unacknowledged", &bootstrap, "restart-seek", "restart-seek", at(2), window)
        .await;
    assert_committed_stays("nack: 1 unacknowledged", &bootstrap, "restart-nack", "restart-nack", at(1), window).await;
    assert_committed_stays("retry: 1 unacknowledged", &bootstrap, "restart-retry", "restart-retry", at(1), window)
        .await;
    running.shutdown().await.unwrap();
}

/// Scenario 2: records 0..2 are acknowledged, record 3 nacks for 4 s. During the sleep, 0..2 are
/// committed (Spring commits pending offsets before a nack's pause); after it, record 3 and the
/// rest come again and nothing is delivered twice but record 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nack_commits_what_was_acknowledged_before_its_sleep() {
    let kafka = embedded(&[("nack-commits", 1)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, "nack-commits", &numbered(10));
    let deliveries = Deliveries::default();
    let seen = deliveries.clone();
    let endpoint = Endpoint::new("nack-commits").topic("nack-commits").group("nack-commits").handler(
        move |meta: Meta, ack: Acknowledgment| {
            let seen = seen.clone();
            async move {
                if seen.push(meta.offset, ack.clone()) == 1 && meta.offset == 3 {
                    ack.nack(Duration::from_secs(4));
                } else {
                    ack.acknowledge();
                }
            }
        },
    );
    let running = start_listeners(factory(&kafka, AckMode::Manual), [endpoint]).await;
    wait_until("record 3 nacked", Duration::from_secs(20), || deliveries.count() == 4).await;
    wait_committed_within(&bootstrap, "nack-commits", "nack-commits", at(3), Duration::from_millis(1500)).await;
    wait_until("all delivered after the sleep", Duration::from_secs(20), || deliveries.count() == 11).await;
    assert_eq!(deliveries.offsets(), [0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9]);
    wait_committed(&bootstrap, "nack-commits", "nack-commits", at(10)).await;
    running.shutdown().await.unwrap();
}

/// Scenario 3: 20 records handed to tasks that acknowledge them 100 ms after `shutdown()` was
/// called. The shutdown waits for them (within `shutdown_timeout`) and commits all 20 (it
/// committed none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgments_made_while_shutting_down_are_committed() {
    let kafka = embedded(&[("ack-at-shutdown", 1)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, "ack-at-shutdown", &numbered(20));
    let stopping = Arc::new(AtomicBool::new(false));
    let deliveries = Deliveries::default();
    let (seen, flag) = (deliveries.clone(), stopping.clone());
    let endpoint = Endpoint::new("ack-at-shutdown").topic("ack-at-shutdown").group("ack-at-shutdown").handler(
        move |meta: Meta, ack: Acknowledgment| {
            seen.push(meta.offset, ack.clone());
            let flag = flag.clone();
            tokio::spawn(async move {
                // Slow work: it ends 100 ms after the shutdown began.
                while !flag.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                ack.acknowledge();
            });
            std::future::ready(())
        },
    );
    let running = start_listeners(factory(&kafka, AckMode::Manual), [endpoint]).await;
    wait_until("all 20 delivered", Duration::from_secs(20), || deliveries.count() == 20).await;
    assert!(committed(&bootstrap, "ack-at-shutdown", "ack-at-shutdown").await.is_empty());
    stopping.store(true, Ordering::SeqCst);
    running.shutdown().await.unwrap();
    assert_eq!(committed(&bootstrap, "ack-at-shutdown", "ack-at-shutdown").await, at(20));
}

/// Found by the fault campaign (examples/chaos.rs, seed 2): a nack's wait pauses the
/// assignment; a rebalance during the wait took the nacked partition to another instance, which
/// later left; when the partition came back, librdkafka still had it paused (its pause flag
/// outlives the revocation), so it was never fetched again. Newly assigned partitions are now
/// resumed (unless paused through a ConsumerHandle or with the whole listener).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_taken_during_a_nack_wait_and_given_back_is_fetched_again() {
    const T: &str = "nack-rebalance";
    let kafka = embedded(&[(T, 2)]);
    let bootstrap = kafka.bootstrap_servers();
    for i in 0..3 {
        kafka.produce_to(T, 1, Some(b"k"), format!("v{i}").as_bytes()).unwrap();
    }
    kafka.flush().unwrap();
    // (instance, partition, offset) of every delivery; the first delivery of p1@0 is nacked.
    let seen: Arc<Mutex<Vec<(&'static str, i32, i64)>>> = Arc::default();
    let nacked = Arc::new(AtomicBool::new(false));
    let endpoint = |instance: &'static str| {
        let (seen, nacked) = (seen.clone(), nacked.clone());
        Endpoint::new(instance).topic(T).group(T).blocking_handler(move |meta: Meta, ack: Acknowledgment| {
            seen.lock().unwrap().push((instance, meta.partition, meta.offset));
            if (meta.partition, meta.offset) == (1, 0) && !nacked.swap(true, Ordering::SeqCst) {
                ack.nack(Duration::from_secs(3));
            } else {
                ack.acknowledge();
            }
        })
    };
    let factory = factory(&kafka, AckMode::ManualImmediate);
    let first = start_listeners(factory.clone(), [endpoint("first")]).await;
    wait_until("the nack of p1@0", Duration::from_secs(20), || nacked.load(Ordering::SeqCst)).await;
    // A second instance joins during the wait: the partitions are revoked and shared out.
    let second = start_listeners(factory, [endpoint("second")]).await;
    wait_until("both instances own a partition", Duration::from_secs(20), || {
        first.container("first").unwrap().assignment().len() == 1
            && second.container("second").unwrap().assignment().len() == 1
    })
    .await;
    wait_committed(&bootstrap, T, T, [(1, 3)].into()).await;
    // The second instance leaves: the first gets both partitions back, and must fetch them.
    second.shutdown().await.unwrap();
    wait_until("the first instance owns both partitions", Duration::from_secs(20), || {
        first.container("first").unwrap().assignment().len() == 2
    })
    .await;
    for partition in [0, 1] {
        kafka.produce_to(T, partition, Some(b"k"), b"after").unwrap();
    }
    kafka.flush().unwrap();
    // Says what was seen, and where the first instance stands, if the records do not come.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !{
        let seen = seen.lock().unwrap();
        seen.contains(&("first", 0, 0)) && seen.contains(&("first", 1, 3))
    } {
        let container = first.container("first").unwrap();
        assert!(
            std::time::Instant::now() < deadline,
            "the records produced after the second instance left were not handled: seen {:?}; first's assignment {:?}, paused {}",
            seen.lock().unwrap(),
            container.assignment(),
            container.is_paused()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.shutdown().await.unwrap();
    assert_eq!(committed(&bootstrap, T, T).await, [(0, 1), (1, 4)].into());
}
