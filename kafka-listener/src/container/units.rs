//! The units one consumer's poll loop owns, held together (as tokio's worker `Core` holds its run
//! queue and parker), with the few steps that combine two of them: a wait commits first, a
//! throttle pauses and seeks, a handler's requests become seeks or a redelivery.
//!
//! The poll loop (`poll_loop.rs`) and the dispatchers (`dispatch/`) work through a `Core`; the
//! units it holds never call back into either.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::Offset;

use super::commit_sink::CommitSink;
use super::context::KafkaConsumer;
use super::control::HandlerRequests;
use super::holds::{Hold, PartitionHolds};
use super::plan::ContainerPlan;
use super::port::ContainerPort;
use super::prepare::Stage;
use super::runs::firsts;
use super::seeks::{self, Base, SEEK_TIMEOUT};
use super::shared::ContainerShared;
use super::stop_clock::StopClock;
use crate::ack::TopicName;
use crate::extract::{ListenerContext, Record};
use crate::observability::meter::{TopicCache, TopicMeters};
use crate::observability::spans::Deliverer;
use crate::TopicPartition;

/// The units of one consumer's loop.
pub(crate) struct Core<'p, 'c> {
    pub(crate) plan: &'p ContainerPlan,
    pub(crate) shared: &'p Arc<ContainerShared>,
    pub(crate) consumer: &'c KafkaConsumer,
    /// What listener invocations reach the container through.
    pub(crate) port: ContainerPort,
    pub(crate) holds: PartitionHolds,
    pub(crate) sink: CommitSink<'p>,
    pub(crate) stop: StopClock,
    /// The filter and interceptor stage, with the records it failed in this poll.
    pub(crate) stage: Stage,
    /// Partitions a seek moved during the current poll.
    pub(crate) sought: HashSet<TopicPartition>,
    /// The consumer's `client.id` (for spans).
    pub(crate) client_id: String,
    /// Per-topic metric handles.
    pub(crate) meters: TopicCache,
}

impl<'p, 'c> Core<'p, 'c> {
    pub(crate) fn new(plan: &'p ContainerPlan, shared: &'p Arc<ContainerShared>, consumer: &'c KafkaConsumer) -> Self {
        Core {
            plan,
            shared,
            consumer,
            port: ContainerPort::new(shared.clone()),
            holds: PartitionHolds::default(),
            sink: CommitSink::new(plan),
            stop: StopClock::new(plan.settings.shutdown_timeout),
            stage: Stage::default(),
            sought: HashSet::new(),
            client_id: plan.consumer_client_id(shared.index),
            meters: TopicCache::default(),
        }
    }

