//! `ProcessingOrder::Key` and `Unordered` (issue 16): records run as tasks, one key's records in
//! offset order and different keys concurrently, committed up to the contiguous prefix of what
//! completed; a slow record holds up only its key, and the consumer keeps polling meanwhile.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use kafka_listener::error_handler::FixedBackOff;
use kafka_listener::prelude::*;

/// What a listener saw: each record's (key, offset) in the order handled, and how many ran at
/// once at most.
#[derive(Clone, Default)]
struct Seen {
    handled: Arc<Mutex<Vec<(String, i64)>>>,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Seen {
    async fn handle(&self, record: &ConsumerRecord, wait: Duration) {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(wait).await;
        let key = record.key.as_deref().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
        self.handled.lock().unwrap().push((key, record.offset));
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    fn count(&self) -> usize {
        self.handled.lock().unwrap().len()
    }

    fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }

    /// Each key's offsets, in the order handled.
    fn by_key(&self) -> HashMap<String, Vec<i64>> {
        let mut keys: HashMap<String, Vec<i64>> = HashMap::new();
        for (key, offset) in self.handled.lock().unwrap().iter() {
            keys.entry(key.clone()).or_default().push(*offset);
        }
        keys
    }

    /// Every offset handled, sorted.
    fn offsets(&self) -> Vec<i64> {
        let mut all: Vec<i64> = self.handled.lock().unwrap().iter().map(|(_, o)| *o).collect();
        all.sort_unstable();
        all
    }
}

/// A wait of 0-3 ms that varies with the offset (the same in every run).
fn jitter(offset: i64) -> Duration {
    Duration::from_micros(offset.unsigned_abs().wrapping_mul(2_654_435_761) % 4_000)
}

/// Produces `records` records to partition 0 of `topic`, record `i` with key `k<key(i)>`.
fn produce_keyed(kafka: &EmbeddedKafka, topic: &str, records: usize, key: impl Fn(usize) -> usize) {
    for i in 0..records {
        let key = format!("k{}", key(i));
        kafka.produce_to(topic, 0, Some(key.as_bytes()), format!("r{i}").as_bytes()).unwrap();
    }
    kafka.flush().unwrap();
}

fn listener(id: &str, topic: &str, order: ProcessingOrder, seen: &Seen) -> Endpoint {
    let seen = seen.clone();
    Endpoint::new(id).topic(topic).group(id).processing_order(order).max_concurrency(200).handler(
        move |record: ConsumerRecord| {
            let seen = seen.clone();
            async move { seen.handle(&record, jitter(record.offset)).await }
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_one_key_run_in_offset_order_and_keys_concurrently() {
    let kafka = embedded(&[("by-key", 1)]);
    // 1,000 keys spread at random: a key's records are often a few offsets apart, so that running
    // them concurrently would show.
    let key_of = |i: usize| {
        let x = (i as u64 + 1).wrapping_mul(0xff51_afd7_ed55_8ccd);
        ((x ^ (x >> 33)) % 1_000) as usize
    };
    produce_keyed(&kafka, "by-key", 5_000, key_of);
    let seen = Seen::default();
    let running =
        start_listeners(factory(&kafka, AckMode::Batch), [listener("by-key", "by-key", ProcessingOrder::Key, &seen)])
            .await;
    wait_until("every record handled", Duration::from_secs(60), || seen.count() >= 5_000).await;
    wait_committed(&kafka.bootstrap_servers(), "by-key", "by-key", [(0, 5_000)].into()).await;
    running.shutdown().await.unwrap();

    assert_eq!(seen.offsets(), (0..5_000).collect::<Vec<_>>(), "every record handled once");
    let keys = seen.by_key();
    let mut expected: HashMap<String, Vec<i64>> = HashMap::new();
    for i in 0..5_000 {
        expected.entry(format!("k{}", key_of(i))).or_default().push(i as i64);
    }
    assert!(expected.len() > 900, "about 1,000 keys ({})", expected.len());
    for (key, offsets) in &expected {
        assert_eq!(&keys[key], offsets, "key {key}'s records in offset order");
    }
    let most = seen.most();
    assert!(most > 10, "records of different keys ran concurrently (at most {most} at once)");
    assert!(most <= 200, "no more than max_concurrency at once ({most})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unordered_records_all_run_and_commit_to_the_end() {
    let kafka = embedded(&[("unordered", 2)]);
    for i in 0..2_000 {
        let payload = format!("r{i}");
        kafka.produce_to("unordered", i % 2, Some(b"same"), payload.as_bytes()).unwrap();
    }
    kafka.flush().unwrap();
    let seen = Seen::default();
    let running = start_listeners(
        factory(&kafka, AckMode::Record),
        [listener("unordered", "unordered", ProcessingOrder::Unordered, &seen)],
    )
    .await;
    wait_until("every record handled", Duration::from_secs(60), || seen.count() >= 2_000).await;
    wait_committed(&kafka.bootstrap_servers(), "unordered", "unordered", [(0, 1_000), (1, 1_000)].into()).await;
    running.shutdown().await.unwrap();
    assert_eq!(seen.count(), 2_000, "each record once");
    // One key: in Key order they would run one at a time.
    assert!(seen.most() > 10, "records of one key ran concurrently ({} at once)", seen.most());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_records_form_one_lane_in_offset_order() {
    let kafka = embedded(&[("keyless", 1)]);
    for i in 0..300 {
        kafka.produce_to("keyless", 0, None, format!("r{i}").as_bytes()).unwrap();
    }
    kafka.flush().unwrap();
    let seen = Seen::default();
    let running =
        start_listeners(factory(&kafka, AckMode::Batch), [listener("keyless", "keyless", ProcessingOrder::Key, &seen)])
            .await;
    wait_until("every record handled", Duration::from_secs(60), || seen.count() >= 300).await;
    wait_committed(&kafka.bootstrap_servers(), "keyless", "keyless", [(0, 300)].into()).await;
    running.shutdown().await.unwrap();
    let handled: Vec<i64> = seen.handled.lock().unwrap().iter().map(|(_, o)| *o).collect();
    assert_eq!(handled, (0..300).collect::<Vec<_>>(), "in offset order");
    assert_eq!(seen.most(), 1, "one at a time");
}

/// A record whose handler takes longer than `max.poll.interval.ms`: the consumer keeps polling
/// (no rebalance), the other keys' records are handled meanwhile, and the commit waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_slower_than_the_poll_interval_holds_up_only_its_key() {
    let kafka = embedded(&[("slow-key", 1)]);
    let bootstrap = kafka.bootstrap_servers();
    produce(&kafka, "slow-key", &[(0, "slow", "0".into())]);
    produce(&kafka, "slow-key", &(1..=50).map(|i| (0, "fast", i.to_string())).collect::<Vec<_>>());
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = events.clone();
    let factory = impatient_factory(&kafka)
        .processing_order(ProcessingOrder::Key)
        .event_listener(move |event: &ContainerEvent| sink.lock().unwrap().push(format!("{event:?}")))
        .build()
        .unwrap();
    let fast = Arc::new(AtomicUsize::new(0));
    let slow_done = Arc::new(AtomicUsize::new(0));
    let (f, s) = (fast.clone(), slow_done.clone());
    let running = start_listeners(
        factory,
        [Endpoint::new("slow-key").topic("slow-key").group("slow-key").handler(move |key: Key<String>| {
            let (f, s) = (f.clone(), s.clone());
            async move {
                if key.0 == "slow" {
                    tokio::time::sleep(Duration::from_millis(2_500)).await;
                    s.fetch_add(1, Ordering::SeqCst);
                } else {
                    f.fetch_add(1, Ordering::SeqCst);
                }
            }
        })],
    )
    .await;
    wait_until("the other key's records", Duration::from_secs(10), || fast.load(Ordering::SeqCst) == 50).await;
    assert_eq!(slow_done.load(Ordering::SeqCst), 0, "handled while the slow record runs");
    assert!(committed(&bootstrap, "slow-key", "slow-key").await.get(&0).is_none_or(|&c| c == 0));
    wait_until("the slow record", Duration::from_secs(10), || slow_done.load(Ordering::SeqCst) == 1).await;
    wait_committed(&bootstrap, "slow-key", "slow-key", [(0, 51)].into()).await;
    running.shutdown().await.unwrap();
    let events = events.lock().unwrap();
    let revoked = events.iter().filter(|e| e.contains("PartitionsRevoked") || e.contains("PartitionsLost")).count();
    let assigned = events.iter().filter(|e| e.contains("PartitionsAssigned")).count();
    assert_eq!((assigned, revoked), (1, 1), "one assignment, revoked only at the shutdown: {events:?}");
    assert_eq!(fast.load(Ordering::SeqCst), 50, "each record once");
}

/// A record that fails three times, then succeeds: its retries wait their back-off while the
/// records of other keys go on; the one after it in its key waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_record_holds_up_only_its_key_while_it_is_retried() {
    let kafka = embedded(&[("retry-key", 1)]);
    produce(&kafka, "retry-key", &[(0, "a", "fails".into()), (0, "a", "after".into())]);
    produce(&kafka, "retry-key", &(0..20).map(|i| (0, "b", format!("b{i}"))).collect::<Vec<_>>());
    let log: Arc<Mutex<Vec<(String, u32, Instant)>>> = Arc::default();
    let sink = log.clone();
    let factory = factory(&kafka, AckMode::Record)
        .to_builder()
        .processing_order(ProcessingOrder::Key)
        .error_handler(
            DefaultErrorHandler::new().backoff(FixedBackOff { interval: Duration::from_millis(300), max_retries: 5 }),
        )
        .build()
        .unwrap();
    let running = start_listeners(
        factory,
        [Endpoint::new("retry-key").topic("retry-key").group("retry-key").handler(
            move |payload: String, meta: Meta| {
                let sink = sink.clone();
                async move {
                    let attempt = meta.delivery_attempt;
                    sink.lock().unwrap().push((payload.clone(), attempt, Instant::now()));
                    if payload == "fails" && attempt <= 3 {
                        return Err(ListenerError::msg(format!("attempt {attempt}")));
                    }
                    Ok(())
                }
            },
        )],
    )
    .await;
    wait_committed(&kafka.bootstrap_servers(), "retry-key", "retry-key", [(0, 22)].into()).await;
    running.shutdown().await.unwrap();
    let log = log.lock().unwrap();
    let fails: Vec<u32> = log.iter().filter(|(p, ..)| p == "fails").map(|(_, a, _)| *a).collect();
    assert_eq!(fails, [1, 2, 3, 4], "delivered four times: {log:?}");
    let first_failure = log.iter().find(|(p, ..)| p == "fails").unwrap().2;
    let success = log.iter().find(|(p, a, _)| p == "fails" && *a == 4).unwrap().2;
    let b_done = log.iter().filter(|(p, ..)| p.starts_with('b')).map(|(.., at)| *at).max().unwrap();
    assert!(b_done < success, "key b's records were handled while key a waited for its retries");
    assert!(success - first_failure >= Duration::from_millis(850), "three back-offs of 300 ms");
    let after = log.iter().position(|(p, ..)| p == "after").unwrap();
    let succeeded = log.iter().position(|(p, a, _)| p == "fails" && *a == 4).unwrap();
    assert!(after > succeeded, "key a's next record waited for the retried one: {log:?}");
    assert_eq!(log.iter().filter(|(p, ..)| p.starts_with('b')).count(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nack_from_a_task_delivers_only_its_record_again_while_other_keys_go_on() {
    let kafka = embedded(&[("nack-key", 1)]);
    produce(&kafka, "nack-key", &[(0, "a", "nacked".into()), (0, "a", "after".into())]);
    produce(&kafka, "nack-key", &(0..20).map(|i| (0, "b", format!("b{i}"))).collect::<Vec<_>>());
    let log: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let sink = log.clone();
    let factory = factory(&kafka, AckMode::Manual).to_builder().processing_order(ProcessingOrder::Key).build().unwrap();
    let running = start_listeners(
        factory,
        [Endpoint::new("nack-key").topic("nack-key").group("nack-key").handler(
            move |payload: String, ack: Acknowledgment| {
                let sink = sink.clone();
                async move {
                    let first = !sink.lock().unwrap().iter().any(|(p, _)| *p == payload);
                    sink.lock().unwrap().push((payload.clone(), Instant::now()));
                    if payload == "nacked" && first {
                        ack.nack(Duration::from_millis(500));
                    } else {
                        ack.acknowledge();
                    }
                }
            },
        )],
    )
    .await;
    wait_committed(&kafka.bootstrap_servers(), "nack-key", "nack-key", [(0, 22)].into()).await;
    running.shutdown().await.unwrap();
    let log = log.lock().unwrap();
    let nacked: Vec<Instant> = log.iter().filter(|(p, _)| p == "nacked").map(|(_, at)| *at).collect();
    assert_eq!(nacked.len(), 2, "the nacked record is delivered once more: {log:?}");
    assert!(nacked[1] - nacked[0] >= Duration::from_millis(450), "after the nack's sleep");
    let b_done = log.iter().filter(|(p, _)| p.starts_with('b')).map(|(_, at)| *at).max().unwrap();
    assert!(b_done < nacked[1], "key b's records were handled while key a slept");
    let after = log.iter().position(|(p, _)| p == "after").unwrap();
    let again = log.iter().rposition(|(p, _)| p == "nacked").unwrap();
    assert!(after > again, "key a's next record waited for the nacked one: {log:?}");
    assert_eq!(log.iter().filter(|(p, _)| p.starts_with('b')).count(), 20, "nothing else delivered twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_listener_with_a_concurrent_order_does_not_start() {
    let kafka = embedded(&[("batch-key", 1)]);
    let error = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .register(
            Endpoint::new("batch-key")
                .topic("batch-key")
                .processing_order(ProcessingOrder::Key)
                .batch_handler(|records: Vec<String>| async move { drop(records) }),
        )
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("batch-key") && error.contains("is a batch listener with processing order key"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_handlers_run_on_the_blocking_pool_by_key() {
    let kafka = embedded(&[("blocking-key", 1)]);
    // Runs of 10 records of one key: running them concurrently would show.
    produce_keyed(&kafka, "blocking-key", 400, |i| i / 10 % 40);
    let handled: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let sink = handled.clone();
    let running = start_listeners(
        factory(&kafka, AckMode::Batch),
        [Endpoint::new("blocking-key")
            .topic("blocking-key")
            .processing_order(ProcessingOrder::Key)
            .max_concurrency(8)
            .blocking_handler(move |record: ConsumerRecord| {
                std::thread::sleep(jitter(record.offset));
                let key = String::from_utf8_lossy(record.key.as_deref().unwrap()).into_owned();
                sink.lock().unwrap().push((key, record.offset));
            })],
    )
    .await;
    wait_committed(&kafka.bootstrap_servers(), "blocking-key", "blocking-key", [(0, 400)].into()).await;
    running.shutdown().await.unwrap();
    let handled = handled.lock().unwrap();
    assert_eq!(handled.len(), 400);
    let mut keys: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (key, offset) in handled.iter() {
        keys.entry(key).or_default().push(*offset);
    }
    assert!(keys.values().all(|o| o.windows(2).all(|w| w[0] < w[1])), "each key in offset order");
}

/// Handlers that finish without waiting are handled on the consumer's thread (an eager start:
/// no task), while handlers that compute before their first wait are started as tasks on the
/// runtime's workers after the first few (their first polls average over 100 µs), so that keys'
/// compute runs concurrently; in both cases each key's records run in offset order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_that_compute_before_they_wait_start_as_tasks_and_quick_ones_end_at_once() {
    let kafka = embedded(&[("eager-quick", 1), ("eager-compute", 1)]);
    produce_keyed(&kafka, "eager-quick", 300, |i| i % 30);
    produce_keyed(&kafka, "eager-compute", 300, |i| i % 30);
    // Per topic: (key, offset, the thread the handler's first part ran on).
    type Threads = Arc<Mutex<Vec<(String, i64, String)>>>;
    let (quick, compute): (Threads, Threads) = Default::default();
    let endpoint = |topic: &'static str, seen: &Threads, work: Duration| {
        let seen = seen.clone();
        Endpoint::new(topic).topic(topic).processing_order(ProcessingOrder::Key).max_concurrency(50).handler(
            move |record: ConsumerRecord| {
                let seen = seen.clone();
                async move {
                    let thread = std::thread::current().name().unwrap_or_default().to_string();
                    let key = String::from_utf8_lossy(record.key.as_deref().unwrap_or_default()).into_owned();
                    if !work.is_zero() {
                        // Compute before the first wait (a stand-in that holds the thread).
                        std::thread::sleep(work);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    seen.lock().unwrap().push((key, record.offset, thread));
                }
            },
        )
    };
    let running = start_listeners(
        factory(&kafka, AckMode::Batch),
        [
            endpoint("eager-quick", &quick, Duration::ZERO),
            endpoint("eager-compute", &compute, Duration::from_millis(2)),
        ],
    )
    .await;
    wait_committed(&kafka.bootstrap_servers(), "eager-quick", "eager-quick", [(0, 300)].into()).await;
    wait_committed(&kafka.bootstrap_servers(), "eager-compute", "eager-compute", [(0, 300)].into()).await;
    running.shutdown().await.unwrap();

    for (topic, seen) in [("eager-quick", &quick), ("eager-compute", &compute)] {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 300, "{topic}: every record once");
        let mut keys: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        for (key, offset, _) in seen.iter() {
            keys.entry(key).or_default().push(*offset);
        }
        assert!(keys.values().all(|o| o.windows(2).all(|w| w[0] < w[1])), "{topic}: each key in offset order");
    }
    let on_consumer = |seen: &Threads, topic: &str| {
        let consumer = format!("kafka-listener-{topic}-0");
        seen.lock().unwrap().iter().filter(|(_, _, thread)| *thread == consumer).count()
    };
    let quick_here = on_consumer(&quick, "eager-quick");
    // Most: three first polls preempted in a row (a loaded machine) send the next ones to tasks
    // until the average is back under the limit.
    assert!(quick_here > 150, "quick handlers end on the consumer's thread, without a task ({quick_here} of 300)");
    // The first three, then one in 32 (to notice handlers getting quick again).
    let compute_here = on_consumer(&compute, "eager-compute");
    assert!(compute_here <= 30, "computing handlers run on the runtime's workers ({compute_here} of 300 did not)");
}

/// A relative seek counts from the first record not started yet, as in partition order: records
/// waiting in the queue (polled, not started) are not handled, so "back 1" from the first
/// record's handler goes back to that record, and nothing queued behind it is skipped (a seek
/// counted from the consumer's position, past everything polled, lost the queued records).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_seek_counts_from_the_first_record_waiting_to_start() {
    let kafka = embedded(&[("seek-queued", 1)]);
    // One key: every record waits behind the first, which waits 100 ms after asking for the seek.
    produce_keyed(&kafka, "seek-queued", 100, |_| 0);
    let handled: Arc<Mutex<Vec<i64>>> = Arc::default();
    let sink = handled.clone();
    let sought = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let running = start_listeners(
        factory(&kafka, AckMode::Batch),
        [Endpoint::new("seek-queued").topic("seek-queued").processing_order(ProcessingOrder::Key).handler(
            move |record: ConsumerRecord, consumer: ConsumerHandle| {
                let (sink, sought) = (sink.clone(), sought.clone());
                async move {
                    if record.offset == 0 && !sought.swap(true, Ordering::SeqCst) {
                        consumer.seek_relative("seek-queued", 0, -1);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    sink.lock().unwrap().push(record.offset);
                }
            },
        )],
    )
    .await;
    wait_committed(&kafka.bootstrap_servers(), "seek-queued", "seek-queued", [(0, 100)].into()).await;
    running.shutdown().await.unwrap();
    let handled = handled.lock().unwrap();
    let mut distinct = handled.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct, (0..100).collect::<Vec<_>>(), "every record handled: {handled:?}");
    assert_eq!(handled.iter().filter(|&&o| o == 0).count(), 2, "back 1 from record 1 is record 0 again");
}

/// One handling of a record: which instance, its key and offset, when it started and ended.
#[derive(Debug, Clone)]
struct Handling {
    instance: &'static str,
    key: String,
    offset: (i32, i64),
    start: Instant,
    end: Instant,
}

/// A second instance joins the group mid-stream in Key order: the first one's revoked partitions
/// wait for their running records before they go, so a key's records never overlap across the
/// two instances, and every record is handled (its first handling in its key's offset order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_joining_mid_stream_keeps_each_key_in_order() {
    second_instance_keeps_keys_in_order(kafka_listener::GroupProtocol::Classic).await;
}

/// The same under KIP-848's consumer protocol: partitions move incrementally, and the offset maps
/// of the partitions that move are read by their new owner at its (incremental) assignment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_joining_mid_stream_keeps_each_key_in_order_under_the_consumer_protocol() {
    second_instance_keeps_keys_in_order(kafka_listener::GroupProtocol::Consumer).await;
}

async fn second_instance_keeps_keys_in_order(protocol: kafka_listener::GroupProtocol) {
    let kafka = embedded(&[("handover", 4)]);
    let bootstrap = kafka.bootstrap_servers();
    let mut end_offsets = BTreeMap::new();
    for i in 0..4_000usize {
        let key = format!("k{}", i % 200);
        let partition = (i % 200 % 4) as i32;
        kafka.produce_to("handover", partition, Some(key.as_bytes()), i.to_string().as_bytes()).unwrap();
        *end_offsets.entry(partition).or_insert(0i64) += 1;
    }
    kafka.flush().unwrap();
    let log: Arc<Mutex<Vec<Handling>>> = Arc::default();
    let instance = |name: &'static str| {
        let log = log.clone();
        Endpoint::new("handover").topic("handover").group("handover").processing_order(ProcessingOrder::Key).handler(
            move |record: ConsumerRecord| {
                let log = log.clone();
                async move {
                    let start = Instant::now();
                    tokio::time::sleep(Duration::from_millis(1) + jitter(record.offset)).await;
                    let key = String::from_utf8_lossy(record.key.as_deref().unwrap()).into_owned();
                    let offset = (record.partition, record.offset);
                    log.lock().unwrap().push(Handling { instance: name, key, offset, start, end: Instant::now() });
                }
            },
        )
    };
    let factory = protocol_factory(&kafka, protocol, AckMode::Batch).build().unwrap();
    let first = start_listeners(factory.clone(), [instance("a")]).await;
    wait_until("the first instance under way", Duration::from_secs(20), || log.lock().unwrap().len() >= 300).await;
    let second = start_listeners(factory, [instance("b")]).await;
    wait_committed_within(&bootstrap, "handover", "handover", end_offsets, Duration::from_secs(90)).await;
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();

    let log = log.lock().unwrap();
    assert!(log.iter().any(|h| h.instance == "b"), "the second instance got partitions");
    let mut by_key: HashMap<&str, Vec<&Handling>> = HashMap::new();
    for h in log.iter() {
        by_key.entry(&h.key).or_default().push(h);
    }
    let mut handled = std::collections::HashSet::new();
    for (key, mut handlings) in by_key {
        handlings.sort_by_key(|h| h.start);
        for pair in handlings.windows(2) {
            assert!(pair[0].end <= pair[1].start, "key {key}: {:?} started before {:?} ended", pair[1], pair[0]);
        }
        let mut firsts: Vec<(i32, i64)> = Vec::new();
        for h in &handlings {
            if handled.insert(h.offset) {
                firsts.push(h.offset);
            }
        }
        assert!(
            firsts.windows(2).all(|w| w[0] < w[1]),
            "key {key}'s records first handled in offset order: {firsts:?}"
        );
    }
    assert_eq!(handled.len(), 4_000, "every record handled");
}
