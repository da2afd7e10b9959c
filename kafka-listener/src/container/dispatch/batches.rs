//! Batch listeners, on the consumer's thread: a poll's records are handed over as one batch, or
//! as the longest convertible runs of it; a record the listener names as failed
//! (`BatchListenerFailed`) splits the batch (Spring's `FailedBatchProcessor`).

use std::time::Duration;

use super::{error_handler_panicked, follow, Dispatcher, Outcome, NOW};
use crate::container::contain::contain;
use crate::container::prepare::hook;
use crate::container::replies::reply;
use crate::container::retrying::{ask_batch, ask_record, Attempts, BatchStep, NamedRecordStep, Step};
use crate::container::runs::lasts;
use crate::container::units::Core;
use crate::extract::Record;
use crate::handler::{BatchInvoker, BatchListenerFailed, ListenerFailure};
use crate::observability::spans;

/// Batch listeners.
pub(crate) struct Batches {
    invoker: BatchInvoker,
}

/// What carries over from one invocation of a batch to the next: the failures so far of the
/// record the next one starts with, and the back-off before it.
#[derive(Default)]
struct Carried {
    attempts: Attempts,
    back_off: Option<Duration>,
}

impl Batches {
    pub(crate) fn new(invoker: BatchInvoker) -> Self {
        Batches { invoker }
    }
}

impl<'c> Dispatcher<'c> for Batches {
    fn dispatch(&mut self, core: &mut Core<'_, 'c>, records: &mut Vec<Record<'c>>) {
        // Batches are throttled once handled: the partitions they touched, at their last record.
        let touched = if core.plan.acknowledging { lasts(records) } else { Vec::new() };
        self.handle(core, records);
        core.throttle(touched);
    }
}

