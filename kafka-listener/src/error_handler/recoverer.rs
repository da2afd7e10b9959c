//! What is done with a record that will not be retried: log it, or publish it to a dead-letter
//! topic (Spring's `ConsumerRecordRecoverer` and `DeadLetterPublishingRecoverer`).

use std::fmt;
use std::future::IntoFuture;
use std::sync::Arc;

use super::{describe_key, error_chain, FailedRecord};
use crate::error::Error;
use crate::extract::Record;
use crate::handler::{drive, ListenerFailure};
use crate::producer::{KafkaTemplate, RecordMetadata};

/// Deals with a record whose failure will not be retried. `Ok` means the record counts as
/// processed (its offset may be committed); an error means it must be delivered again.
pub trait Recoverer: Send + Sync + 'static {
    /// Recovers the failed record.
    ///
    /// # Errors
    /// When the record could not be dealt with (e.g. the dead-letter topic did not take it); a
    /// recoverer of your own returns `Error::Recovery(cause.into())`.
    fn recover(&self, failed: &FailedRecord<'_>) -> Result<(), Error>;
}

/// Logs the record (topic, partition, offset, key, error chain) and skips it: the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoggingRecoverer;

impl Recoverer for LoggingRecoverer {
    fn recover(&self, failed: &FailedRecord<'_>) -> Result<(), Error> {
        tracing::error!(
            listener = failed.listener_id,
            topic = failed.record.topic(),
            partition = failed.record.partition(),
            offset = failed.record.offset(),
            key = %describe_key(failed.record.key()),
            attempts = failed.attempt,
            "record skipped after {} attempt(s): {}",
            failed.attempt,
            error_chain(failed.failure)
        );
        Ok(())
    }
}

/// Spring's header names, so that Spring tooling reads our dead letters.
pub mod dlt_headers {
    /// The error's type.
    pub const EXCEPTION_FQCN: &str = "kafka_dlt-exception-fqcn";
    /// The error's message.
    pub const EXCEPTION_MESSAGE: &str = "kafka_dlt-exception-message";
    /// The error chain.
    pub const EXCEPTION_STACKTRACE: &str = "kafka_dlt-exception-stacktrace";
    /// The record's topic.
    pub const ORIGINAL_TOPIC: &str = "kafka_dlt-original-topic";
    /// The record's partition (4-byte big-endian).
    pub const ORIGINAL_PARTITION: &str = "kafka_dlt-original-partition";
    /// The record's offset (8-byte big-endian).
    pub const ORIGINAL_OFFSET: &str = "kafka_dlt-original-offset";
    /// The record's timestamp (8-byte big-endian ms).
    pub const ORIGINAL_TIMESTAMP: &str = "kafka_dlt-original-timestamp";
    /// The record's timestamp type (`CreateTime`).
    pub const ORIGINAL_TIMESTAMP_TYPE: &str = "kafka_dlt-original-timestamp-type";
    /// The consumer group that failed it.
    pub const ORIGINAL_CONSUMER_GROUP: &str = "kafka_dlt-original-consumer-group";
}

type Resolver = Arc<dyn Fn(&Record<'_>) -> String + Send + Sync>;

/// Publishes a failed record to a dead-letter topic (default `<topic>-dlt`), on the same partition
/// when the dead-letter topic has it (else as the template's partitioner says), with the original
/// key, value and headers untouched plus Spring's `kafka_dlt-*` headers. The record counts as
/// processed only once the broker acknowledged the dead letter.
#[derive(Clone)]
pub struct DeadLetterRecoverer {
    template: KafkaTemplate,
    resolver: Resolver,
}

impl fmt::Debug for DeadLetterRecoverer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetterRecoverer").field("template", &self.template).finish_non_exhaustive()
    }
}

impl DeadLetterRecoverer {
    /// Publishes through `template` to `<topic>-dlt`.
    pub fn new(template: KafkaTemplate) -> Self {
        DeadLetterRecoverer { template, resolver: Arc::new(|record| format!("{}-dlt", record.topic())) }
    }

