//! Where processed offsets go, by the kind of container: consumer commits at the ack mode's
//! cadence (`commit_policy.rs` decides when), the record's transaction (transactional
//! factories: offsets are sent to the transaction and committed with its output), or nowhere
//! (a time-range replay leaves the group's position as it was). The poll loop and dispatchers
//! call the same methods whatever the kind; only this file checks it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer as _;
use rdkafka::{Offset, TopicPartitionList};

use super::commit_policy::{Commit, CommitPolicy, RECORD_COMMIT_SPACING};
use super::context::KafkaConsumer;
use super::plan::ContainerPlan;
use super::runs::lasts;
use super::shared::ContainerShared;
use super::siblings::Siblings;
use crate::ack::Selection;
use crate::error::Error;
use crate::extract::Record;
use crate::handler::{drive, ListenerFailure};
use crate::producer::KafkaTemplate;
use crate::topic_partition::describe_offsets as describe;

/// How often an idle container confirms asynchronous commits.
const CONFIRM_INTERVAL: Duration = Duration::from_millis(500);
/// The least time the final commit (and the wait for the siblings' commits) is tried for.
pub(crate) const FINAL_COMMIT_GRACE: Duration = Duration::from_secs(3);
/// The longest a single poll blocks while waiting at the end.
const POLL_SLICE: Duration = Duration::from_millis(100);

enum Kind<'p> {
    /// Offsets are committed by the consumer.
    Consumer,
    /// Offsets go into each record's transaction; `open` is the open transaction's hold on the
    /// template.
    Transactional { template: &'p KafkaTemplate, open: Option<tokio::sync::MutexGuard<'p, ()>> },
    /// Nothing is committed.
    Replay,
}

/// The commit side of one consumer's loop.
pub(crate) struct CommitSink<'p> {
    kind: Kind<'p>,
    policy: CommitPolicy,
    listener: &'p str,
    fix_tx_offsets: bool,
    last_confirm: Instant,
    /// When positions were last compared with commits (`fix_tx_offsets`).
    last_tx_fix: Instant,
}

impl<'p> CommitSink<'p> {
    pub(crate) fn new(plan: &'p ContainerPlan) -> Self {
        let kind = match (&plan.settings.transactional, &plan.replay) {
            (_, Some(_)) => Kind::Replay,
            (Some(template), None) => Kind::Transactional { template, open: None },
            (None, None) => Kind::Consumer,
        };
        CommitSink {
            kind,
            policy: CommitPolicy::new(plan.ack_mode, &plan.settings),
            listener: &plan.listener_id,
            fix_tx_offsets: plan.settings.fix_tx_offsets,
            last_confirm: Instant::now(),
            last_tx_fix: Instant::now(),
        }
    }

    /// Whether the consumer commits offsets (neither transactional nor a replay).
    pub(crate) fn commits_offsets(&self) -> bool {
        matches!(self.kind, Kind::Consumer)
    }

    /// Whether a batch may be split at the record its listener names as failed
    /// (`BatchListenerFailed`): not in a transaction, whose output is the whole batch's, all or
    /// nothing.
    pub(crate) fn splits_batches(&self) -> bool {
        !matches!(self.kind, Kind::Transactional { .. })
    }

    /// Commits what is committable now (consumer commits; the others commit elsewhere).
    pub(crate) fn commit(&mut self, shared: &ContainerShared, consumer: &KafkaConsumer) {
        if !self.commits_offsets() {
            return;
        }
        shared.commit_logged(consumer, false, Selection::Advanced);
        self.policy.committed();
    }

    /// `n` records were handled: commits when the ack mode says so.
    #[inline]
    pub(crate) fn handled(
        &mut self,
        n: u64,
        shared: &Arc<ContainerShared>,
        consumer: &KafkaConsumer,
        runtime: &tokio::runtime::Handle,
    ) {
        let decision = self.policy.handled(n, shared.flush_scheduled());
        self.apply(decision, shared, consumer, runtime);
    }

    /// A poll's records were all dealt with: commits when the ack mode says so.
    pub(crate) fn poll_done(
        &mut self,
        shared: &Arc<ContainerShared>,
        consumer: &KafkaConsumer,
        runtime: &tokio::runtime::Handle,
    ) {
        let decision = self.policy.poll_done(shared.flush_scheduled());
        self.apply(decision, shared, consumer, runtime);
    }

    #[inline]
    fn apply(
        &mut self,
        decision: Commit,
        shared: &Arc<ContainerShared>,
        consumer: &KafkaConsumer,
        runtime: &tokio::runtime::Handle,
    ) {
        match decision {
            Commit::Now => self.commit(shared, consumer),
            Commit::Soon => schedule_commit(shared, runtime),
            Commit::No => {}
        }
    }

