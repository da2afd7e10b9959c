//! Time-range replay: exactly the records of [t1, t2), then the listener stops by itself.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use kafka_listener::prelude::*;

const BASE: i64 = 1_793_491_200_000;

fn at(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms as u64)
}

type Seen = Arc<Mutex<Vec<(i32, i64, i64)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_handles_exactly_the_window_and_stops() {
    let kafka = embedded(&[("events", 3)]);
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    // Partition p, record i: at BASE + 1 s * i + 10 ms * p.
    for p in 0..3 {
        for i in 0..20 {
            template
                .send("events", format!("e{i}"))
                .partition(p)
                .timestamp(BASE + 1000 * i + 10 * i64::from(p))
                .await
                .unwrap();
        }
    }
    let (records, batches): (Seen, Seen) = Default::default();
    let (r, b) = (records.clone(), batches.clone());
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .register(
            Endpoint::new("replay-records")
                .topic("events")
                .group("replay-records")
                .replay(at(BASE + 5_000), at(BASE + 12_000))
                .blocking_handler(move |meta: Meta| {
                    r.lock().unwrap().push((meta.partition, meta.offset, meta.timestamp.unwrap()));
                }),
        )
        .register(
            Endpoint::new("replay-batches")
                .topic("events")
                .group("replay-batches")
                .concurrency(2)
                .replay(at(BASE + 5_000), at(BASE + 12_000))
                .batch_handler(move |batch: Vec<ConsumerRecord>| {
                    let mut seen = b.lock().unwrap();
                    seen.extend(batch.iter().map(|c| (c.partition, c.offset, c.timestamp.unwrap())));
                    std::future::ready(())
                }),
        )
        .start()
        .await
        .unwrap();
    let report =
        tokio::time::timeout(Duration::from_secs(30), running.replayed("replay-records")).await.unwrap().unwrap();
    let batch_report =
        tokio::time::timeout(Duration::from_secs(30), running.replayed("replay-batches")).await.unwrap().unwrap();
    for id in ["replay-records", "replay-batches"] {
        let container = running.container(id).unwrap();
        wait_until("the replay stops by itself", Duration::from_secs(10), || !container.is_running()).await;
    }
    running.shutdown().await.unwrap();

    let expected_per_partition: BTreeMap<TopicPartition, u64> =
        (0..3).map(|p| (TopicPartition::new("events", p), 7)).collect();
    for (name, report, seen) in [("records", &report, &records), ("batches", &batch_report, &batches)] {
        assert!(report.complete, "{name}: the whole window");
        assert_eq!(report.records, expected_per_partition, "{name}: counts per partition");
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        let expected: Vec<(i32, i64, i64)> =
            (0..3).flat_map(|p| (5..12).map(move |i| (p, i, BASE + 1000 * i + 10 * i64::from(p)))).collect();
        assert_eq!(seen, expected, "{name}: nothing before t1, nothing at or after t2, nothing missing");
    }
    let committed = committed(&kafka.bootstrap_servers(), "replay-records", "events").await;
    assert!(committed.is_empty(), "a replay commits nothing: {committed:?}");
}
