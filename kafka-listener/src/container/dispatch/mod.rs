//! The dispatch seam: how the records of a poll, filtered and converted, reach the listener.
//!
//! The poll loop hands each poll's records to its `Dispatcher` and goes on polling. Today's
//! dispatchers of `ProcessingOrder::Partition` run them in partition order, one at a time, on
//! the consumer's thread: record listeners (`records.rs`) and batch listeners (`batches.rs`);
//! each handles a poll before `dispatch` returns. The dispatcher that runs records concurrently
//! (`tasks.rs`: key-ordered or unordered, as tokio tasks) implements the same trait: `dispatch`
//! queues and starts records and returns at once, completions arrive later and in any order (they complete offsets in the tracker, which
//! commits only the contiguous prefix), `collect` applies them on each turn of the loop,
//! `revoked` gives up queued records of partitions taken away, and `drain` waits for what is in
//! flight when the container stops.

mod batches;
mod lanes;
mod records;
mod tasks;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::plan::{ContainerPlan, Invoker};
use super::retrying::Step;
use super::shared::ContainerShared;
use super::units::Core;
use crate::extract::Record;
use crate::TopicPartition;

pub(crate) use batches::Batches;
pub(crate) use records::RecordsInOrder;
pub(crate) use tasks::Concurrently;

/// Hands records to the listener.
pub(crate) trait Dispatcher<'c> {
    /// Gets the records of one poll, in poll order (each partition's in offset order), none of
    /// a revoked partition. An in-order dispatcher handles them before it returns; one that
    /// hands them on takes them out (`drain`). The loop drops what is left when it returns and
    /// gathers the next poll into the same vector: allocating one per poll made the allocator
    /// consolidate its free small blocks every poll, which cost ~200 instructions per record
    /// in allocating and freeing rdkafka's per-message handles.
    fn dispatch(&mut self, core: &mut Core<'_, 'c>, records: &mut Vec<Record<'c>>);

    /// Applies the completions that arrived since the last call (records handled by tasks).
    /// Called on every turn of the loop, before it decides about commits.
    fn collect(&mut self, _core: &mut Core<'_, 'c>) {}

    /// These partitions were revoked: their records not started yet are given up (the
    /// partition's next owner gets them from the committed offset).
    fn revoked(&mut self, _partitions: &HashSet<TopicPartition>) {}

    /// Seeks moved these partitions: their records not started yet are given up (fetched again
    /// from the new position).
    fn sought(&mut self, _core: &mut Core<'_, 'c>, _partitions: &[TopicPartition]) {}

    /// The offset of the partition's first record the dispatcher holds and has not started (its
    /// queue), if any: where "the current position" of a relative seek is (records handed out
    /// later come after it).
    fn first_waiting(&self, _tp: &TopicPartition) -> Option<i64> {
        None
    }

    /// Whether a partition paused for back-pressure may resume, as far as the dispatcher's own
    /// queue goes.
    fn may_resume(&self, _tp: &TopicPartition) -> bool {
        true
    }

    /// `Some` while records run as tasks (or wait for a retry): the poll thread then waits for
    /// their completions as for records, until the time given (a retry due), if any.
    fn waits_for_tasks(&self) -> Option<Option<Instant>> {
        None
    }

    /// The container stops: waits (up to `deadline`) for the records in flight. Returns whether
    /// none is left.
    fn drain(&mut self, _core: &mut Core<'_, 'c>, _deadline: Instant) -> bool {
        true
    }
}

/// The dispatcher for a listener: in order on the consumer thread, by record or by batch.
pub(crate) fn for_plan<'c>(plan: &ContainerPlan) -> Box<dyn Dispatcher<'c> + 'c> {
    match &plan.invoker {
        Invoker::Record(_, start) if plan.order.is_concurrent() => Box::new(Concurrently::new(plan, start.clone())),
        Invoker::Record(invoker, _) => Box::new(RecordsInOrder::new(invoker.clone())),
        Invoker::Batch(invoker) => Box::new(Batches::new(invoker.clone())),
    }
}

/// How one delivery of a record (or batch) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The listener handled the record(s).
    Handled,
    /// A retry's filter or interceptor left the record out.
    Discarded,
    /// The error handler recovered the failure: the record(s) count as processed.
    Recovered,
    /// Not processed and not to be committed: the partition was revoked, the shutdown deadline
    /// passed, or the error handler stopped the container.
    Abandoned,
}

/// Follows the error handler's step for the records of `partitions`: `Some` ends their
/// delivery, `None` means: deliver them again (the back-off has passed).
fn follow(core: &mut Core<'_, '_>, step: Step, partitions: &[(&str, i32)]) -> Option<Outcome> {
    match step {
        Step::Recovered => Some(Outcome::Recovered),
        Step::Stop => {
            core.halt();
            Some(Outcome::Abandoned)
        }
        Step::Retry(delay) => {
            // A failed record is not retried once a stop is requested (nor the records behind
            // it handled): it stays uncommitted, for the next start.
            (!core.back_off(delay, partitions)).then_some(Outcome::Abandoned)
        }
    }
}

/// What to do when the error handler (or its recoverer) panics: log it and tell the event
/// listener (the record is delivered again after `retrying::PANIC_RETRY`).
fn error_handler_panicked(shared: &ContainerShared) -> impl FnOnce(String) + '_ {
    move |panic| {
        tracing::error!(
            listener = &*shared.listener_id,
            panic,
            "the error handler (or its recoverer) panicked; the record is delivered again in {:?}",
            super::retrying::PANIC_RETRY
        );
        shared.emit_panicked("the error handler (or its recoverer)", panic, false);
    }
}

/// No wait: a redelivery at once.
const NOW: Duration = Duration::ZERO;
