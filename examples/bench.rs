//! Benchmark: the framework's listener against hand-written rdkafka consumers, on the same data.
//!
//! Delivery: not the point here; every consumer reads all records once, from the earliest offset,
//! each in a group of its own.
//!
//! `cargo run --release --example bench [-- RECORDS [SCENARIO...]]` (default 1,000,000 records,
//! every scenario; name scenarios to run only those, e.g. `-- 200000 batch-c1 key-c1`). The parent starts an
//! embedded broker, produces RECORDS JSON records with a `KafkaTemplate` (~60 bytes, keyed,
//! lz4-compressed, 8 partitions, so that the mock cluster keeps them all), then runs each
//! consumer in a child process of its own, so that each one's peak RSS is its own:
//!
//! - `raw-poll-loop`: one rdkafka `BaseConsumer` poll loop decoding every value with serde_json
//!   and summing a field;
//! - `raw-partition-queues`: one consumer with a queue and a thread per partition
//!   (`split_partition_queue`), same work;
//! - the framework: a `Json<Metric>` listener doing the same work with the factory's defaults,
//!   with `AckMode::Batch` and `AckMode::Record`, concurrency 1 and 4;
//! - `record-c1-eh`: record-c1 with an error handler that retries with exponential back-off and
//!   dead-letters, and no failures (what error handling costs on the happy path);
//! - `record-c1-poison`: record-c1 where 1 record in 1,000 fails (`ListenerError::fatal`) and is
//!   published to `bench-dlt` before its offset may be committed (the cost of a dead letter);
//! - `key-c1`, `unordered-c1`: batch-c1 with `ProcessingOrder::Key` / `Unordered` (each record a
//!   tokio task, the factory's default `max_concurrency`): what running records as tasks costs
//!   when the handler does no waiting (`examples/bench_parallel.rs` measures what it gains);
//! - `record-c1-fmt`, `batch-c1-fmt`: record-c1 / batch-c1 with a `tracing_subscriber::fmt`
//!   subscriber at `info` installed (writing to a sink): what each record's `process` span costs
//!   when a subscriber wants it (the others run with no subscriber: the cost of spans unwanted);
//! - `record-c1-metrics`, `batch-c1-metrics`: the same with a Prometheus recorder
//!   (`metrics-exporter-prometheus`) installed: what the metrics cost when recorded.
//!
//! Both baselines get the tuned `fetch.queue.backoff.ms=10` the factory uses by default. It
//! prints records/s (first record to last), the ratio to the faster raw baseline, the time from
//! start to the first record, and the peak RSS of each.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use kafka_listener::error_handler::{DeadLetterRecoverer, ExponentialBackOff};
use kafka_listener::prelude::*;
use kafka_listener::producer::Compression;
use kafka_listener::support::Admin;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use serde::Deserialize;

const TOPIC: &str = "bench";
const PARTITIONS: i32 = 8;

#[derive(Deserialize)]
struct Metric {
    #[allow(dead_code)]
    id: u64,
    #[allow(dead_code)]
    host: String,
    value: u64,
}

const SCENARIOS: &[&str] = &[
    "raw-poll-loop",
    "raw-partition-queues",
    "batch-c1",
    "batch-c4",
    "record-c1",
    "record-c1-eh",
    "record-c1-poison",
    "record-c4",
    "key-c1",
    "unordered-c1",
    "record-c1-fmt",
    "record-c1-metrics",
    "batch-c1-fmt",
    "batch-c1-metrics",
];
/// One record in this many fails in `record-c1-poison`.
const POISON_EVERY: u64 = 1_000;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let (scenario, bootstrap, records) = (&args[2], &args[3], args[4].parse::<u64>()?);
        return child(scenario, bootstrap, records);
    }
    let records: u64 = args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(1_000_000);
    let chosen: Vec<&str> = args.iter().skip(2).map(String::as_str).collect();
    if let Some(unknown) = chosen.iter().find(|c| !SCENARIOS.contains(c)) {
        bail!("unknown scenario {unknown}; the scenarios are {}", SCENARIOS.join(", "));
    }
    let scenarios: Vec<&str> = SCENARIOS.iter().copied().filter(|s| chosen.is_empty() || chosen.contains(s)).collect();
    parent(records, &scenarios)
}

