//! `KafkaProperties`: Spring Boot's `spring.kafka.*` tree, read from any configuration source.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use super::values;
use super::{AckMode, GroupProtocol, ProcessingOrder, SaslMechanism};
use crate::producer::{Acks, Compression};

/// Kafka settings as a service configures them: from a file and the environment, without code
/// (Spring Boot's `spring.kafka.*`, kebab-case keys).
///
/// It is a [`serde::Deserialize`] tree: load it with the configuration library the service
/// uses (figment, config-rs, a plain TOML or YAML parser), or from `KAFKA_*` variables with
/// [`from_env`](Self::from_env). Then [`ContainerFactory::from_properties`](crate::ContainerFactory::from_properties),
/// [`KafkaTemplate::from_properties`](crate::KafkaTemplate::from_properties), or
/// [`ListenerRegistry::with_properties`](crate::ListenerRegistry::with_properties), which also
/// applies the per-listener overrides (`listeners.<id>`).
///
/// A key the tree does not have is an error naming it and the valid keys. Durations are written
/// with their unit (`"1500ms"`, `"5s"`, `"2m"`); numbers and booleans may be given as text (as
/// environment variables give them). Secrets (`security.sasl.password`,
/// `security.ssl.key-password`, secret librdkafka properties) never appear in `Debug`.
///
/// ```toml
/// bootstrap-servers = "kafka-1:9092,kafka-2:9092"
/// client-id = "billing"
///
/// [consumer]
/// group-id = "billing"
/// auto-offset-reset = "earliest"
/// max-poll-records = 500
/// properties = { "fetch.max.bytes" = 52428800 }
///
/// [producer]
/// acks = "all"
/// compression = "zstd"
/// linger = "5ms"
///
/// [listener]
/// ack-mode = "batch"
/// concurrency = 3
/// poll-timeout = "1500ms"
///
/// [listeners.audit]          # the listener whose id is `audit`
/// concurrency = 1
/// ack-mode = "record"
/// ```
///
/// Precedence, most specific last (it wins): these properties' factory settings (`listener`,
/// `consumer`) < builder calls in code on that factory < the listener's attribute or
/// [`Endpoint`](crate::Endpoint) setting < `listeners.<id>` (so operators change one listener
/// without a rebuild).
///
/// Loaded with figment (a TOML file, then `KAFKA_*` variables over it, their names mapped by
/// [`env_key`](Self::env_key)):
///
/// ```
/// use figment::providers::{Env, Format, Toml};
/// use kafka_listener::prelude::*;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let props: KafkaProperties = figment::Figment::new()
///     .merge(Toml::string("bootstrap-servers = \"localhost:9092\"\n[listener]\nconcurrency = 2"))
///     .merge(Env::prefixed("KAFKA_").filter_map(|key| KafkaProperties::env_key(key.as_str()).map(Into::into)))
///     .extract()?;
/// let factory = ContainerFactory::from_properties(&props)?.build()?;
/// assert_eq!(factory.concurrency(), 2);
/// # Ok(()) }
/// ```
///
/// And with config-rs (a YAML file):
///
/// ```
/// use kafka_listener::prelude::*;
///
/// let yaml = "bootstrap-servers: localhost:9092\nconsumer:\n  group-id: billing\n";
/// let props: KafkaProperties = config::Config::builder()
///     .add_source(config::File::from_str(yaml, config::FileFormat::Yaml))
///     .build()
///     .and_then(|c| c.try_deserialize())
///     .unwrap_or_else(|e| panic!("{e}"));
/// assert_eq!(props.consumer.group_id.as_deref(), Some("billing"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct KafkaProperties {
    /// The brokers to bootstrap from, for consumers and producers: `"host:9092,host2:9092"` or a
    /// list (librdkafka's `bootstrap.servers`).
    #[serde(deserialize_with = "values::list")]
    pub bootstrap_servers: Option<Vec<String>>,
    /// The client id of consumers and producers (`client.id`; each consumer gets `<id>-<n>`).
    #[serde(deserialize_with = "values::text")]
    pub client_id: Option<String>,
    /// SASL and SSL, for consumers and producers.
    pub security: SecurityProperties,
    /// librdkafka properties for consumers and producers (Spring's `spring.kafka.properties`).
    pub properties: ClientProperties,
    /// Consumer settings.
    pub consumer: ConsumerProperties,
    /// Producer settings (the template).
    pub producer: ProducerProperties,
    /// Container settings, the defaults of every listener (Spring's `spring.kafka.listener`).
    pub listener: ListenerProperties,
    /// Per-listener overrides by listener id; they beat everything else. An id no listener has
    /// is a start error.
    pub listeners: BTreeMap<String, ListenerOverride>,
}

