//! Record listeners, in order on the consumer's thread: each record is delivered (and retried
//! as the error handler decides) before the next; a partition whose record waits (a retry
//! topic's back-off, back-pressure, a seek, a revocation) has its following records skipped in
//! this poll and fetched again.

use std::time::Duration;

use tracing::Span;

use super::{error_handler_panicked, follow, Dispatcher, Outcome, NOW};
use crate::container::contain::contain;
use crate::container::prepare::{hook, prepare, Prepared};
use crate::container::replies::reply;
use crate::container::retrying::{ask_record, Attempts, Step};
use crate::container::units::Core;
use crate::error_handler::{attempt_of, due_of, now_millis};
use crate::extract::Record;
use crate::handler::{ListenerFailure, RecordInvoker};
use crate::observability::spans;
use crate::TopicPartition;

/// Record listeners, one record at a time.
pub(crate) struct RecordsInOrder {
    invoker: RecordInvoker,
}

impl RecordsInOrder {
    pub(crate) fn new(invoker: RecordInvoker) -> Self {
        RecordsInOrder { invoker }
    }
}

impl<'c> Dispatcher<'c> for RecordsInOrder {
    fn dispatch(&mut self, core: &mut Core<'_, 'c>, records: &mut Vec<Record<'c>>) {
        let records = &records[..];
        let mut skipped: Vec<TopicPartition> = Vec::new();
        let mut generation = core.shared.revocations().generation();
        let acknowledging = core.plan.acknowledging;
        let defer = core.defers_completions();
        let mut pending = Pending::default();
        for (index, record) in records.iter().enumerate() {
            // On stop, the records in hand are finished (Spring's default, `stopImmediate`
            // false), within the shutdown timeout; a retry is not (see `follow`).
            if core.past_deadline() {
                pending.apply(core, records);
                return;
            }
            let is_skipped =
                |skipped: &[TopicPartition]| skipped.iter().any(|tp| tp.is(record.topic(), record.partition()));
            if is_skipped(&skipped) {
                continue;
            }
            let now = core.shared.revocations().generation();
            if now != generation {
                generation = now;
                pending.apply(core, records);
                // A revocation happened while handling (during a retry wait): give up the
                // records of revoked partitions; another consumer (or this one, again) gets them.
                skipped.extend(core.shared.revocations().take());
                if is_skipped(&skipped) {
                    continue;
                }
            }
            if let Some(wait) = not_due(core, record) {
                pending.apply(core, records);
                core.hold_until_due(record, wait);
                skipped.push(TopicPartition::new(record.topic(), record.partition()));
                continue;
            }
            let outcome = if defer {
                // The first delivery; a failure goes to the error handler as below, once the
                // records handled before it are completed (a retry commits them first).
                match self.attempt(core, record, 1) {
                    Ok(()) => Outcome::Handled,
                    Err(failed) => {
                        pending.apply(core, records);
                        self.deliver(core, record, Some(failed))
                    }
                }
            } else {
                self.deliver(core, record, None)
            };
            let requests = core.shared.control().take_requests();
            let one = std::slice::from_ref(record);
            match outcome {
                Outcome::Handled if defer => pending.add(core, records, index),
                Outcome::Handled if !acknowledging => core.complete(one),
                Outcome::Handled => {}
                Outcome::Recovered => core.complete(one),
                Outcome::Discarded if core.plan.settings.ack_discarded => core.complete(one),
                Outcome::Discarded => {}
                Outcome::Abandoned => {
                    // Not processed: its delivery no longer waits for an acknowledgment.
                    pending.apply(core, records);
                    core.rewind(one);
                    if core.shared.control().stop_requested() {
                        return;
                    }
                    continue;
                }
            }
            if !core.sink.processed(one, core.shared, core.consumer) {
                // Its transaction was aborted: the record is delivered again, with the rest.
                pending.apply(core, records);
                core.redeliver(&records[index..], NOW);
                return;
            }
            core.shared.stats().handled(1);
            if let Some(replay) = &core.plan.replay {
                replay.handled(one);
            }
            if !requests.is_empty() {
                pending.apply(core, records);
                match core.apply_requests(requests, &records[index..], &records[index + 1..]) {
                    Some(sought) => skipped.extend(sought),
                    None => return,
                }
            }
            if acknowledging
                && core.shared.offsets().outstanding(record.topic(), record.partition())
                    >= core.plan.settings.max_in_flight
            {
                // Back-pressure: the rest of the partition waits (sought back) until acks catch up.
                let tp = TopicPartition::new(record.topic(), record.partition());
                core.throttle(vec![(tp.clone(), record.offset())]);
                skipped.push(tp);
            }
            // AckMode::Batch (the only one that defers) never commits here.
            core.handled(1);
        }
        pending.apply(core, records);
    }
}

/// Records handled but not completed yet (`Core::defers_completions`): the poll's records
/// `start..end`, completed together under one lock of the offset tracker instead of one lock
/// per record. They are applied before anything that reads the tracker or commits (a failure,
/// a handler's request, a retry topic's wait, a stop, a revocation) and at the end of the poll.
/// Waiting only ever holds a commit back; it never lets one pass an unprocessed record.
#[derive(Default)]
struct Pending {
    start: usize,
    end: usize,
}

