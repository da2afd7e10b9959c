//! Container events: what a listener's containers go through, printed as it happens.
//!
//! Delivery: at least once, as any listener; the events only report. The example starts a
//! listener with an idle-event interval of 1 s and a non-responsive threshold of 500 ms, lets it
//! idle, hands it a record that takes its handler 1.2 s, stops and starts it by id, and shuts
//! down: started, partitions assigned, idle (per consumer and per partition), non-responsive,
//! partitions revoked, stopped — and commit failures, when there are any.
//!
//! `cargo run --example events` (on `KAFKA_BOOTSTRAP_SERVERS`, or an embedded broker).

use std::time::{Duration, Instant};

use kafka_listener::container::ContainerEvent;
use kafka_listener::prelude::*;
use kafka_listener_suite::{produce_all, Broker};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let broker = Broker::from_env()?;
    println!("using the {}", broker.describe());
    broker.create_topic("deliveries", 2).await?;
    let started = Instant::now();
    let mut factory = ContainerFactory::builder()
        .bootstrap_servers(broker.bootstrap_servers())
        .idle_event_interval(Duration::from_secs(1))
        .non_responsive_after(Duration::from_millis(500))
        .event_listener(move |event: &ContainerEvent| println!("{:>7.1?}  {event:?}", started.elapsed()));
    for (key, value) in Broker::group_settings() {
        factory = factory.set(key, value);
    }
    let running = ListenerRegistry::empty()
        .with_default_factory(factory.build()?)
        .register(Endpoint::new("deliveries").topic("deliveries").group("events-demo").blocking_handler(
            |text: String| {
                println!("           handling {text:?}");
                if text == "slow" {
                    std::thread::sleep(Duration::from_millis(1200));
                }
            },
        ))
        .start()
        .await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    produce_all(&broker.producer(&[])?, [("deliveries", "k".to_string(), "slow".to_string())])?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    println!("           stopping the listener by id");
    running.stop("deliveries").await?;
    println!("           starting it again");
    running.start("deliveries")?;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    running.shutdown().await?;
    Ok(())
}
