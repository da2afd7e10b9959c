//! Manual acknowledgment from spawned tasks, out of order.
//!
//! Delivery: at least once. The handler hands each payment to a task that acknowledges it when
//! its (simulated) work is done, in whatever order the tasks finish. With `AckMode::Manual` the
//! container commits a partition's offset only up to the first record not yet acknowledged, so
//! a crash never skips unfinished work: the committed offsets below advance in steps, each time
//! the oldest outstanding payment is acknowledged.
//!
//! The ack mode is configuration: `listener.ack-mode: manual` in `examples/manual_ack.yaml`
//! (`KafkaProperties`, read with config-rs, `KAFKA_*` variables over it).
//!
//! `cargo run --example manual_ack` (on `KAFKA_BOOTSTRAP_SERVERS`, or a broker embedded in this
//! process). The registry creates the topic `payments` (1 partition) unless it exists.

use std::time::{Duration, Instant};

use kafka_listener::prelude::*;
use kafka_listener::support::Admin;

const TOPIC: &str = "payments";
const GROUP: &str = "manual-ack-demo";
const PAYMENTS: usize = 20;

#[kafka_listener(id = "payments", topic = "payments", group = "manual-ack-demo")]
async fn on_payment(meta: Meta, payment: String, ack: Acknowledgment) {
    // In each group of four payments the last finishes first: acknowledgments arrive out of
    // order, and the commit advances by four once the group's first payment is acknowledged.
    let (group, place) = (meta.offset / 4, meta.offset % 4);
    let work = Duration::from_millis((200 * group + 40 * (3 - place)) as u64);
    tokio::spawn(async move {
        tokio::time::sleep(work).await;
        println!("  acknowledged {payment} (offset {})", meta.offset);
        ack.acknowledge();
    });
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();

    // The settings: the YAML file, then each KAFKA_* variable over it at its key path.
    let mut settings = config::Config::builder().add_source(config::File::new(
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/manual_ack.yaml"),
        config::FileFormat::Yaml,
    ));
    for (name, value) in std::env::vars() {
        if let Some(key) = name.strip_prefix("KAFKA_").and_then(KafkaProperties::env_key) {
            settings = settings.set_override(key, value)?;
        }
    }
    let mut props: KafkaProperties = settings.build()?.try_deserialize()?;

    // The broker: the one the settings name (KAFKA_BOOTSTRAP_SERVERS), or one embedded in this
    // process (it lives as long as `embedded`, to the end of main).
    let embedded = match &props.bootstrap_servers {
        Some(_) => None,
        None => {
            let kafka = EmbeddedKafka::start(1)?;
            props.bootstrap_servers = Some(vec![kafka.bootstrap_servers()]);
            Some(kafka)
        }
    };
    let bootstrap = props.bootstrap_servers.clone().unwrap_or_default().join(",");
    let which = if embedded.is_some() { "embedded broker" } else { "broker of KAFKA_BOOTSTRAP_SERVERS" };
    println!("using the {which} at {bootstrap}");

    let factory = ContainerFactory::from_properties(&props)?.build()?;
    println!("ack mode from the settings: {}", factory.ack_mode());
    let template = KafkaTemplate::from_properties(&props)?.build()?;
    let running = ListenerRegistry::from_annotations()
        .with_default_factory(factory)
        // Created at start unless the broker has it.
        .with_topic(NewTopic::new(TOPIC, 1))
        .start()
        .await?;

    // The payments, queued together and their acknowledgments awaited together.
    let payments =
        (0..PAYMENTS).map(|i| template.send(TOPIC, format!("payment-{i}")).key(format!("account-{}", i % 3)));
    template.send_all(payments).await.into_result()?;

    let admin = Admin::new(bootstrap.as_str());
    // The admin's reads block: off the runtime's threads.
    let end = {
        let admin = admin.clone();
        tokio::task::spawn_blocking(move || admin.end_offsets(TOPIC)).await??
    };
    let started = Instant::now();
    let mut last = None;
    loop {
        let admin = admin.clone();
        let committed = tokio::task::spawn_blocking(move || admin.committed_offsets(GROUP, TOPIC)).await??;
        if last.as_ref() != Some(&committed) {
            println!("committed offsets: {committed:?}");
            last = Some(committed.clone());
        }
        // Done when every partition's committed offset is its end offset.
        if end.iter().all(|(partition, end)| committed.get(partition) == Some(&Some(*end))) {
            break;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "not all payments committed within a minute");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.shutdown().await?;
    println!("all {PAYMENTS} payments acknowledged and committed");
    Ok(())
}
