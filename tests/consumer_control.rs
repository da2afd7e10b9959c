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
    let key = ("outside".to_string(), 0);
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
    running.shutdown().await.unwrap();
    let expected: Vec<i64> = [0..10, 4..10].into_iter().flatten().collect();
    assert_eq!(*seen.lock().unwrap(), expected);
}