    /// Nothing was polled: commits what is due, moves commits past transaction markers
    /// (`fix_tx_offsets`), and confirms asynchronous commits with a synchronous one (they may
    /// have been rejected during a rebalance).
    pub(crate) fn idle(&mut self, shared: &ContainerShared, consumer: &KafkaConsumer) {
        if self.policy.idle() {
            self.commit(shared, consumer);
        }
        if !self.commits_offsets() {
            return;
        }
        if self.fix_tx_offsets && self.last_tx_fix.elapsed() >= CONFIRM_INTERVAL {
            self.last_tx_fix = Instant::now();
            self.fix_tx_offsets(shared, consumer);
        }
        if self.last_confirm.elapsed() >= CONFIRM_INTERVAL && shared.offsets().has_unconfirmed() {
            self.last_confirm = Instant::now();
            if let Err(error) = shared.commit(consumer, true, Selection::Unconfirmed) {
                tracing::debug!(listener = self.listener, %error, "commit not confirmed yet; trying again");
            }
        }
    }

    /// Spring's `fixTxOffsets`: records written in transactions are followed by a commit marker
    /// the listener never sees, so a caught-up partition's committed offset stays one (or more)
    /// short of its end and its lag never reaches 0. When nothing was polled and a partition has
    /// nothing in flight, its committed offset is the last processed record + 1 and the
    /// consumer's position is past it (over markers, or records of aborted transactions), the
    /// position is committed.
    fn fix_tx_offsets(&mut self, shared: &ContainerShared, consumer: &KafkaConsumer) {
        let Ok(positions) = consumer.position() else { return };
        let mut moved = Vec::new();
        {
            let mut offsets = shared.offsets();
            for e in positions.elements() {
                if let Offset::Offset(position) = e.offset() {
                    if offsets.skip_to(e.topic(), e.partition(), position) {
                        moved.push(format!("{}-{}@{position}", e.topic(), e.partition()));
                    }
                }
            }
        }
        if !moved.is_empty() {
            tracing::debug!(listener = self.listener, positions = %moved.join(", "),
                "committing positions past transaction markers (fix_tx_offsets)");
            self.commit(shared, consumer);
        }
    }

    /// Opens the transaction a record is handled in (transactional factories only).
    #[inline]
    pub(crate) fn begin(&mut self) -> Result<(), ListenerFailure> {
        match self.kind {
            Kind::Transactional { .. } => self.begin_transaction(),
            _ => Ok(()),
        }
    }

    fn begin_transaction(&mut self) -> Result<(), ListenerFailure> {
        let Kind::Transactional { template, open } = &mut self.kind else { return Ok(()) };
        if open.is_none() {
            *open = Some(drive(template.inner.transaction_lock.lock()));
        }
        template
            .inner
            .producer
            .begin_transaction()
            .map_err(|e| ListenerFailure::Transaction(Box::new(Error::kafka("beginning the record's transaction", e))))
    }

    /// Aborts the open transaction, if any: its output is discarded.
    pub(crate) fn abort(&mut self) {
        let Kind::Transactional { template, open } = &mut self.kind else { return };
        if open.take().is_some() {
            if let Err(error) = template.inner.producer.abort_transaction(template.inner.send_timeout) {
                tracing::warn!(listener = self.listener, %error, "could not abort the record's transaction");
            }
        }
    }

