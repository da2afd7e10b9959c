//! Observability: a `tracing` span per record (OpenTelemetry's messaging semantic conventions),
//! metrics through the [`metrics`] 0.24 facade, and the listeners' [`Health`].
//!
//! # Traces
//! Every delivery of a record to a record listener runs inside a span with target
//! `kafka_listener` and name `process` (level INFO), with the fields of OpenTelemetry's
//! [messaging spans](https://opentelemetry.io/docs/specs/semconv/messaging/messaging-spans/)
//! and [Kafka conventions](https://opentelemetry.io/docs/specs/semconv/messaging/kafka/):
//! `messaging.system = "kafka"`, `messaging.operation.name = "process"`,
//! `messaging.operation.type = "process"`, `messaging.destination.name` (the topic),
//! `messaging.destination.partition.id`, `messaging.kafka.offset`,
//! `messaging.consumer.group.name`, `messaging.kafka.message.key` (when the key is UTF-8),
//! `messaging.client.id` (the consumer's `client.id`), `kafka_listener.id` and
//! `kafka_listener.delivery_attempt` (1 for the first delivery; each retry of the error handler
//! is a `process` span of its own), and `otel.kind = "consumer"`. The handler's own spans and
//! events, async ones included, are inside it, and so are the error handler's decision and its
//! recoverer's dead-letter send. A failure sets `error.type` (see
//! [`ListenerFailure::error_type`](crate::ListenerFailure::error_type)) and
//! `otel.status_code = "error"`. A batch listener's delivery is one `process` span with
//! `messaging.batch.message_count` (and the topic and partition when all records share them).
//!
//! [`KafkaTemplate`](crate::KafkaTemplate) sends run inside a `send` span
//! (`messaging.operation.name = "send"`, `otel.kind = "producer"`), which gets the partition and
//! offset once the broker stored the record; dead-letter and retry-topic forwards and replies
//! are such spans inside the `process` span. With the cargo feature `opentelemetry`, sends carry
//! W3C `traceparent` / `tracestate` headers, and the `process` span takes a record's context as
//! its parent, so one trace crosses Kafka (see the feature's notes in the README).
//!
//! With no subscriber installed, spans cost a load and a branch per record.
//!
//! # Metrics
//! Recorded through the [`metrics`] facade: nothing is kept until the application installs a
//! recorder (e.g. `metrics-exporter-prometheus`), which it should do **before** starting the
//! listeners: a container looks its metric handles up, and decides whether to time deliveries,
//! when it starts. A recorder installed later gets only what is looked up each time (the lag
//! gauge, sends, dead letters, errors and retries) until the listener is stopped and started. Durations are in seconds;
//! labels never carry keys or offsets. The names are the constants of this module; call
//! [`describe_metrics`] after installing a recorder to give them units and descriptions.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | [`CONSUMED_MESSAGES`] | counter (records) | destination, group, listener |
//! | [`PROCESS_DURATION`] | histogram (s) | destination, group, listener; `error.type` on failure |
//! | [`SENT_MESSAGES`] | counter (records) | destination; `error.type` on failure |
//! | [`ERRORS`] | counter | destination, group, listener, `error.type` |
//! | [`RETRIES`] | counter | destination, group, listener |
//! | [`DEAD_LETTERS`] | counter | destination (the failed record's topic), group, listener |
//! | [`COMMITS`] | counter | group, listener, `result` = `ok` \| `failed` |
//! | [`REBALANCES`] | counter | group, listener |
//! | [`CONSUMER_LAG`] | gauge (records) | destination, partition, group, listener |
//! | [`PAUSED_PARTITIONS`] | gauge (partitions) | group, listener |
//!
//! Label names: `messaging.destination.name`, `messaging.destination.partition.id`,
//! `messaging.consumer.group.name`, `kafka_listener.id`, `error.type`, `result`.
//!
//! # Health
//! [`RunningListeners::health`](crate::RunningListeners::health) returns a [`Health`]: each
//! listener's consumers and their [`ConsumerState`], with Spring Boot actuator's split between
//! liveness ([`Health::is_live`]) and readiness ([`Health::is_ready`]). After a stop and a start
//! a listener is not ready until its group assigns partitions again, which a broker may delay up
//! to `session.timeout.ms` for a member it still counts (the embedded broker does).

pub(crate) mod health;
pub(crate) mod meter;
#[cfg(feature = "opentelemetry")]
pub(crate) mod propagation;
pub(crate) mod spans;

