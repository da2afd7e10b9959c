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
//! exits 0 once offsets for all of them are committed. `--work-us N`: time spent per record (to
//! make a crash land in the middle). On the embedded broker it produces the ids itself.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use kafka_listener::prelude::*;
use kafka_listener::support::Admin;
use kafka_listener_suite::{produce_all, Broker};

struct Options {
    topic: String,
    group: String,
    out: PathBuf,
    records: u64,
    work: Duration,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        topic: "ids".into(),
        group: "at-least-once".into(),
        out: std::env::temp_dir().join("at_least_once.ids"),
        records: 100_000,
        work: Duration::ZERO,
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
}

impl Journal {
    fn append(&self, id: &str) -> std::io::Result<()> {
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
    let broker = Broker::from_env()?;
    let bootstrap = broker.bootstrap_servers();
    if let Broker::Embedded(_) = &broker {
        broker.create_topic(&options.topic, 4).await?;
        let producer = broker.producer(&[("compression.type", "lz4")])?;
        produce_all(
            &producer,
            (0..options.records).map(|id| (options.topic.as_str(), id.to_string(), id.to_string())),
        )?;
    }
    eprintln!("at_least_once: {}, topic `{}`, ids to {}", broker.describe(), options.topic, options.out.display());
    let file = OpenOptions::new().create(true).append(true).open(&options.out).context("opening the ids file")?;
    let journal = Journal { file: Arc::new(Mutex::new(file)), handled: Arc::default(), work: options.work };

    let mut factory = ContainerFactory::builder().bootstrap_servers(bootstrap.as_str()).ack_mode(AckMode::Batch);
    for (key, value) in Broker::group_settings() {
        factory = factory.set(key, value);
    }
    let sink = journal.clone();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory.build()?)
        .register(Endpoint::new("ids").topic(options.topic.as_str()).group(options.group.as_str()).blocking_handler(
            move |id: String| -> Result<(), ListenerError> {
                sink.append(&id)?;
                Ok(())
            },
        ))
        .start()
        .await?;

    // Done when the group's committed offsets cover every id (the sum of committed offsets over
    // the partitions counts the records before them).
    let admin = Admin::new(bootstrap.as_str());
    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let committed = tokio::task::block_in_place(|| admin.committed_offsets(&options.group, &options.topic))?;
        let committed: i64 = committed.values().sum();
        if u64::try_from(committed).unwrap_or(0) >= options.records {
            break;
        }
    }
    running.shutdown().await?;
    println!("DONE handled={} in {:.1?} (this run)", journal.handled.load(Ordering::Relaxed), started.elapsed());
    Ok(())
}
