//! Producer: where each partitioner puts records.
//!
//! Delivery: each send is awaited for the broker's acknowledgment (acks=all, idempotent by
//! default), so a printed partition and offset are stored records. `DefaultPartitioner` puts a key
//! on the same partition as the Java client and kafka-python (murmur2); `RoundRobinPartitioner`
//! cycles; `UniformStickyPartitioner` keeps a batch's worth of records on one partition.
//!
//! `cargo run --example producer` (on `KAFKA_BOOTSTRAP_SERVERS`, or an embedded broker).

use kafka_listener::prelude::*;
use kafka_listener_suite::Broker;

const KEYS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];

async fn show(broker: &Broker, name: &str, partitioner: impl Partitioner) -> anyhow::Result<()> {
    let topic = format!("producer-{name}");
    broker.create_topic(&topic, 4).await?;
    let template =
        KafkaTemplate::builder().bootstrap_servers(broker.bootstrap_servers()).partitioner(partitioner).build()?;
    print!("{name:<15}");
    for key in KEYS {
        let stored = template.send(&topic, format!("hello {key}")).key(key).await?;
        print!(" {key}→{}", stored.partition());
    }
    println!();
    template.close().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let broker = Broker::from_env()?;
    println!("using the {}; each topic has 4 partitions", broker.describe());
    show(&broker, "default", DefaultPartitioner).await?;
    show(&broker, "round-robin", RoundRobinPartitioner).await?;
    show(&broker, "uniform-sticky", UniformStickyPartitioner).await?;
    Ok(())
}