/// SASL and SSL settings (librdkafka's `security.protocol`, `sasl.*`, `ssl.*`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SecurityProperties {
    /// `plaintext`, `ssl`, `sasl-plaintext` or `sasl-ssl` (`security.protocol`). Unless set:
    /// `sasl-ssl` with SASL and SSL settings, `sasl-plaintext` with SASL only, `ssl` with SSL only.
    #[serde(deserialize_with = "values::parsed")]
    pub protocol: Option<SecurityProtocol>,
    /// SASL authentication.
    pub sasl: Option<SaslProperties>,
    /// SSL certificates (need kafka-listener's `ssl` feature).
    pub ssl: SslProperties,
}

/// SASL user and password.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub struct SaslProperties {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (`sasl.mechanisms`).
    #[serde(deserialize_with = "required_mechanism")]
    pub mechanism: SaslMechanism,
    /// `sasl.username`.
    #[serde(deserialize_with = "required_text")]
    pub username: String,
    /// `sasl.password`, never shown.
    pub password: Secret,
}

fn required_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    values::text(d).map(Option::unwrap_or_default)
}

fn required_mechanism<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SaslMechanism, D::Error> {
    values::parsed(d).map(|m| m.unwrap_or(SaslMechanism::Plain))
}

/// SSL certificate files.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SslProperties {
    /// CA certificates to verify the brokers with (`ssl.ca.location`).
    #[serde(deserialize_with = "values::text")]
    pub ca_location: Option<String>,
    /// The client's certificate (`ssl.certificate.location`).
    #[serde(deserialize_with = "values::text")]
    pub certificate_location: Option<String>,
    /// The client's private key (`ssl.key.location`).
    #[serde(deserialize_with = "values::text")]
    pub key_location: Option<String>,
    /// The private key's password (`ssl.key.password`), never shown.
    pub key_password: Option<Secret>,
}

impl SslProperties {
    pub(crate) fn is_set(&self) -> bool {
        self.ca_location.is_some() || self.certificate_location.is_some() || self.key_location.is_some()
    }
}

/// Consumer settings (Spring's `spring.kafka.consumer`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ConsumerProperties {
    /// The group of listeners that name none (`group.id`; else a listener's id is its group).
    #[serde(deserialize_with = "values::text")]
    pub group_id: Option<String>,
    /// The consumers' client id, over the top-level `client-id`.
    #[serde(deserialize_with = "values::text")]
    pub client_id: Option<String>,
    /// Where a group without a committed offset starts: `earliest` (the container's default),
    /// `latest`, or `none` (an error; librdkafka's `error`).
    #[serde(deserialize_with = "values::parsed")]
    pub auto_offset_reset: Option<AutoOffsetReset>,
    /// The most records one poll hands to the listener (default 500).
    #[serde(deserialize_with = "values::count")]
    pub max_poll_records: Option<usize>,
    /// How long a consumer may go between polls before it leaves the group
    /// (`max.poll.interval.ms`; with the consumer protocol, the rebalance timeout too).
    #[serde(deserialize_with = "values::duration")]
    pub max_poll_interval: Option<Duration>,
    /// Classic protocol only: how long a silent member keeps its partitions (`session.timeout.ms`).
    #[serde(deserialize_with = "values::duration")]
    pub session_timeout: Option<Duration>,
    /// Classic protocol only: the heartbeat interval (`heartbeat.interval.ms`).
    #[serde(deserialize_with = "values::duration")]
    pub heartbeat_interval: Option<Duration>,
    /// `read-committed` or `read-uncommitted` (`isolation.level`).
    #[serde(deserialize_with = "values::parsed")]
    pub isolation_level: Option<IsolationLevel>,
    /// `classic` (default) or `consumer` (KIP-848; `group.protocol`). See [`GroupProtocol`].
    #[serde(deserialize_with = "values::parsed")]
    pub group_protocol: Option<GroupProtocol>,
    /// The broker-side assignor of the consumer protocol, `uniform` or `range`
    /// (`group.remote.assignor`).
    #[serde(deserialize_with = "values::text")]
    pub group_remote_assignor: Option<String>,
    /// Any librdkafka consumer property.
    pub properties: ClientProperties,
}

