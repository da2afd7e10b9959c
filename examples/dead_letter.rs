//! Failures without loss: non-blocking retry topics, then a dead-letter topic.
//!
//! Delivery: at least once, for failures too. A shipment the handler cannot process yet is
//! republished to `shipments-retry-0` (due in 500 ms), then `shipments-retry-1` (due in 1 s), and
//! handled there by the same function; one that keeps failing, or that cannot be decoded at all,
//! goes to `shipments-dlt` with Spring's `kafka_dlt-*` headers saying why. A record's offset is
//! committed on one topic only once the next topic has acknowledged it, and the main topic keeps
//! flowing while failed records wait on the retry topics.
//!
//! `cargo run --example dead_letter` (on `KAFKA_BOOTSTRAP_SERVERS`, or an embedded broker). It
//! exits 0 once every shipment was handled or dead-lettered.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_listener::error_handler::dlt_headers;
use kafka_listener::prelude::*;
use kafka_listener_suite::{produce_all, Broker};

static DELIVERED: Mutex<BTreeSet<u64>> = Mutex::new(BTreeSet::new());

#[derive(serde::Deserialize)]
struct Shipment {
    id: u64,
    /// How many attempts the (simulated) warehouse needs before it answers.
    ready_after: u32,
}

#[kafka_listener(
    id = "shipments",
    topic = "shipments",
    group = "dead-letter-demo",
    retry(attempts = 3, backoff = "500ms", multiplier = 2.0)
)]
fn on_shipment(shipment: Json<Shipment>, meta: Meta) -> Result<(), ListenerError> {
    let attempt = meta.delivery_attempt();
    if attempt < shipment.ready_after {
        println!("  shipment {} failed attempt {attempt} on {}", shipment.id, meta.topic);
        return Err(ListenerError::msg(format!("warehouse not ready for shipment {}", shipment.id)));
    }
    println!("  shipment {} delivered on attempt {attempt} ({})", shipment.id, meta.topic);
    DELIVERED.lock().unwrap_or_else(|p| p.into_inner()).insert(shipment.id);
    Ok(())
}

/// Reads the dead letters (a plain listener on the dead-letter topic).
#[kafka_listener(id = "shipments-dlt-reader", topic = "shipments-dlt", group = "dead-letter-demo-dlt")]
fn on_dead_letter(record: ConsumerRecord) {
    let header = |name| record.headers.get_str(name).unwrap_or("?").to_string();
    println!(
        "  dead letter {:?} from {}: {}",
        record.payload_str().unwrap_or("<binary>"),
        header(dlt_headers::ORIGINAL_TOPIC),
        header(dlt_headers::EXCEPTION_MESSAGE)
    );
    DEAD.lock().unwrap_or_else(|p| p.into_inner()).push(record.payload_str().unwrap_or_default().to_string());
}

static DEAD: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let broker = Broker::from_env()?;
    println!("using the {}", broker.describe());
    // The embedded broker cannot create topics on request: create all of them here (on a real
    // broker, the listener creates its retry and dead-letter topics when they are missing).
    for topic in ["shipments", "shipments-retry-0", "shipments-retry-1", "shipments-dlt"] {
        broker.create_topic(topic, 2).await?;
    }
    // Shipments 0..10: most are ready at once, 3 and 7 on their 2nd and 3rd attempt, 5 never;
    // and one payload is not JSON at all.
    let mut records: Vec<(&str, String, String)> = (0..10u64)
        .map(|id| {
            let ready_after = match id {
                3 => 2,
                7 => 3,
                5 => 99,
                _ => 1,
            };
            ("shipments", format!("s-{id}"), format!(r#"{{"id":{id},"ready_after":{ready_after}}}"#))
        })
        .collect();
    records.push(("shipments", "s-x".into(), "not json".into()));
    produce_all(&broker.producer(&[])?, records)?;

    let mut factory = ContainerFactory::builder().bootstrap_servers(broker.bootstrap_servers());
    for (key, value) in Broker::group_settings() {
        factory = factory.set(key, value);
    }
    let template = KafkaTemplate::builder().bootstrap_servers(broker.bootstrap_servers()).build()?;
    let running = ListenerRegistry::from_annotations()
        .only(["shipments", "shipments-dlt-reader"])
        .with_default_factory(factory.build()?)
        .with_template(template)
        .start()
        .await?;

    let started = Instant::now();
    let expected_delivered: BTreeSet<u64> = (0..10).filter(|id| *id != 5).collect();
    loop {
        let delivered = DELIVERED.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let dead = DEAD.lock().unwrap_or_else(|p| p.into_inner()).len();
        if delivered == expected_delivered && dead == 2 {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("after 60 s: delivered {delivered:?}, {dead} dead letters");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.shutdown().await?;
    println!("9 shipments delivered (two after retries), 2 dead-lettered, in {:.1?}", started.elapsed());
    Ok(())
}
