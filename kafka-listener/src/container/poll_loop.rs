//! The poll loop of one consumer: release what is due, gather a poll's records, drop what is not
//! ours any more, run the filter stage, dispatch, commit. Every step is a unit's; the loop only
//! says in which order they run.

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;

use super::commit_sink::FINAL_COMMIT_GRACE;
use super::context::KafkaConsumer;
use super::dispatch::{self, Dispatcher};
use super::idle::IdleWatch;
use super::plan::ContainerPlan;
use super::replay::ReplayWindow;
use super::shared::ContainerShared;
use super::siblings::Arrival;
use super::units::{next_of, Core};
use crate::extract::Record;
use crate::TopicPartition;

/// The longest a single poll blocks, so that stop and pause requests are served promptly.
const POLL_SLICE: Duration = Duration::from_millis(100);

pub(crate) struct PollLoop<'p, 'c> {
    core: Core<'p, 'c>,
    dispatcher: Box<dyn Dispatcher<'c> + 'c>,
    idle: IdleWatch,
    /// This consumer's part of a time-range replay.
    replay: Option<ReplayWindow>,
    last_poll_error: Option<(String, Instant)>,
    /// The vector each poll's records are gathered in, kept between polls (see `Dispatcher`).
    gathered: Vec<Record<'c>>,
    /// The consumer's queue (a concurrent processing order, whose poll thread waits on its
    /// tasks and this queue together).
    queue: Option<ConsumerQueue<'c>>,
    /// When the paused-partitions gauge is due again.
    next_paused_report: Instant,
}

/// How often the paused-partitions gauge is updated.
const PAUSED_REPORT_EVERY: Duration = Duration::from_secs(1);

/// The consumer's event queue, to ask whether something waits in it.
struct ConsumerQueue<'c> {
    queue: *mut rdkafka::bindings::rd_kafka_queue_t,
    _consumer: std::marker::PhantomData<&'c KafkaConsumer>,
}

impl<'c> ConsumerQueue<'c> {
    fn of(consumer: &'c KafkaConsumer) -> Option<Self> {
        use rdkafka::consumer::Consumer as _;
        // SAFETY: the client is alive for 'c; librdkafka returns a new reference to its consumer
        // queue (or null without a group), released in `drop`, within 'c.
        let queue = unsafe { rdkafka::bindings::rd_kafka_queue_get_consumer(consumer.client().native_ptr()) };
        (!queue.is_null()).then_some(ConsumerQueue { queue, _consumer: std::marker::PhantomData })
    }

    fn is_empty(&self) -> bool {
        // SAFETY: `queue` is a live reference (see `of`).
        unsafe { rdkafka::bindings::rd_kafka_queue_length(self.queue) == 0 }
    }
}

impl Drop for ConsumerQueue<'_> {
    fn drop(&mut self) {
        // SAFETY: the reference taken in `of`, released once, while the client lives.
        unsafe { rdkafka::bindings::rd_kafka_queue_destroy(self.queue) }
    }
}

impl<'p, 'c> PollLoop<'p, 'c> {
    pub(crate) fn new(
        plan: &'p std::sync::Arc<ContainerPlan>,
        shared: &'p std::sync::Arc<ContainerShared>,
        consumer: &'c KafkaConsumer,
        replay: Option<ReplayWindow>,
    ) -> Self {
        if plan.order.is_concurrent() {
            shared.offsets().keep_offset_maps();
            shared.run_tasks();
        }
        PollLoop {
            core: Core::new(plan, shared, consumer),
            dispatcher: dispatch::for_plan(plan),
            idle: IdleWatch::new(plan.settings.idle_event_interval),
            replay,
            last_poll_error: None,
            gathered: Vec::new(),
            queue: if plan.order.is_concurrent() { ConsumerQueue::of(consumer) } else { None },
            next_paused_report: Instant::now(),
        }
    }

