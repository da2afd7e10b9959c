//! Non-blocking retries through retry topics (Spring's `@RetryableTopic`): a failed record is
//! republished to `<topic>-retry-<n>` with the time it is due, handled there by the same listener
//! once due, and after the last attempt published to `<topic>-dlt`. The main topic keeps flowing.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::recoverer::forward;
use super::{ErrorDecision, ErrorHandler, FailedBatch, FailedRecord};
use crate::extract::Record;
use crate::producer::KafkaTemplate;

/// Spring's header names for retry topics.
pub mod retry_headers {
    /// The attempt the record is at on its retry topic: 2 for the first retry (4-byte big-endian).
    pub const ATTEMPTS: &str = "retry_topic-attempts";
    /// When the record is due, in ms since the epoch (8-byte big-endian).
    pub const BACKOFF_TIMESTAMP: &str = "retry_topic-backoff-timestamp";
}

/// The retry-topic policy of a listener (the `retry(...)` attribute, `Endpoint::retry_topics`) or
/// of every listener of a factory (`ContainerFactoryBuilder::retry_topics`).
///
/// With `attempts = 4` a record is delivered at most 4 times: on its topic, then on
/// `<topic>-retry-0`, `-retry-1` and `-retry-2` (after `backoff`, `backoff × multiplier`,
/// `backoff × multiplier²`, each at most `max_backoff`), then it goes to `<topic>-dlt`. Failures
/// that retrying cannot fix (conversion failures, `ListenerError::fatal`) go to `<topic>-dlt` at
/// once. A record leaves a topic (its offset is committed) only once the next topic has it.
///
/// ```
/// use std::time::Duration;
/// use kafka_listener::error_handler::RetryTopics;
///
/// let policy = RetryTopics::new().attempts(4).backoff(Duration::from_secs(1)).multiplier(2.0);
/// assert_eq!(policy.retry_topics("orders"), ["orders-retry-0", "orders-retry-1", "orders-retry-2"]);
/// assert_eq!(policy.delay(2), Duration::from_secs(4));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryTopics {
    attempts: u32,
    backoff: Duration,
    multiplier: f64,
    max_backoff: Duration,
    single_topic: bool,
    partitions: Option<i32>,
    auto_create: bool,
}

impl Default for RetryTopics {
    /// Spring's defaults: 3 attempts, 1 s between them.
    fn default() -> Self {
        RetryTopics {
            attempts: 3,
            backoff: Duration::from_secs(1),
            multiplier: 1.0,
            max_backoff: Duration::from_secs(30),
            single_topic: false,
            partitions: None,
            auto_create: true,
        }
    }
}

impl RetryTopics {
    /// 3 attempts, 1 s apart.
    pub fn new() -> Self {
        Self::default()
    }

    /// Deliveries in all, the first included (at least 1: then failures go to the DLT at once).
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The wait before the first retry.
    pub fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Each further retry waits this many times longer (1.0: a fixed back-off).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// The longest wait.
    pub fn max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// All retries go through one topic, `<topic>-retry` (only with a fixed back-off: records wait
    /// behind the head of their partition).
    pub fn single_topic(mut self, single: bool) -> Self {
        self.single_topic = single;
        self
    }

    /// The partition count of the retry and dead-letter topics created at start (default: as the
    /// listener's topic).
    pub fn partitions(mut self, partitions: i32) -> Self {
        self.partitions = Some(partitions);
        self
    }

    /// Whether missing retry and dead-letter topics are created at start (default true); else
    /// they are a start error.
    pub fn auto_create(mut self, create: bool) -> Self {
        self.auto_create = create;
        self
    }

    /// The deliveries in all.
    pub fn max_attempts(&self) -> u32 {
        self.attempts
    }

    /// The wait before retry `index` (0 for the first retry).
    pub fn delay(&self, index: u32) -> Duration {
        let factor = self.multiplier.max(0.0).powi(i32::try_from(index).unwrap_or(i32::MAX));
        let delay = self.backoff.as_secs_f64() * factor;
        if !delay.is_finite() || delay >= self.max_backoff.as_secs_f64() {
            self.max_backoff
        } else {
            Duration::from_secs_f64(delay)
        }
    }

    /// The retry topics of `topic`, in order.
    pub fn retry_topics(&self, topic: &str) -> Vec<String> {
        match self.retries() {
            0 => Vec::new(),
            _ if self.single_topic => vec![format!("{topic}-retry")],
            n => (0..n).map(|i| format!("{topic}-retry-{i}")).collect(),
        }
    }

    /// The dead-letter topic of `topic`.
    pub fn dlt_topic(&self, topic: &str) -> String {
        format!("{topic}-dlt")
    }

    pub(crate) fn retries(&self) -> u32 {
        self.attempts.saturating_sub(1)
    }

    pub(crate) fn is_single_topic(&self) -> bool {
        self.single_topic
    }

    pub(crate) fn topic_partitions(&self) -> Option<i32> {
        self.partitions
    }

