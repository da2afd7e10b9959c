//! Container factories and templates made from [`KafkaProperties`].

use std::time::Duration;

use super::{
    check_owned_property, validate_property, ContainerFactory, ContainerFactoryBuilder, GroupProtocol, KafkaProperties,
    SecurityProtocol,
};
use crate::error::{Error, Result};
use crate::producer::{KafkaTemplate, KafkaTemplateBuilder};

/// librdkafka properties with the key path each came from, in the order they apply (later wins).
#[derive(Default)]
struct Sourced(Vec<(String, String, String)>);

impl Sourced {
    fn set(&mut self, key: &str, value: impl Into<String>, path: impl Into<String>) {
        self.0.retain(|(k, _, _)| k != key);
        self.0.push((key.to_string(), value.into(), path.into()));
    }

    /// `client.id`: the section's (`consumer` / `producer`), else the top-level one.
    fn client_id(&mut self, own: &Option<String>, section: &str, props: &KafkaProperties) {
        match (own, &props.client_id) {
            (Some(id), _) => self.set("client.id", id.clone(), format!("{section}.client-id")),
            (None, Some(id)) => self.set("client.id", id.clone(), "client-id"),
            (None, None) => {}
        }
    }

    fn millis(&mut self, key: &str, value: Option<Duration>, path: &str) {
        if let Some(value) = value {
            self.set(key, value.as_millis().to_string(), path);
        }
    }

    fn map(&mut self, properties: &super::ClientProperties, section: &str) {
        for (key, value) in properties.iter() {
            self.set(key, value, format!("{section}{key}"));
        }
    }

    /// Checks each property as librdkafka and the container would, naming its key path.
    fn check(&self, consumer: bool) -> Result<()> {
        for (key, value, path) in &self.0 {
            let checked = if consumer { check_owned_property(key, value) } else { Ok(()) };
            checked.and_then(|()| validate_property(key, value)).map_err(|e| at(path, e))?;
        }
        Ok(())
    }

    /// Checks the consumer properties together, as librdkafka will create the consumer (some
    /// refuse each other, or need a feature this build lacks), naming the key path of the first
    /// property librdkafka's reason mentions.
    fn check_together(&self) -> Result<()> {
        let properties = super::Properties(self.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let Err(reason) = super::check_container_consumer(&properties) else { return Ok(()) };
        let mentioned = self
            .0
            .iter()
            .find(|(k, _, _)| reason.contains(k.as_str()))
            .or_else(|| {
                // "No provider for SASL mechanism ...": the mechanism.
                reason
                    .contains("SASL mechanism")
                    .then(|| self.0.iter().find(|(k, _, _)| k == "sasl.mechanisms"))
                    .flatten()
            })
            .map(|(_, _, path)| path.clone());
        let hint = super::feature_hint(&reason).unwrap_or_default();
        Err(Error::config(
            mentioned.unwrap_or_else(|| "properties".to_string()),
            format!("{reason}{hint}: librdkafka refuses this consumer configuration; change or remove the setting"),
        ))
    }

    fn path_of(&self, key: &str) -> String {
        self.0.iter().find(|(k, _, _)| k == key).map_or_else(|| key.to_string(), |(_, _, p)| p.clone())
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v, _)| (k.as_str(), v.as_str()))
    }
}

/// The error `error`, about the key path `path`.
fn at(path: &str, error: Error) -> Error {
    match error {
        Error::Config { reason, .. } => Error::config(path, reason),
        other => other,
    }
}

/// What consumers and producers share: servers, security, top-level properties.
fn common(props: &KafkaProperties) -> Sourced {
    let mut out = Sourced::default();
    if let Some(servers) = &props.bootstrap_servers {
        out.set("bootstrap.servers", servers.join(","), "bootstrap-servers");
    }
    let security = &props.security;
    let protocol = security.protocol.or(match (&security.sasl, security.ssl.is_set()) {
        (Some(_), true) => Some(SecurityProtocol::SaslSsl),
        (Some(_), false) => Some(SecurityProtocol::SaslPlaintext),
        (None, true) => Some(SecurityProtocol::Ssl),
        (None, false) => None,
    });
    if let Some(protocol) = protocol {
        out.set("security.protocol", protocol.librdkafka(), "security.protocol");
    }
    if let Some(sasl) = &security.sasl {
        out.set("sasl.mechanisms", sasl.mechanism.name(), "security.sasl.mechanism");
        out.set("sasl.username", sasl.username.clone(), "security.sasl.username");
        out.set("sasl.password", sasl.password.expose(), "security.sasl.password");
    }
    let ssl = &security.ssl;
    for (key, value, path) in [
        ("ssl.ca.location", &ssl.ca_location, "security.ssl.ca-location"),
        ("ssl.certificate.location", &ssl.certificate_location, "security.ssl.certificate-location"),
        ("ssl.key.location", &ssl.key_location, "security.ssl.key-location"),
    ] {
        if let Some(value) = value {
            out.set(key, value.clone(), path);
        }
    }
    if let Some(password) = &ssl.key_password {
        out.set("ssl.key.password", password.expose(), "security.ssl.key-password");
    }
    out.map(&props.properties, "properties.");
    out
}

