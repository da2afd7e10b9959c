mod common;

use std::sync::{Arc, Mutex};
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
    wait_until("20 records", Duration::from_secs(20), || SEEN.lock().unwrap().len() == 20).await;
    wait_committed(&kafka.bootstrap_servers(), "smoke-group", "smoke", [(0, 10), (1, 10)].into()).await;
    running.shutdown().await.unwrap();
    let _ = Arc::new(());
}
