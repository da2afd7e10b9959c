//! What happens when a listener fails: retry, recover, or stop (Spring's `CommonErrorHandler`).

mod backoff;
mod recoverer;
mod retry_topics;

pub use backoff::{BackOff, ExponentialBackOff, FixedBackOff};
pub use recoverer::{dlt_headers, DeadLetterRecoverer, LoggingRecoverer, Recoverer};
pub(crate) use retry_topics::{attempt_of, due_of, now_millis, RetryForwarder};
pub use retry_topics::{retry_headers, RetryTopics};

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::extract::Record;
use crate::handler::ListenerFailure;

/// A record whose listener failed.
#[derive(Debug)]
pub struct FailedRecord<'a> {
    /// The listener id.
    pub listener_id: &'a str,
    /// The listener's consumer group.
    pub group: &'a str,
    /// The record.
    pub record: &'a Record<'a>,
    /// Why it failed.
    pub failure: &'a ListenerFailure,
    /// Which attempt failed: 1 for the first delivery.
    pub attempt: u32,
    /// The time since the first attempt failed.
    pub elapsed: Duration,
}

/// A batch whose (batch) listener failed.
#[derive(Debug)]
pub struct FailedBatch<'a> {
    /// The listener id.
    pub listener_id: &'a str,
    /// The listener's consumer group.
    pub group: &'a str,
    /// The records given to the listener.
    pub records: &'a [Record<'a>],
    /// Why it failed.
    pub failure: &'a ListenerFailure,
    /// Which attempt failed: 1 for the first delivery.
    pub attempt: u32,
    /// The time since the first attempt failed.
    pub elapsed: Duration,
}

impl<'a> FailedBatch<'a> {
    /// The failure as one of the batch's records'.
    pub fn for_record(&self, record: &'a Record<'a>) -> FailedRecord<'a> {
        FailedRecord {
            listener_id: self.listener_id,
            group: self.group,
            record,
            failure: self.failure,
            attempt: self.attempt,
            elapsed: self.elapsed,
        }
    }
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
    /// For a batch: its first `recovered` records were recovered (they count as processed), and
    /// recovering the next one failed: the rest of the batch is delivered again after
    /// `retry_after`, without recovering the first ones twice. For a single record, `recovered: 0`
    /// is `Retry(retry_after)` and more is `Recovered`.
    RecoveredFirst {
        /// How many records, from the batch's first, were recovered.
        recovered: usize,
        /// The wait before the rest is delivered again.
        retry_after: Duration,
    },
}

impl ErrorDecision {
    /// The decision of recovering `records` one after another, `outcome(i)` being the recovery of
    /// record `i`: `Recovered` when all are, else where it stopped.
    pub fn recover_each(records: usize, mut outcome: impl FnMut(usize) -> ErrorDecision) -> ErrorDecision {
        for i in 0..records {
            match outcome(i) {
                ErrorDecision::Recovered => {}
                ErrorDecision::Retry(retry_after) if i > 0 => {
                    return ErrorDecision::RecoveredFirst { recovered: i, retry_after }
                }
                other => return other,
            }
        }
        ErrorDecision::Recovered
    }
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
            Some(record) => self.handle_record(&failed.for_record(record)),
            None => ErrorDecision::Recovered,
        }
    }
}

/// Spring's `DefaultErrorHandler`: a failed record is retried per its [`BackOff`] (default
/// [`FixedBackOff`]: 9 retries without a wait, 10 deliveries), its partitions paused during waits;
/// then the [`Recoverer`] deals with it (default [`LoggingRecoverer`]: log and skip). Failures that
/// retrying cannot fix (conversion failures, `ListenerError::fatal`) go to the recoverer at once. A
/// batch is retried as a whole, then recovered record by record. When the recoverer fails, the
/// record is delivered again (after `recovery_retry_interval`) — never skipped unrecovered.
#[derive(Clone)]
pub struct DefaultErrorHandler {
    backoff: Arc<dyn BackOff>,
    backoff_function: Option<BackOffFunction>,
    recoverer: Arc<dyn Recoverer>,
    recovery_retry_interval: Duration,
    not_retryable: Vec<Classifier>,
}

/// Picks the back-off of one failure (`None`: the handler's default).
type BackOffFunction = Arc<dyn Fn(&Record<'_>, &ListenerFailure) -> Option<Arc<dyn BackOff>> + Send + Sync>;

/// Says whether a failure belongs to a class (e.g. not retryable).
type Classifier = Arc<dyn Fn(&ListenerFailure) -> bool + Send + Sync>;

impl std::fmt::Debug for DefaultErrorHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefaultErrorHandler").finish_non_exhaustive()
    }
}

impl Default for DefaultErrorHandler {
    fn default() -> Self {
        DefaultErrorHandler {
            backoff: Arc::new(FixedBackOff::default()),
            backoff_function: None,
            recoverer: Arc::new(LoggingRecoverer),
            recovery_retry_interval: Duration::from_secs(1),
            not_retryable: Vec::new(),
        }
    }
}

impl DefaultErrorHandler {
    /// 9 retries, no back-off, then log and skip.
    pub fn new() -> Self {
        Self::default()
    }

    /// The back-off between retries.
    pub fn backoff(mut self, backoff: impl BackOff) -> Self {
        self.backoff = Arc::new(backoff);
        self
    }

