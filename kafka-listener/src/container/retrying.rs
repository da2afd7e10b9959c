//! The retry / error-decision state machine of one failing record or batch, without a broker:
//! how many deliveries failed and since when (`Attempts`, which builds every `FailedRecord` and
//! `FailedBatch` the error handler sees), and what its decision means for the container (`Step`,
//! `BatchStep`, `NamedRecordStep`). Spring's `FailedRecordTracker` and `FailedBatchProcessor`
//! hold the same state.
//!
//! Asking the error handler (user code) is contained here too: a handler or recoverer that panics
//! has the record delivered again after `PANIC_RETRY`, never skipped.

use std::time::{Duration, Instant};

use super::contain::contain;
use crate::error_handler::{ErrorDecision, ErrorHandler, FailedBatch, FailedRecord};
use crate::extract::Record;
use crate::handler::ListenerFailure;

/// When an error handler panics, the record is delivered again after this (as when a recoverer
/// fails).
pub(crate) const PANIC_RETRY: Duration = Duration::from_secs(1);

/// The failed deliveries of one record (or batch, or batch record) so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Attempts {
    /// Failed attempts in this container.
    failures: u32,
    /// When the first of them failed.
    first_failure: Option<Instant>,
    /// Deliveries before this container's (a retry topic's record carries them in a header).
    earlier: u32,
}

impl Attempts {
    /// A record delivered `earlier` times before (0 but on retry topics).
    pub(crate) fn after(earlier: u32) -> Self {
        Attempts { earlier, ..Attempts::default() }
    }

    /// The attempt about to be made, counted in this container: 1, 2, ...
    pub(crate) fn attempt(&self) -> u32 {
        self.failures + 1
    }

    /// The delivery attempt the listener is told (`kafka_deliveryAttempt`): earlier deliveries
    /// included.
    pub(crate) fn delivery(&self) -> u32 {
        self.earlier + self.attempt()
    }

    /// The current attempt failed: the error handler's view of it.
    pub(crate) fn failed_record<'a>(
        &mut self,
        listener_id: &'a str,
        group: &'a str,
        record: &'a Record<'a>,
        failure: &'a ListenerFailure,
    ) -> FailedRecord<'a> {
        let elapsed = self.first_failure.get_or_insert_with(Instant::now).elapsed();
        FailedRecord { listener_id, group, record, failure, attempt: self.attempt(), elapsed }
    }

    /// The current attempt of a batch failed: the error handler's view of it.
    pub(crate) fn failed_batch<'a>(
        &mut self,
        listener_id: &'a str,
        group: &'a str,
        records: &'a [Record<'a>],
        failure: &'a ListenerFailure,
    ) -> FailedBatch<'a> {
        let elapsed = self.first_failure.get_or_insert_with(Instant::now).elapsed();
        FailedBatch { listener_id, group, records, failure, attempt: self.attempt(), elapsed }
    }

    /// The error handler asked for another attempt.
    pub(crate) fn retry(&mut self) {
        self.failures += 1;
    }
}

/// What an error handler's decision about a record (or whole batch) means for the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Deliver it again after this back-off (with the assignment paused).
    Retry(Duration),
    /// It counts as processed.
    Recovered,
    /// Stop the container, leaving it uncommitted.
    Stop,
}

impl Step {
    /// The step for one record: `RecoveredFirst { recovered: 0, .. }` is a retry, more is a
    /// recovery (the record is the only one).
    pub(crate) fn of(decision: ErrorDecision) -> Step {
        match decision {
            ErrorDecision::Retry(delay) => Step::Retry(delay),
            ErrorDecision::Recovered | ErrorDecision::RecoveredFirst { recovered: 1.., .. } => Step::Recovered,
            ErrorDecision::RecoveredFirst { recovered: 0, retry_after } => Step::Retry(retry_after),
            ErrorDecision::Stop => Step::Stop,
        }
    }
}

/// What an error handler's decision about a whole batch of `len` records means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchStep {
    /// As for one record, for the whole batch.
    All(Step),
    /// The first `recovered` records count as processed (committed before the wait); the rest is
    /// delivered again after `retry_after`.
    First { recovered: usize, retry_after: Duration },
}

impl BatchStep {
    pub(crate) fn of(decision: ErrorDecision, len: usize) -> BatchStep {
        match decision {
            ErrorDecision::RecoveredFirst { recovered, retry_after } if recovered > 0 && recovered < len => {
                BatchStep::First { recovered, retry_after }
            }
            other => BatchStep::All(Step::of(other)),
        }
    }
}

/// What the decision about the record a batch listener named (`BatchListenerFailed`) means: the
/// records before it were handled; where the batch goes on from, and after which back-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NamedRecordStep {
    /// The index (in the batch) the next invocation starts from.
    pub(crate) resume_at: usize,
    /// The back-off before that invocation (the named record is retried).
    pub(crate) back_off: Option<Duration>,
    /// The container stops.
    pub(crate) stop: bool,
}

