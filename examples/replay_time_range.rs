//! Time-range replay: run a listener over what arrived between two times, then stop.
//!
//! Delivery: each record of the window exactly once per replay, and nothing is committed — the
//! listener's group keeps its position; run the replay again and it handles the same records.
//!
//! The example produces 400,000 events over 4 partitions with a `KafkaTemplate`, one per
//! millisecond of event time, and replays the middle half, [t0 + 25 s, t0 + 75 s): each partition
//! starts at the first record at or after the start (offsets for times; the embedded broker keeps
//! no time index, so it is found by a binary search over the records) and stops before the first
//! record at or after the end. It then reads the same window with a hand-written rdkafka loop (assign at the same start
//! offsets, poll to the same end offsets, same JSON decoding) and prints both.
//!
//! `cargo run --release --example replay_time_range` (on an embedded broker).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use anyhow::bail;
use kafka_listener::prelude::*;
use kafka_listener::producer::Compression;
use kafka_listener::support::Admin;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;

const TOPIC: &str = "clicks";
const PARTITIONS: i32 = 4;
const PER_PARTITION: i64 = 100_000;
/// 2026-11-01T00:00:00Z.
const T0: i64 = 1_793_491_200_000;
const FROM: i64 = T0 + 25_000;
const TO: i64 = T0 + 75_000;

#[derive(Deserialize)]
struct Click {
    #[allow(dead_code)]
    page: String,
    ms: u64,
}

/// Sends the clicks with a `KafkaTemplate`: to each partition, one per millisecond of event time
/// from t0, 10,000 at a time (queued together, their acknowledgments awaited together).
async fn produce(bootstrap: &str) -> anyhow::Result<()> {
    let template = KafkaTemplate::builder().bootstrap_servers(bootstrap).compression(Compression::Lz4).build()?;
    for partition in 0..PARTITIONS {
        for first in (0..PER_PARTITION).step_by(10_000) {
            let clicks = (first..(first + 10_000).min(PER_PARTITION)).map(|i| {
                let payload = format!(r#"{{"page":"/p/{}","ms":{}}}"#, i % 97, i % 1000);
                template.send(TOPIC, payload).partition(partition).timestamp(T0 + i)
            });
            template.send_all(clicks).await.into_result()?;
        }
    }
    Ok(())
}

/// The framework: a listener with `Endpoint::replay`, until `RunningListeners::replayed`.
/// Returns the count, the sum, the time in all and the time to the first record (the offset
/// lookups and the assignment).
async fn framework(bootstrap: &str) -> anyhow::Result<(u64, u64, Duration, Duration)> {
    let sum = Arc::new(AtomicU64::new(0));
    let total = sum.clone();
    let first: Arc<OnceLock<Instant>> = Arc::default();
    let first_seen = first.clone();
    let factory = ContainerFactory::builder().bootstrap_servers(bootstrap).build()?;
    let started = Instant::now();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(
            Endpoint::new("clicks-replay")
                .topic(TOPIC)
                .group("clicks-replay")
                .replay(UNIX_EPOCH + Duration::from_millis(FROM as u64), UNIX_EPOCH + Duration::from_millis(TO as u64))
                .handler(move |click: Json<Click>| {
                    first_seen.get_or_init(Instant::now);
                    total.fetch_add(click.ms, Ordering::Relaxed);
                    std::future::ready(())
                }),
        )
        .start()
        .await?;
    let report = running.replayed("clicks-replay").await?;
    let took = started.elapsed();
    running.shutdown().await?;
    if !report.complete {
        bail!("the replay stopped before the end of its window");
    }
    for (partition, records) in &report.records {
        println!("  {partition}: {records} records");
    }
    let to_first = first.get().map_or(took, |at| at.duration_since(started));
    Ok((report.total(), sum.load(Ordering::Relaxed), took, to_first))
}

/// By hand: assign at the start offsets, poll each partition to its end offset. Returns the count,
/// the sum, the time in all and the time looking up the offsets.
fn raw(bootstrap: &str) -> anyhow::Result<(u64, u64, Duration, Duration)> {
    let started = Instant::now();
    let admin = Admin::new(bootstrap);
    let starts = admin.offsets_for_time(TOPIC, FROM)?;
    let ends = admin.offsets_for_time(TOPIC, TO)?;
    let looked_up = started.elapsed();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "clicks-raw")
        .set("enable.auto.commit", "false")
        .set("fetch.queue.backoff.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for (partition, start) in &starts {
        tpl.add_partition_offset(TOPIC, *partition, Offset::Offset(*start))?;
    }
    consumer.assign(&tpl)?;
    let mut left: Vec<i32> = starts.keys().copied().filter(|p| starts[p] < ends[p]).collect();
    let (mut count, mut sum) = (0u64, 0u64);
    while !left.is_empty() {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else { continue };
        let message = message?;
        let (partition, offset) = (message.partition(), message.offset());
        if offset >= ends[&partition] {
            continue;
        }
        let click: Click = serde_json::from_slice(message.payload().unwrap_or_default())?;
        sum += click.ms;
        count += 1;
        if offset + 1 >= ends[&partition] {
            left.retain(|p| *p != partition);
        }
    }
    Ok((count, sum, started.elapsed(), looked_up))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let kafka = EmbeddedKafka::start(1)?;
    kafka.create_topic(TOPIC, PARTITIONS)?;
    let bootstrap = kafka.bootstrap_servers();
    let produced = Instant::now();
    produce(&bootstrap).await?;
    println!("produced {} events in {:.1?}", PER_PARTITION * i64::from(PARTITIONS), produced.elapsed());

    println!("replaying [t0 + 25 s, t0 + 75 s) with a listener:");
    let (count, sum, took, to_first) = framework(&bootstrap).await?;
    let (raw_count, raw_sum, raw_took, lookup) = tokio::task::spawn_blocking(move || raw(&bootstrap)).await??;
    let rate = |n: u64, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "listener replay: {count} records in {took:.2?} ({:.0} records/s); of which {to_first:.2?} to the first record (offset lookups)",
        rate(count, took)
    );
    println!(
        "raw assign+seek+poll: {raw_count} records in {raw_took:.2?} ({:.0} records/s); of which {lookup:.2?} looking up the offsets",
        rate(raw_count, raw_took)
    );
    println!("listener / raw: {:.2}", rate(count, took) / rate(raw_count, raw_took));
    println!(
        "listener / raw, polling alone (after the lookups): {:.2}",
        rate(count, took - to_first) / rate(raw_count, raw_took - lookup)
    );
    if count != raw_count || sum != raw_sum || count != 50_000 * PARTITIONS as u64 {
        bail!("the replay and the raw loop disagree: {count} vs {raw_count} records, sums {sum} vs {raw_sum}");
    }
    Ok(())
}