/// Producer settings (Spring's `spring.kafka.producer`), for the template.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ProducerProperties {
    /// The producer's client id, over the top-level `client-id`.
    #[serde(deserialize_with = "values::text")]
    pub client_id: Option<String>,
    /// `0`, `1` or `all` (`acks`; default `all`).
    #[serde(deserialize_with = "values::parsed")]
    pub acks: Option<Acks>,
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd` (`compression.type`).
    #[serde(deserialize_with = "values::parsed", alias = "compression-type")]
    pub compression: Option<Compression>,
    /// How long records wait to fill a batch (`linger.ms`; default 0 ms).
    #[serde(deserialize_with = "values::duration")]
    pub linger: Option<Duration>,
    /// The largest batch in bytes (`batch.size`).
    #[serde(deserialize_with = "values::count")]
    pub batch_size: Option<usize>,
    /// How often a failed send is retried (`retries`).
    #[serde(deserialize_with = "values::parsed")]
    pub retries: Option<u32>,
    /// Idempotent sends (`enable.idempotence`; default true).
    #[serde(deserialize_with = "values::flag", alias = "enable-idempotence")]
    pub idempotence: Option<bool>,
    /// Makes the template transactional (`transactional.id`; unique per producer instance).
    #[serde(deserialize_with = "values::text")]
    pub transactional_id: Option<String>,
    /// How long a send may wait for room and delivery (default 30 s; `message.timeout.ms`).
    #[serde(deserialize_with = "values::duration")]
    pub send_timeout: Option<Duration>,
    /// The topic of `send_default`.
    #[serde(deserialize_with = "values::text")]
    pub default_topic: Option<String>,
    /// Any librdkafka producer property.
    pub properties: ClientProperties,
}

/// Container settings (Spring's `spring.kafka.listener`): the defaults of every listener of the
/// factory made from them. See [`ContainerFactoryBuilder`](crate::ContainerFactoryBuilder) for
/// what each does.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ListenerProperties {
    /// When offsets are committed: `record`, `batch` (default), `time`, `count`, `count-time`,
    /// `manual`, `manual-immediate`.
    #[serde(deserialize_with = "values::parsed")]
    pub ack_mode: Option<AckMode>,
    /// Records between commits with `count` / `count-time`.
    #[serde(deserialize_with = "values::count")]
    pub ack_count: Option<u64>,
    /// Time between commits with `time` / `count-time`.
    #[serde(deserialize_with = "values::duration")]
    pub ack_time: Option<Duration>,
    /// Consumers per listener (default 1).
    #[serde(deserialize_with = "values::count")]
    pub concurrency: Option<usize>,
    /// How long one poll waits for records (default 100 ms).
    #[serde(deserialize_with = "values::duration")]
    pub poll_timeout: Option<Duration>,
    /// How long a stop waits for records in hand (default 10 s).
    #[serde(deserialize_with = "values::duration")]
    pub shutdown_timeout: Option<Duration>,
    /// How long `start()` waits for the broker's metadata (default 10 s).
    #[serde(deserialize_with = "values::duration")]
    pub startup_timeout: Option<Duration>,
    /// Whether a missing topic fails `start()` (default false).
    #[serde(deserialize_with = "values::flag")]
    pub missing_topics_fatal: Option<bool>,
    /// Synchronous commits (default false).
    #[serde(deserialize_with = "values::flag")]
    pub sync_commits: Option<bool>,
    /// `partition` (default), `key` or `unordered`.
    #[serde(deserialize_with = "values::parsed")]
    pub processing_order: Option<ProcessingOrder>,
    /// Records in flight per consumer with a concurrent processing order (default 16).
    #[serde(deserialize_with = "values::count")]
    pub max_concurrency: Option<usize>,
    /// Unacknowledged records per partition before it is paused (default 10,000).
    #[serde(deserialize_with = "values::count")]
    pub max_in_flight: Option<usize>,
    /// Idle events when no record arrived for this long (default: none).
    #[serde(deserialize_with = "values::duration")]
    pub idle_event_interval: Option<Duration>,
    /// A consumer that has not polled for this long is not live (default 30 s).
    #[serde(deserialize_with = "values::duration")]
    pub non_responsive_after: Option<Duration>,
    /// No broker reachable for this long turns readiness off (default 30 s).
    #[serde(deserialize_with = "values::duration")]
    pub broker_outage_threshold: Option<Duration>,
    /// Adds the `kafka_deliveryAttempt` header (default false).
    #[serde(deserialize_with = "values::flag")]
    pub delivery_attempt_header: Option<bool>,
}

/// The settings of one listener, by id (`listeners.<id>`), over its attribute or
/// [`Endpoint`](crate::Endpoint) and its factory: operators change one listener without a
/// rebuild. Values are taken as written (no `${ENV}` placeholders: the loader interpolates, if
/// at all). Ids from environment variables (`KAFKA_LISTENERS__AUDIT_LOG__CONCURRENCY` gives
/// `audit-log`) match a listener id ignoring case, `-` and `_` when none matches exactly.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ListenerOverride {
    /// Consumers of this listener.
    #[serde(deserialize_with = "values::count")]
    pub concurrency: Option<usize>,
    /// Its consumer group.
    #[serde(deserialize_with = "values::text")]
    pub group: Option<String>,
    /// The topics it subscribes to, instead of its own topics or pattern.
    #[serde(deserialize_with = "values::list")]
    pub topics: Option<Vec<String>>,
    /// Whether it starts with the registry (`false`: start it with `RunningListeners::start`).
    #[serde(deserialize_with = "values::flag")]
    pub auto_startup: Option<bool>,
    /// Its ack mode.
    #[serde(deserialize_with = "values::parsed")]
    pub ack_mode: Option<AckMode>,
    /// Its processing order.
    #[serde(deserialize_with = "values::parsed")]
    pub processing_order: Option<ProcessingOrder>,
    /// Its records in flight per consumer with a concurrent processing order.
    #[serde(deserialize_with = "values::count")]
    pub max_concurrency: Option<usize>,
    /// The prefix of its consumers' client ids.
    #[serde(deserialize_with = "values::text")]
    pub client_id_prefix: Option<String>,
    /// librdkafka consumer properties of this listener, over the factory's.
    pub properties: ClientProperties,
}

/// A secret value (a password): never shown by `Debug` or in errors. Read from text or a number
/// (`password = 12345`), so that a loader's type error never quotes it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        values::text(d).map(|text| Secret(text.unwrap_or_default()))
    }
}

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, to hand to the client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// librdkafka properties by name (`fetch.max.bytes` → `"52428800"`). Values may be written as
/// numbers or booleans; nested maps are joined with dots, so TOML's dotted keys work unquoted.
/// `Debug` shows secret properties (passwords, keys, JAAS and OAuth configs) as `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ClientProperties(#[serde(deserialize_with = "values::properties")] BTreeMap<String, String>);

impl ClientProperties {
    /// A property's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Sets a property.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    /// The properties, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether none is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for ClientProperties {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        ClientProperties(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl fmt::Debug for ClientProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (k, if super::is_secret(k) { "<redacted>" } else { v })))
            .finish()
    }
}

