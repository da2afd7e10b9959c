//! Quickstart: totals of 10,000 orders per customer, with three concurrent consumers.
//!
//! Delivery: at least once. The container commits a partition's offset only after every record
//! before it was handled (AckMode::Batch: after each poll's records), so a crash re-delivers at
//! most the records of the poll in progress; records of one partition (one customer's orders,
//! since orders are keyed by customer) are handled in order.
//!
//! Runs on the broker named by `KAFKA_BOOTSTRAP_SERVERS`, or else on an embedded one:
//! `cargo run --example quickstart`. It exits 0 once every record is handled and committed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_listener::prelude::*;
use kafka_listener::support::Admin;
use kafka_listener_suite::{produce_all, Broker};
use serde::Deserialize;

const TOPIC: &str = "orders";
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

#[kafka_listener(id = "billing", topic = "orders", group = "quickstart-billing", concurrency = 3)]
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
    let broker = Broker::from_env()?;
    println!("using the {}", broker.describe());
    broker.create_topic(TOPIC, 3).await?;

    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let orders = (0..ORDERS).map(|i| {
        let customer = format!("customer-{}", i % CUSTOMERS);
        let payload = format!(r#"{{"run":{run},"customer":"{customer}","amount_cents":{}}}"#, 100 + i % 900);
        (TOPIC, customer, payload)
    });
    produce_all(&broker.producer(&[])?, orders)?;
    println!("produced {ORDERS} orders to `{TOPIC}`");

    let mut factory = ContainerFactory::builder().bootstrap_servers(broker.bootstrap_servers());
    for (key, value) in Broker::group_settings() {
        factory = factory.set(key, value);
    }
    let totals = Totals { run, ..Totals::default() };
    let started = Instant::now();
    let running = ListenerRegistry::from_annotations()
        .with_default_factory(factory.build()?)
        .with_state(totals.clone())
        .start()
        .await?;

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
    let admin = Admin::new(broker.bootstrap_servers());
    let committed = tokio::task::spawn_blocking(move || admin.committed_offsets("quickstart-billing", TOPIC)).await??;
    let handled_to = totals.next_offsets.lock().unwrap_or_else(|e| e.into_inner()).clone();
    println!("committed offsets: {committed:?}");
    anyhow::ensure!(committed == handled_to, "committed offsets differ from the records handled: {handled_to:?}");
    Ok(())
}
