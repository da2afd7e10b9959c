//! Request/reply: a listener that returns its answer, called through a `ReplyingTemplate`.
//!
//! Delivery: at least once, as for any listener: a request's offset is committed only after its
//! reply was acknowledged by the broker, so a crash can answer a request twice (replies carry the
//! request's `kafka_correlationId`; the client takes the first and drops later ones). Header names
//! are Spring's, so a Spring `ReplyingKafkaTemplate` can call this listener too.
//!
//! `cargo run --example request_reply` (on `KAFKA_BOOTSTRAP_SERVERS`, or a broker embedded in this
//! process). The registry creates the topics `price-requests` and `price-replies` (3 partitions
//! each) unless they exist.

use std::time::Instant;

use futures::future::join_all;
use kafka_listener::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Quote {
    item: String,
    quantity: u32,
}

#[derive(Serialize)]
struct Priced {
    item: String,
    total_cents: u32,
}

/// The returned value is the reply, published to `price-replies`.
#[kafka_listener(id = "pricing", topic = "price-requests", group = "pricing", reply_to = "price-replies")]
async fn price(quote: Json<Quote>) -> Json<Priced> {
    Json(Priced { total_cents: quote.quantity * 250, item: quote.item.clone() })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();

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
    println!("using the {which} at {bootstrap}");

    let template = KafkaTemplate::builder().bootstrap_servers(bootstrap.as_str()).build()?;
    let factory = ContainerFactory::builder().bootstrap_servers(bootstrap.as_str()).build()?;
    let running = ListenerRegistry::from_annotations()
        .with_default_factory(factory)
        .with_template(template.clone())
        .with_topics([NewTopic::new("price-requests", 3), NewTopic::new("price-replies", 3)])
        .start()
        .await?;

    let client = ReplyingTemplate::new(template, "price-replies")?;
    let started = Instant::now();
    let items = ["tea", "coffee", "cocoa", "mate", "chai"];
    let requests = items.iter().enumerate().map(|(i, item)| {
        let request = format!(r#"{{"item":"{item}","quantity":{}}}"#, i + 1);
        let client = client.clone();
        async move { client.request("price-requests", request).await }
    });
    for reply in join_all(requests).await {
        let reply = reply?;
        println!(
            "reply from {}-{}@{}: {}",
            reply.topic,
            reply.partition,
            reply.offset,
            reply.payload_str().unwrap_or("")
        );
    }
    println!("{} requests answered in {:.1?}", items.len(), started.elapsed());
    running.shutdown().await?;
    Ok(())
}