    pub(crate) fn run(&mut self) {
        let (plan, shared, consumer) = (self.core.plan, self.core.shared, self.core.consumer);
        shared.health.polling();
        while !self.core.stopping() {
            self.core.meters.new_turn();
            self.release_holds();
            if shared.revocations().take_handed_over() {
                // Offsets another consumer of the listener processed: committed now, whatever
                // the ack mode (they were due before the rebalance).
                self.core.commit();
            }
            // Nothing is in hand: revocations so far concern no record.
            let revoked = shared.revocations().take();
            if !revoked.is_empty() {
                self.dispatcher.revoked(&revoked);
            }
            self.core.sought.clear();
            self.core.stage.clear();
            self.idle.emit_due(shared, consumer);
            self.dispatcher.collect(&mut self.core);

            let mut records = self.gather(plan.settings.max_poll_records);
            self.idle.arrived(&records);
            self.count_consumed(&records);
            self.report_paused();
            let seeks = shared.control().take_requests().seeks;
            if !seeks.is_empty() {
                // Requested from outside (or when partitions were assigned): applied before any
                // record of those partitions is handled.
                // A relative seek counts from the first record not started: the dispatcher's
                // queue (records of earlier polls waiting to start) before this poll's.
                let dispatcher = &self.dispatcher;
                let next = |tp: &TopicPartition| dispatcher.first_waiting(tp).or_else(|| next_of(&records, tp));
                let sought = self.core.apply_seeks(seeks, next);
                records.retain(|r| !sought.iter().any(|tp| tp.is(r.topic(), r.partition())));
                self.dispatcher.sought(&mut self.core, &sought);
            }
            let reached = match &self.replay {
                Some(window) => {
                    let reached = window.reached(&records);
                    records.retain(|r| window.contains(r));
                    reached
                }
                None => Vec::new(),
            };
            let polled = !records.is_empty();
            let mut records = self.core.stage.run(plan, shared, records);
            if records.is_empty() {
                if polled {
                    // Every record was discarded: they count as a handled poll (committed).
                    self.core.sink.poll_done(shared, consumer, &plan.runtime);
                }
                self.replayed(reached);
                self.core.sink.idle(shared, consumer);
                self.keep_for_next_poll(records);
                continue;
            }
            self.drop_revoked(&mut records);
            self.dispatcher.dispatch(&mut self.core, &mut records);
            self.keep_for_next_poll(records);
            self.core.sink.poll_done(shared, consumer, &plan.runtime);
            self.replayed(reached);
        }
    }

    /// After the loop: waits for the records in flight, commits what was processed, tells a
    /// replay, waits for the siblings' commits when the whole container stops, and says what is
    /// left uncommitted.
    pub(crate) fn finish(&mut self, arrival: &Arrival<'_>) {
        let core = &mut self.core;
        let (plan, shared, consumer) = (core.plan, core.shared, core.consumer);
        let ack_deadline = core.stop.ack_deadline();
        self.dispatcher.drain(core, ack_deadline);
        core.sink.wait_for_acknowledgments(shared, consumer, ack_deadline, plan.settings.shutdown_timeout);
        // One commit phase for the final commit and the wait for the siblings': until the
        // shutdown deadline, and at least FINAL_COMMIT_GRACE from when the acknowledgments are in
        // (so that a stop that used its whole timeout on handlers still commits, and ends in
        // time: `ConcurrentContainer::stop` allows this phase and the consumer's close).
        let deadline = core.stop.deadline().unwrap_or_else(Instant::now).max(Instant::now() + FINAL_COMMIT_GRACE);
        core.sink.final_commit(shared, consumer, deadline);
        if let (Some(replay), Some(window)) = (&plan.replay, &self.replay) {
            replay.consumer_finished(window.all_done());
        }
        arrival.arrive();
        if arrival.siblings.stopping.load(std::sync::atomic::Ordering::Acquire) {
            core.sink.wait_for(shared, consumer, arrival.siblings, deadline);
        }
        core.sink.report_uncommitted(shared);
    }

    /// Applies a requested pause or resume of the whole container, and resumes the partitions
    /// whose retry wait is due or whose acknowledgments caught up.
    fn release_holds(&mut self) {
        let core = &mut self.core;
        let (shared, consumer) = (core.shared, core.consumer);
        let control = shared.control();
        let wanted = control.pause_requested();
        if wanted != control.is_paused() {
            let result = match consumer.assignment() {
                Ok(assignment) if wanted => consumer.pause(&assignment),
                Ok(_) => core.holds.resume_all(consumer, shared),
                Err(error) => Err(error),
            };
            match result {
                Ok(()) => {
                    control.set_paused(wanted);
                    tracing::info!(
                        listener = core.listener(),
                        paused = wanted,
                        "container {}",
                        if wanted { "paused" } else { "resumed" }
                    );
                }
                Err(error) => tracing::warn!(listener = core.listener(), %error, "could not pause/resume"),
            }
        }
        let due = core.holds.release_due(Instant::now());
        core.holds.resume_released(consumer, shared, due, "a retry topic's partition");
        let low = core.plan.settings.max_in_flight / 2;
        let dispatcher = &self.dispatcher;
        let caught_up = {
            let offsets = shared.offsets();
            core.holds.release_throttled(|tp| {
                !offsets.owns(&tp.topic, tp.partition)
                    || (offsets.outstanding(&tp.topic, tp.partition) <= low && dispatcher.may_resume(tp))
            })
        };
        core.holds.resume_released(consumer, shared, caught_up, "after back-pressure");
    }