    pub(crate) fn creates_topics(&self) -> bool {
        self.auto_create
    }

    /// Why this policy cannot be used, if it cannot.
    pub(crate) fn problem(&self) -> Option<String> {
        if self.single_topic && self.multiplier != 1.0 && self.retries() > 1 {
            return Some(format!(
                "retry topics: single_topic needs a fixed back-off (multiplier 1.0, not {}), as records wait behind the head of their partition; drop single_topic or the multiplier",
                self.multiplier
            ));
        }
        if !(self.multiplier.is_finite() && self.multiplier > 0.0) {
            return Some(format!("retry topics: multiplier {} is not a positive number", self.multiplier));
        }
        if self.partitions.is_some_and(|p| p < 1) {
            return Some("retry topics: partitions must be at least 1".to_string());
        }
        None
    }
}

/// The attempt a record is at: 1 on its own topic, from the attempts header on a retry topic.
pub(crate) fn attempt_of(record: &Record<'_>) -> u32 {
    record
        .header(retry_headers::ATTEMPTS)
        .flatten()
        .and_then(|v| <[u8; 4]>::try_from(v).ok())
        .map_or(1, |b| u32::try_from(i32::from_be_bytes(b)).unwrap_or(1).max(1))
}

/// When the record is due (ms since the epoch), from its back-off header; big-endian of any
/// length up to 8 bytes, as Spring writes a `BigInteger`.
pub(crate) fn due_of(record: &Record<'_>) -> Option<i64> {
    let bytes = record.header(retry_headers::BACKOFF_TIMESTAMP).flatten()?;
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    let fill = if bytes[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut wide = [fill; 8];
    wide[8 - bytes.len()..].copy_from_slice(bytes);
    Some(i64::from_be_bytes(wide))
}

pub(crate) fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The error handler of a listener with retry topics, on its topic and on each retry topic:
/// forwards a failed record to the next retry topic (or the dead-letter topic), and counts it as
/// processed once the broker has it. If publishing fails, the record is delivered again.
pub(crate) struct RetryForwarder {
    pub(crate) template: KafkaTemplate,
    pub(crate) policy: Arc<RetryTopics>,
}

impl RetryForwarder {
    fn forward_record(&self, failed: &FailedRecord<'_>) -> ErrorDecision {
        let record = failed.record;
        let attempt = attempt_of(record);
        // The listener's own topic: the original topic once forwarded.
        let origin = record
            .header(super::dlt_headers::ORIGINAL_TOPIC)
            .flatten()
            .and_then(|t| std::str::from_utf8(t).ok())
            .unwrap_or(record.topic())
            .to_string();
        let retry = failed.failure.is_retryable() && attempt < self.policy.max_attempts();
        let result = if retry {
            let index = attempt - 1;
            let topics = self.policy.retry_topics(&origin);
            let topic = if self.policy.is_single_topic() { &topics[0] } else { &topics[index as usize] };
            let delay = self.policy.delay(index);
            let due = now_millis().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
            let next = i32::try_from(attempt + 1).unwrap_or(i32::MAX);
            let extra: [(&str, Vec<u8>); 2] = [
                (retry_headers::ATTEMPTS, next.to_be_bytes().to_vec()),
                (retry_headers::BACKOFF_TIMESTAMP, due.to_be_bytes().to_vec()),
            ];
            forward(&self.template, failed, topic, &extra).map(|stored| {
                tracing::info!(listener = failed.listener_id, topic = record.topic(), partition = record.partition(),
                    offset = record.offset(), retry = %format!("{}-{}@{}", stored.topic(), stored.partition(), stored.offset()),
                    "attempt {attempt} failed; retrying in {delay:?}: {}", failed.failure);
            })
        } else {
            let topic = self.policy.dlt_topic(&origin);
            forward(&self.template, failed, &topic, &[]).map(|stored| {
                tracing::warn!(listener = failed.listener_id, topic = record.topic(), partition = record.partition(),
                    offset = record.offset(), dead_letter = %format!("{}-{}@{}", stored.topic(), stored.partition(), stored.offset()),
                    "record dead-lettered after {attempt} attempt(s): {}", super::error_chain(failed.failure));
            })
        };
        match result {
            Ok(()) => ErrorDecision::Recovered,
            Err(error) => {
                tracing::warn!(listener = failed.listener_id, topic = record.topic(), partition = record.partition(),
                    offset = record.offset(), %error, "could not forward the failed record; it will be delivered again");
                ErrorDecision::Retry(Duration::from_secs(1))
            }
        }
    }
}

impl ErrorHandler for RetryForwarder {
    fn handle_record(&self, failed: &FailedRecord<'_>) -> ErrorDecision {
        self.forward_record(failed)
    }

    fn handle_batch(&self, failed: &FailedBatch<'_>) -> ErrorDecision {
        ErrorDecision::recover_each(failed.records.len(), |i| {
            self.forward_record(&failed.for_record(&failed.records[i]))
        })
    }
}
