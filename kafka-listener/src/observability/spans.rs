//! The `process` and `send` spans, with OpenTelemetry's messaging fields (see the module docs).
//!
//! Fields are filled in only when a subscriber wants the span: with none, creating one costs
//! the callsite's interest check.

use tracing::field::Empty;
use tracing::Span;

use crate::extract::Record;
use crate::handler::ListenerFailure;

/// Who delivers: the names every `process` span carries.
#[derive(Debug, Clone)]
pub(crate) struct Deliverer<'a> {
    pub(crate) listener: &'a str,
    pub(crate) group: &'a str,
    pub(crate) client_id: &'a str,
}

/// Whether an INFO span may be wanted at all: one atomic load, inlined, before the callsite's
/// own check (the common case in a service that logs at WARN, or has no subscriber).
#[inline]
fn info_wanted() -> bool {
    tracing::level_filters::STATIC_MAX_LEVEL >= tracing::Level::INFO
        && tracing::level_filters::LevelFilter::current() >= tracing::Level::INFO
}

/// The span of one delivery of `record` (`attempt`: 1 for the first).
#[inline]
pub(crate) fn process(by: &Deliverer<'_>, record: &Record<'_>, attempt: u32) -> Span {
    if info_wanted() {
        process_span(by, record, attempt)
    } else {
        Span::none()
    }
}

/// A `process` span with the fields every delivery has, and the given ones (field order as
/// OpenTelemetry lists them does not matter to subscribers).
macro_rules! process_span {
    ($by:expr, $attempt:expr, $($fields:tt)*) => {
        tracing::info_span!(
            target: "kafka_listener",
            "process",
            "messaging.system" = "kafka",
            "messaging.operation.name" = "process",
            "messaging.operation.type" = "process",
            "messaging.consumer.group.name" = $by.group,
            "messaging.client.id" = $by.client_id,
            "kafka_listener.id" = $by.listener,
            "kafka_listener.delivery_attempt" = $attempt,
            "error.type" = Empty,
            "otel.kind" = "consumer",
            "otel.status_code" = Empty,
            $($fields)*
        )
    };
}

fn process_span(by: &Deliverer<'_>, record: &Record<'_>, attempt: u32) -> Span {
    let span = process_span!(
        by,
        attempt,
        "messaging.destination.name" = record.topic(),
        "messaging.destination.partition.id" = record.partition(),
        "messaging.kafka.offset" = record.offset(),
        "messaging.kafka.message.key" = Empty,
    );
    if !span.is_disabled() {
        if let Some(key) = record.key().and_then(|key| std::str::from_utf8(key).ok()) {
            span.record("messaging.kafka.message.key", key);
        }
        #[cfg(feature = "opentelemetry")]
        super::propagation::adopt_parent(&span, record);
    }
    span
}

/// The span of one delivery of a batch (`attempt`: 1 for the first): the topic and partition
/// when every record shares them.
pub(crate) fn batch(by: &Deliverer<'_>, records: &[Record<'_>], attempt: u32) -> Span {
    let span = process_span!(
        by,
        attempt,
        "messaging.batch.message_count" = records.len(),
        "messaging.destination.name" = Empty,
        "messaging.destination.partition.id" = Empty,
    );
    if !span.is_disabled() {
        if let Some(first) = records.first() {
            if records.iter().all(|r| r.same_topic(first)) {
                span.record("messaging.destination.name", first.topic());
                if records.iter().all(|r| r.partition() == first.partition()) {
                    span.record("messaging.destination.partition.id", first.partition());
                }
            }
        }
        #[cfg(feature = "opentelemetry")]
        super::propagation::link_batch(&span, records);
    }
    span
}

/// Records a failed delivery on its span.
pub(crate) fn failed(span: &Span, failure: &ListenerFailure) {
    span.record("error.type", failure.error_type());
    span.record("otel.status_code", "error");
}

/// The span of one `KafkaTemplate` send (the partition when the sender chose it).
#[inline]
pub(crate) fn send(topic: &str, partition: Option<i32>) -> Span {
    if info_wanted() {
        send_span(topic, partition)
    } else {
        Span::none()
    }
}

fn send_span(topic: &str, partition: Option<i32>) -> Span {
    tracing::info_span!(
        target: "kafka_listener",
        "send",
        "messaging.system" = "kafka",
        "messaging.operation.name" = "send",
        "messaging.operation.type" = "send",
        "messaging.destination.name" = topic,
        "messaging.destination.partition.id" = partition,
        "messaging.kafka.offset" = Empty,
        "messaging.kafka.message.key" = Empty,
        "error.type" = Empty,
        "otel.kind" = "producer",
        "otel.status_code" = Empty,
    )
}

/// The sent record's key, when it is UTF-8.
pub(crate) fn send_key(span: &Span, key: Option<&[u8]>) {
    if let Some(key) = key.filter(|_| !span.is_disabled()).and_then(|key| std::str::from_utf8(key).ok()) {
        span.record("messaging.kafka.message.key", key);
    }
}

/// The broker stored the sent record.
pub(crate) fn sent(span: &Span, partition: i32, offset: i64) {
    span.record("messaging.destination.partition.id", partition);
    span.record("messaging.kafka.offset", offset);
}

/// The send failed.
pub(crate) fn send_failed(span: &Span, error: &crate::Error) {
    span.record("error.type", error.error_type());
    span.record("otel.status_code", "error");
}
