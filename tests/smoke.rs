//! Records flow into an annotated listener: every record once, each partition's in produced order,
//! and the offsets are committed.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use kafka_listener::prelude::*;

static SEEN: Mutex<Vec<(i32, i64, String)>> = Mutex::new(Vec::new());

#[kafka_listener(id = "smoke", topic = "smoke", group = "smoke-group")]
async fn on_smoke(payload: String, meta: Meta) {
    SEEN.lock().unwrap().push((meta.partition, meta.offset, payload));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_flow_into_an_annotated_listener_and_offsets_are_committed() {
    let kafka = embedded(&[("smoke", 2)]);
    let records: Vec<_> = (0..20).map(|i| (i % 2, "k", format!("v{i}"))).collect();
    produce(&kafka, "smoke", &records);
    let running = ListenerRegistry::from_annotations()
        .only(["smoke"])
        .with_default_factory(factory(&kafka, AckMode::Record))
        .start()
        .await
        .unwrap();
    wait_until("20 records", Duration::from_secs(20), || SEEN.lock().unwrap().len() >= 20).await;
    // Per partition, in the order the handler saw them: (offset, payload).
    let mut seen: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for (partition, offset, payload) in SEEN.lock().unwrap().iter().cloned() {
        seen.entry(partition).or_default().push((offset, payload));
    }
    // Per partition, in produced order: record i went to partition i % 2.
    let mut produced: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    for (partition, _, payload) in records {
        let on_partition = produced.entry(partition).or_default();
        on_partition.push((on_partition.len() as i64, payload));
    }
    assert_eq!(seen, produced, "each record once, each partition's in produced order");
    wait_committed(&kafka.bootstrap_servers(), "smoke-group", "smoke", [(0, 10), (1, 10)].into()).await;
    running.shutdown().await.unwrap();
}
