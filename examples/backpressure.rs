//! Back-pressure: a slow, acknowledging listener in front of a large backlog keeps its memory flat.
//!
//! Delivery: at least once (AckMode::Manual). The handler hands each record to a task that waits
//! for one of 50 workers, works 5 ms and then acknowledges it (10,000 records/s at most) — work
//! accepted far faster than it is done. Without a bound the
//! tasks would pile up as fast as the consumer fetches; with `max_in_flight` (default 10,000
//! per partition) the container pauses a partition once that many of its records wait for an
//! acknowledgment, and resumes it when half are done, so memory does not grow with the backlog.
//!
//! The same with `ProcessingOrder::Key` (issue 16): each record's handler a task that waits 5 ms,
//! 50 at once; a partition is paused while `max(10 × max_concurrency, max_poll_records)` of its
//! records wait to start.
//!
//! `cargo run --release --example backpressure [-- manual|key]`: starts an embedded broker,
//! produces 1,000,000 records with a `KafkaTemplate` (8 partitions, lz4, so that the embedded
//! broker keeps them all), then runs the listener for 10 s in a child process per case — backlogs
//! of 10,000 and 1,000,000 records with the default bound, 1,000,000 with no bound, and 10,000
//! and 1,000,000 by key — and prints each one's peak RSS (name `manual` or `key` to run only
//! those cases).

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use kafka_listener::prelude::*;
use kafka_listener::producer::Compression;

const PARTITIONS: i32 = 8;
const RUN: Duration = Duration::from_secs(10);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        return match args[5].as_str() {
            "key" => runtime.block_on(by_key(&args[2], &args[3])),
            _ => runtime.block_on(child(&args[2], &args[3], args[4].parse()?)),
        };
    }
    let chosen: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    if let Some(unknown) = chosen.iter().find(|c| !["manual", "key"].contains(c)) {
        bail!("unknown case {unknown}; name manual or key (or nothing, for every case)");
    }
    let kafka = EmbeddedKafka::start(1)?;
    let runtime = tokio::runtime::Runtime::new()?;
    for (topic, count) in [("small", 10_000u64), ("large", 1_000_000)] {
        kafka.create_topic(topic, PARTITIONS)?;
        runtime.block_on(produce(&kafka.bootstrap_servers(), topic, count))?;
    }
    drop(runtime);
    println!("produced backlogs of 10,000 and 1,000,000 records; each case runs {RUN:?}");
    let exe = std::env::current_exe()?;
    let cases = [
        ("10k backlog", "small", "10000", "manual"),
        ("1M backlog", "large", "10000", "manual"),
        ("1M backlog, no bound", "large", "0", "manual"),
        ("10k backlog, by key", "small", "10000", "key"),
        ("1M backlog, by key", "large", "10000", "key"),
    ];
    for (case, topic, bound, mode) in cases {
        if !chosen.is_empty() && !chosen.contains(&mode) {
            continue;
        }
        let output = Command::new(&exe)
            .args(["--child", &kafka.bootstrap_servers(), topic, bound, mode])
            .output()
            .with_context(|| format!("running {case}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let Some(line) = stdout.lines().find(|l| l.starts_with("RESULT")) else {
            bail!("{case} failed: {}", String::from_utf8_lossy(&output.stderr));
        };
        println!("{case:<22} {line}");
    }
    Ok(())
}

/// Sends `count` records to `topic`, 10,000 at a time (queued together, their acknowledgments
/// awaited together, so that memory stays bounded), lz4-compressed.
async fn produce(bootstrap: &str, topic: &str, count: u64) -> anyhow::Result<()> {
    let template = KafkaTemplate::builder().bootstrap_servers(bootstrap).compression(Compression::Lz4).build()?;
    for first in (0..count).step_by(10_000) {
        let records = (first..(first + 10_000).min(count)).map(|i| {
            let payload = format!(r#"{{"id":{i},"pad":"{}"}}"#, "x".repeat(40));
            template.send(topic, payload).key(format!("k{}", i % 1000))
        });
        template.send_all(records).await.into_result()?;
    }
    Ok(())
}

/// The peak resident set size of this process, in KiB (Linux's `VmHWM`; NaN elsewhere).
fn peak_rss_kb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:")?.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

async fn child(bootstrap: &str, topic: &str, bound: usize) -> anyhow::Result<()> {
    let factory = ContainerFactory::builder()
        .bootstrap_servers(bootstrap)
        .ack_mode(AckMode::Manual)
        .max_in_flight(if bound == 0 { usize::MAX } else { bound })
        .build()?;
    let done = Arc::new(AtomicU64::new(0));
    let counter = done.clone();
    let workers = Arc::new(tokio::sync::Semaphore::new(50));
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(Endpoint::new("slow").topic(topic).group(format!("slow-{topic}-{bound}")).handler(
            move |record: ConsumerRecord, ack: Acknowledgment| {
                let (counter, workers) = (counter.clone(), workers.clone());
                tokio::spawn(async move {
                    let Ok(_worker) = workers.acquire().await else { return };
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    std::hint::black_box(&record);
                    ack.acknowledge();
                    counter.fetch_add(1, Ordering::Relaxed);
                });
                std::future::ready(())
            },
        ))
        .start()
        .await?;
    tokio::time::sleep(RUN).await;
    let handed = running.container("slow").map_or(0, ConcurrentContainer::records_handled);
    running.shutdown().await?;
    println!(
        "RESULT peak RSS {:>6.1} MiB, {handed} records handed to tasks, {} acknowledged",
        peak_rss_kb() / 1024.0,
        done.load(Ordering::Relaxed)
    );
    Ok(())
}

/// `ProcessingOrder::Key`: each record's handler is a task that waits 5 ms (up to 50 at once,
/// so 10,000 records/s at most); the container pauses a partition once `max(10 × 50, 500)` of its
/// records wait to start, and resumes it when half have started.
async fn by_key(bootstrap: &str, topic: &str) -> anyhow::Result<()> {
    let factory = ContainerFactory::builder()
        .bootstrap_servers(bootstrap)
        .ack_mode(AckMode::Batch)
        .processing_order(ProcessingOrder::Key)
        .max_concurrency(50)
        .build()?;
    let done = Arc::new(AtomicU64::new(0));
    let counter = done.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(Endpoint::new("slow").topic(topic).group(format!("slow-key-{topic}")).handler(
            move |record: ConsumerRecord| {
                let counter = counter.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    std::hint::black_box(&record);
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            },
        ))
        .start()
        .await?;
    tokio::time::sleep(RUN).await;
    running.shutdown().await?;
    println!("RESULT peak RSS {:>6.1} MiB, {} records handled", peak_rss_kb() / 1024.0, done.load(Ordering::Relaxed));
    Ok(())
}
