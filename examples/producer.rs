//! Producer: where each partitioner puts records.
//!
//! Delivery: acknowledged by the broker (acks=all, idempotent by default) before anything is
//! printed: each topic's six records are queued together (`send_all`) and their acknowledgments
//! awaited together, so a printed partition is where a stored record is. `DefaultPartitioner`
//! puts a key on the same partition as the Java client and kafka-python (murmur2);
//! `RoundRobinPartitioner` cycles; `UniformStickyPartitioner` keeps a batch's worth of records
//! on one partition.
//!
//! `cargo run --example producer` (on `KAFKA_BOOTSTRAP_SERVERS`, or a broker embedded in this
//! process). It creates the topics `producer-<partitioner>` (4 partitions each) unless they exist.

use kafka_listener::prelude::*;
use kafka_listener::support::Admin;

const KEYS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];

async fn show(bootstrap: &str, name: &str, partitioner: impl Partitioner) -> anyhow::Result<()> {
    let topic = format!("producer-{name}");
    Admin::new(bootstrap).create_topics([NewTopic::new(topic.as_str(), 4)]).await?;
    let template = KafkaTemplate::builder().bootstrap_servers(bootstrap).partitioner(partitioner).build()?;
    let stored = template.send_all(KEYS.map(|key| template.send(&topic, format!("hello {key}")).key(key))).await;
    print!("{name:<15}");
    for (key, metadata) in KEYS.iter().zip(stored.into_result()?) {
        print!(" {key}→{}", metadata.partition());
    }
    println!();
    template.close().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The broker: the one of KAFKA_BOOTSTRAP_SERVERS, or one embedded in this process (it lives
    // as long as `embedded`, to the end of main).
    let (bootstrap, embedded) = match std::env::var("KAFKA_BOOTSTRAP_SERVERS") {
        Ok(servers) if !servers.trim().is_empty() => (servers, None),
        _ => {
            let kafka = EmbeddedKafka::start(1)?;
            (kafka.bootstrap_servers(), Some(kafka))
        }
    };
    let which = if embedded.is_some() { "embedded broker" } else { "broker of KAFKA_BOOTSTRAP_SERVERS" };
    println!("using the {which} at {bootstrap}; each topic has 4 partitions");
    show(&bootstrap, "default", DefaultPartitioner).await?;
    show(&bootstrap, "round-robin", RoundRobinPartitioner).await?;
    show(&bootstrap, "uniform-sticky", UniformStickyPartitioner).await?;
    Ok(())
}
