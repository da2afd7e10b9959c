//! Support for the integration tests and the fault campaign of kafka-listener (folder `tests/`
//! and `src/bin/chaos.rs` at the workspace root): a broker that is either the one named by
//! `KAFKA_BOOTSTRAP_SERVERS` or the embedded one, a plain rdkafka producer to fill topics, and
//! the campaign's event log and invariant checker ([`chaos`]). The examples (folder `examples/`)
//! use none of it: each is self-contained, on kafka-listener's public API.

pub mod chaos;

use std::time::Duration;

use anyhow::Context as _;
use kafka_listener::support::Admin;
use kafka_listener::EmbeddedKafka;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// Where the tests run: a real broker, or the embedded one.
pub enum Broker {
    /// `librdkafka`'s in-process mock cluster.
    Embedded(EmbeddedKafka),
    /// A broker at this address.
    External(String),
}

impl Broker {
    /// The broker of `KAFKA_BOOTSTRAP_SERVERS` if set, else a new embedded one.
    pub fn from_env() -> anyhow::Result<Broker> {
        match std::env::var("KAFKA_BOOTSTRAP_SERVERS") {
            Ok(servers) if !servers.trim().is_empty() => Ok(Broker::External(servers)),
            _ => {
                let kafka = EmbeddedKafka::start(1)?;
                // Listeners with concurrency > 1 get all their consumers into the first assignment.
                kafka.set_initial_rebalance_delay(Duration::from_millis(500));
                Ok(Broker::Embedded(kafka))
            }
        }
    }

    /// The bootstrap servers.
    pub fn bootstrap_servers(&self) -> String {
        match self {
            Broker::Embedded(kafka) => kafka.bootstrap_servers(),
            Broker::External(servers) => servers.clone(),
        }
    }

    /// A line saying which broker this is.
    pub fn describe(&self) -> String {
        match self {
            Broker::Embedded(kafka) => format!("embedded broker at {}", kafka.bootstrap_servers()),
            Broker::External(servers) => format!("broker at {servers} (KAFKA_BOOTSTRAP_SERVERS)"),
        }
    }

    /// Creates a topic unless it exists.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> anyhow::Result<()> {
        match self {
            Broker::Embedded(kafka) => Ok(kafka.create_topic(name, partitions)?),
            Broker::External(servers) => Ok(Admin::new(servers.as_str()).create_topic(name, partitions).await?),
        }
    }

    /// Consumer settings for a group whose membership changes while it runs: a short session
    /// timeout makes joins quick (the mock cluster waits `session.timeout.ms - 1 s` for members
    /// on every membership change; Tansu's first join takes ~23 s with librdkafka's 45 s default).
    pub fn group_settings() -> [(&'static str, &'static str); 2] {
        [("session.timeout.ms", "6000"), ("heartbeat.interval.ms", "500")]
    }

    /// A producer for this broker with extra properties.
    pub fn producer(&self, extra: &[(&str, &str)]) -> anyhow::Result<BaseProducer> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.bootstrap_servers()).set("linger.ms", "20");
        for (key, value) in extra {
            config.set(*key, *value);
        }
        config.create().context("creating the producer")
    }
}

/// Sends every record (topic, key, payload) and waits until all are delivered.
pub fn produce_all<'a>(
    producer: &BaseProducer,
    records: impl IntoIterator<Item = (&'a str, String, String)>,
) -> anyhow::Result<()> {
    for (topic, key, payload) in records {
        loop {
            match producer.send(BaseRecord::to(topic).key(&key).payload(&payload)) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(5));
                }
                Err((error, _)) => return Err(error).context("producing"),
            }
        }
    }
    producer.flush(Duration::from_secs(60)).context("flushing the producer")
}
