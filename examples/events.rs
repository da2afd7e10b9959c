//! Container events: what a listener's containers go through, printed as it happens.
//!
//! Delivery: at least once, as any listener; the events only report. The example starts a
//! listener with an idle-event interval of 1 s and a non-responsive threshold of 500 ms, lets it
//! idle, hands it a record that takes its handler 1.2 s, stops and starts it by id, and shuts
//! down (after about 7 s): started, partitions assigned, idle (per consumer and per partition),
//! non-responsive, partitions revoked, stopped — and commit failures, when there are any.
//!
//! `cargo run --example events` (on `KAFKA_BOOTSTRAP_SERVERS`, or a broker embedded in this
//! process). The registry creates the topic `deliveries` (2 partitions) unless it exists.

use std::time::{Duration, Instant};

use kafka_listener::container::ContainerEvent;
use kafka_listener::prelude::*;

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
    println!("using the {which} at {bootstrap}");

    let started = Instant::now();
    let factory = ContainerFactory::builder()
        .bootstrap_servers(bootstrap.as_str())
        // A short session timeout makes the group's joins quick (librdkafka's default is 45 s).
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .idle_event_interval(Duration::from_secs(1))
        .non_responsive_after(Duration::from_millis(500))
        .event_listener(move |event: &ContainerEvent| println!("{:>7.1?}  {event:?}", started.elapsed()))
        .build()?;
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .with_topic(NewTopic::new("deliveries", 2))
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
    let template = KafkaTemplate::builder().bootstrap_servers(bootstrap.as_str()).build()?;
    template.send("deliveries", "slow").key("k").await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    println!("           stopping the listener by id");
    running.stop("deliveries").await?;
    println!("           starting it again");
    running.start("deliveries")?;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    running.shutdown().await?;
    Ok(())
}
