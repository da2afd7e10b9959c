//! Consumer control: seeking from a handler and from outside, offset queries.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use kafka_listener::container::SeekTo;
use kafka_listener::prelude::*;

type Seen = Arc<Mutex<Vec<i64>>>;

/// Ten records `r0`..`r9` on partition 0 of `topic`, `r<i>` with timestamp `base + 1000 i`.
async fn ten_timed(kafka: &EmbeddedKafka, topic: &str, base: i64) {
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    for i in 0..10 {
        template.send(topic, format!("r{i}")).partition(0).timestamp(base + 1000 * i).await.unwrap();
    }
}

fn count(seen: &Seen, offset: i64) -> usize {
    seen.lock().unwrap().iter().filter(|o| **o == offset).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_seeks_relative_to_a_timestamp_and_to_the_beginning() {
    const BASE: i64 = 1_700_000_000_000;
    let kafka = embedded(&[("seeking", 1)]);
    ten_timed(&kafka, "seeking", BASE).await;
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .register(Endpoint::new("seeking").topic("seeking").group("seeking").blocking_handler(
            move |meta: Meta, consumer: ConsumerHandle| {
                let mut seen = log.lock().unwrap();
                let first_time = !seen.contains(&meta.offset);
                seen.push(meta.offset);
                match (meta.offset, first_time) {
                    (5, true) => consumer.seek_relative("seeking", 0, -3),
                    (7, true) => consumer.seek_to_timestamp(&[("seeking", 0)], BASE + 1000),
                    (9, true) => consumer.seek_to_beginning(&[("seeking", 0)]),
                    _ => {}
                }
            },
        ))
        .start()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&seen, 9) < 2 {
        assert!(Instant::now() < deadline, "no second pass through r9: {:?}", seen.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.shutdown().await.unwrap();
    let expected: Vec<i64> = [0..6, 3..8, 1..10, 0..10].into_iter().flatten().collect();
    assert_eq!(*seen.lock().unwrap(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_seeks_to_the_end_and_skips_the_backlog() {
    let kafka = embedded(&[("to-end", 1)]);
    ten_timed(&kafka, "to-end", 1_700_000_000_000).await;
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .register(Endpoint::new("to-end").topic("to-end").group("to-end").blocking_handler(
            move |meta: Meta, consumer: ConsumerHandle| {
                log.lock().unwrap().push(meta.offset);
                if meta.offset == 3 {
                    consumer.seek_to_end(&[("to-end", 0)]);
                }
            },
        ))
        .start()
        .await
        .unwrap();
    wait_until("r3", Duration::from_secs(20), || count(&seen, 3) == 1).await;
    kafka.produce_to("to-end", 0, None, b"new").unwrap();
    kafka.flush().unwrap();
    wait_until("the new record", Duration::from_secs(20), || count(&seen, 10) == 1).await;
    running.shutdown().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [0, 1, 2, 3, 10], "the backlog after r3 was skipped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seek_from_outside_and_the_offsets_of_a_running_listener() {
    let kafka = embedded(&[("outside", 1)]);
    ten_timed(&kafka, "outside", 1_700_000_000_000).await;
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .register(Endpoint::new("outside").topic("outside").group("outside").blocking_handler(move |meta: Meta| {
            log.lock().unwrap().push(meta.offset);
        }))
        .start()
        .await
        .unwrap();
    wait_committed(&kafka.bootstrap_servers(), "outside", "outside", [(0, 10)].into()).await;
    let container = running.container("outside").unwrap();
    let timeout = Duration::from_secs(5);
    let key = TopicPartition::new("outside", 0);
    let (committed, ends, beginnings, lag) = tokio::task::block_in_place(|| {
        (
            container.committed(timeout).unwrap(),
            container.end_offsets(timeout).unwrap(),
            container.beginning_offsets(timeout).unwrap(),
            container.lag(timeout).unwrap(),
        )
    });
    assert_eq!(committed[&key], Some(10));
    assert_eq!((beginnings[&key], ends[&key], lag[&key]), (0, 10, 0));

    let asked = Instant::now();
    container.seek("outside", 0, SeekTo::Offset(4)).unwrap();
    wait_until("r4 again", Duration::from_secs(20), || count(&seen, 4) == 2).await;
    let took = asked.elapsed();
    wait_until("r9 again", Duration::from_secs(20), || count(&seen, 9) == 2).await;
    eprintln!("a seek from outside took effect after {took:?}");
    assert!(matches!(
        container.seek("outside", 7, SeekTo::Beginning),
        Err(kafka_listener::Error::NotAssigned { partition: 7, .. })
    ));
    let handle = container.consumers().remove(0);
    running.stop("outside").await.unwrap();
    let expected: Vec<i64> = [0..10, 4..10].into_iter().flatten().collect();
    assert_eq!(*seen.lock().unwrap(), expected);

    // A handle kept past the stop says so, naming the listener and consumer and where a new one
    // comes from; a seek through it is dropped (with a warning), and the container's own
    // one-partition operations say the listener is stopped.
    let error = handle.assignment().unwrap_err();
    assert!(
        matches!(&error, kafka_listener::Error::ContainerStopped { listener, consumer: 0 } if listener == "outside"),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("consumer 0 of listener `outside`") && message.contains("consumers()"), "{message}");
    assert!(matches!(handle.pause(&[("outside", 0)]), Err(kafka_listener::Error::ContainerStopped { .. })));
    handle.seek("outside", 0, 0);
    assert!(matches!(
        container.seek("outside", 0, SeekTo::Beginning),
        Err(kafka_listener::Error::ContainerStopped { .. })
    ));
    running.shutdown().await.unwrap();
}

fn count_of(seen: &Arc<Mutex<Vec<(i32, i64)>>>, partition: i32) -> usize {
    seen.lock().unwrap().iter().filter(|(p, _)| *p == partition).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_longer_than_max_poll_interval_keeps_the_group_and_holds_the_records() {
    let kafka = embedded(&[("paused", 2)]);
    let factory = impatient_factory(&kafka).build().unwrap();
    let seen: Arc<Mutex<Vec<(i32, i64)>>> = Arc::default();
    let log = seen.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(Endpoint::new("paused").topic("paused").group("paused").blocking_handler(move |meta: Meta| {
            log.lock().unwrap().push((meta.partition, meta.offset));
        }))
        .start()
        .await
        .unwrap();
    let container = running.container("paused").unwrap();
    produce(&kafka, "paused", &[(0, "k", "a".into()), (1, "k", "b".into())]);
    wait_until("the first records", Duration::from_secs(20), || seen.lock().unwrap().len() == 2).await;

    container.pause();
    wait_until("paused", Duration::from_secs(20), || container.is_paused()).await;
    produce(&kafka, "paused", &[(0, "k", "c".into()), (1, "k", "d".into())]);
    assert_stays("nothing handled while paused, for 2.5 x max.poll.interval.ms", Duration::from_millis(2500), || {
        std::future::ready(seen.lock().unwrap().len() == 2)
    })
    .await;
    container.resume();
    wait_until("all after resume", Duration::from_secs(20), || seen.lock().unwrap().len() == 4).await;

    container.pause_partition("paused", 0).unwrap();
    produce(&kafka, "paused", &[(0, "k", "e".into()), (1, "k", "f".into())]);
    wait_until("the other partition flows", Duration::from_secs(20), || count_of(&seen, 1) == 3).await;
    assert_stays("the paused partition waits", Duration::from_millis(1500), || {
        std::future::ready(count_of(&seen, 0) == 2)
    })
    .await;
    container.resume_partition("paused", 0).unwrap();
    wait_until("the partition after resume", Duration::from_secs(20), || count_of(&seen, 0) == 3).await;
    assert_eq!(container.revocations(), 0, "no rebalance: the consumer kept polling");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_pattern_picks_up_topics_created_while_running() {
    let kafka = embedded(&[("metrics.cpu", 1)]);
    produce(&kafka, "metrics.cpu", &[(0, "k", "cpu-1".into())]);
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let log = seen.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .register(
            Endpoint::new("metrics")
                .topic_pattern(r"metrics\..*")
                .group("metrics")
                // How often the client looks for new matching topics (librdkafka's default: 5 min).
                .property("topic.metadata.refresh.interval.ms", "500")
                .blocking_handler(move |meta: Meta, text: String| {
                    log.lock().unwrap().push((meta.topic.clone(), text));
                }),
        )
        .start()
        .await
        .unwrap();
    wait_until("the first topic", Duration::from_secs(20), || seen.lock().unwrap().len() == 1).await;
    kafka.create_topic("metrics.disk", 1).unwrap();
    kafka.create_topic("other.disk", 1).unwrap();
    produce(&kafka, "metrics.disk", &[(0, "k", "disk-1".into())]);
    produce(&kafka, "other.disk", &[(0, "k", "not mine".into())]);
    wait_until("the new matching topic", Duration::from_secs(30), || seen.lock().unwrap().len() == 2).await;
    running.shutdown().await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [("metrics.cpu".to_string(), "cpu-1".to_string()), ("metrics.disk".to_string(), "disk-1".to_string())]
    );
}

/// The records delivered and not yet acknowledged, and the most there ever were. The test
/// acknowledges while holding the lock, so what the handler counts is exactly what the
/// container tracks as outstanding.
#[derive(Default)]
struct InFlight {
    waiting: Vec<(i64, Acknowledgment)>,
    most: usize,
    delivered: Vec<i64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_records_past_max_in_flight_pause_their_partition() {
    let kafka = embedded(&[("in-flight", 1)]);
    produce(&kafka, "in-flight", &numbered(50));
    let in_flight: Arc<Mutex<InFlight>> = Arc::default();
    let held = in_flight.clone();
    let factory = factory(&kafka, AckMode::Manual).to_builder().max_in_flight(5).build().unwrap();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(Endpoint::new("in-flight").topic("in-flight").group("in-flight").blocking_handler(
            move |ack: Acknowledgment, meta: Meta| {
                let mut held = held.lock().unwrap();
                held.waiting.push((meta.offset, ack));
                held.most = held.most.max(held.waiting.len());
                held.delivered.push(meta.offset);
            },
        ))
        .start()
        .await
        .unwrap();
    let waiting = || in_flight.lock().unwrap().waiting.len();
    wait_until("five records in flight", Duration::from_secs(20), || waiting() == 5).await;
    assert_stays("no more until they are acknowledged", Duration::from_millis(1000), || {
        std::future::ready(waiting() == 5)
    })
    .await;
    // Acknowledging three (5 - 3 = 2 <= half of 5) lets the partition go on, five at a time.
    let acknowledge = |count: usize| {
        let mut held = in_flight.lock().unwrap();
        let count = count.min(held.waiting.len());
        held.waiting.drain(..count).for_each(|(_, ack)| ack.acknowledge());
    };
    acknowledge(3);
    // Then acknowledge one at a time, as records arrive: the limit is checked at every delivery.
    wait_until("every record delivered and acknowledged", Duration::from_secs(30), || {
        acknowledge(1);
        let held = in_flight.lock().unwrap();
        held.delivered.len() == 50 && held.waiting.is_empty()
    })
    .await;
    wait_committed(&kafka.bootstrap_servers(), "in-flight", "in-flight", [(0, 50)].into()).await;
    running.shutdown().await.unwrap();
    let held = in_flight.lock().unwrap();
    assert_eq!(held.most, 5, "at most max_in_flight records waited for an acknowledgment at any delivery");
    assert_eq!(held.delivered, (0..50).collect::<Vec<i64>>(), "each record once, in order");
}
