//! Benchmark: `KafkaTemplate` against a raw rdkafka `FutureProducer`, in one run, for the ways a
//! program sends:
//!
//! - **awaited loop**: `for r in records { send(r).await? }`, each record waits for its
//!   acknowledgment before the next is sent (one round trip plus `linger.ms` per record);
//! - **queued, awaited after**: every record queued (`template.send(..).queue()`; the raw side
//!   `FutureProducer::send_result`), the deliveries awaited afterwards, 10,000 at a time;
//! - **send_all**: `KafkaTemplate::send_all` per 10,000 records (raw: `join_all` over `send`);
//! - **fire and forget**: queued, the delivery dropped, one `flush` at the end.
//!
//! Every record is acknowledged by the broker (acks=all, idempotent); records/s counts
//! acknowledged records. The awaited loop runs over fewer records (it is ~1,000 times slower).
//! Each mode writes to a topic of its own, so that no run pays for the data of the ones before it.
//!
//! `cargo run --release --example bench_producer [-- RECORDS [AWAITED_RECORDS]]` (default
//! 1,000,000 records of ~100 bytes and 2,000 for the awaited loops, keyed, to 8 partitions of an
//! embedded broker). Both producers get the same properties; `LINGER_MS` sets `linger.ms`
//! (default 0, the template's; librdkafka's own is 5, which makes an awaited loop wait 5 ms per
//! record: `LINGER_MS=5` shows it).

use std::time::{Duration, Instant};

use futures::future::join_all;
use kafka_listener::prelude::*;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

const CHUNK: usize = 10_000;

fn payload(i: usize) -> (String, String) {
    let key = format!("device-{:04}", i % 1000);
    let value = format!(r#"{{"id":{i:>10},"device":"{key}","reading":{:>6},"unit":"celsius","ok":true}}"#, i % 977);
    (key, value)
}

/// Queues a record in the raw producer, waiting for room while its queue is full (what
/// `FutureProducer::send` does, without waiting for the delivery).
async fn queue(
    raw: &FutureProducer,
    mut record: FutureRecord<'_, String, String>,
) -> anyhow::Result<rdkafka::producer::DeliveryFuture> {
    loop {
        match raw.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

fn report(name: &str, records: usize, started: Instant, raw: Option<f64>) -> f64 {
    let rate = records as f64 / started.elapsed().as_secs_f64();
    let per_record = started.elapsed().as_secs_f64() * 1e6 / records as f64;
    match raw {
        Some(raw) => {
            println!("{name:<36} {rate:>10.0} records/s {per_record:>9.1} µs/record  {:.2} of raw", rate / raw)
        }
        None => println!("{name:<36} {rate:>10.0} records/s {per_record:>9.1} µs/record"),
    }
    rate
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let records: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(1_000_000);
    let awaited: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(2_000);
    let linger = std::env::var("LINGER_MS").unwrap_or_else(|_| "0".to_string());
    let properties =
        [("linger.ms", linger.as_str()), ("compression.type", "lz4"), ("enable.idempotence", "true"), ("acks", "all")];
    let kafka = EmbeddedKafka::start(1)?;
    let bootstrap = kafka.bootstrap_servers();
    let topics =
        ["warm-up", "raw-awaited", "t-awaited", "raw-queued", "t-queued", "raw-all", "t-all", "raw-forget", "t-forget"];
    kafka_listener::support::Admin::new(bootstrap.as_str())
        .create_topics(topics.iter().map(|t| NewTopic::new(*t, 8)))
        .await?;
    println!(
        "{records} records of ~{} bytes ({awaited} for the awaited loops), linger.ms={linger}",
        payload(0).1.len()
    );

    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &bootstrap);
    let mut builder = KafkaTemplate::builder().bootstrap_servers(&bootstrap);
    for (k, v) in properties {
        config.set(k, v);
        builder = builder.set(k, v);
    }
    let raw: FutureProducer = config.create()?;
    let template = builder.build()?;
    let timeout = Duration::from_secs(30);
    // Both connected, with their producer ids, before anything is timed.
    for i in 0..100 {
        raw.send(FutureRecord::to("warm-up").key("k").payload(&i.to_string()), timeout).await.map_err(|(e, _)| e)?;
        template.send("warm-up", i.to_string()).key("k").await?;
    }

    // Awaited loops.
    let started = Instant::now();
    for (key, value) in (0..awaited).map(payload) {
        raw.send(FutureRecord::to("raw-awaited").key(&key).payload(&value), timeout).await.map_err(|(e, _)| e)?;
    }
    let raw_rate = report("raw: awaited loop", awaited, started, None);
    let started = Instant::now();
    for (key, value) in (0..awaited).map(payload) {
        template.send("t-awaited", &value).key(&key).await?;
    }
    report("template: awaited loop", awaited, started, Some(raw_rate));

    // Queued, awaited after.
    let started = Instant::now();
    for chunk in (0..records).collect::<Vec<_>>().chunks(CHUNK) {
        let mut deliveries = Vec::with_capacity(chunk.len());
        for (key, value) in chunk.iter().map(|&i| payload(i)) {
            deliveries.push(queue(&raw, FutureRecord::to("raw-queued").key(&key).payload(&value)).await?);
        }
        for delivery in deliveries {
            delivery.await?.map_err(|(e, _)| e)?;
        }
    }
    let raw_rate = report("raw: queued, awaited after", records, started, None);
    let started = Instant::now();
    for chunk in (0..records).collect::<Vec<_>>().chunks(CHUNK) {
        let deliveries: Vec<_> = chunk
            .iter()
            .map(|&i| payload(i))
            .map(|(key, value)| template.send("t-queued", value).key(key).queue())
            .collect();
        for delivery in deliveries {
            delivery.await?;
        }
    }
    report("template: queued, awaited after", records, started, Some(raw_rate));

    // Batches.
    let started = Instant::now();
    for chunk in (0..records).collect::<Vec<_>>().chunks(CHUNK) {
        let items: Vec<_> = chunk.iter().map(|&i| payload(i)).collect();
        let sends =
            items.iter().map(|(key, value)| raw.send(FutureRecord::to("raw-all").key(key).payload(value), timeout));
        for result in join_all(sends).await {
            result.map_err(|(e, _)| e)?;
        }
    }
    let raw_rate = report("raw: join_all per 10,000", records, started, None);
    let started = Instant::now();
    for chunk in (0..records).collect::<Vec<_>>().chunks(CHUNK) {
        let items: Vec<_> = chunk.iter().map(|&i| payload(i)).collect();
        let sends = items.iter().map(|(key, value)| template.send("t-all", value).key(key));
        template.send_all(sends).await.into_result()?;
    }
    report("template: send_all per 10,000", records, started, Some(raw_rate));

    // Fire and forget, one flush at the end.
    let started = Instant::now();
    for (key, value) in (0..records).map(payload) {
        drop(queue(&raw, FutureRecord::to("raw-forget").key(&key).payload(&value)).await?);
    }
    let producer = raw.clone();
    tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(60))).await??;
    let raw_rate = report("raw: fire and forget, flush", records, started, None);
    let started = Instant::now();
    for (key, value) in (0..records).map(payload) {
        drop(template.send("t-forget", value).key(key).queue());
    }
    template.flush().await?;
    report("template: fire and forget, flush", records, started, Some(raw_rate));
    template.close().await?;
    Ok(())
}