    /// Chooses the back-off per record and failure (Spring's `setBackOffFunction`): the function
    /// is asked at every failure, and its `None` means the handler's [`backoff`](Self::backoff).
    /// The retry count goes on across failures of one record whatever back-off each picks.
    ///
    /// The pattern it exists for: retry a transient failure (a database that is down) for ever,
    /// so that valid records wait for the database instead of being dead-lettered after retries
    /// meant for bad data, and fail fast on bad data:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use kafka_listener::error_handler::{BackOff, ExponentialBackOff, FixedBackOff};
    /// use kafka_listener::DefaultErrorHandler;
    ///
    /// #[derive(Debug, thiserror::Error)]
    /// #[error("database unavailable")]
    /// struct DatabaseDown;
    ///
    /// let transient: Arc<dyn BackOff> = Arc::new(ExponentialBackOff {
    ///     initial: Duration::from_millis(500),
    ///     max_interval: Duration::from_secs(30),
    ///     max_retries: None, // for ever: the partition waits, the group is kept
    ///     ..ExponentialBackOff::default()
    /// });
    /// let handler = DefaultErrorHandler::new()
    ///     .backoff(FixedBackOff { interval: Duration::from_millis(100), max_retries: 2 }) // bad data
    ///     // `find` looks through wrapping errors (and, with the `anyhow` feature, anyhow's).
    ///     .backoff_function(move |_record, failure| failure.find::<DatabaseDown>().map(|_| transient.clone()));
    /// # let _ = handler;
    /// ```
    ///
    /// While a record is retried its partition is paused and the consumer keeps polling, so a
    /// long outage does not exceed `max.poll.interval.ms`; what was handled before the record is
    /// committed first.
    pub fn backoff_function(
        mut self,
        function: impl Fn(&Record<'_>, &ListenerFailure) -> Option<Arc<dyn BackOff>> + Send + Sync + 'static,
    ) -> Self {
        self.backoff_function = Some(Arc::new(function));
        self
    }

    /// A [`FixedBackOff`] with this many retries (and no wait).
    pub fn max_retries(self, retries: u32) -> Self {
        self.backoff(FixedBackOff { interval: Duration::ZERO, max_retries: retries })
    }

    /// What is done with a record whose retries are exhausted.
    pub fn recoverer(mut self, recoverer: impl Recoverer) -> Self {
        self.recoverer = Arc::new(recoverer);
        self
    }

    /// Adds a class of failures that go to the recoverer at once, besides conversion failures and
    /// `ListenerError::fatal` (e.g. `|f| f.find::<serde_json::Error>().is_some()`: an error type
    /// anywhere in the failure's chain of causes, see [`ListenerFailure::find`]).
    pub fn not_retryable(mut self, classifier: impl Fn(&ListenerFailure) -> bool + Send + Sync + 'static) -> Self {
        self.not_retryable.push(Arc::new(classifier));
        self
    }

    /// The wait before a record is delivered again after its recoverer failed.
    pub fn recovery_retry_interval(mut self, interval: Duration) -> Self {
        self.recovery_retry_interval = interval;
        self
    }

    fn retry(
        &self,
        record: Option<&Record<'_>>,
        failure: &ListenerFailure,
        attempt: u32,
        elapsed: Duration,
    ) -> Option<ErrorDecision> {
        if !failure.is_retryable() || self.not_retryable.iter().any(|classify| classify(failure)) {
            return None;
        }
        let chosen = match (&self.backoff_function, record) {
            (Some(choose), Some(record)) => choose(record, failure),
            _ => None,
        };
        chosen.as_deref().unwrap_or(&*self.backoff).next(attempt, elapsed).map(ErrorDecision::Retry)
    }

    fn recover(&self, failed: &FailedRecord<'_>) -> ErrorDecision {
        match self.recoverer.recover(failed) {
            Ok(()) => ErrorDecision::Recovered,
            Err(error) => {
                tracing::warn!(listener = failed.listener_id, topic = failed.record.topic(), partition = failed.record.partition(),
                    offset = failed.record.offset(), %error, "recovery failed; the record will be delivered again");
                ErrorDecision::Retry(self.recovery_retry_interval)
            }
        }
    }
}

impl ErrorHandler for DefaultErrorHandler {
    fn handle_record(&self, failed: &FailedRecord<'_>) -> ErrorDecision {
        if let Some(retry) = self.retry(Some(failed.record), failed.failure, failed.attempt, failed.elapsed) {
            tracing::debug!(listener = failed.listener_id, topic = failed.record.topic(), partition = failed.record.partition(),
                offset = failed.record.offset(), attempt = failed.attempt, error = %failed.failure, "listener failed; retrying");
            return retry;
        }
        self.recover(failed)
    }

    fn handle_batch(&self, failed: &FailedBatch<'_>) -> ErrorDecision {
        // A batch's back-off is chosen for its first record.
        if let Some(retry) = self.retry(failed.records.first(), failed.failure, failed.attempt, failed.elapsed) {
            return retry;
        }
        ErrorDecision::recover_each(failed.records.len(), |i| self.recover(&failed.for_record(&failed.records[i])))
    }
}

/// Stops the listener's container at the first failure (Spring's
/// `CommonContainerStoppingErrorHandler`): what was handled before is committed, the failed record
/// is not, so it is delivered first when the listener starts again.
#[derive(Debug, Clone, Copy, Default)]
pub struct StopContainerErrorHandler;

impl ErrorHandler for StopContainerErrorHandler {
    fn handle_record(&self, failed: &FailedRecord<'_>) -> ErrorDecision {
        tracing::error!(
            listener = failed.listener_id,
            topic = failed.record.topic(),
            partition = failed.record.partition(),
            offset = failed.record.offset(),
            "stopping the listener: {}",
            error_chain(failed.failure)
        );
        ErrorDecision::Stop
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