fn parent(records: u64, scenarios: &[&str]) -> anyhow::Result<()> {
    let kafka = EmbeddedKafka::start(1)?;
    kafka.create_topic(TOPIC, PARTITIONS)?;
    kafka.create_topic(&format!("{TOPIC}-dlt"), PARTITIONS)?;
    let started = Instant::now();
    tokio::runtime::Runtime::new()?.block_on(produce(&kafka.bootstrap_servers(), records))?;
    println!("produced {records} records to {PARTITIONS} partitions in {:.1?}", started.elapsed());

    // The mock cluster keeps ~5 MiB per partition: check nothing was dropped.
    let admin = Admin::new(kafka.bootstrap_servers());
    for (p, low) in admin.beginning_offsets(TOPIC)? {
        if low != 0 {
            bail!("partition {p} starts at {low}: the mock cluster dropped records; produce fewer or smaller ones");
        }
    }
    let end: i64 = admin.end_offsets(TOPIC)?.values().sum();
    if u64::try_from(end)? != records {
        bail!("the topic holds {end} records, not {records}");
    }

    let exe = std::env::current_exe()?;
    let mut results = Vec::new();
    for scenario in scenarios {
        // Four consumers of one group join the first assignment together with a short delay;
        // alone, a consumer is assigned at once.
        let delay = if scenario.ends_with("c4") { 500 } else { 0 };
        kafka.set_initial_rebalance_delay(Duration::from_millis(delay));
        let output = Command::new(&exe)
            .args(["--child", scenario, &kafka.bootstrap_servers(), &records.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("running {scenario}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let Some(line) = stdout.lines().find(|l| l.starts_with("RESULT ")) else {
            bail!("{scenario} failed ({}): {stdout}", output.status);
        };
        let fields: Vec<f64> = line.split_whitespace().skip(2).map(str::parse).collect::<Result<_, _>>()?;
        println!("{line}");
        results.push((scenario.to_string(), fields[0], fields[1], fields[2]));
    }

    let best_raw = results.iter().filter(|r| r.0.starts_with("raw")).map(|r| r.1).fold(f64::NAN, f64::max);
    let raw_first = results.iter().find(|r| r.0 == "raw-poll-loop").map(|r| r.2).unwrap_or(f64::NAN);
    println!();
    println!("{} records, {PARTITIONS} partitions, embedded broker", records);
    println!(
        "{:<22} {:>12} {:>10} {:>24} {:>12}",
        "consumer", "records/s", "vs raw", "first record (vs loop)", "peak RSS"
    );
    for (name, rps, first_ms, rss_kb) in &results {
        println!(
            "{name:<22} {rps:>12.0} {:>10.2} {:>10.0} ms ({:.2}x) {:>8.1} MiB",
            rps / best_raw,
            first_ms,
            first_ms / raw_first,
            rss_kb / 1024.0
        );
    }
    let rate = |name: &str| results.iter().find(|r| r.0 == name).map_or(f64::NAN, |r| r.1);
    let (plain, handled, poisoned) = (rate("record-c1"), rate("record-c1-eh"), rate("record-c1-poison"));
    let dead_letters = (records / POISON_EVERY) as f64;
    println!(
        "error handler with back-off and DLT installed, no failures: {:.3} of record-c1's throughput",
        handled / plain
    );
    println!(
        "a dead letter costs {:.0} us (record-c1-poison: {dead_letters} records dead-lettered, each acked before its commit)",
        (records as f64 / poisoned - records as f64 / handled) / dead_letters * 1e6
    );
    for base in ["record-c1", "batch-c1"] {
        println!(
            "{base}: with a fmt subscriber at info {:.3}, with a Prometheus recorder {:.3} of its throughput with neither",
            rate(&format!("{base}-fmt")) / rate(base),
            rate(&format!("{base}-metrics")) / rate(base)
        );
    }
    println!("vs raw: records/s over the faster raw baseline; first record: from start (consumer creation, or");
    println!("ListenerRegistry::start) to the first record handled, over raw-poll-loop's; *-c4 include the 500 ms");
    println!("initial rebalance delay that lets four consumers join the group's first assignment together.");
    Ok(())
}

/// Sends the records, 100,000 at a time (queued together, their acknowledgments awaited
/// together), lz4-compressed in large batches.
async fn produce(bootstrap: &str, records: u64) -> anyhow::Result<()> {
    const CHUNK: u64 = 100_000;
    let template = KafkaTemplate::builder()
        .bootstrap_servers(bootstrap)
        .compression(Compression::Lz4)
        .batch_size(1_000_000)
        .set("batch.num.messages", "100000")
        .build()?;
    for first in (0..records).step_by(CHUNK as usize) {
        let sends = (first..(first + CHUNK).min(records)).map(|i| {
            let host = format!("host-{:03}", i % 500);
            let payload = format!(r#"{{"id":{i},"host":"{host}","value":{},"unit":"ms"}}"#, i % 1000);
            template.send(TOPIC, payload).key(host)
        });
        template.send_all(sends).await.into_result()?;
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

fn report(scenario: &str, records: u64, started: Instant, first: Instant, last: Instant, sum: u64) {
    let expected: u64 = (0..records).map(|i| i % 1000).sum();
    assert_eq!(sum, expected, "{scenario}: wrong sum");
    let rps = records as f64 / (last - first).as_secs_f64();
    let first_ms = (first - started).as_secs_f64() * 1000.0;
    println!("RESULT {scenario} {rps:.0} {first_ms:.1} {:.0}", peak_rss_kb());
}

fn raw_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.queue.backoff.ms", "10")
        .set("session.timeout.ms", "6000");
    config
}

fn child(scenario: &str, bootstrap: &str, records: u64) -> anyhow::Result<()> {
    // Logs only when RUST_LOG asks (to see what a slow scenario waits for); none by default.
    if scenario.ends_with("-fmt") {
        // Spans are formatted as an application logging at info would have them; the output goes
        // nowhere (stdout carries the result).
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(std::io::sink)
            .init();
    } else if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    if scenario.ends_with("-metrics") {
        metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    }
    let group = format!("bench-{scenario}-{}", std::process::id());
    match scenario {
        "raw-poll-loop" => {
            let started = Instant::now();
            let consumer: BaseConsumer = raw_config(bootstrap, &group).create()?;
            consumer.subscribe(&[TOPIC])?;
            let (mut count, mut sum, mut first) = (0u64, 0u64, None);
            while count < records {
                if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                    let message = message?;
                    let metric: Metric = serde_json::from_slice(message.payload().unwrap_or_default())?;
                    first.get_or_insert_with(Instant::now);
                    sum += metric.value;
                    count += 1;
                }
            }
            report(scenario, records, started, first.unwrap_or(started), Instant::now(), sum);
        }
        "raw-partition-queues" => {
            let started = Instant::now();
            let consumer: Arc<BaseConsumer> = Arc::new(raw_config(bootstrap, &group).create()?);
            let count = Arc::new(AtomicU64::new(0));
            let sum = Arc::new(AtomicU64::new(0));
            let first: Arc<OnceLock<Instant>> = Arc::default();
            let mut threads = Vec::new();
            for p in 0..PARTITIONS {
                let queue = consumer.split_partition_queue(TOPIC, p).context("split partition queue")?;
                let (count, sum, first) = (count.clone(), sum.clone(), first.clone());
                threads.push(std::thread::spawn(move || {
                    let (mut pending, mut local_sum) = (0u64, 0u64);
                    while count.load(Ordering::Relaxed) < records {
                        // Block only when nothing is waiting to be counted.
                        let timeout = if pending > 0 { Duration::ZERO } else { Duration::from_millis(100) };
                        match queue.poll(timeout) {
                            Some(Ok(message)) => {
                                let Ok(metric) =
                                    serde_json::from_slice::<Metric>(message.payload().unwrap_or_default())
                                else {
                                    continue;
                                };
                                first.get_or_init(Instant::now);
                                local_sum += metric.value;
                                pending += 1;
                                if pending < 256 {
                                    continue;
                                }
                            }
                            _ if pending == 0 => continue,
                            _ => {}
                        }
                        sum.fetch_add(std::mem::take(&mut local_sum), Ordering::Relaxed);
                        count.fetch_add(std::mem::take(&mut pending), Ordering::Relaxed);
                    }
                }));
            }
            consumer.subscribe(&[TOPIC])?;
            // The main queue still carries the group's events.
            while count.load(Ordering::Relaxed) < records {
                let _ = consumer.poll(Duration::from_millis(1));
            }
            let last = Instant::now();
            for t in threads {
                let _ = t.join();
            }
            report(
                scenario,
                records,
                started,
                first.get().copied().unwrap_or(started),
                last,
                sum.load(Ordering::Relaxed),
            );
        }
        framework => {
            let (mode, concurrency) = match framework {
                "batch-c1" | "batch-c1-fmt" | "batch-c1-metrics" => (AckMode::Batch, 1),
                "batch-c4" => (AckMode::Batch, 4),
                "record-c1" | "record-c1-eh" | "record-c1-poison" | "record-c1-fmt" | "record-c1-metrics" => {
                    (AckMode::Record, 1)
                }
                "record-c4" => (AckMode::Record, 4),
                "key-c1" | "unordered-c1" => (AckMode::Batch, 1),
                other => bail!("unknown scenario {other}"),
            };
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(framework_run(scenario, bootstrap, &group, records, mode, concurrency))?;
        }
    }
    Ok(())
}

async fn framework_run(
    scenario: &str,
    bootstrap: &str,
    group: &str,
    records: u64,
    mode: AckMode,
    concurrency: usize,
) -> anyhow::Result<()> {
    let count = Arc::new(AtomicU64::new(0));
    let sum = Arc::new(AtomicU64::new(0));
    let first: Arc<OnceLock<Instant>> = Arc::default();
    let last: Arc<OnceLock<Instant>> = Arc::default();
    let mut factory = ContainerFactory::builder()
        .bootstrap_servers(bootstrap)
        .set("session.timeout.ms", "6000")
        .ack_mode(mode)
        .concurrency(concurrency);
    if scenario == "record-c1-eh" || scenario == "record-c1-poison" {
        // Dead letters are sent as soon as they are failed (no linger): the handler waits for each.
        let template = KafkaTemplate::builder().bootstrap_servers(bootstrap).linger(Duration::ZERO).build()?;
        let backoff = ExponentialBackOff { initial: Duration::from_millis(100), ..Default::default() };
        factory = factory
            .error_handler(DefaultErrorHandler::new().backoff(backoff).recoverer(DeadLetterRecoverer::new(template)));
    }
    match scenario {
        "key-c1" => factory = factory.processing_order(ProcessingOrder::Key),
        "unordered-c1" => factory = factory.processing_order(ProcessingOrder::Unordered),
        _ => {}
    }
    let factory = factory.build()?;
    let poison = scenario == "record-c1-poison";
    let (c, s, f, l) = (count.clone(), sum.clone(), first.clone(), last.clone());
    let endpoint = Endpoint::new("bench").topic(TOPIC).group(group).handler(move |metric: Json<Metric>| {
        f.get_or_init(Instant::now);
        s.fetch_add(metric.value, Ordering::Relaxed);
        if c.fetch_add(1, Ordering::Relaxed) + 1 == records {
            let _ = l.set(Instant::now());
        }
        let result = if poison && metric.id.is_multiple_of(POISON_EVERY) {
            Err(ListenerError::fatal(ListenerError::msg("poison")))
        } else {
            Ok(())
        };
        std::future::ready(result)
    });
    let started = Instant::now();
    let running = ListenerRegistry::empty().with_default_factory(factory).register(endpoint).start().await?;
    while last.get().is_none() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (first, last) = (first.get().copied().unwrap_or(started), last.get().copied().unwrap_or(started));
    report(scenario, records, started, first, last, sum.load(Ordering::Relaxed));
    running.shutdown().await?;
    Ok(())
}
