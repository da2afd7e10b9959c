//! The consumers that `scripts/instructions-per-record.sh` counts instructions of, under
//! `valgrind --tool=callgrind`: the same topic read by a raw rdkafka poll loop and by a listener,
//! each decoding every JSON value and summing a field, so that the instructions the framework
//! adds per record show without the noise of wall-clock timings.
//!
//! Delivery: not the point; each run reads the topic from the earliest offset in a group of its
//! own, commits nothing it need not, and exits once it has read `--records` records.
//!
//! ```text
//! instructions produce  --bootstrap HOST:PORT --records N      # N ~60-byte JSON records, lz4, to `ipr` (and one to `ipr-first`)
//! instructions raw      --bootstrap HOST:PORT --records N      # BaseConsumer poll loop + serde_json
//! instructions raw-commit --bootstrap HOST:PORT --records N     # the same, committing every 500 records
//! instructions batch    --bootstrap HOST:PORT --records N      # Json<T> + State<T> listener, AckMode::Batch
//! instructions record   --bootstrap HOST:PORT --records N      # the same, AckMode::Record
//! ```
//!
//! With `INSTRUCTIONS_FMT` set, each consumer runs with a `tracing_subscriber::fmt` subscriber at
//! `info` (writing nowhere): what the listener's spans cost an application that logs at info;
//! with `INSTRUCTIONS_METRICS` set, with a Prometheus recorder installed (what metrics cost);
//! with `INSTRUCTIONS_GROUP_PROTOCOL=consumer`, every consumer (raw ones too) in a group of
//! KIP-848's consumer protocol.
//!
//! Each consumer prints `SUM <sum> RECORDS <n>`; the script checks the sums agree. With
//! `--first`, a consumer reads `ipr-first` instead, a topic of one record (so that librdkafka has
//! no other records to prefetch and parse meanwhile), and exits the process as soon as it has
//! handled it (no shutdown): the script counts that run as the start-up cost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use kafka_listener::prelude::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use serde::Deserialize;

const TOPIC: &str = "ipr";
/// The one-record topic that `--first` runs read.
const FIRST_TOPIC: &str = "ipr-first";

#[derive(Deserialize)]
struct Metric {
    #[allow(dead_code)]
    id: u64,
    #[allow(dead_code)]
    host: String,
    value: u64,
}

/// What the listener's handler reaches through `State<Totals>`.
struct Totals {
    sum: AtomicU64,
    count: AtomicU64,
    /// How many records to wait for, and the signal that they were handled.
    wanted: u64,
    done: tokio::sync::Notify,
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().context("usage: instructions produce|raw|batch|record --bootstrap HOST:PORT --records N")?;
    let (mut bootstrap, mut records) = (None, 200_000u64);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bootstrap" => bootstrap = args.next(),
            "--first" => records = 0,
            "--records" => records = args.next().context("--records needs a number")?.parse()?,
            other => bail!("unknown argument `{other}`"),
        }
    }
    let bootstrap = bootstrap.context("--bootstrap HOST:PORT is required")?;
    if std::env::var_os("INSTRUCTIONS_FMT").is_some() {
        // What an application logging at info pays: each record's `process` span formatted
        // (written nowhere).
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(std::io::sink)
            .init();
    }
    if std::env::var_os("INSTRUCTIONS_METRICS").is_some() {
        // What a Prometheus recorder costs per record (counters, the duration histogram).
        metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    }
    let group = format!("ipr-{mode}-{}", std::process::id());
    let topic = if records == 0 { FIRST_TOPIC } else { TOPIC };
    match mode.as_str() {
        "produce" => tokio::runtime::Runtime::new()?.block_on(produce(&bootstrap, records)),
        "raw" => raw(&bootstrap, &group, topic, records, None),
        "raw-commit" => raw(&bootstrap, &group, topic, records, Some(RAW_COMMIT_EVERY)),
        "batch" => listener(&bootstrap, &group, topic, records, AckMode::Batch),
        "record" => listener(&bootstrap, &group, topic, records, AckMode::Record),
        other => bail!("unknown mode `{other}`; use produce, raw, raw-commit, batch or record"),
    }
}