impl Pending {
    /// The record at `index` was handled.
    fn add(&mut self, core: &mut Core<'_, '_>, records: &[Record<'_>], index: usize) {
        if self.end != index || self.start == self.end {
            self.apply(core, records);
            self.start = index;
        }
        self.end = index + 1;
    }

    /// Completes the records waiting.
    fn apply(&mut self, core: &mut Core<'_, '_>, records: &[Record<'_>]) {
        if self.start < self.end {
            core.complete(&records[self.start..self.end]);
        }
        self.start = self.end;
    }
}

impl RecordsInOrder {
    /// Delivers a record until it is handled, recovered or given up, as the error handler
    /// decides after each failure. `first_failure`: the first delivery was made already (see
    /// `dispatch`), and failed so, in that span.
    fn deliver(
        &self,
        core: &mut Core<'_, '_>,
        record: &Record<'_>,
        first_failure: Option<(ListenerFailure, Span)>,
    ) -> Outcome {
        let plan = core.plan;
        // On a retry topic, the deliveries before this one.
        let earlier = if plan.retry_topic { attempt_of(record) - 1 } else { 0 };
        let mut attempts = Attempts::after(earlier);
        // A filter or interceptor that panicked on the record failed its first attempt; then each
        // retry runs them again first (as a redelivery would).
        let stage_failure = core
            .stage
            .take_failure(record)
            .map(|failure| failed_before_the_listener(core, record, attempts.delivery(), failure));
        let prepare_again = stage_failure.is_some();
        let mut failed_before = stage_failure.or(first_failure);
        let interceptor = plan.settings.record_interceptor.as_deref();
        loop {
            let result = match failed_before.take() {
                Some(failed) => Err(failed),
                None => match if prepare_again {
                    prepare(plan, core.shared, record, interceptor)
                } else {
                    Prepared::Keep(None)
                } {
                    Prepared::Discard => return Outcome::Discarded,
                    Prepared::Failed(failure) => {
                        Err(failed_before_the_listener(core, record, attempts.delivery(), failure))
                    }
                    Prepared::Keep(Some(changed)) => self.attempt(core, &changed, attempts.delivery()),
                    Prepared::Keep(None) => self.attempt(core, record, attempts.delivery()),
                },
            };
            let (failure, span) = match result {
                Ok(()) => {
                    if let Some(interceptor) = interceptor {
                        hook(core.shared, "the record interceptor's success hook", || {
                            interceptor.success(record, &plan.listener_id)
                        });
                    }
                    return Outcome::Handled;
                }
                Err(failure) => failure,
            };
            // The error handler decides inside the delivery's span (a dead-letter send is a span
            // inside it); its back-off is not.
            let decision = {
                let _in_span = span.enter();
                if let Some(interceptor) = interceptor {
                    hook(core.shared, "the record interceptor's failure hook", || {
                        interceptor.failure(record, &failure, &plan.listener_id)
                    });
                }
                if plan.acknowledging {
                    // The failed delivery is over: a task of it acknowledging later does not count.
                    core.rewind(std::slice::from_ref(record));
                }
                core.sink.abort();
                let failed = attempts.failed_record(&plan.listener_id, &plan.group, record, &failure);
                ask_record(&*plan.error_handler, &failed, error_handler_panicked(core.shared))
            };
            drop(span);
            let step = Step::of(decision);
            if matches!(step, Step::Retry(_)) {
                core.topic_meters(record).retried();
            }
            match follow(core, step, &[(record.topic(), record.partition())]) {
                Some(outcome) => return outcome,
                None => attempts.retry(),
            }
        }
    }

    /// One delivery of a record to its listener (tracked, for acknowledging listeners), in the
    /// record's transaction, with its reply published, inside its `process` span (returned with
    /// a failure, for the error handler's decision) and timed.
    fn attempt(
        &self,
        core: &mut Core<'_, '_>,
        record: &Record<'_>,
        delivery: u32,
    ) -> Result<(), (ListenerFailure, Span)> {
        let span = spans::process(&core.span_names(), record, delivery);
        let began = core.shared.meters.clock();
        let in_span = span.enter();
        let result = self.invoke(core, record, delivery);
        drop(in_span);
        match result {
            Ok(()) => {
                core.processed(record, began, None);
                Ok(())
            }
            Err(failure) => {
                spans::failed(&span, &failure);
                core.processed(record, began, Some(failure.error_type()));
                Err((failure, span))
            }
        }
    }

    /// The delivery itself: see [`attempt`](Self::attempt).
    #[inline]
    fn invoke(&self, core: &mut Core<'_, '_>, record: &Record<'_>, delivery: u32) -> Result<(), ListenerFailure> {
        core.track(std::slice::from_ref(record));
        core.sink.begin()?;
        let cx = core.context(delivery);
        let output =
            contain(|| (self.invoker)(record, &cx)).unwrap_or_else(|panic| Err(ListenerFailure::Panic(panic)))?;
        reply(core.plan, record, output)
    }
}

/// A delivery that failed before reaching the listener (its filter or interceptor panicked): its
/// `process` span, marked failed, for the error handler's decision.
fn failed_before_the_listener(
    core: &Core<'_, '_>,
    record: &Record<'_>,
    delivery: u32,
    failure: ListenerFailure,
) -> (ListenerFailure, Span) {
    let span = spans::process(&core.span_names(), record, delivery);
    spans::failed(&span, &failure);
    (failure, span)
}

/// How long until a retry topic's record is due (`None`: it is due, or not from a retry topic).
fn not_due(core: &Core<'_, '_>, record: &Record<'_>) -> Option<Duration> {
    if !core.plan.retry_topic {
        return None;
    }
    let wait = due_of(record)?.saturating_sub(now_millis());
    (wait > 0).then(|| Duration::from_millis(wait.unsigned_abs()))
}