    /// Counts a poll's records (`messaging.client.consumed.messages`), once per run of one topic.
    fn count_consumed(&mut self, records: &[Record<'c>]) {
        if !self.core.shared.meters.recording() {
            return;
        }
        let mut rest = records;
        while let Some(first) = rest.first() {
            let run = rest.iter().take_while(|r| r.same_topic(first)).count();
            self.core.topic_meters(first).consumed(run as u64);
            rest = &rest[run..];
        }
    }

    /// Updates the paused-partitions gauge, about once a second.
    fn report_paused(&mut self) {
        if !self.core.shared.meters.recording() {
            return;
        }
        let now = Instant::now();
        if now < self.next_paused_report {
            return;
        }
        self.next_paused_report = now + PAUSED_REPORT_EVERY;
        let core = &self.core;
        let paused = if core.shared.control().is_paused() {
            core.consumer.assignment().map(|a| a.count()).unwrap_or(0)
        } else {
            let mut paused: std::collections::HashSet<TopicPartition> = core.holds.holding().collect();
            paused.extend(core.shared.control().paused());
            paused.len()
        };
        core.shared.meters.paused(paused);
    }

    /// Drops a poll's records left over and keeps their vector for the next poll.
    fn keep_for_next_poll(&mut self, mut records: Vec<Record<'c>>) {
        records.clear();
        self.gathered = records;
    }

    fn gather(&mut self, limit: usize) -> Vec<Record<'c>> {
        let (plan, shared, consumer) = (self.core.plan, self.core.shared, self.core.consumer);
        let records = std::mem::take(&mut self.gathered);
        let mut first = plan.settings.poll_timeout.min(POLL_SLICE);
        shared.stats().polled();
        if let Some(due) = self.dispatcher.waits_for_tasks() {
            // Records run as tasks: wait for a task to finish or for the consumer's queue to get
            // something (librdkafka's callback wakes this thread), not in librdkafka's poll.
            if let Some(due) = due {
                first = first.min(due.saturating_duration_since(Instant::now()));
            }
            loop {
                if let Some(polled) = consumer.poll(Duration::ZERO) {
                    return self.gather_rest(records, Some(polled), limit);
                }
                // `None` is also what a served event gives (a commit's result, a rebalance):
                // records may be right behind it, and the callback only fires when the queue
                // was empty.
                if self.queue.as_ref().is_none_or(|q| q.is_empty()) {
                    break;
                }
            }
            shared.wakeup.wait(first);
            first = Duration::ZERO;
        }
        let polled = consumer.poll(first);
        self.gather_rest(records, polled, limit)
    }

    /// Gathers a poll's records after its first (`None`: none came).
    fn gather_rest(
        &mut self,
        mut records: Vec<Record<'c>>,
        first: Option<rdkafka::error::KafkaResult<rdkafka::message::BorrowedMessage<'c>>>,
        limit: usize,
    ) -> Vec<Record<'c>> {
        let consumer = self.core.consumer;
        match first {
            Some(Ok(message)) => records.push(Record::new(message)),
            Some(Err(error)) => {
                self.poll_error(error);
                return records;
            }
            None => return records,
        }
        while records.len() < limit {
            match consumer.poll(Duration::ZERO) {
                Some(Ok(message)) => records.push(Record::new(message)),
                Some(Err(error)) => {
                    self.poll_error(error);
                    break;
                }
                None => break,
            }
        }
        records
    }

    fn poll_error(&mut self, error: KafkaError) {
        let listener = self.core.listener();
        if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::AutoOffsetReset) {
            tracing::error!(listener, %error,
                "a partition has no committed offset and auto_offset_reset is `error`: it is not consumed; say where it starts with a seek in the listener's on_partitions_assigned callback, or commit an offset for the group");
            return;
        }
        let text = error.to_string();
        // The same error repeats at every poll (e.g. a missing topic): say it once a minute.
        let repeated = self
            .last_poll_error
            .as_ref()
            .is_some_and(|(last, at)| *last == text && at.elapsed() < Duration::from_secs(60));
        if !repeated {
            tracing::warn!(listener, error = %text, "consumer error");
            self.last_poll_error = Some((text, Instant::now()));
        }
    }

    /// Drops the records of partitions revoked while they were gathered (and those not owned).
    fn drop_revoked(&mut self, records: &mut Vec<Record<'c>>) {
        let shared = self.core.shared;
        let revoked = shared.revocations().take();
        if revoked.is_empty() {
            return;
        }
        self.dispatcher.revoked(&revoked);
        let offsets = shared.offsets();
        records.retain(|r| {
            offsets.owns(r.topic(), r.partition()) && !revoked.iter().any(|tp| tp.is(r.topic(), r.partition()))
        });
    }

    /// Partitions that reached the end of the replay window are paused; when all have, the
    /// consumer stops.
    fn replayed(&mut self, reached: Vec<TopicPartition>) {
        let Some(window) = &mut self.replay else { return };
        if reached.is_empty() && !window.all_done() {
            return;
        }
        let (shared, consumer) = (self.core.shared, self.core.consumer);
        if !reached.is_empty() {
            if let Err(error) = consumer.pause(&crate::topic_partition::to_list(&reached)) {
                tracing::warn!(listener = self.core.listener(), %error, "could not pause a replayed partition");
            }
        }
        window.done.extend(reached);
        if window.all_done() {
            tracing::info!(listener = self.core.listener(), "replay window done; stopping");
            shared.control().request_stop();
        }
    }
}
