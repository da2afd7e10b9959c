//! At least once, through crashes: a service that handles ids by appending each to a file.
//!
//! Delivery: at least once. An id is written (unbuffered, before the handler returns) before its
//! offset can be committed, and offsets are committed only after every record before them was
//! handled (AckMode::Batch). So when the process is killed — even with SIGKILL, with no chance to
//! commit — every id is in the file or is delivered again after the restart; the ids written
//! since the last commit are written twice. Nothing is lost; duplicates are bounded by the records
//! in flight at the crash.
//!
//! ```text
//! cargo run --example at_least_once                      # embedded broker, 100,000 ids
//! cargo run --example broker -- --topic ids:4 &          # or a broker that outlives the service
//! KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:PORT cargo run --example at_least_once -- --records 100000
//! ```
//!
//! Options: `--topic` (default `ids`), `--group` (default `at-least-once`), `--out FILE` (default
//! `at_least_once.ids` in the temp dir), `--records N`: the ids the topic holds (0..N); the service
//! exits 0 once offsets for all of them are committed, or after a graceful stop on SIGINT
//! (Ctrl-C) or SIGTERM. `--work-us N`: time spent per record (to make a crash land in the
//! middle). `--order key|unordered|partition` (default `partition`) and `--max-concurrency N`
//! (default 64): the processing order; with `key` or `unordered` the ids are handled as tasks, and
//! the offsets completed above each committed offset go into the commit's metadata, so that a
//! restart skips them. `--stall-id N`: the handler of id N never returns (a stuck record, to show
//! that the work above it is not redone after a crash). On the embedded broker (no `KAFKA_BOOTSTRAP_SERVERS`) it creates the topic and
//! produces the ids itself; on another broker the registry creates the topic (4 partitions) when
//! it is missing.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use kafka_listener::prelude::*;
use kafka_listener::producer::Compression;
use kafka_listener::support::Admin;

struct Options {
    topic: String,
    group: String,
    out: PathBuf,
    records: u64,
    work: Duration,
    order: ProcessingOrder,
    max_concurrency: usize,
    stall: Option<String>,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        topic: "ids".into(),
        group: "at-least-once".into(),
        out: std::env::temp_dir().join("at_least_once.ids"),
        records: 100_000,
        work: Duration::ZERO,
        order: ProcessingOrder::Partition,
        max_concurrency: 64,
        stall: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--topic" => options.topic = value()?,
            "--group" => options.group = value()?,
            "--out" => options.out = value()?.into(),
            "--records" => options.records = value()?.parse().context("--records")?,
            "--work-us" => options.work = Duration::from_micros(value()?.parse().context("--work-us")?),
            "--order" => options.order = value()?.parse()?,
            "--max-concurrency" => options.max_concurrency = value()?.parse().context("--max-concurrency")?,
            "--stall-id" => options.stall = Some(value()?),
            other => bail!("unknown argument `{other}` (see the example's doc comment)"),
        }
    }
    Ok(options)
}

/// The file the ids go to, shared by the listener's consumers.
#[derive(Clone)]
struct Journal {
    file: Arc<Mutex<File>>,
    handled: Arc<AtomicU64>,
    work: Duration,
    stall: Option<String>,
}

impl Journal {
    fn append(&self, id: &str) -> std::io::Result<()> {
        if self.stall.as_deref() == Some(id) {
            // A stuck record: it never completes (until the process is killed).
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        if !self.work.is_zero() {
            std::thread::sleep(self.work);
        }
        // One unbuffered write per id: once the handler returns, the id is in the file even if the
        // process dies the next instant.
        let mut file = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        file.write_all(format!("{id}\n").as_bytes())?;
        self.handled.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;

    // The broker: the one of KAFKA_BOOTSTRAP_SERVERS, or one embedded in this process (it lives
    // as long as `embedded`, to the end of main).
    let (bootstrap, embedded) = match std::env::var("KAFKA_BOOTSTRAP_SERVERS") {
        Ok(servers) if !servers.trim().is_empty() => (servers, None),
        _ => {
            let kafka = EmbeddedKafka::start(1)?;
            (kafka.bootstrap_servers(), Some(kafka))
        }
    };
    let topic = NewTopic::new(options.topic.as_str(), 4);
    if embedded.is_some() {
        // A fresh broker: create the topic and fill it with the ids, 10,000 sends at a time
        // (queued together, their acknowledgments awaited together), compressed so that the
        // embedded broker keeps them all.
        Admin::new(bootstrap.as_str()).create_topics([topic.clone()]).await?;
        let template =
            KafkaTemplate::builder().bootstrap_servers(bootstrap.as_str()).compression(Compression::Lz4).build()?;
        for first in (0..options.records).step_by(10_000) {
            let ids = first..(first + 10_000).min(options.records);
            let sends = ids.map(|id| template.send(&options.topic, id.to_string()).key(id.to_string()));
            template.send_all(sends).await.into_result()?;
        }
    }
    let which = if embedded.is_some() { "embedded broker" } else { "broker of KAFKA_BOOTSTRAP_SERVERS" };
    eprintln!("at_least_once: {which} at {bootstrap}, topic `{}`, ids to {}", options.topic, options.out.display());
    let file = OpenOptions::new().create(true).append(true).open(&options.out).context("opening the ids file")?;
    let journal =
        Journal { file: Arc::new(Mutex::new(file)), handled: Arc::default(), work: options.work, stall: options.stall };

    let factory = ContainerFactory::builder()
        .bootstrap_servers(bootstrap.as_str())
        .ack_mode(AckMode::Batch)
        .processing_order(options.order)
        .max_concurrency(options.max_concurrency)
        // A short session timeout makes the group's joins quick after a restart (librdkafka's
        // default is 45 s).
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .build()?;
    let sink = journal.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .with_topic(topic)
        .register(Endpoint::new("ids").topic(options.topic.as_str()).group(options.group.as_str()).blocking_handler(
            move |id: String| -> Result<(), ListenerError> {
                sink.append(&id)?;
                Ok(())
            },
        ))
        .start()
        .await?;

    // Done when the group's committed offsets cover every id (the sum of committed offsets over
    // the partitions counts the records before them), or stopped by a signal.
    let admin = Admin::new(bootstrap.as_str());
    let started = Instant::now();
    let all_committed = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            // The admin's reads block: off the runtime's threads.
            let committed = tokio::task::block_in_place(|| admin.committed_offsets(&options.group, &options.topic))?;
            let committed: i64 = committed.values().flatten().sum();
            if u64::try_from(committed).unwrap_or(0) >= options.records {
                return anyhow::Ok(());
            }
        }
    };
    tokio::select! {
        done = all_committed => done?,
        signal = kafka_listener::shutdown_signal() => eprintln!("at_least_once: {} received, stopping", signal?),
    }
    running.shutdown().await?;
    println!("DONE handled={} in {:.1?} (this run)", journal.handled.load(Ordering::Relaxed), started.elapsed());
    Ok(())
}
