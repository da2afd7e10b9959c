//! Quickstart: totals of 10,000 orders per customer, with three concurrent consumers.
//!
//! Delivery: at least once. The container commits a partition's offset only after every record
//! before it was handled (AckMode::Batch: after each poll's records), so a crash re-delivers at
//! most the records of the poll in progress; records of one partition (one customer's orders,
//! since orders are keyed by customer) are handled in order.
//!
//! Its Kafka settings come from `examples/quickstart.toml` (`KafkaProperties`, loaded with
//! figment) with `KAFKA_*` environment variables over them: the listener's three consumers are
//! `listeners.billing.concurrency` there. Runs on the broker named by `KAFKA_BOOTSTRAP_SERVERS`,
//! or else on one embedded in this process: `cargo run --example quickstart`. It starts the
//! listener (the registry creates the topic `orders`, 3 partitions, unless it exists), sends the
//! orders with a `KafkaTemplate`, and exits 0 once every record is handled and committed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use figment::providers::{Env, Format, Toml};
use kafka_listener::prelude::*;
use kafka_listener::support::Admin;
use serde::Deserialize;

const TOPIC: &str = "orders";
const GROUP: &str = "quickstart-billing";
const ORDERS: u64 = 10_000;
const CUSTOMERS: u64 = 7;

#[derive(Deserialize)]
struct Order {
    /// Which run of this example produced the order (a real broker keeps earlier runs' orders).
    run: u64,
    customer: String,
    amount_cents: u64,
}

/// The totals the listener keeps, given to the registry as state.
#[derive(Clone, Default)]
struct Totals {
    run: u64,
    cents: Arc<Mutex<BTreeMap<String, u64>>>,
    handled: Arc<AtomicU64>,
    /// Per partition, the offset after the last record handled.
    next_offsets: Arc<Mutex<BTreeMap<i32, i64>>>,
}

// Its concurrency (3) is `listeners.billing.concurrency` in examples/quickstart.toml.
#[kafka_listener(id = "billing", topic = "orders", group = "quickstart-billing")]
async fn on_order(order: Json<Order>, meta: Meta, totals: State<Totals>) {
    totals.next_offsets.lock().unwrap_or_else(|e| e.into_inner()).insert(meta.partition, meta.offset + 1);
    if order.run == totals.run {
        *totals.cents.lock().unwrap_or_else(|e| e.into_inner()).entry(order.customer.clone()).or_default() +=
            order.amount_cents;
        totals.handled.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();

    // The settings: the file, then KAFKA_* variables over it.
    let mut props: KafkaProperties = figment::Figment::new()
        .merge(Toml::file(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart.toml")))
        .merge(Env::prefixed("KAFKA_").filter_map(|key| KafkaProperties::env_key(key.as_str()).map(Into::into)))
        .extract()?;
    // The broker: the one the settings name (KAFKA_BOOTSTRAP_SERVERS), or one embedded in this
    // process (it lives as long as `embedded`, to the end of main).
    let embedded = match &props.bootstrap_servers {
        Some(_) => None,
        None => {
            let kafka = EmbeddedKafka::start(1)?;
            // The listener's three consumers join the group's first assignment together.
            kafka.set_initial_rebalance_delay(Duration::from_millis(500));
            props.bootstrap_servers = Some(vec![kafka.bootstrap_servers()]);
            Some(kafka)
        }
    };
    let bootstrap = props.bootstrap_servers.clone().unwrap_or_default().join(",");
    let which = if embedded.is_some() { "embedded broker" } else { "broker of KAFKA_BOOTSTRAP_SERVERS" };
    println!("using the {which} at {bootstrap}");

    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let totals = Totals { run, ..Totals::default() };
    let started = Instant::now();
    let template = KafkaTemplate::from_properties(&props)?.build()?;
    let running = ListenerRegistry::from_annotations()
        // The default factory from [consumer] and [listener], and the [listeners.billing] override.
        .with_properties(props)
        .with_state(totals.clone())
        // Created at start unless the broker has it.
        .with_topic(NewTopic::new(TOPIC, 3))
        .start()
        .await?;

    // Every order queued at once, then all the broker's acknowledgments awaited together.
    let orders = (0..ORDERS).map(|i| {
        let customer = format!("customer-{}", i % CUSTOMERS);
        let payload = format!(r#"{{"run":{run},"customer":"{customer}","amount_cents":{}}}"#, 100 + i % 900);
        template.send(TOPIC, payload).key(customer)
    });
    template.send_all(orders).await.into_result()?;
    println!("produced {ORDERS} orders to `{TOPIC}`");

    let mut last_report = Instant::now();
    loop {
        let handled = totals.handled.load(Ordering::Relaxed);
        let done = handled >= ORDERS;
        if done || last_report.elapsed() >= Duration::from_millis(500) {
            let assignment = running.container("billing").map(|c| c.consumer_assignments()).unwrap_or_default();
            println!(
                "handled {handled}/{ORDERS} in {:.1?}; partitions per consumer: {assignment:?}",
                started.elapsed()
            );
            last_report = Instant::now();
        }
        if done {
            break;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(120), "not all orders handled within 2 minutes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.shutdown().await?;

    println!("totals per customer:");
    for (customer, cents) in totals.cents.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        println!("  {customer}: {}.{:02}", cents / 100, cents % 100);
    }
    // The admin's reads block: off the runtime's threads.
    let admin = Admin::new(bootstrap.as_str());
    let (committed, lag) = tokio::task::spawn_blocking(move || {
        anyhow::Ok((admin.committed_offsets(GROUP, TOPIC)?, admin.lag(GROUP, TOPIC)?))
    })
    .await??;
    let handled_to = totals.next_offsets.lock().unwrap_or_else(|e| e.into_inner()).clone();
    println!("committed offsets: {committed:?}; lag: {lag:?}");
    // Each partition's committed offset is the one after its last record handled, and nothing
    // of the topic is left uncommitted.
    let differ = handled_to.iter().any(|(partition, next)| committed.get(partition) != Some(&Some(*next)));
    anyhow::ensure!(!differ, "committed offsets differ from the records handled: {handled_to:?}");
    anyhow::ensure!(lag.values().all(|&behind| behind == 0), "records left uncommitted: {lag:?}");
    Ok(())
}