/// Where a group without a committed offset starts (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOffsetReset {
    /// The partition's first record.
    Earliest,
    /// The partition's end: only records produced from now.
    Latest,
    /// No reset: the consumer reports an error (Kafka's `none`, librdkafka's `error`).
    None,
}

impl AutoOffsetReset {
    pub(crate) fn librdkafka(self) -> &'static str {
        match self {
            AutoOffsetReset::Earliest => "earliest",
            AutoOffsetReset::Latest => "latest",
            AutoOffsetReset::None => "error",
        }
    }
}

impl FromStr for AutoOffsetReset {
    type Err = String;
    /// `earliest`, `latest` or `none`.
    fn from_str(s: &str) -> Result<Self, String> {
        match values::relaxed(s).as_str() {
            "earliest" => Ok(AutoOffsetReset::Earliest),
            "latest" => Ok(AutoOffsetReset::Latest),
            "none" | "error" => Ok(AutoOffsetReset::None),
            _ => Err("write `earliest`, `latest` or `none`".to_string()),
        }
    }
}

/// Which records of transactions a consumer reads (`isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationLevel {
    /// Only committed transactions' records (librdkafka's default).
    ReadCommitted,
    /// Every record, aborted transactions' too.
    ReadUncommitted,
}

impl FromStr for IsolationLevel {
    type Err = String;
    /// `read-committed` or `read-uncommitted` (`_` alike).
    fn from_str(s: &str) -> Result<Self, String> {
        match values::relaxed(s).as_str() {
            "read-committed" => Ok(IsolationLevel::ReadCommitted),
            "read-uncommitted" => Ok(IsolationLevel::ReadUncommitted),
            _ => Err("write `read-committed` or `read-uncommitted`".to_string()),
        }
    }
}