impl Batches {
    fn handle(&self, core: &mut Core<'_, '_>, records: &[Record<'_>]) {
        let mut start = 0;
        let mut carried = Carried::default();
        while start < records.len() {
            if core.past_deadline() || core.stop.halted {
                return;
            }
            let (end, outcome) = self.invoke(core, records, start, &mut carried);
            let requests = core.shared.control().take_requests();
            let handled = &records[start..end];
            match outcome {
                Outcome::Handled if !core.plan.acknowledging => core.complete(handled),
                Outcome::Handled => {}
                Outcome::Recovered => core.complete(handled),
                // Batches are filtered and intercepted before the listener only.
                Outcome::Discarded => {}
                Outcome::Abandoned => {
                    // Not processed: their deliveries no longer wait for acknowledgments.
                    core.rewind(&records[start..]);
                    return;
                }
            }
            if !core.sink.processed(handled, core.shared, core.consumer) {
                // Their transaction was aborted: the records are delivered again, with the rest.
                core.redeliver(&records[start..], NOW);
                return;
            }
            core.shared.stats().handled(handled.len() as u64);
            if let Some(replay) = &core.plan.replay {
                replay.handled(handled);
            }
            if core.apply_requests(requests, &records[start..], &records[end..]).is_none() {
                return;
            }
            if carried.back_off.is_some() {
                // A record of the batch failed: what came before it is committed before its back-off.
                core.commit();
            } else {
                core.handled(handled.len() as u64);
            }
            start = end;
        }
    }

    /// Invokes the listener on the longest convertible run of records from `start`. A record that
    /// cannot be converted goes alone to the error handler. Returns the end of what was dealt with.
    fn invoke(
        &self,
        core: &mut Core<'_, '_>,
        records: &[Record<'_>],
        start: usize,
        carried: &mut Carried,
    ) -> (usize, Outcome) {
        let plan = core.plan;
        let mut end = records.len();
        let Carried { mut attempts, back_off } = std::mem::take(carried);
        if let Some(delay) = back_off {
            // The back-off of the record at `start`, which failed in the previous invocation.
            let partitions: Vec<(&str, i32)> = records[start..].iter().map(|r| (r.topic(), r.partition())).collect();
            if !core.back_off(delay, &partitions) {
                return (start, Outcome::Abandoned);
            }
        }
        // A filter or interceptor that panicked on a record of the batch failed the first attempt.
        let mut failed_before: Option<ListenerFailure> = None;
        for record in &records[start..end] {
            if let Some(failure) = core.stage.take_failure(record) {
                failed_before.get_or_insert(failure);
            }
        }
        loop {
            let slice = &records[start..end];
            // The delivery's span covers the listener and the error handler's decision (a
            // dead-letter send is a span inside it), not the back-off.
            let span = spans::batch(&core.span_names(), slice, attempts.attempt());
            let in_span = span.enter();
            let began = core.shared.meters.clock();
            let result = match failed_before.take() {
                Some(failure) => Err((None, failure)),
                None => self.attempt(core, slice, attempts.attempt()),
            };
            let error_type = result.as_ref().err().map(|(_, failure)| {
                spans::failed(&span, failure);
                failure.error_type()
            });
            if let Some(first) = slice.first() {
                core.processed(first, began, error_type);
            }
            if result.is_err() {
                core.sink.abort();
                if plan.acknowledging {
                    // The failed delivery is over: its tasks acknowledging later do not count.
                    core.rewind(slice);
                }
            }
            if let Some(interceptor) = plan.settings.batch_interceptor.as_deref() {
                match &result {
                    Ok(()) => hook(core.shared, "the batch interceptor's success hook", || {
                        interceptor.success(slice, &plan.listener_id)
                    }),
                    Err((_, failure)) => hook(core.shared, "the batch interceptor's failure hook", || {
                        interceptor.failure(slice, failure, &plan.listener_id)
                    }),
                }
            }
            let failure = match result {
                Ok(()) => return (end, Outcome::Handled),
                Err((Some(0), failure @ ListenerFailure::Conversion(_))) => {
                    return (start + 1, unconvertible(core, &records[start], failure));
                }
                Err((Some(index), ListenerFailure::Conversion(_))) => {
                    // Hand over the records before the one that cannot be converted first.
                    end = start + index;
                    continue;
                }
                Err((_, ListenerFailure::Handler(error))) if core.sink.splits_batches() => {
                    match error.into_batch_failed() {
                        Ok(failed) if failed.index < end - start => {
                            // The named record's failures so far: this batch's, if it is the first.
                            let named = if failed.index == 0 { attempts } else { Attempts::default() };
                            return named_record_failed(core, records, start, failed, named, carried);
                        }
                        Ok(failed) => {
                            tracing::warn!(
                                listener = &*plan.listener_id,
                                index = failed.index,
                                records = end - start,
                                "BatchListenerFailed names a record outside the batch; retrying the whole batch"
                            );
                            ListenerFailure::Handler(failed.into())
                        }
                        Err(error) => ListenerFailure::Handler(error),
                    }
                }
                Err((_, failure)) => failure,
            };
            let failed = attempts.failed_batch(&plan.listener_id, &plan.group, slice, &failure);
            let decision = ask_batch(&*plan.error_handler, &failed, error_handler_panicked(core.shared));
            drop(in_span);
            let step = match BatchStep::of(decision, slice.len()) {
                BatchStep::First { recovered, retry_after } => {
                    // The first records are recovered (committed before the wait); the rest comes
                    // again after it.
                    attempts.retry();
                    *carried = Carried { attempts, back_off: Some(retry_after) };
                    return (start + recovered, Outcome::Recovered);
                }
                BatchStep::All(step) => step,
            };
            if let (Step::Retry(_), Some(first)) = (&step, slice.first()) {
                core.topic_meters(first).retried();
            }
            let partitions: Vec<(&str, i32)> = slice.iter().map(|r| (r.topic(), r.partition())).collect();
            match follow(core, step, &partitions) {
                Some(outcome) => return (end, outcome),
                None => attempts.retry(),
            }
        }
    }

    /// One delivery of a batch (tracked, for acknowledging listeners), in its transaction, with
    /// its reply published (for the batch's first record).
    fn attempt(
        &self,
        core: &mut Core<'_, '_>,
        slice: &[Record<'_>],
        attempt: u32,
    ) -> Result<(), (Option<usize>, ListenerFailure)> {
        // Each invocation is a delivery of its own: acknowledgments of an earlier (failed) one no
        // longer count.
        core.track(slice);
        core.sink.begin().map_err(|failure| (None, failure))?;
        let cx = core.context(attempt);
        let output = contain(|| (self.invoker)(slice, &cx))
            .unwrap_or_else(|panic| Err((None, ListenerFailure::Panic(panic))))?;
        match slice.first() {
            Some(first) => reply(core.plan, first, output).map_err(|failure| (None, failure)),
            None => Ok(()),
        }
    }
}

/// The listener said which record of the batch failed (`BatchListenerFailed`): the records
/// before it count as handled; the error handler decides for that record alone. A retry invokes
/// the listener again from that record, after the back-off (carried to the next step, so that
/// the records before it are committed first).
fn named_record_failed(
    core: &mut Core<'_, '_>,
    records: &[Record<'_>],
    start: usize,
    failed: BatchListenerFailed,
    mut attempts: Attempts,
    carried: &mut Carried,
) -> (usize, Outcome) {
    let plan = core.plan;
    let at = start + failed.index;
    let failure = ListenerFailure::Handler(failed.error);
    let failed = attempts.failed_record(&plan.listener_id, &plan.group, &records[at], &failure);
    let decision = ask_record(&*plan.error_handler, &failed, error_handler_panicked(core.shared));
    let step = NamedRecordStep::of(decision, at);
    if step.stop {
        core.halt();
    }
    if let Some(back_off) = step.back_off {
        attempts.retry();
        *carried = Carried { attempts, back_off: Some(back_off) };
    }
    // The records before `at` were handled; `Recovered` completes them (whatever the ack mode,
    // as Spring commits them).
    (step.resume_at, Outcome::Recovered)
}

/// A record of the batch that cannot be converted goes to the error handler alone.
fn unconvertible(core: &mut Core<'_, '_>, record: &Record<'_>, failure: ListenerFailure) -> Outcome {
    let plan = core.plan;
    let mut attempts = Attempts::default();
    loop {
        let failed = attempts.failed_record(&plan.listener_id, &plan.group, record, &failure);
        let decision = ask_record(&*plan.error_handler, &failed, error_handler_panicked(core.shared));
        match follow(core, Step::of(decision), &[(record.topic(), record.partition())]) {
            Some(outcome) => return outcome,
            // Converting again gives the same result; the handler asked for it, though.
            None => attempts.retry(),
        }
    }
}