impl NamedRecordStep {
    /// The step for the record at `at`.
    pub(crate) fn of(decision: ErrorDecision, at: usize) -> NamedRecordStep {
        match Step::of(decision) {
            Step::Retry(delay) => NamedRecordStep { resume_at: at, back_off: Some(delay), stop: false },
            Step::Recovered => NamedRecordStep { resume_at: at + 1, back_off: None, stop: false },
            Step::Stop => NamedRecordStep { resume_at: at, back_off: None, stop: true },
        }
    }
}

/// Asks the error handler about a failed record; a handler (or recoverer) that panics gets
/// `Retry(PANIC_RETRY)`, and `panicked` is told.
pub(crate) fn ask_record(
    handler: &dyn ErrorHandler,
    failed: &FailedRecord<'_>,
    panicked: impl FnOnce(String),
) -> ErrorDecision {
    ask(|| handler.handle_record(failed), panicked)
}

/// [`ask_record`] for a failed batch.
pub(crate) fn ask_batch(
    handler: &dyn ErrorHandler,
    failed: &FailedBatch<'_>,
    panicked: impl FnOnce(String),
) -> ErrorDecision {
    ask(|| handler.handle_batch(failed), panicked)
}

/// The error handler's decision, or `Retry(PANIC_RETRY)` when it panics.
fn ask(decide: impl FnOnce() -> ErrorDecision, panicked: impl FnOnce(String)) -> ErrorDecision {
    contain(decide).unwrap_or_else(|panic| {
        panicked(panic);
        ErrorDecision::Retry(PANIC_RETRY)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn attempts_count_from_earlier_deliveries_and_keep_the_first_failure_time() {
        let mut attempts = Attempts::after(2);
        assert_eq!((attempts.attempt(), attempts.delivery()), (1, 3));
        attempts.retry();
        assert_eq!((attempts.attempt(), attempts.delivery()), (2, 4));
        assert!(attempts.first_failure.is_none());
        attempts.first_failure = Some(Instant::now() - Duration::from_secs(5));
        attempts.retry();
        assert_eq!(attempts.attempt(), 3);
        assert!(attempts.first_failure.is_some_and(|t| t.elapsed() >= Duration::from_secs(5)));
    }

    #[test]
    fn a_records_decisions() {
        assert_eq!(Step::of(ErrorDecision::Retry(S)), Step::Retry(S));
        assert_eq!(Step::of(ErrorDecision::Recovered), Step::Recovered);
        assert_eq!(Step::of(ErrorDecision::Stop), Step::Stop);
        assert_eq!(Step::of(ErrorDecision::RecoveredFirst { recovered: 0, retry_after: S }), Step::Retry(S));
        assert_eq!(Step::of(ErrorDecision::RecoveredFirst { recovered: 1, retry_after: S }), Step::Recovered);
    }

    #[test]
    fn a_batchs_decisions() {
        let partial = ErrorDecision::RecoveredFirst { recovered: 2, retry_after: S };
        assert_eq!(BatchStep::of(partial, 5), BatchStep::First { recovered: 2, retry_after: S });
        // All of it recovered, or none: as for one record.
        assert_eq!(BatchStep::of(partial, 2), BatchStep::All(Step::Recovered));
        let none = ErrorDecision::RecoveredFirst { recovered: 0, retry_after: S };
        assert_eq!(BatchStep::of(none, 5), BatchStep::All(Step::Retry(S)));
        assert_eq!(BatchStep::of(ErrorDecision::Stop, 5), BatchStep::All(Step::Stop));
    }

    #[test]
    fn a_named_batch_records_decisions() {
        let retry = NamedRecordStep::of(ErrorDecision::Retry(S), 3);
        assert_eq!(retry, NamedRecordStep { resume_at: 3, back_off: Some(S), stop: false });
        let recovered = NamedRecordStep::of(ErrorDecision::Recovered, 3);
        assert_eq!(recovered, NamedRecordStep { resume_at: 4, back_off: None, stop: false });
        let none = NamedRecordStep::of(ErrorDecision::RecoveredFirst { recovered: 0, retry_after: S }, 3);
        assert_eq!(none.back_off, Some(S));
        assert!(NamedRecordStep::of(ErrorDecision::Stop, 3).stop);
    }

    #[test]
    fn a_panicking_error_handler_retries_after_a_second() {
        struct Panics;
        impl ErrorHandler for Panics {
            fn handle_record(&self, _failed: &FailedRecord<'_>) -> ErrorDecision {
                panic!("boom")
            }
        }
        let failure = ListenerFailure::Panic("listener".into());
        let mut attempts = Attempts::default();
        let record = Record::test_record("t", 0, 7);
        let failed = attempts.failed_record("l", "g", &record, &failure);
        let mut told = None;
        let decision = ask_record(&Panics, &failed, |panic| told = Some(panic));
        assert_eq!(decision, ErrorDecision::Retry(PANIC_RETRY));
        assert!(told.is_some_and(|p| p.contains("boom")));
    }
}
