//! A standalone embedded Kafka broker (librdkafka's mock cluster) in its own process, for local
//! development and for tests whose services must outlive each other (a crash test kills the
//! service, not the broker).
//!
//! Delivery: whatever the clients ask of it; the data lives in memory until the process ends.
//!
//! ```text
//! cargo run --example broker -- --topic orders:3 --topic orders-dlt:3
//! KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:39531
//! ```
//!
//! The first line of its output is the address to give clients. It runs until it gets SIGTERM or
//! Ctrl-C, or, with `--until-stdin-closes`, until its standard input closes (so a parent that dies
//! takes it along).

use std::io::Read as _;
use std::time::Duration;

use anyhow::{bail, Context as _};
use kafka_listener::EmbeddedKafka;

fn main() -> anyhow::Result<()> {
    let mut topics: Vec<(String, i32)> = Vec::new();
    let mut until_stdin_closes = false;
    let mut rebalance_delay = Duration::ZERO;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--topic" => {
                let spec = args.next().context("--topic needs NAME:PARTITIONS")?;
                let (name, partitions) = spec.split_once(':').unwrap_or((spec.as_str(), "1"));
                let partitions = partitions.parse().with_context(|| format!("partitions of `{spec}`"))?;
                topics.push((name.to_string(), partitions));
            }
            "--rebalance-delay-ms" => {
                let ms = args.next().context("--rebalance-delay-ms needs a number")?;
                rebalance_delay = Duration::from_millis(ms.parse().context("--rebalance-delay-ms")?);
            }
            "--until-stdin-closes" => until_stdin_closes = true,
            other => bail!(
                "unknown argument `{other}`; usage: broker [--topic NAME:PARTITIONS]... [--rebalance-delay-ms MS] [--until-stdin-closes]"
            ),
        }
    }
    let kafka = EmbeddedKafka::start(1)?;
    kafka.set_initial_rebalance_delay(rebalance_delay);
    for (name, partitions) in &topics {
        kafka.create_topic(name, *partitions)?;
    }
    println!("KAFKA_BOOTSTRAP_SERVERS={}", kafka.bootstrap_servers());
    if until_stdin_closes {
        // Reads (and ignores) input until end of file.
        let _ = std::io::stdin().lock().read_to_end(&mut Vec::new());
        return Ok(());
    }
    // Until SIGINT (Ctrl-C) or SIGTERM.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    // (Created inside the runtime: its handlers are installed on the runtime's reactor.)
    runtime.block_on(async { kafka_listener::shutdown_signal().await })?;
    drop(kafka);
    Ok(())
}