impl ContainerFactory {
    /// A factory builder holding the consumer and container settings of `props`
    /// (`bootstrap-servers`, `client-id`, `security`, `properties`, `consumer`, `listener`).
    /// Builder calls made on it take precedence (a setting in code beats the file); build it
    /// with [`build`](ContainerFactoryBuilder::build).
    ///
    /// ```
    /// use kafka_listener::prelude::*;
    ///
    /// let props = KafkaProperties::from_env_vars("KAFKA_", [
    ///     ("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
    ///     ("KAFKA_LISTENER__CONCURRENCY", "3"),
    ///     ("KAFKA_LISTENER__ACK_MODE", "record"),
    /// ])?;
    /// let factory = ContainerFactory::from_properties(&props)?.build()?;
    /// assert_eq!((factory.concurrency(), factory.ack_mode()), (3, AckMode::Record));
    /// # Ok::<(), kafka_listener::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the key path at fault: a librdkafka property librdkafka does not
    /// know or refuses (`consumer.properties.fetch.max.bytes`), one the container owns
    /// (`enable.auto.commit=true`), or, with `consumer.group-protocol = "consumer"` (KIP-848), a
    /// setting that protocol forbids (`consumer.session-timeout`). `build()` checks the rest.
    pub fn from_properties(props: &KafkaProperties) -> Result<ContainerFactoryBuilder> {
        let consumer = &props.consumer;
        let mut properties = common(props);
        properties.client_id(&consumer.client_id, "consumer", props);
        if let Some(group) = &consumer.group_id {
            if group.trim().is_empty() {
                return Err(Error::config(
                    "consumer.group-id",
                    "is empty; name the group, or remove the key (each listener's id is its group then)",
                ));
            }
            properties.set("group.id", group.clone(), "consumer.group-id");
        }
        if let Some(reset) = consumer.auto_offset_reset {
            properties.set("auto.offset.reset", reset.librdkafka(), "consumer.auto-offset-reset");
        }
        properties.millis("max.poll.interval.ms", consumer.max_poll_interval, "consumer.max-poll-interval");
        properties.millis("session.timeout.ms", consumer.session_timeout, "consumer.session-timeout");
        properties.millis("heartbeat.interval.ms", consumer.heartbeat_interval, "consumer.heartbeat-interval");
        if let Some(level) = consumer.isolation_level {
            let value = match level {
                super::IsolationLevel::ReadCommitted => "read_committed",
                super::IsolationLevel::ReadUncommitted => "read_uncommitted",
            };
            properties.set("isolation.level", value, "consumer.isolation-level");
        }
        if let Some(protocol) = consumer.group_protocol {
            properties.set("group.protocol", protocol.name(), "consumer.group-protocol");
        }
        if let Some(assignor) = &consumer.group_remote_assignor {
            properties.set("group.remote.assignor", assignor.clone(), "consumer.group-remote-assignor");
        }
        properties.map(&consumer.properties, "consumer.properties.");
        properties.check(true)?;
        GroupProtocol::of(properties.iter()).check(properties.iter(), |key| properties.path_of(key))?;
        properties.check_together()?;

        let l = &props.listener;
        for (value, path) in [(l.poll_timeout, "listener.poll-timeout"), (l.ack_time, "listener.ack-time")] {
            if value.is_some_and(|d| d.is_zero()) {
                return Err(Error::config(path, "must be above zero; write e.g. \"100ms\""));
            }
        }
        let mut builder = ContainerFactory::builder();
        for (key, value) in properties.iter() {
            builder = builder.set(key, value);
        }
        if let Some(records) = consumer.max_poll_records {
            builder = builder.max_poll_records(records);
        }
        macro_rules! apply {
            ($($field:ident),* $(,)?) => {
                $(if let Some(value) = l.$field { builder = builder.$field(value); })*
            };
        }
        apply!(
            ack_mode,
            ack_count,
            ack_time,
            concurrency,
            poll_timeout,
            shutdown_timeout,
            startup_timeout,
            missing_topics_fatal,
            sync_commits,
            processing_order,
            max_concurrency,
            max_in_flight,
            idle_event_interval,
            non_responsive_after,
            broker_outage_threshold,
            delivery_attempt_header,
        );
        Ok(builder)
    }
}

impl KafkaTemplate {
    /// A template builder holding the producer settings of `props` (`bootstrap-servers`,
    /// `client-id`, `security`, `properties`, `producer`). Builder calls made on it take
    /// precedence; build it with [`build`](KafkaTemplateBuilder::build).
    ///
    /// # Errors
    /// [`Error::Config`] naming the key path of a librdkafka property librdkafka does not know
    /// or refuses (`producer.properties.linger.ms`). `build()` checks the combination.
    pub fn from_properties(props: &KafkaProperties) -> Result<KafkaTemplateBuilder> {
        let producer = &props.producer;
        let mut properties = common(props);
        properties.client_id(&producer.client_id, "producer", props);
        if let Some(acks) = producer.acks {
            properties.set("acks", acks.name(), "producer.acks");
        }
        if let Some(compression) = producer.compression {
            properties.set("compression.type", compression.name(), "producer.compression");
        }
        properties.millis("linger.ms", producer.linger, "producer.linger");
        if let Some(bytes) = producer.batch_size {
            properties.set("batch.size", bytes.to_string(), "producer.batch-size");
        }
        if let Some(retries) = producer.retries {
            properties.set("retries", retries.to_string(), "producer.retries");
        }
        if let Some(idempotence) = producer.idempotence {
            properties.set("enable.idempotence", idempotence.to_string(), "producer.idempotence");
        }
        if let Some(id) = &producer.transactional_id {
            properties.set("transactional.id", id.clone(), "producer.transactional-id");
        }
        properties.map(&producer.properties, "producer.properties.");
        properties.check(false)?;

        let mut builder = KafkaTemplate::builder();
        for (key, value) in properties.iter() {
            builder = builder.set(key, value);
        }
        if let Some(timeout) = producer.send_timeout {
            builder = builder.send_timeout(timeout);
        }
        if let Some(topic) = &producer.default_topic {
            builder = builder.default_topic(topic.clone());
        }
        Ok(builder)
    }
}