    /// The records were processed: in a transactional container, commits their transaction with
    /// their offsets (the offset after the last record of each partition). Returns false when it
    /// was aborted instead: the records must be delivered again. Other containers return true
    /// (their offsets are committed at the ack mode's cadence).
    #[inline]
    pub(crate) fn processed(
        &mut self,
        records: &[Record<'_>],
        shared: &ContainerShared,
        consumer: &KafkaConsumer,
    ) -> bool {
        !matches!(self.kind, Kind::Transactional { .. }) || self.commit_transaction(records, shared, consumer)
    }

    fn commit_transaction(
        &mut self,
        records: &[Record<'_>],
        shared: &ContainerShared,
        consumer: &KafkaConsumer,
    ) -> bool {
        // A recovered record's transaction was aborted: its offset goes in a new one.
        let reopened = match &self.kind {
            Kind::Transactional { open: None, .. } => self.begin().is_ok(),
            _ => true,
        };
        if !reopened {
            self.abort();
            return false;
        }
        let Kind::Transactional { template, .. } = &self.kind else { return true };
        let template = *template;
        // The offset after the last record of each partition.
        let lasts = lasts(records);
        let mut offsets = TopicPartitionList::new();
        let added = lasts
            .iter()
            .try_for_each(|(tp, last)| offsets.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(last + 1)));
        let producer = &template.inner.producer;
        let timeout = template.inner.send_timeout;
        let committed = added
            .and_then(|()| {
                let metadata = consumer.group_metadata().ok_or(KafkaError::NoMessageReceived)?;
                producer.send_offsets_to_transaction(&offsets, &metadata, timeout)
            })
            .and_then(|()| producer.commit_transaction(timeout));
        match committed {
            Ok(()) => {
                if let Kind::Transactional { open, .. } = &mut self.kind {
                    *open = None;
                }
                let mut tracker = shared.offsets();
                for (tp, last) in lasts {
                    tracker.committed_at(&tp.topic, tp.partition, last + 1);
                }
                true
            }
            Err(error) => {
                tracing::warn!(listener = self.listener, offsets = %describe(&offsets), %error,
                    "could not commit the transaction; its records are delivered again");
                self.abort();
                false
            }
        }
    }

    /// Commits what was processed before the consumer leaves its group. A commit rejected while
    /// a rebalance is in progress is tried again, serving the rebalance meanwhile, until
    /// `deadline` (the end of the stop's commit phase, see `PollLoop::finish`).
    pub(crate) fn final_commit(&mut self, shared: &ContainerShared, consumer: &KafkaConsumer, deadline: Instant) {
        if !self.commits_offsets() {
            return;
        }
        loop {
            match shared.commit(consumer, true, Selection::All) {
                Ok(()) => break,
                Err(error) if Instant::now() >= deadline => {
                    tracing::warn!(listener = self.listener, %error, "the final commit failed");
                    break;
                }
                Err(error) => {
                    tracing::debug!(listener = self.listener, %error, "final commit rejected; trying again");
                    // Records fetched now are neither handled nor committed: the group's next
                    // consumer gets them.
                    shared.stats().polled();
                    let _ = consumer.poll(POLL_SLICE);
                }
            }
        }
    }

    /// Waits (up to `deadline`) until the records delivered to the listener are acknowledged,
    /// serving the consumer with its partitions paused so that it stays in its group and fetches
    /// nothing more (consumer commits only: a transaction or replay has none outstanding).
    pub(crate) fn wait_for_acknowledgments(
        &self,
        shared: &ContainerShared,
        consumer: &KafkaConsumer,
        deadline: Instant,
        shutdown_timeout: Duration,
    ) {
        if !self.commits_offsets() || shared.offsets().unacknowledged(None).is_empty() {
            return;
        }
        if let Ok(assignment) = consumer.assignment() {
            if let Err(error) = consumer.pause(&assignment) {
                tracing::debug!(listener = self.listener, %error, "could not pause while waiting for acknowledgments");
            }
        }
        loop {
            let slice = (Instant::now() + POLL_SLICE).min(deadline);
            let left = shared.wait_for_acks(None, slice);
            if left.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(listener = self.listener, waiting = %super::context::describe_counts(&left),
                    timeout = ?shutdown_timeout,
                    "stopping with records delivered but not acknowledged within shutdown_timeout: they are not committed and will be delivered again");
                return;
            }
            shared.stats().polled();
            // Records fetched before the pause are not handled (nor committed): the group's next
            // consumer gets them.
            let _ = consumer.poll(Duration::ZERO);
        }
    }

    /// Waits (serving the consumer, handling nothing) until every sibling has committed, or
    /// `deadline` (the same end of the commit phase as the final commit's). Meanwhile a rebalance
    /// may hand this consumer partitions whose offsets a sibling processed but could not commit
    /// (the broker rejected it during the rebalance): they are committed here, and the wait lasts
    /// until no such offsets are left.
    pub(crate) fn wait_for(
        &self,
        shared: &ContainerShared,
        consumer: &KafkaConsumer,
        siblings: &Siblings,
        deadline: Instant,
    ) {
        let mut last_try = Instant::now();
        loop {
            let uncommitted = !shared.offsets().all_uncommitted().is_empty();
            // Nobody leaves (which would start another rebalance) before all have committed.
            let all_settled = siblings.settle(shared.index, !uncommitted);
            if (siblings.all_arrived() && shared.handoff().is_empty() && all_settled) || Instant::now() >= deadline {
                return;
            }
            if uncommitted && last_try.elapsed() >= Duration::from_millis(100) {
                last_try = Instant::now();
                if let Err(error) = shared.commit(consumer, true, Selection::All) {
                    tracing::debug!(listener = self.listener, %error, "commit while stopping rejected; trying again");
                }
            }
            shared.stats().polled();
            // Records fetched now are neither handled nor committed: the group's next consumer
            // gets them.
            let _ = consumer.poll(Duration::from_millis(10));
        }
    }

    /// Says (at WARN) which processed records this consumer leaves uncommitted.
    pub(crate) fn report_uncommitted(&self, shared: &ContainerShared) {
        if !self.commits_offsets() {
            return;
        }
        let left = shared.offsets().all_uncommitted();
        if !left.is_empty() {
            let counts: Vec<(String, i32, String)> =
                left.into_iter().map(|(t, p, next, n)| (t, p, format!("{n} record(s) before offset {next}"))).collect();
            tracing::warn!(listener = self.listener, uncommitted = %super::context::describe_counts(&counts),
                "stopping with processed records not committed: the group's next consumer handles them again");
        }
    }
}

/// Sends the held-back commit once the spacing has passed, from a runtime task, so that a slow
/// next handler does not hold it back (commits are ordered under the tracker's lock).
fn schedule_commit(shared: &Arc<ContainerShared>, runtime: &tokio::runtime::Handle) {
    if !shared.schedule_flush() {
        return;
    }
    let shared = shared.clone();
    runtime.spawn(async move {
        tokio::time::sleep(RECORD_COMMIT_SPACING).await;
        shared.flushed();
        // On stop, the poll thread commits synchronously itself.
        if !shared.control().stop_requested() {
            shared.commit_now();
        }
    });
}
