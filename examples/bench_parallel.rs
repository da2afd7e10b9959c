//! Benchmark: key-ordered and unordered processing against partition order, in Confluent Parallel
//! Consumer's scenario (its README: 10,000 records, 1 partition, 0-5 ms of work each, 1,000 keys:
//! 22.2 s in partition order, 2.06 s by key).
//!
//! `cargo run --release --example bench_parallel [-- RECORDS]` (default 10,000). For 1, 10 and
//! 1,000 keys, an embedded broker's topic of one partition holds RECORDS records, record `i` with
//! key `k<i mod keys>`; an async handler waits 0-5 ms (`tokio::time::sleep`, the same wait for
//! the same record in every run). Each order runs the topic with `max_concurrency` 1,000 in a
//! group of its own; the time is from the first handler call to the last handler's end (the
//! group's join before it is not counted). Printed: seconds, speed-up over partition order, and
//! the ratio to the per-key lower bound (the largest total wait of one key: Key order cannot
//! finish sooner) and, for Unordered, to the longest single wait or the total wait over 1,000
//! records at a time, whichever is longer. `KEYS=1000` runs one key count, `SKIP_PARTITION=1`
//! leaves out partition order (36 s per key count).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_listener::prelude::*;

/// The wait of record `i`: 0-5 ms, spread by a hash of `i`.
fn wait(i: usize) -> Duration {
    let x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    Duration::from_micros((x ^ (x >> 29)) % 5_000)
}

/// Handler calls and ends: the first call, the last end, how many ended.
#[derive(Default)]
struct Timing {
    first: Mutex<Option<Instant>>,
    last: Mutex<Option<Instant>>,
    done: AtomicUsize,
}

async fn run(kafka: &EmbeddedKafka, topic: &str, order: ProcessingOrder, records: usize) -> anyhow::Result<Duration> {
    let timing = Arc::new(Timing::default());
    let factory = ContainerFactory::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .set("session.timeout.ms", "6000")
        .processing_order(order)
        .max_concurrency(1_000)
        .build()?;
    let t = timing.clone();
    let endpoint = Endpoint::new(format!("{topic}-{order}")).topic(topic).handler(move |payload: String| {
        let t = t.clone();
        async move {
            t.first.lock().unwrap().get_or_insert_with(Instant::now);
            let i: usize = payload.parse().unwrap_or(0);
            tokio::time::sleep(wait(i)).await;
            *t.last.lock().unwrap() = Some(Instant::now());
            t.done.fetch_add(1, Ordering::SeqCst);
        }
    });
    let running = ListenerRegistry::empty().with_default_factory(factory).register(endpoint).start().await?;
    while timing.done.load(Ordering::SeqCst) < records {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.shutdown().await?;
    let (first, last) = (timing.first.lock().unwrap().unwrap(), timing.last.lock().unwrap().unwrap());
    Ok(last - first)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // RUST_LOG=kafka_listener=debug shows the pauses and resumes of back-pressure.
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let records: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(10_000);
    let kafka = EmbeddedKafka::start(1)?;
    println!("{records} records, 1 partition, 0-5 ms async wait each, max_concurrency 1,000");
    println!("| keys | order | seconds | speed-up over partition | lower bound (s) | vs lower bound |");
    println!("|---|---|---|---|---|---|");
    let only_keys: Option<usize> = std::env::var("KEYS").ok().and_then(|k| k.parse().ok());
    for keys in [1usize, 10, 1_000].into_iter().filter(|k| only_keys.is_none_or(|o| o == *k)) {
        let topic = format!("parallel-{keys}");
        kafka.create_topic(&topic, 1)?;
        for i in 0..records {
            let key = format!("k{}", i % keys);
            kafka.produce_to(&topic, 0, Some(key.as_bytes()), i.to_string().as_bytes())?;
        }
        kafka.flush()?;
        let mut per_key = vec![Duration::ZERO; keys];
        for i in 0..records {
            per_key[i % keys] += wait(i);
        }
        let key_bound = per_key.into_iter().max().unwrap_or_default();
        let total: Duration = (0..records).map(wait).sum();
        let longest = (0..records).map(wait).max().unwrap_or_default();
        let mut partition = None;
        let skip_partition = std::env::var("SKIP_PARTITION").is_ok();
        for order in [ProcessingOrder::Partition, ProcessingOrder::Key, ProcessingOrder::Unordered]
            .into_iter()
            .filter(|o| !(skip_partition && *o == ProcessingOrder::Partition))
        {
            let took = run(&kafka, &topic, order, records).await?;
            let base = *partition.get_or_insert(took);
            let bound = match order {
                ProcessingOrder::Partition => total,
                ProcessingOrder::Key => key_bound,
                ProcessingOrder::Unordered => longest.max(total / 1_000),
            };
            println!(
                "| {keys} | {order} | {:.3} | {:.1}x | {:.3} | {:.2}x |",
                took.as_secs_f64(),
                base.as_secs_f64() / took.as_secs_f64(),
                bound.as_secs_f64(),
                took.as_secs_f64() / bound.as_secs_f64().max(1e-9),
            );
        }
    }
    Ok(())
}