/// How clients reach the brokers (`security.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// No encryption or authentication.
    Plaintext,
    /// SSL.
    Ssl,
    /// SASL without encryption.
    SaslPlaintext,
    /// SASL over SSL.
    SaslSsl,
}

impl SecurityProtocol {
    pub(crate) fn librdkafka(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }
}

impl FromStr for SecurityProtocol {
    type Err = String;
    /// `plaintext`, `ssl`, `sasl-plaintext` or `sasl-ssl` (any case, `_` alike).
    fn from_str(s: &str) -> Result<Self, String> {
        match values::relaxed(s).as_str() {
            "plaintext" => Ok(SecurityProtocol::Plaintext),
            "ssl" => Ok(SecurityProtocol::Ssl),
            "sasl-plaintext" => Ok(SecurityProtocol::SaslPlaintext),
            "sasl-ssl" => Ok(SecurityProtocol::SaslSsl),
            _ => Err("write `plaintext`, `ssl`, `sasl-plaintext` or `sasl-ssl`".to_string()),
        }
    }
}

impl FromStr for SaslMechanism {
    type Err = String;
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (any case).
    fn from_str(s: &str) -> Result<Self, String> {
        match values::relaxed(s).as_str() {
            "plain" => Ok(SaslMechanism::Plain),
            "scram-sha-256" => Ok(SaslMechanism::ScramSha256),
            "scram-sha-512" => Ok(SaslMechanism::ScramSha512),
            _ => Err("write `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (other mechanisms: set sasl.mechanisms under properties)".to_string()),
        }
    }
}

impl FromStr for Acks {
    type Err = String;
    /// `0`, `1`, `all` or `-1` (all).
    fn from_str(s: &str) -> Result<Self, String> {
        match values::relaxed(s).as_str() {
            "0" | "none" => Ok(Acks::None),
            "1" | "leader" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            _ => Err("write `0`, `1` or `all`".to_string()),
        }
    }
}

impl FromStr for Compression {
    type Err = String;
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    fn from_str(s: &str) -> Result<Self, String> {
        match values::relaxed(s).as_str() {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "snappy" => Ok(Compression::Snappy),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            _ => Err("write `none`, `gzip`, `snappy`, `lz4` or `zstd`".to_string()),
        }
    }
}
