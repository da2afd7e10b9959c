//! Benchmark: `KafkaTemplate::send` against a raw rdkafka `FutureProducer`, in one run.
//!
//! Delivery: every record is awaited for the broker's acknowledgment (acks=all, idempotent), in
//! batches of 10,000 sends in flight; records/s counts acknowledged records.
//!
//! `cargo run --release --example bench_producer [-- RECORDS]` (default 1,000,000 records of ~100
//! bytes, keyed, to 8 partitions of an embedded broker). Both producers get the same properties.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use futures::future::join_all;
use kafka_listener::prelude::*;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

const BATCH: usize = 10_000;
const PROPERTIES: [(&str, &str); 4] =
    [("linger.ms", "5"), ("compression.type", "lz4"), ("enable.idempotence", "true"), ("acks", "all")];

fn payload(i: usize) -> (String, String) {
    let key = format!("device-{:04}", i % 1000);
    let value = format!(r#"{{"id":{i:>10},"device":"{key}","reading":{:>6},"unit":"celsius","ok":true}}"#, i % 977);
    (key, value)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let records: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(1_000_000);
    let kafka = EmbeddedKafka::start(1)?;
    // A topic per run, so that no run pays for the data of the ones before it.
    for topic in ["raw", "raw-explicit", "template", "template-default"] {
        kafka.create_topic(topic, 8)?;
    }
    let bootstrap = kafka.bootstrap_servers();
    println!("{records} records of ~{} bytes, batches of {BATCH} awaited together", payload(0).1.len());

    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &bootstrap);
    for (k, v) in PROPERTIES {
        config.set(k, v);
    }
    let raw: FutureProducer = config.create()?;
    let started = Instant::now();
    for batch in (0..records).collect::<Vec<_>>().chunks(BATCH) {
        let items: Vec<_> = batch.iter().map(|&i| payload(i)).collect();
        let sends = items
            .iter()
            .map(|(key, value)| raw.send(FutureRecord::to("raw").key(key).payload(value), Duration::from_secs(30)));
        for result in join_all(sends).await {
            result.map_err(|(e, _)| e)?;
        }
    }
    let raw_rate = records as f64 / started.elapsed().as_secs_f64();
    println!("raw FutureProducer     {raw_rate:>12.0} records/s");
    let started = Instant::now();
    for batch in (0..records).collect::<Vec<_>>().chunks(BATCH) {
        let items: Vec<_> = batch.iter().map(|&i| payload(i)).collect();
        let sends = items.iter().map(|(key, value)| {
            let partition = kafka_listener::producer::java_partition(key.as_bytes(), 8);
            raw.send(
                FutureRecord::to("raw-explicit").key(key).payload(value).partition(partition),
                Duration::from_secs(30),
            )
        });
        for result in join_all(sends).await {
            result.map_err(|(e, _)| e)?;
        }
    }
    let rate = records as f64 / started.elapsed().as_secs_f64();
    println!("raw, explicit partition {rate:>11.0} records/s  {:.2} of raw", rate / raw_rate);

    for (name, topic, partitioner) in
        [("template", "template", None), ("template + Default", "template-default", Some(DefaultPartitioner))]
    {
        let mut builder = KafkaTemplate::builder().bootstrap_servers(&bootstrap);
        for (k, v) in PROPERTIES {
            builder = builder.set(k, v);
        }
        if let Some(p) = partitioner {
            builder = builder.partitioner(p);
        }
        let template = builder.build()?;
        let started = Instant::now();
        for batch in (0..records).collect::<Vec<_>>().chunks(BATCH) {
            let items: Vec<_> = batch.iter().map(|&i| payload(i)).collect();
            let sends =
                items.iter().map(|(key, value)| template.send(topic, value.as_str()).key(key.as_str()).into_future());
            for result in join_all(sends).await {
                result?;
            }
        }
        let rate = records as f64 / started.elapsed().as_secs_f64();
        println!("{name:<22} {rate:>12.0} records/s  {:.2} of raw", rate / raw_rate);
        template.close().await?;
    }
    Ok(())
}