pub use health::{ConsumerHealth, ConsumerState, Health, ListenerHealth};

/// `messaging.client.consumed.messages`: records the consumers received from the broker
/// (OpenTelemetry's messaging metric; counted as polled, filtered records included).
pub const CONSUMED_MESSAGES: &str = "messaging.client.consumed.messages";
/// `messaging.process.duration`: how long each delivery to the listener took, in seconds
/// (conversion, handler, reply; per record, or per batch for batch listeners), with
/// `error.type` when it failed.
pub const PROCESS_DURATION: &str = "messaging.process.duration";
/// `messaging.client.sent.messages`: records `KafkaTemplate` sent (counted when the broker
/// answered), with `error.type` when it refused them.
pub const SENT_MESSAGES: &str = "messaging.client.sent.messages";
/// `kafka_listener.errors`: failed deliveries to a listener, by `error.type`: every failed
/// attempt counts (a record that fails, is retried once and fails again counts 2).
pub const ERRORS: &str = "kafka_listener.errors";
/// `kafka_listener.retries`: deliveries the error handler decided to retry (in place, after its
/// back-off).
pub const RETRIES: &str = "kafka_listener.retries";
/// `kafka_listener.dead_letters`: failed records the dead-letter recoverer published.
pub const DEAD_LETTERS: &str = "kafka_listener.dead_letters";
/// `kafka_listener.commits`: offset commits, by `result` (`ok` or `failed`).
pub const COMMITS: &str = "kafka_listener.commits";
/// `kafka_listener.rebalances`: partition assignments the consumers received from the group.
pub const REBALANCES: &str = "kafka_listener.rebalances";
/// `kafka_listener.consumer.lag`: per partition a consumer owns, the records between the
/// committed offset and the partition's end (Kafka's consumer lag: the high watermark librdkafka
/// learned from its last fetch, minus the group's committed offset as the consumer knows it:
/// the last commit it sent, else the one librdkafka's statistics reported, else where it
/// started reading), updated every second, also while a handler runs.
pub const CONSUMER_LAG: &str = "kafka_listener.consumer.lag";
/// `kafka_listener.paused_partitions`: partitions paused now (by the container for
/// back-pressure or a retry, by a handler, or the whole listener), updated about every second.
pub const PAUSED_PARTITIONS: &str = "kafka_listener.paused_partitions";

/// Label: the topic (OpenTelemetry's `messaging.destination.name`).
pub const LABEL_DESTINATION: &str = "messaging.destination.name";
/// Label: the partition (OpenTelemetry's `messaging.destination.partition.id`).
pub const LABEL_PARTITION: &str = "messaging.destination.partition.id";
/// Label: the consumer group (OpenTelemetry's `messaging.consumer.group.name`).
pub const LABEL_GROUP: &str = "messaging.consumer.group.name";
/// Label: the listener id.
pub const LABEL_LISTENER: &str = "kafka_listener.id";
/// Label: what kind of failure (OpenTelemetry's `error.type`).
pub const LABEL_ERROR_TYPE: &str = "error.type";

/// Describes every metric of this module to the installed recorder: units and help texts
/// (Prometheus' `# HELP` lines; `metrics-exporter-prometheus` appends unit suffixes such as
/// `_seconds` only with `set_enable_unit_suffix(true)`). Call it after installing the recorder;
/// without one it does nothing.
pub fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(CONSUMED_MESSAGES, Unit::Count, "Records the listeners' consumers received from Kafka");
    describe_histogram!(PROCESS_DURATION, Unit::Seconds, "Duration of each delivery to a listener");
    describe_counter!(SENT_MESSAGES, Unit::Count, "Records KafkaTemplate sent");
    describe_counter!(ERRORS, Unit::Count, "Failed deliveries to a listener, by error.type");
    describe_counter!(RETRIES, Unit::Count, "Deliveries the error handler retried");
    describe_counter!(DEAD_LETTERS, Unit::Count, "Failed records published to a dead-letter topic");
    describe_counter!(COMMITS, Unit::Count, "Offset commits, by result");
    describe_counter!(REBALANCES, Unit::Count, "Partition assignments received from the group");
    describe_gauge!(CONSUMER_LAG, Unit::Count, "Records between the committed offset and the end, per partition");
    describe_gauge!(PAUSED_PARTITIONS, Unit::Count, "Partitions paused now");
}