    /// Chooses the dead-letter topic of each record.
    pub fn with_destination(mut self, resolver: impl Fn(&Record<'_>) -> String + Send + Sync + 'static) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }
}

/// A name for the failure's kind, in place of Java's exception class name.
fn failure_type(failure: &ListenerFailure) -> &'static str {
    match failure {
        ListenerFailure::Conversion(_) => "kafka_listener::extract::ConversionError",
        ListenerFailure::Handler(_) => "kafka_listener::ListenerError",
        ListenerFailure::Panic(_) => "kafka_listener::ListenerFailure::Panic",
        ListenerFailure::Reply(_) => "kafka_listener::ListenerFailure::Reply",
        ListenerFailure::Transaction(_) => "kafka_listener::ListenerFailure::Transaction",
    }
}

impl Recoverer for DeadLetterRecoverer {
    fn recover(&self, failed: &FailedRecord<'_>) -> Result<(), Error> {
        let record = failed.record;
        let topic = (self.resolver)(record);
        let stored = forward(&self.template, failed, &topic, &[])?;
        crate::observability::meter::dead_lettered(failed.listener_id, failed.group, record.topic());
        tracing::warn!(listener = failed.listener_id, topic = record.topic(), partition = record.partition(),
            offset = record.offset(), dead_letter = %format!("{}-{}@{}", stored.topic(), stored.partition(), stored.offset()),
            "record dead-lettered after {} attempt(s): {}", failed.attempt, error_chain(failed.failure));
        Ok(())
    }
}

/// Headers a forward replaces: the previous failure's and the retry state.
fn replaced(name: &[u8]) -> bool {
    name.starts_with(b"kafka_dlt-exception-") || name.starts_with(b"retry_topic-")
}

/// Publishes a failed record to `topic` and waits for the broker's ack: on the same partition when
/// `topic` has it (else as the template's partitioner says), with its key, value, timestamp and
/// headers, the failure's `kafka_dlt-exception-*` headers (replacing a previous failure's), the
/// `kafka_dlt-original-*` headers of where it came from (kept from the first forward, as Spring
/// does), and `extra` headers.
pub(crate) fn forward(
    template: &KafkaTemplate,
    failed: &FailedRecord<'_>,
    topic: &str,
    extra: &[(&str, Vec<u8>)],
) -> Result<RecordMetadata, Error> {
    let record = failed.record;
    let partitions = drive(template.partition_count(topic))?;
    let value = record.payload().map(<[u8]>::to_vec);
    let mut send = template.send(topic, value).key(record.key().map(<[u8]>::to_vec));
    if record.partition() < partitions {
        send = send.partition(record.partition());
    }
    let headers = record.headers();
    // As they were: null values stay null, names that are not UTF-8 stay bytes.
    for (name, value) in headers.iter_raw().filter(|(name, _)| !replaced(name)) {
        send = send.raw_header(name, value);
    }
    send = send
        .header(dlt_headers::EXCEPTION_FQCN, failure_type(failed.failure))
        .header(dlt_headers::EXCEPTION_MESSAGE, failed.failure.to_string())
        .header(dlt_headers::EXCEPTION_STACKTRACE, error_chain(failed.failure));
    if headers.get(dlt_headers::ORIGINAL_TOPIC).is_none() {
        send = send
            .header(dlt_headers::ORIGINAL_TOPIC, record.topic())
            .header(dlt_headers::ORIGINAL_PARTITION, record.partition().to_be_bytes())
            .header(dlt_headers::ORIGINAL_OFFSET, record.offset().to_be_bytes())
            .header(dlt_headers::ORIGINAL_CONSUMER_GROUP, failed.group);
        if let Some(timestamp) = record.timestamp() {
            send = send
                .header(dlt_headers::ORIGINAL_TIMESTAMP, timestamp.to_be_bytes())
                .header(dlt_headers::ORIGINAL_TIMESTAMP_TYPE, "CreateTime");
        }
    }
    if let Some(timestamp) = record.timestamp() {
        send = send.timestamp(timestamp);
    }
    for (name, value) in extra {
        send = send.header(*name, value.as_slice());
    }
    drive(send.into_future())
}
