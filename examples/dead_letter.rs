//! Failures without loss: non-blocking retry topics, then a dead-letter topic.
//!
//! Delivery: at least once, for failures too. A shipment the handler cannot process yet is
//! republished to `shipments-retry-0` (due in 500 ms), then `shipments-retry-1` (due in 1 s), and
//! handled there by the same function; one that keeps failing, or that cannot be decoded at all,
//! goes to `shipments-dlt` with Spring's `kafka_dlt-*` headers saying why. A record's offset is
//! committed on one topic only once the next topic has acknowledged it, and the main topic keeps
//! flowing while failed records wait on the retry topics.
//!
//! `cargo run --example dead_letter` (on `KAFKA_BOOTSTRAP_SERVERS`, or a broker embedded in this
//! process). The registry creates the topic `shipments` (2 partitions) unless it exists, and the
//! listener its retry and dead-letter topics. It exits 0 once every shipment was handled or
//! dead-lettered.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_listener::error_handler::dlt_headers;
use kafka_listener::prelude::*;

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

    let factory = ContainerFactory::builder()
        .bootstrap_servers(bootstrap.as_str())
        // A short session timeout makes the groups' joins quick (librdkafka's default is 45 s).
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .build()?;
    // The template publishes to the retry and dead-letter topics; it sends the shipments too.
    let template = KafkaTemplate::builder().bootstrap_servers(bootstrap.as_str()).build()?;
    // `shipments` is created at start when missing; the listener's retry policy creates
    // `shipments-retry-0`, `shipments-retry-1` and `shipments-dlt` (as many partitions).
    let running = ListenerRegistry::from_annotations()
        .only(["shipments", "shipments-dlt-reader"])
        .with_default_factory(factory)
        .with_template(template.clone())
        .with_topic(NewTopic::new("shipments", 2))
        .start()
        .await?;

    // Shipments 0..10: most are ready at once, 3 and 7 on their 2nd and 3rd attempt, 5 never;
    // and one payload is not JSON at all. All sent together.
    let mut records: Vec<(String, String)> = (0..10u64)
        .map(|id| {
            let ready_after = match id {
                3 => 2,
                7 => 3,
                5 => 99,
                _ => 1,
            };
            (format!("s-{id}"), format!(r#"{{"id":{id},"ready_after":{ready_after}}}"#))
        })
        .collect();
    records.push(("s-x".into(), "not json".into()));
    template
        .send_all(records.into_iter().map(|(key, payload)| template.send("shipments", payload).key(key)))
        .await
        .into_result()?;

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
