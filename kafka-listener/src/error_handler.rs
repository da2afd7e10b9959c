//! What happens when a listener fails: retry, recover, or stop (Spring's `CommonErrorHandler`).

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::time::Duration;

use crate::extract::Record;
use crate::handler::ListenerFailure;

/// A record whose listener failed.
#[derive(Debug)]
pub struct FailedRecord<'a> {
    /// The listener id.
    pub listener_id: &'a str,
    /// The record.
    pub record: &'a Record<'a>,
    /// Why it failed.
    pub failure: &'a ListenerFailure,
    /// Which attempt failed: 1 for the first delivery.
    pub attempt: u32,
}

/// A batch whose (batch) listener failed.
#[derive(Debug)]
pub struct FailedBatch<'a> {
    /// The listener id.
    pub listener_id: &'a str,
    /// The records given to the listener.
    pub records: &'a [Record<'a>],
    /// Why it failed.
    pub failure: &'a ListenerFailure,
    /// Which attempt failed: 1 for the first delivery.
    pub attempt: u32,
}

/// What the container does with a failed record or batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorDecision {
    /// Invoke the listener again after this delay. The consumer's partitions are paused meanwhile,
    /// so the consumer stays in its group.
    Retry(Duration),
    /// The failure was dealt with (logged, dead-lettered, ...): the record counts as processed and
    /// its offset may be committed.
    Recovered,
    /// Stop the container without committing the record; it is delivered again on restart.
    Stop,
}

/// Decides what happens when a listener fails. Called on the container's thread.
///
/// Implementations may log, count, publish to a dead-letter topic, and decide to retry.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an error handler",
    note = "implement `kafka_listener::ErrorHandler` (handle_record, and handle_batch for batch listeners)"
)]
pub trait ErrorHandler: Send + Sync + 'static {
    /// A record listener failed on `failed.record`.
    fn handle_record(&self, failed: &FailedRecord<'_>) -> ErrorDecision;

    /// A batch listener failed. The default treats the batch as one record would be treated,
    /// through the same policy as [`handle_record`](Self::handle_record) for its first record.
    fn handle_batch(&self, failed: &FailedBatch<'_>) -> ErrorDecision {
        match failed.records.first() {
            Some(record) => self.handle_record(&FailedRecord {
                listener_id: failed.listener_id,
                record,
                failure: failed.failure,
                attempt: failed.attempt,
            }),
            None => ErrorDecision::Recovered,
        }
    }
}

/// Spring's `DefaultErrorHandler` defaults: a failed record is retried up to 9 more times without
/// back-off, then logged (topic, partition, offset, key, error chain) and skipped. Conversion
/// failures are not retried. A batch is retried and logged as a whole.
#[derive(Debug, Clone)]
pub struct DefaultErrorHandler {
    max_retries: u32,
    interval: Duration,
}

impl Default for DefaultErrorHandler {
    fn default() -> Self {
        DefaultErrorHandler { max_retries: 9, interval: Duration::ZERO }
    }
}

impl DefaultErrorHandler {
    /// 9 retries, no back-off.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many times a failed record is retried before it is logged and skipped.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The pause before each retry (the partitions are paused meanwhile).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    fn decide(&self, failure: &ListenerFailure, attempt: u32) -> Option<ErrorDecision> {
        (failure.is_retryable() && attempt <= self.max_retries).then_some(ErrorDecision::Retry(self.interval))
    }
}

impl ErrorHandler for DefaultErrorHandler {
    fn handle_record(&self, failed: &FailedRecord<'_>) -> ErrorDecision {
        if let Some(retry) = self.decide(failed.failure, failed.attempt) {
            tracing::debug!(listener = failed.listener_id, topic = failed.record.topic(), partition = failed.record.partition(),
                offset = failed.record.offset(), attempt = failed.attempt, error = %failed.failure, "listener failed; retrying");
            return retry;
        }
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
        ErrorDecision::Recovered
    }

    fn handle_batch(&self, failed: &FailedBatch<'_>) -> ErrorDecision {
        if let Some(retry) = self.decide(failed.failure, failed.attempt) {
            return retry;
        }
        let (first, last) = (failed.records.first(), failed.records.last());
        tracing::error!(
            listener = failed.listener_id,
            records = failed.records.len(),
            first = %first.map(|r| format!("{}-{}@{}", r.topic(), r.partition(), r.offset())).unwrap_or_default(),
            last = %last.map(|r| format!("{}-{}@{}", r.topic(), r.partition(), r.offset())).unwrap_or_default(),
            attempts = failed.attempt,
            "batch skipped after {} attempt(s): {}",
            failed.attempt,
            error_chain(failed.failure)
        );
        ErrorDecision::Recovered
    }
}

/// The error and its sources, joined with `: `.
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their source in their own message.
        if !text.ends_with(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// A key for a log line: UTF-8 text (cut to 64 characters) or a hex preview.
pub(crate) fn describe_key(key: Option<&[u8]>) -> String {
    match key {
        None => "<none>".to_string(),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) if text.chars().count() <= 64 => format!("{text:?}"),
            Ok(text) => format!("{:?}…", text.chars().take(64).collect::<String>()),
            Err(_) => {
                let hex: String = bytes.iter().take(32).map(|b| format!("{b:02x}")).collect();
                format!("0x{hex}{}", if bytes.len() > 32 { "…" } else { "" })
            }
        },
    }
}