    /// Who delivers, for `process` spans.
    pub(crate) fn span_names(&self) -> Deliverer<'_> {
        Deliverer { listener: &self.plan.listener_id, group: &self.plan.group, client_id: &self.client_id }
    }

    /// A delivery of `record` that began at `began` (`None`: no recorder, nothing to record)
    /// ended, failed with `error_type` if it failed.
    #[inline]
    pub(crate) fn processed(&mut self, record: &Record<'_>, began: Option<Instant>, error_type: Option<&'static str>) {
        if let Some(began) = began {
            self.topic_meters(record).processed(began.elapsed(), error_type);
        }
    }

    /// The metric handles of a record's topic.
    pub(crate) fn topic_meters(&mut self, record: &Record<'_>) -> &TopicMeters {
        self.meters.of(&self.shared.meters, record)
    }

    pub(crate) fn listener(&self) -> &'p str {
        &self.plan.listener_id
    }

    pub(crate) fn stopping(&mut self) -> bool {
        self.stop.stopping(self.shared)
    }

    pub(crate) fn past_deadline(&mut self) -> bool {
        self.stop.past_deadline(self.shared)
    }

    /// The error handler stopped the container: nothing more is handled.
    pub(crate) fn halt(&mut self) {
        tracing::error!(listener = self.listener(), "the error handler stopped the container");
        self.stop.halted = true;
        self.shared.health.failed("the error handler stopped the container");
        self.shared.control().request_stop();
    }

    /// Commits what is committable now (consumer commits only; see `CommitSink`).
    pub(crate) fn commit(&mut self) {
        self.sink.commit(self.shared, self.consumer);
    }

    /// `n` records were handled: counts them, and commits if the ack mode says so.
    #[inline]
    pub(crate) fn handled(&mut self, n: u64) {
        self.sink.handled(n, self.shared, self.consumer, &self.plan.runtime);
    }

    /// What a listener invocation is given besides its record(s).
    pub(crate) fn context(&self, attempt: u32) -> ListenerContext<'_> {
        ListenerContext {
            listener_id: &self.plan.listener_id,
            states: &self.plan.states,
            container: &self.port,
            attempt,
            attempt_header: self.plan.settings.delivery_attempt_header,
        }
    }

    /// A retry's back-off: what was processed is committed first (seek-to-current), then the
    /// container waits with its assignment paused. Returns false when the records must be given
    /// up instead: a stop came, or one of `partitions` was revoked meanwhile.
    pub(crate) fn back_off(&mut self, delay: Duration, partitions: &[(&str, i32)]) -> bool {
        if self.stopping() {
            return false;
        }
        if delay.is_zero() {
            return true;
        }
        self.commit();
        self.holds.paused_wait(self.consumer, self.shared, &mut self.stop, delay);
        if self.stopping() {
            return false;
        }
        let offsets = self.shared.offsets();
        partitions.iter().all(|(t, p)| offsets.owns(t, *p))
    }

    /// Pauses the partitions of `touched` with `max_in_flight` records or more waiting for an
    /// acknowledgment, and seeks each to the record after the last one delivered (`touched`
    /// gives it), so that records fetched ahead are dropped (fetched again after the resume)
    /// instead of piling up. What is done is committed first, not held back by the pause.
    pub(crate) fn throttle(&mut self, touched: Vec<(TopicPartition, i64)>) {
        let bound = self.plan.settings.max_in_flight;
        self.throttle_where(touched, |offsets, tp| offsets.outstanding(&tp.topic, tp.partition) >= bound);
    }

    /// [`throttle`](Self::throttle) for the partitions of `touched` that are `over` their bound.
    pub(crate) fn throttle_where(
        &mut self,
        touched: Vec<(TopicPartition, i64)>,
        over: impl Fn(&crate::ack::OffsetTracker, &TopicPartition) -> bool,
    ) {
        let bound = self.plan.settings.max_in_flight;
        let over: Vec<(TopicPartition, i64)> = {
            let offsets = self.shared.offsets();
            touched
                .into_iter()
                .filter(|(tp, _)| {
                    offsets.owns(&tp.topic, tp.partition) && !self.holds.is_throttled(tp) && over(&offsets, tp)
                })
                .collect()
        };
        if over.is_empty() {
            return;
        }
        self.commit();
        let listener = self.listener();
        for (tp, last) in over {
            // A handler that moved the partition in this poll: its position stands.
            let seek_to = (!self.sought.contains(&tp)).then_some(last + 1);
            match self.holds.pause_at(self.consumer, self.shared, &tp, seek_to) {
                Ok(()) => {
                    tracing::debug!(
                        listener,
                        topic = tp.topic,
                        partition = tp.partition,
                        bound,
                        "paused: too many records wait to start or for an acknowledgment"
                    );
                    self.holds.hold(tp, Hold::Throttled);
                }
                Err(error) => tracing::warn!(listener, topic = tp.topic, partition = tp.partition, %error,
                    "could not pause for back-pressure"),
            }
        }
    }

    /// Holds a retry topic's partition until its head record is due: sought back to the record
    /// and paused (the consumer keeps polling, so it stays in its group; Spring pauses likewise).
    pub(crate) fn hold_until_due(&mut self, record: &Record<'_>, wait: Duration) {
        self.commit();
        let tp = TopicPartition::new(record.topic(), record.partition());
        let offset = record.offset();
        let listener = self.listener();
        match self.holds.pause_at(self.consumer, self.shared, &tp, Some(offset)) {
            Ok(()) => {
                self.shared.offsets().rewind(&tp.topic, tp.partition, offset);
                tracing::debug!(
                    listener,
                    topic = tp.topic,
                    partition = tp.partition,
                    offset,
                    ?wait,
                    "waiting for the retry to be due"
                );
                self.holds.hold(tp, Hold::DueAt(Instant::now() + wait));
            }
            Err(error) => {
                tracing::warn!(listener, topic = tp.topic, partition = tp.partition, offset, %error,
                    "could not pause until the retry is due; the record is delivered again");
                let _ = self.consumer.seek(&tp.topic, tp.partition, Offset::Offset(offset), SEEK_TIMEOUT);
            }
        }
    }

    /// Applies a handler's nack and seeks: `rest` is what a nack delivers again (from the
    /// records just handled on), `held` the records not handled yet. Returns the partitions whose
    /// held records must be given up, or `None` when a nack gave up the rest of the poll.
    pub(crate) fn apply_requests(
        &mut self,
        requests: HandlerRequests,
        rest: &[Record<'_>],
        held: &[Record<'_>],
    ) -> Option<Vec<TopicPartition>> {
        if let Some(sleep) = requests.nack {
            self.redeliver(rest, sleep);
            return None;
        }
        if requests.seeks.is_empty() {
            // The usual case, after every record: nothing asked.
            return Some(Vec::new());
        }
        // The records not handled yet are the position a relative seek starts from.
        Some(self.apply_seeks(requests.seeks, |tp| next_of(held, tp)))
    }

    /// Applies seeks (from a handler, from outside, or from an assignment callback); returns the
    /// partitions sought, whose records in hand (not handled yet) must be dropped. `next` gives a
    /// partition's first record in hand not handled yet, where a relative seek counts from (else
    /// from the consumer's position, after the last record polled).
    pub(crate) fn apply_seeks(
        &mut self,
        seeks: Vec<(TopicPartition, seeks::SeekTo)>,
        next: impl Fn(&TopicPartition) -> Option<i64>,
    ) -> Vec<TopicPartition> {
        let mut sought = Vec::new();
        let listener = self.listener();
        for (tp, to) in seeks {
            if !self.shared.offsets().owns(&tp.topic, tp.partition) {
                tracing::warn!(
                    listener,
                    topic = tp.topic,
                    partition = tp.partition,
                    ?to,
                    "seek ignored: this consumer does not own the partition"
                );
                continue;
            }
            let base = next(&tp).map_or(Base::Position, Base::Next);
            let lookup = seeks::Lookup { consumer: self.consumer, config: &self.plan.client_config };
            let result = seeks::resolve(&lookup, &tp, to, base).and_then(|offset| {
                self.consumer.seek(&tp.topic, tp.partition, Offset::Offset(offset), SEEK_TIMEOUT).map(|()| offset)
            });
            match result {
                Ok(offset) => {
                    tracing::debug!(listener, topic = tp.topic, partition = tp.partition, ?to, offset, "sought");
                    self.shared.offsets().rewind(&tp.topic, tp.partition, offset);
                    self.holds.forget_positions([&tp]);
                    self.sought.insert(tp.clone());
                    sought.push(tp);
                }
                Err(error) => {
                    tracing::warn!(listener, topic = tp.topic, partition = tp.partition, ?to, %error, "seek failed")
                }
            }
        }
        sought
    }

    /// Seeks every partition of `records` back to its first record there, then waits `sleep`
    /// with the assignment paused (the consumer stays in its group).
    pub(crate) fn redeliver(&mut self, records: &[Record<'_>], sleep: Duration) {
        for (topic, partition, offset) in firsts(records) {
            self.shared.offsets().rewind(topic, partition, offset);
            if let Err(error) = self.consumer.seek(topic, partition, Offset::Offset(offset), SEEK_TIMEOUT) {
                tracing::warn!(listener = self.listener(), topic, partition, offset, %error, "seek for nack failed");
            }
        }
        if !sleep.is_zero() {
            // What was processed before (acknowledged, handled) is committed before the wait, as
            // Spring commits pending offsets before a nack's pause.
            self.commit();
            self.holds.paused_wait(self.consumer, self.shared, &mut self.stop, sleep);
        }
    }

    /// Completes these records in the tracker (handled, recovered, or discarded), and the records
    /// the filter stage left out right behind them.
    ///
    /// One lock for all of them, and one look-up per run of a partition's records.
    pub(crate) fn complete(&mut self, records: &[Record<'_>]) {
        let Some(first) = records.first() else { return };
        let mut offsets = self.shared.offsets();
        let (mut run, mut from) = (first, 0);
        for (i, r) in records.iter().enumerate().skip(1) {
            if r.partition() != run.partition() || !r.same_topic(run) {
                offsets.complete_run(run, run.partition(), records[from..i].iter().map(Record::offset));
                (run, from) = (r, i);
            }
        }
        offsets.complete_run(run, run.partition(), records[from..].iter().map(Record::offset));
        self.stage.release_after(&mut offsets, records);
    }

    /// Whether a record listener's completions may wait and be applied to the offset tracker
    /// together at the end of the poll (or before anything else touches the tracker): with
    /// `AckMode::Batch`, nothing commits between the records of a poll, unless a record fails,
    /// a handler asks for a seek or nack, or the container stops, and the dispatcher applies
    /// them first then. Not for listeners that acknowledge, or take the `ConsumerHandle` (whose
    /// `commit_sync` commits what was processed so far), transactions, replays, filters or
    /// interceptors (records left out complete behind the ones before them), or retry topics.
    pub(crate) fn defers_completions(&self) -> bool {
        let plan = self.plan;
        plan.ack_mode == crate::config::AckMode::Batch
            && !plan.acknowledging
            && !plan.consumer_aware
            && self.sink.commits_offsets()
            && plan.filter.is_none()
            && plan.settings.record_interceptor.is_none()
            && !plan.retry_topic
    }

    /// Tracks each record as a new delivery awaiting its acknowledgment (acknowledging listeners):
    /// an acknowledgment of an earlier (failed) delivery no longer counts.
    #[inline]
    pub(crate) fn track(&mut self, records: &[Record<'_>]) {
        if self.plan.acknowledging {
            self.track_deliveries(records);
        }
    }

    fn track_deliveries(&mut self, records: &[Record<'_>]) {
        let mut offsets = self.shared.offsets();
        for r in records {
            offsets.track(r.topic(), r.partition(), r.offset());
        }
        // Completed behind their deliveries, the tracker commits them only once those are.
        self.stage.release_after(&mut offsets, records);
    }

    /// Forgets the deliveries of these records (from each partition's first on): they were not
    /// processed, and acknowledgments of them no longer count.
    pub(crate) fn rewind(&self, records: &[Record<'_>]) {
        let mut offsets = self.shared.offsets();
        for (topic, partition, first) in firsts(records) {
            offsets.rewind(topic, partition, first);
        }
    }
}

/// A record's topic, compared in place by the offset tracker's per-record lookups.
impl TopicName for Record<'_> {
    #[inline]
    fn is(&self, topic: &str) -> bool {
        self.topic_is(topic)
    }

    fn name(&self) -> &str {
        self.topic()
    }
}

/// The offset of the first of `records` from `tp`, if any.
pub(crate) fn next_of(records: &[Record<'_>], tp: &TopicPartition) -> Option<i64> {
    records.iter().find(|r| tp.is(r.topic(), r.partition())).map(Record::offset)
}
