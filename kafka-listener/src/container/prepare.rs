//! The stage before the listener: the record filter and the factory's interceptors, each
//! contained (user code). Records left out count as processed (unless `ack_discarded` is false);
//! a filter or interceptor that panics fails the record as a listener would: it is handed on as
//! polled, with its failure kept here, and the error handler decides about it before the
//! listener sees it.
//!
//! A record left out is completed only once the record handed on before it (same partition, same
//! poll) is: completed, or delivered to an acknowledging listener (whose tracker then orders the
//! completions). Completed at once, it would let a commit pass the records ahead of it while they
//! are still being handled or wait for a retry, and a crash then would lose them.

use super::contain::contain;
use super::plan::{ContainerPlan, Invoker};
use super::shared::ContainerShared;
use crate::ack::OffsetTracker;
use crate::extract::Record;
use crate::handler::{ListenerFailure, RecordInterceptor};

/// What the filter and interceptor made of a record.
pub(crate) enum Prepared<'r> {
    /// Hand it over: as it is (`None`), or changed by the interceptor.
    Keep(Option<Record<'r>>),
    /// Left out: it counts as processed (unless `ack_discarded` is false).
    Discard,
    /// One of them panicked: the record failed.
    Failed(ListenerFailure),
}

/// The records of the current poll the stage failed, with their failures, and the records it
/// left out whose completion waits for the record handed on before them.
#[derive(Default)]
pub(crate) struct Stage {
    failed: Vec<(String, i32, i64, ListenerFailure)>,
    /// `(topic, partition, after, offset)`: the record at `offset` was left out, and is completed
    /// once the record at `after` is.
    deferred: Vec<(String, i32, i64, i64)>,
}

impl Stage {
    /// A new poll: failures of the last one are gone, and so are the left-out records still
    /// waiting (the records ahead of them were not processed: they are all fetched again).
    pub(crate) fn clear(&mut self) {
        self.failed.clear();
        self.deferred.clear();
    }

    /// These records were completed, or delivered to an acknowledging listener: the records left
    /// out right behind them are completed now.
    #[inline]
    pub(crate) fn release_after(&mut self, offsets: &mut OffsetTracker, records: &[Record<'_>]) {
        if !self.deferred.is_empty() {
            self.release(offsets, records);
        }
    }

    fn release(&mut self, offsets: &mut OffsetTracker, records: &[Record<'_>]) {
        for r in records {
            let (topic, partition, after) = (r.topic(), r.partition(), r.offset());
            self.deferred.retain(|(t, p, a, offset)| {
                let due = *p == partition && *a == after && t == topic;
                if due {
                    offsets.complete(t.as_str(), *p, *offset);
                }
                !due
            });
        }
    }

    /// Applies the record filter and the interceptor (the record one for record listeners, the
    /// batch one for batch listeners) to a poll's records; returns those to hand over. The ones
    /// left out are completed in the tracker when `ack_discarded`.
    pub(crate) fn run<'c>(
        &mut self,
        plan: &ContainerPlan,
        shared: &ContainerShared,
        records: Vec<Record<'c>>,
    ) -> Vec<Record<'c>> {
        let settings = &plan.settings;
        let (record_interceptor, batch_interceptor) = match plan.invoker {
            Invoker::Record(..) => (settings.record_interceptor.clone(), None),
            Invoker::Batch(_) => (None, settings.batch_interceptor.clone()),
        };
        if plan.filter.is_none() && record_interceptor.is_none() && batch_interceptor.is_none() {
            return records;
        }
        let mut discarded: Vec<(String, i32, i64)> = Vec::new();
        let mut kept = Vec::with_capacity(records.len());
        for record in records {
            match prepare(plan, shared, &record, record_interceptor.as_deref()) {
                Prepared::Keep(None) => kept.push(record),
                Prepared::Keep(Some(changed)) => kept.push(changed),
                Prepared::Discard => discarded.push((record.topic().to_string(), record.partition(), record.offset())),
                Prepared::Failed(failure) => {
                    self.failed.push((record.topic().to_string(), record.partition(), record.offset(), failure));
                    kept.push(record);
                }
            }
        }
        if let Some(interceptor) = batch_interceptor {
            let before: Vec<(String, i32, i64)> =
                kept.iter().map(|r| (r.topic().to_string(), r.partition(), r.offset())).collect();
            // The interceptor consumes the records: keep copies to fail if it panics.
            let copies: Vec<Record<'c>> = kept.iter().map(|r| r.duplicate()).collect();
            match contain(|| interceptor.intercept(kept, &plan.listener_id)) {
                Ok(intercepted) => kept = intercepted,
                Err(panic) => {
                    if let Some(first) = copies.first() {
                        let failure = panicked(plan, shared, "the batch interceptor", first, panic);
                        self.failed.push((first.topic().to_string(), first.partition(), first.offset(), failure));
                    }
                    kept = copies;
                }
            }
            discarded.extend(
                before.into_iter().filter(|(t, p, o)| {
                    !kept.iter().any(|r| r.topic() == t && r.partition() == *p && r.offset() == *o)
                }),
            );
        }
        if settings.ack_discarded && !discarded.is_empty() {
            let mut offsets = shared.offsets();
            for (topic, partition, offset) in discarded {
                // The last record handed on before it, in this poll and partition.
                let ahead = kept
                    .iter()
                    .filter(|r| r.partition() == partition && r.offset() < offset && r.topic() == topic)
                    .map(Record::offset)
                    .max();
                match ahead {
                    Some(after) => self.deferred.push((topic, partition, after, offset)),
                    None => {
                        offsets.complete(topic.as_str(), partition, offset);
                    }
                }
            }
        }
        kept
    }