/// Sends the records, 100,000 at a time, lz4-compressed in batches of 1,000 records (~20 KB).
///
/// Not larger: a fetch that ends inside a compressed batch, or starts in one, decompresses and
/// parses the whole batch again, and how often that happens depends on timing. With batches of
/// 100,000 records it added up to 15% to one run's count and nothing to the next one's.
async fn produce(bootstrap: &str, records: u64) -> anyhow::Result<()> {
    const CHUNK: u64 = 100_000;
    let template = KafkaTemplate::builder()
        .bootstrap_servers(bootstrap)
        .compression(Compression::Lz4)
        .set("batch.num.messages", "1000")
        .build()?;
    for first in (0..records).step_by(CHUNK as usize) {
        let sends = (first..(first + CHUNK).min(records)).map(|i| {
            let host = format!("host-{:03}", i % 500);
            let payload = format!(r#"{{"id":{i},"host":"{host}","value":{},"unit":"ms"}}"#, i % 1000);
            template.send(TOPIC, payload).key(host)
        });
        template.send_all(sends).await.into_result()?;
    }
    let first = r#"{"id":0,"host":"host-000","value":0,"unit":"ms"}"#;
    template.send(FIRST_TOPIC, first).key("host-000").await?;
    println!("PRODUCED {records}");
    Ok(())
}

/// With `--first` (`records` 0): the first record was handled; the process ends here.
fn first_record(records: u64, sum: u64) {
    if records == 0 {
        println!("SUM {sum} RECORDS 1");
        std::process::exit(0);
    }
}

/// The group setting of every consumer: a short session under the classic protocol, or, with
/// `INSTRUCTIONS_GROUP_PROTOCOL=consumer` set, KIP-848's consumer protocol (which refuses
/// session settings).
static GROUP_SETTING: std::sync::LazyLock<(&str, &str)> =
    std::sync::LazyLock::new(|| match std::env::var("INSTRUCTIONS_GROUP_PROTOCOL").as_deref() {
        Ok("consumer") => ("group.protocol", "consumer"),
        _ => ("session.timeout.ms", "6000"),
    });

/// How often `raw-commit` commits: every `max.poll.records` (Spring's and our default, 500)
/// records, as the listener's Batch ack mode does at most.
const RAW_COMMIT_EVERY: u64 = 500;

/// The baseline: one `BaseConsumer` poll loop with the fetch back-off the factory uses. With
/// `commit_every`, it also commits the consumer's position asynchronously every so many records
/// (what an at-least-once hand-written loop does; the plain baseline commits nothing).
fn raw(bootstrap: &str, group: &str, topic: &str, records: u64, commit_every: Option<u64>) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.queue.backoff.ms", "10")
        .set(GROUP_SETTING.0, GROUP_SETTING.1)
        .create()?;
    consumer.subscribe(&[topic])?;
    let (mut count, mut sum) = (0u64, 0u64);
    while count < records {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            let metric: Metric = serde_json::from_slice(message.payload().unwrap_or_default())?;
            sum += metric.value;
            count += 1;
            first_record(records, sum);
            if commit_every.is_some_and(|every| count % every == 0) {
                consumer.commit_consumer_state(CommitMode::Async)?;
            }
        }
    }
    println!("SUM {sum} RECORDS {count}");
    Ok(())
}

/// The framework: a `Json<Metric>` + `State<Totals>` listener on a factory's defaults but the ack
/// mode, concurrency 1.
fn listener(bootstrap: &str, group: &str, topic: &str, records: u64, mode: AckMode) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let factory = ContainerFactory::builder()
            .bootstrap_servers(bootstrap)
            .set(GROUP_SETTING.0, GROUP_SETTING.1)
            .ack_mode(mode)
            .concurrency(1)
            .build()?;
        let totals = Arc::new(Totals {
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
            wanted: records,
            done: tokio::sync::Notify::new(),
        });
        let endpoint = Endpoint::new("ipr").topic(topic).group(group).handler(
            |metric: Json<Metric>, totals: State<Arc<Totals>>| async move {
                let sum = totals.sum.fetch_add(metric.value, Ordering::Relaxed) + metric.value;
                first_record(totals.wanted, sum);
                if totals.count.fetch_add(1, Ordering::Relaxed) + 1 == totals.wanted {
                    totals.done.notify_one();
                }
            },
        );
        let running = ListenerRegistry::empty()
            .with_default_factory(factory)
            .with_state(totals.clone())
            .register(endpoint)
            .start()
            .await?;
        totals.done.notified().await;
        running.shutdown().await?;
        println!("SUM {} RECORDS {}", totals.sum.load(Ordering::Relaxed), totals.count.load(Ordering::Relaxed));
        Ok(())
    })
}
