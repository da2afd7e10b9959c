//! Explicit partitions with start positions, assignment callbacks, and auto_offset_reset.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use kafka_listener::prelude::*;

/// 2026-11-01T00:00:00Z in ms.
const NOV_1: i64 = 1_793_491_200_000;

type Seen = Arc<Mutex<BTreeMap<(String, i32), Vec<i64>>>>;

static LEDGER: Mutex<Vec<(String, i32, i64)>> = Mutex::new(Vec::new());

#[kafka_listener(
    id = "ledger-assigned",
    group = "ledger-assigned",
    concurrency = 5,
    topic_partitions = [
        ("ledger", [0], "beginning"),
        ("ledger", [1], "offset:7"),
        ("ledger", [2], "end-3"),
        ("ledger-times", [0], "time:2026-11-01T00:00:05Z"),
    ]
)]
fn ledger(meta: Meta) {
    LEDGER.lock().unwrap().push((meta.topic.clone(), meta.partition, meta.offset));
}

static PLACED_BY_ATTRIBUTE: Mutex<Vec<i64>> = Mutex::new(Vec::new());

fn from_offset_9(partitions: &[TopicPartition], consumer: &ConsumerHandle) {
    for tp in partitions {
        consumer.seek(&tp.topic, tp.partition, 9);
    }
}

#[kafka_listener(
    id = "reset-attribute",
    topic = "resets",
    group = "reset-attribute",
    auto_offset_reset = "error",
    on_partitions_assigned = from_offset_9
)]
fn placed_by_attribute(meta: Meta) {
    PLACED_BY_ATTRIBUTE.lock().unwrap().push(meta.offset);
}