    /// The failure of the stage for this record, if it failed (taken once).
    #[inline]
    pub(crate) fn take_failure(&mut self, record: &Record<'_>) -> Option<ListenerFailure> {
        if self.failed.is_empty() {
            return None;
        }
        self.take_failure_of(record)
    }

    fn take_failure_of(&mut self, record: &Record<'_>) -> Option<ListenerFailure> {
        let i = self
            .failed
            .iter()
            .position(|(t, p, o, _)| t == record.topic() && *p == record.partition() && *o == record.offset())?;
        Some(self.failed.swap_remove(i).3)
    }
}

/// Runs the record filter and the record interceptor (given for record listeners) on a record,
/// each contained: the record as it is (`Keep(None)`), changed (`Keep(Some)`: an owned copy),
/// discarded, or failed by a panic. A record listener's retry runs it again first.
pub(crate) fn prepare<'r>(
    plan: &ContainerPlan,
    shared: &ContainerShared,
    record: &Record<'_>,
    interceptor: Option<&dyn RecordInterceptor>,
) -> Prepared<'r> {
    if let Some(keep) = &plan.filter {
        match contain(|| keep(record)) {
            Ok(true) => {}
            Ok(false) => return Prepared::Discard,
            Err(panic) => return Prepared::Failed(panicked(plan, shared, "the record filter", record, panic)),
        }
    }
    let Some(interceptor) = interceptor else { return Prepared::Keep(None) };
    // The interceptor consumes the record: it gets a copy, and the record stays to fail if it
    // panics.
    match contain(|| interceptor.intercept(record.duplicate(), &plan.listener_id)) {
        Ok(Some(changed)) => Prepared::Keep(Some(changed)),
        Ok(None) => Prepared::Discard,
        Err(panic) => Prepared::Failed(panicked(plan, shared, "the record interceptor", record, panic)),
    }
}

/// Code run for a record before its listener panicked: logged and told; the record fails with
/// the returned failure.
fn panicked(
    plan: &ContainerPlan,
    shared: &ContainerShared,
    during: &str,
    record: &Record<'_>,
    panic: String,
) -> ListenerFailure {
    tracing::error!(
        listener = &*plan.listener_id,
        topic = record.topic(),
        partition = record.partition(),
        offset = record.offset(),
        panic,
        "{during} panicked; the record goes to the error handler"
    );
    shared.emit_panicked(during, panic.clone(), false);
    ListenerFailure::Panic(format!("{during} panicked: {panic}"))
}

/// Calls a user's hook whose failure changes nothing but must not end the container.
pub(crate) fn hook(shared: &ContainerShared, during: &str, f: impl FnOnce()) {
    if let Err(panic) = contain(f) {
        tracing::error!(listener = &*shared.listener_id, panic, "{during} panicked; ignored");
        shared.emit_panicked(during, panic, false);
    }
}