/// Ten records per partition, `r<i>` at `NOV_1 + 1000 i`.
async fn fill(kafka: &EmbeddedKafka, topic: &str, partitions: i32) {
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    for partition in 0..partitions {
        for i in 0..10 {
            template.send(topic, format!("r{i}")).partition(partition).timestamp(NOV_1 + 1000 * i).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_partitions_start_where_they_are_told_without_a_rebalance() {
    let kafka = embedded(&[("ledger", 3), ("ledger-times", 1)]);
    fill(&kafka, "ledger", 3).await;
    fill(&kafka, "ledger-times", 1).await;
    let running = ListenerRegistry::from_annotations()
        .only(["ledger-assigned"])
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .start()
        .await
        .unwrap();
    let container = running.container("ledger-assigned").unwrap();
    assert_eq!(container.concurrency(), 4, "concurrency capped at the 4 partitions");
    wait_until("all records of the window", Duration::from_secs(20), || LEDGER.lock().unwrap().len() == 10 + 3 + 3 + 5)
        .await;
    assert!(container.consumer_assignments().iter().all(|a| a.len() == 1), "{:?}", container.consumer_assignments());
    let bootstrap = kafka.bootstrap_servers();
    wait_committed(&bootstrap, "ledger-assigned", "ledger", [(0, 10), (1, 10), (2, 10)].into()).await;
    assert_eq!(container.revocations(), 0, "no group rebalancing");
    running.shutdown().await.unwrap();

    let seen = LEDGER.lock().unwrap().clone();
    let of = |topic: &str, partition: i32| -> Vec<i64> {
        seen.iter().filter(|(t, p, _)| t == topic && *p == partition).map(|(_, _, o)| *o).collect()
    };
    assert_eq!(of("ledger", 0), (0..10).collect::<Vec<_>>(), "beginning");
    assert_eq!(of("ledger", 1), [7, 8, 9], "offset:7");
    assert_eq!(of("ledger", 2), [7, 8, 9], "end-3");
    assert_eq!(of("ledger-times", 0), [5, 6, 7, 8, 9], "the first record at or after 00:00:05");
}

fn recording(id: &str, topic: &str, seen: &Seen) -> Endpoint {
    let log = seen.clone();
    Endpoint::new(id).topic(topic).group(id).blocking_handler(move |meta: Meta| {
        log.lock().unwrap().entry((meta.topic.clone(), meta.partition)).or_default().push(meta.offset);
    })
}

fn offsets(seen: &Seen, topic: &str) -> Vec<i64> {
    seen.lock().unwrap().get(&(topic.to_string(), 0)).cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assignment_callback_rewinds_a_group_with_committed_offsets() {
    let kafka = embedded(&[("rewound", 1)]);
    fill(&kafka, "rewound", 1).await;
    let first: Seen = Arc::default();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .register(recording("rewound", "rewound", &first))
        .start()
        .await
        .unwrap();
    wait_committed(&kafka.bootstrap_servers(), "rewound", "rewound", [(0, 10)].into()).await;
    running.shutdown().await.unwrap();

    // The same group again: it would resume at 10; the callback starts it over.
    let again: Seen = Arc::default();
    let assigned: Arc<Mutex<Vec<TopicPartition>>> = Arc::default();
    let told = assigned.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .register(recording("rewound", "rewound", &again).on_partitions_assigned(move |partitions, consumer| {
            told.lock().unwrap().extend(partitions.iter().cloned());
            consumer.seek_to_beginning(partitions);
        }))
        .start()
        .await
        .unwrap();
    wait_until("the records again", Duration::from_secs(20), || offsets(&again, "rewound").len() == 10).await;
    running.shutdown().await.unwrap();
    assert_eq!(offsets(&again, "rewound"), (0..10).collect::<Vec<_>>(), "from the beginning, none before the seek");
    assert_eq!(*assigned.lock().unwrap(), [("rewound".to_string(), 0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_offset_reset_earliest_latest_and_error_on_fresh_groups() {
    let kafka = embedded(&[("resets", 1)]);
    fill(&kafka, "resets", 1).await;
    let (earliest, latest, error, placed): (Seen, Seen, Seen, Seen) = Default::default();
    let running = ListenerRegistry::from_annotations()
        .only(["reset-attribute", "reset-earliest", "reset-latest", "reset-error", "reset-placed"])
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .register(recording("reset-earliest", "resets", &earliest).auto_offset_reset("earliest"))
        .register(recording("reset-latest", "resets", &latest).auto_offset_reset("latest"))
        .register(recording("reset-error", "resets", &error).auto_offset_reset("error"))
        // The remedy for `error`: the listener says where each partition starts.
        .register(recording("reset-placed", "resets", &placed).auto_offset_reset("error").on_partitions_assigned(
            |partitions, consumer| partitions.iter().for_each(|tp| consumer.seek(&tp.topic, tp.partition, 8)),
        ))
        .start()
        .await
        .unwrap();
    wait_until("earliest: the ten records", Duration::from_secs(20), || offsets(&earliest, "resets").len() == 10).await;
    for id in ["reset-latest", "reset-error"] {
        let container = running.container(id).unwrap();
        wait_until("assigned", Duration::from_secs(20), || !container.assignment().is_empty()).await;
    }
    assert_stays("latest and error: nothing of the backlog", Duration::from_secs(1), || {
        let quiet = offsets(&latest, "resets").is_empty() && offsets(&error, "resets").is_empty();
        std::future::ready(quiet)
    })
    .await;
    produce(&kafka, "resets", &[(0, "k", "new-1".into()), (0, "k", "new-2".into())]);
    wait_until("latest: the new records", Duration::from_secs(20), || offsets(&latest, "resets").len() == 2).await;
    assert_eq!(offsets(&latest, "resets"), [10, 11]);
    wait_until("error + callback: from offset 8", Duration::from_secs(20), || offsets(&placed, "resets").len() == 4)
        .await;
    wait_until("the attribute's listener", Duration::from_secs(20), || PLACED_BY_ATTRIBUTE.lock().unwrap().len() == 3)
        .await;
    assert!(offsets(&error, "resets").is_empty(), "error: nothing without a start position");
    // The earliest listener reads the two new records too: waited for, not raced by the shutdown.
    wait_until("earliest: the new records", Duration::from_secs(20), || offsets(&earliest, "resets").len() >= 12).await;
    running.shutdown().await.unwrap();
    assert_eq!(offsets(&placed, "resets"), [8, 9, 10, 11]);
    assert_eq!(*PLACED_BY_ATTRIBUTE.lock().unwrap(), [9, 10, 11], "the attributes' way");
    assert_eq!(offsets(&earliest, "resets"), (0..12).collect::<Vec<_>>());
}
