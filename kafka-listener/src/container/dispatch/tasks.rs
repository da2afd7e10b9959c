//! Record listeners with a concurrent processing order (`ProcessingOrder::Key`, `Unordered`):
//! each record's handler runs as a tokio task (a blocking handler on the blocking pool), while
//! the consumer's thread keeps polling.
//!
//! The poll thread queues each poll's records in their lanes (`lanes.rs`: one key's records one
//! at a time, or any record), tracked in the offset tracker as *queued* deliveries, and starts
//! what may start, up to `max_concurrency`. A record's arguments are converted on the poll
//! thread (the record stays there, borrowed from the consumer); the task gets the handler's
//! future. A task that succeeds completes its record in the tracker itself (unless the listener
//! acknowledges), then reports to the poll thread, which frees the record's lane and commits by
//! the ack mode; since only the contiguous prefix of completed records is committable, a commit
//! never passes a record still queued or running. A failure goes to the error handler on the
//! poll thread: a retry waits its back-off while only the record's lane (its key) waits.
//!
//! A partition whose queued records reach `queue_bound`, or whose records between the committed
//! offset and the newest reach `max_in_flight`, is paused and sought back, and resumed when half
//! of them are gone: memory stays bounded whatever the backlog.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::lanes::{LaneId, Lanes, Order};
use super::{error_handler_panicked, Dispatcher};
use crate::ack::{DeliveryId, Queued};
use crate::config::ProcessingOrder;
use crate::container::contain::contain;
use crate::container::plan::ContainerPlan;
use crate::container::prepare::hook;
use crate::container::replies::{self, ReplyTarget};
use crate::container::retrying::{ask_record, Attempts, Step};
use crate::container::shared::{lock, ContainerShared};
use crate::container::units::Core;
use crate::extract::Record;
use crate::handler::{drive, HandlerOutput, Job, ListenerFailure, RecordOutcome, RecordStarter};
use crate::observability::spans;
use crate::TopicPartition;
use tracing::{Instrument, Span};

/// While handlers' first polls (up to their first wait) take longer than this on average on the
/// consumer's thread, records' handlers start as tasks (see `Concurrently::first_polls`).
const EAGER_LIMIT: Duration = Duration::from_micros(100);

/// While handlers start as tasks, one record in this many is still polled on the consumer's
/// thread first, to see whether they have become quick again (a slow first call, a stall).
const EAGER_SAMPLE_EVERY: u64 = 32;

/// The moving average of how long handlers' first polls took (each new one weighs 1/8, and
/// counts as at most 4 × `EAGER_LIMIT`: one poll that the scheduler preempted does not switch
/// eager starts off, three slow ones in a row do).
#[derive(Debug, Default)]
struct FirstPolls {
    average_ns: u64,
}

impl FirstPolls {
    fn add(&mut self, took: Duration) {
        let took = took.min(4 * EAGER_LIMIT).as_nanos() as u64;
        self.average_ns = self.average_ns - self.average_ns / 8 + took / 8;
    }

    fn average(&self) -> Duration {
        Duration::from_nanos(self.average_ns)
    }

    /// Handlers' first polls are quick enough to run on the consumer's thread.
    fn quick(&self) -> bool {
        self.average() <= EAGER_LIMIT
    }
}

/// Records of a partition that may wait to start, per record in flight (`max_concurrency`).
const QUEUED_PER_RECORD_IN_FLIGHT: usize = 10;

/// How a task's end reaches the poll thread: its number, whether it succeeded, and how long the
/// delivery took.
type Finished = Mutex<Vec<(u64, Result<(), ListenerFailure>, Option<Duration>)>>;

/// Record listeners by key or unordered, as tasks.
pub(crate) struct Concurrently<'c> {
    start: RecordStarter,
    lanes: Lanes<Waiting<'c>>,
    /// Records started and not done (running as a task, or waiting for a retry), by task number.
    running: HashMap<u64, Running<'c>>,
    next_task: u64,
    /// Retries waiting for their back-off: when, and the task.
    retries: BinaryHeap<Reverse<(Instant, u64)>>,
    finished: Arc<Finished>,
    /// A partition with this many records waiting to start is paused.
    queue_bound: usize,
    /// Stopping: nothing more starts.
    draining: bool,
    /// Handler futures are polled once on the consumer's thread before they become tasks: one
    /// that completes without waiting (a cache hit, a filter, no work) costs no task and no
    /// thread hop. While the first polls take longer than `EAGER_LIMIT` on average, handlers
    /// start as tasks (so that those that compute before they wait run on the runtime's
    /// workers, not here), but for one in `EAGER_SAMPLE_EVERY`, which keeps the average current.
    first_polls: FirstPolls,
    /// Handler futures started.
    starts: u64,
    /// Records of the current start round whose handlers succeeded at once, to complete, and
    /// how long they took.
    ended_at_once: Vec<(u64, Completion, Option<Duration>)>,
    /// Handlers of the current start round that ended at once otherwise (failed, or the
    /// listener acknowledges): their ends went the tasks' way.
    ended_at_once_else: usize,
    /// Records handled since the commit sink last heard of a handled poll.
    handled_since_poll_done: u64,
}

/// A record waiting in its lane.
struct Waiting<'c> {
    record: Record<'c>,
    delivery: Option<DeliveryId>,
}

/// A record started.
struct Running<'c> {
    lane: LaneId,
    record: Record<'c>,
    /// The record's topic, shared (a task completes its record by it without allocating).
    topic: Arc<str>,
    delivery: Option<DeliveryId>,
    attempts: Attempts,
    /// Its task is running (else it waits for a retry).
    spawned: bool,
    /// The `process` span of its current delivery (entered again for the error handler's
    /// decision on a failure).
    span: Span,
}

impl Concurrently<'_> {
    pub(crate) fn new(plan: &ContainerPlan, start: RecordStarter) -> Self {
        let order = match plan.order {
            ProcessingOrder::Unordered => Order::Unordered,
            _ => Order::Key,
        };
        Concurrently {
            start,
            lanes: Lanes::new(order, plan.max_concurrency),
            running: HashMap::new(),
            next_task: 0,
            retries: BinaryHeap::new(),
            finished: Arc::new(Mutex::new(Vec::new())),
            // Enough for every lane to have records waiting behind its running one (a pause costs
            // a fetch round trip, up to `fetch.wait.max.ms` at the end of a partition).
            queue_bound: (QUEUED_PER_RECORD_IN_FLIGHT * plan.max_concurrency)
                .max(plan.settings.max_poll_records)
                .max(1),
            draining: false,
            first_polls: FirstPolls::default(),
            starts: 0,
            ended_at_once: Vec::new(),
            ended_at_once_else: 0,
            handled_since_poll_done: 0,
        }
    }
}

impl<'c> Dispatcher<'c> for Concurrently<'c> {
    fn dispatch(&mut self, core: &mut Core<'_, 'c>, records: &mut Vec<Record<'c>>) {
        // Tracked as queued, in offset order, under one lock: a record that completes early
        // never lets a commit pass one that waits.
        let queued: Vec<Queued> = {
            let mut offsets = core.shared.offsets();
            let queued = records.iter().map(|r| offsets.queue(r, r.partition(), r.offset())).collect();
            // Records the filter stage left out behind these complete behind them.
            core.stage.release_after(&mut offsets, records);
            queued
        };
        let mut touched: Vec<(TopicPartition, i64)> = Vec::new();
        let mut skipped = 0usize;
        for (record, queued) in records.drain(..).zip(queued) {
            let delivery = match queued {
                Queued::Run(delivery) => delivery,
                // Completed before a restart or rebalance (the committed offset's map says so).
                Queued::Done => {
                    skipped += 1;
                    continue;
                }
            };
            let same = touched.last().is_some_and(|(tp, _)| tp.is(record.topic(), record.partition()));
            if !same {
                touched.push((TopicPartition::new(record.topic(), record.partition()), record.offset()));
            }
            let last = touched.len() - 1;
            touched[last].1 = record.offset();
            let key = self.lanes.key(record.key());
            self.lanes.push(&touched[last].0, key, Waiting { record, delivery });
        }
        if skipped > 0 {
            tracing::debug!(
                listener = core.listener(),
                skipped,
                "records completed before (by the offset map of the committed offset) skipped"
            );
        }
        let handled = self.start_ready(core);
        self.count_handled(core, handled);
        // Back-pressure: a partition with too many records waiting to start, or between its
        // committed offset and its newest, is paused (and sought back after its last record
        // queued) until half of them are gone.
        let (lanes, bound, in_flight) = (&self.lanes, self.queue_bound, core.plan.settings.max_in_flight);
        core.throttle_where(touched, |offsets, tp| {
            lanes.queued(tp) >= bound || offsets.outstanding(&tp.topic, tp.partition) >= in_flight
        });
    }

    fn collect(&mut self, core: &mut Core<'_, 'c>) {
        let mut handled = self.settle(core);
        if !self.draining {
            let now = Instant::now();
            while let Some(&Reverse((due, task))) = self.retries.peek() {
                if due > now {
                    break;
                }
                self.retries.pop();
                self.spawn(core, task);
            }
            handled += self.start_ready(core);
        }
        self.count_handled(core, handled);
    }

    fn revoked(&mut self, partitions: &HashSet<TopicPartition>) {
        for tp in partitions {
            // The tracker forgot the partition already (at the revocation): its records not
            // started are given up, and so are its retries waiting.
            drop(self.lanes.drop_partition(tp));
            let waiting: Vec<u64> = self
                .running
                .iter()
                .filter(|(_, r)| !r.spawned && tp.is(r.record.topic(), r.record.partition()))
                .map(|(&task, _)| task)
                .collect();
            for task in waiting {
                if let Some(running) = self.running.remove(&task) {
                    self.lanes.done(running.lane);
                }
            }
        }
    }

    fn sought(&mut self, core: &mut Core<'_, 'c>, partitions: &[TopicPartition]) {
        for tp in partitions {
            drop(self.lanes.drop_partition(tp));
            core.shared.offsets().forget_queued(&tp.topic, tp.partition);
        }
    }

    fn first_waiting(&self, tp: &TopicPartition) -> Option<i64> {
        self.lanes.first_waiting(tp, |w| w.record.offset())
    }

    fn may_resume(&self, tp: &TopicPartition) -> bool {
        self.lanes.queued(tp) <= self.queue_bound / 2
    }

    fn waits_for_tasks(&self) -> Option<Option<Instant>> {
        let due = self.retries.peek().map(|Reverse((due, _))| *due);
        (!self.running.is_empty() || self.lanes.in_flight() > 0).then_some(due)
    }

    fn drain(&mut self, core: &mut Core<'_, 'c>, deadline: Instant) -> bool {
        // Nothing more starts; failed records waiting for a retry are not retried (they stay
        // uncommitted, for the next start).
        self.draining = true;
        self.retries.clear();
        self.running.retain(|_, r| r.spawned);
        loop {
            core.meters.new_turn();
            self.collect(core);
            self.running.retain(|_, r| r.spawned);
            if self.running.is_empty() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                tracing::warn!(
                    listener = core.listener(),
                    running = self.running.len(),
                    "the shutdown timeout passed with records still running; they stay uncommitted and are delivered again"
                );
                return false;
            }
            core.shared.wakeup.wait((deadline - now).min(Duration::from_millis(100)));
        }
    }
}

impl<'c> Concurrently<'c> {
    /// Applies the ends of the tasks that ended (and of handlers that ended at once): frees
    /// their lanes, or hands failures to the error handler. Returns the records handled.
    fn settle(&mut self, core: &mut Core<'_, 'c>) -> u64 {
        let finished = std::mem::take(&mut *lock(&self.finished));
        let mut handled = 0;
        for (task, result, took) in finished {
            if let (Some(running), Some(took)) = (self.running.get(&task), took) {
                let error_type = result.as_ref().err().map(ListenerFailure::error_type);
                core.topic_meters(&running.record).processed(took, error_type);
            }
            match result {
                Ok(()) => {
                    if self.nacked(core, task) {
                        continue;
                    }
                    let Some(running) = self.running.remove(&task) else { continue };
                    self.succeeded(core, running);
                    handled += 1;
                }
                Err(failure) => handled += self.failed(core, task, failure),
            }
        }
        handled
    }

    /// Counts records handled and commits by the ack mode.
    fn count_handled(&mut self, core: &mut Core<'_, 'c>, handled: u64) {
        if handled > 0 {
            core.shared.stats().handled(handled);
            core.handled(handled);
            // `AckMode::Batch` commits after each poll's worth of records (`max_poll_records`)
            // handled, and when nothing runs any more: per record, the tasks' ends would ask
            // for a commit nearly each time this thread looks.
            self.handled_since_poll_done += handled;
            if self.handled_since_poll_done >= core.plan.settings.max_poll_records as u64 || self.running.is_empty() {
                self.handled_since_poll_done = 0;
                core.sink.poll_done(core.shared, core.consumer, &core.plan.runtime);
            }
        }
    }

    /// Starts the records that may start now, round after round (`start_round`): handlers that
    /// ended at once are settled and their lanes' next records started, until a round has none
    /// that ended at once. Returns the records handled (counted once per poll by
    /// `count_handled`).
    fn start_ready(&mut self, core: &mut Core<'_, 'c>) -> u64 {
        let mut handled = 0;
        while self.start_round(core) > 0 {
            handled += self.settle_at_once(core) + self.settle(core);
        }
        handled
    }

    /// Starts what may start now (marked started in the tracker under one lock, then spawned);
    /// returns how many of them ended at once.
    fn start_round(&mut self, core: &mut Core<'_, 'c>) -> usize {
        let first = self.next_task;
        {
            let mut offsets = core.shared.offsets();
            while let Some((lane, Waiting { record, delivery })) = self.lanes.next() {
                let task = self.next_task;
                self.next_task += 1;
                if let Some(id) = delivery {
                    offsets.start(record.topic(), record.partition(), record.offset(), id);
                }
                let topic = offsets.intern(record.topic());
                let attempts = Attempts::after(0);
                let span = Span::none();
                self.running.insert(task, Running { lane, record, topic, delivery, attempts, spawned: false, span });
            }
        }
        self.ended_at_once_else = 0;
        for task in first..self.next_task {
            self.spawn(core, task);
        }
        self.ended_at_once.len() + self.ended_at_once_else
    }

    /// Runs a started record's handler (again, for a retry) as a task: converts its arguments
    /// here, and spawns the rest.
    fn spawn(&mut self, core: &mut Core<'_, 'c>, task: u64) {
        let Some(running) = self.running.get_mut(&task) else { return };
        let record = &running.record;
        let began = core.shared.meters.clock();
        let span = spans::process(&core.span_names(), record, running.attempts.delivery());
        running.span = span.clone();
        let cx = core.context(running.attempts.delivery());
        let job = span
            .in_scope(|| contain(|| (self.start)(record, &cx)))
            .unwrap_or_else(|panic| Err(ListenerFailure::Panic(panic)));
        let completes = match running.delivery {
            Some(id) if !core.plan.acknowledging => Some(Completion {
                topic: running.topic.clone(),
                partition: record.partition(),
                offset: record.offset(),
                id,
            }),
            _ => None,
        };
        let reply = core.plan.reply.is_some().then(|| replies::target(core.plan, record));
        let mut future = match job {
            Ok(Job::Async(future)) => Contained(future),
            Ok(Job::Blocking(call)) => {
                running.spawned = true;
                let end = self.task_end(core, task, completes, began);
                drop(core.plan.runtime.spawn_blocking(move || {
                    let _in_span = span.enter();
                    let outcome = contain(call).unwrap_or_else(|panic| Err(ListenerFailure::Panic(panic)));
                    let result = match (outcome, reply) {
                        (Ok(output), Some(reply)) => drive(publish(output, reply)),
                        (outcome, _) => outcome.map(drop),
                    };
                    end.end(result);
                }));
                return;
            }
            // Its arguments could not be converted: a failure as the handler's would be.
            Err(failure) => {
                lock(&self.finished).push((task, Err(failure), began.map(|b| b.elapsed())));
                return;
            }
        };
        running.spawned = true;
        if reply.is_none() {
            if let Some(outcome) = span.in_scope(|| self.poll_first(core, &mut future)) {
                match (outcome, completes) {
                    // Completed with the round's others, under one lock (`settle_at_once`).
                    (Ok(_), Some(completes)) => self.ended_at_once.push((task, completes, began.map(|b| b.elapsed()))),
                    (outcome, completes) => {
                        self.ended_at_once_else += 1;
                        self.task_end(core, task, completes, began).end(outcome.map(drop));
                    }
                }
                return;
            }
        }
        let end = self.task_end(core, task, completes, began);
        // Polled before or not, the task polls it again (the future wakes the task's waker from
        // then on, as a future moved between executors does).
        drop(
            core.plan.runtime.spawn(
                async move {
                    let result = match (future.await, reply) {
                        (Ok(output), Some(reply)) => publish(output, reply).await,
                        (outcome, _) => outcome.map(drop),
                    };
                    end.end(result);
                }
                .instrument(span),
            ),
        );
    }

    /// Eager start (as Python asyncio's eager task factory): unless handlers' first polls have
    /// been slow lately, polls the handler's future once here, in the runtime's context, and
    /// returns its outcome if it ended without waiting (no task, no thread hop).
    fn poll_first(&mut self, core: &Core<'_, 'c>, future: &mut Contained) -> Option<RecordOutcome> {
        self.starts += 1;
        let was_quick = self.first_polls.quick();
        if !was_quick && self.starts % EAGER_SAMPLE_EVERY != 0 {
            return None;
        }
        let began = Instant::now();
        let polled = {
            let _runtime = core.plan.runtime.enter();
            Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
        };
        self.first_polls.add(began.elapsed());
        if was_quick != self.first_polls.quick() {
            tracing::debug!(
                listener = core.listener(),
                average = ?self.first_polls.average(),
                limit = ?EAGER_LIMIT,
                eager = !was_quick,
                "handlers' first polls (up to their first wait) against the limit: polled on the consumer's thread first (eager), or started as tasks"
            );
        }
        match polled {
            Poll::Ready(outcome) => Some(outcome),
            Poll::Pending => None,
        }
    }

    /// What the task of `task` does when it ends.
    fn task_end(
        &self,
        core: &Core<'_, 'c>,
        task: u64,
        completes: Option<Completion>,
        began: Option<Instant>,
    ) -> TaskEnd {
        TaskEnd { task, shared: core.shared.clone(), finished: self.finished.clone(), completes, began }
    }

    /// Completes the records whose handlers succeeded at once in the last round, under one lock,
    /// and frees their lanes. Returns how many.
    fn settle_at_once(&mut self, core: &mut Core<'_, 'c>) -> u64 {
        if self.ended_at_once.is_empty() {
            return 0;
        }
        let mut ended = std::mem::take(&mut self.ended_at_once);
        {
            let mut offsets = core.shared.offsets();
            for (_, c, _) in &ended {
                offsets.acknowledge(&c.topic, c.partition, c.offset, c.id);
            }
        }
        core.shared.acknowledged();
        let mut handled = 0;
        for (task, _, took) in ended.drain(..) {
            if let Some(running) = self.running.remove(&task) {
                if let Some(took) = took {
                    core.topic_meters(&running.record).processed(took, None);
                }
                self.succeeded(core, running);
                handled += 1;
            }
        }
        self.ended_at_once = ended;
        handled
    }

    /// A record's handler succeeded: the interceptor and replay hear of it, its lane is free.
    fn succeeded(&mut self, core: &Core<'_, 'c>, running: Running<'c>) {
        if let Some(interceptor) = core.plan.settings.record_interceptor.as_deref() {
            hook(core.shared, "the record interceptor's success hook", || {
                interceptor.success(&running.record, &core.plan.listener_id)
            });
        }
        if let Some(replay) = &core.plan.replay {
            replay.handled(std::slice::from_ref(&running.record));
        }
        self.lanes.done(running.lane);
    }

    /// Whether the task's handler nacked its record (`Acknowledgment::nack`): then it is
    /// delivered again after the nack's sleep, its lane waiting meanwhile.
    fn nacked(&mut self, core: &mut Core<'_, 'c>, task: u64) -> bool {
        let Some(running) = self.running.get_mut(&task) else { return false };
        let Some(id) = running.delivery else { return false };
        let Some(sleep) = core.shared.take_task_nack(id) else { return false };
        if self.draining {
            // Stopping: not delivered again here; it stays uncommitted for the next start.
            if let Some(running) = self.running.remove(&task) {
                self.lanes.done(running.lane);
            }
            return true;
        }
        let record = &running.record;
        // None: acknowledged before the nack (done), or revoked meanwhile.
        let Some(new) = core.shared.offsets().redeliver(record.topic(), record.partition(), record.offset(), id) else {
            return false;
        };
        running.delivery = Some(new);
        running.spawned = false;
        let why = "the record was nacked: delivered again after the sleep; only its lane waits";
        later(&mut self.retries, core, &running.record, task, sleep, why);
        true
    }

    /// A record's delivery failed: the error handler decides. Returns 1 when the record is done
    /// (recovered), else 0.
    fn failed(&mut self, core: &mut Core<'_, 'c>, task: u64, failure: ListenerFailure) -> u64 {
        let Some(running) = self.running.get_mut(&task) else { return 0 };
        running.spawned = false;
        let (plan, shared) = (core.plan, core.shared);
        let owned = shared.offsets().owns(running.record.topic(), running.record.partition());
        if !owned || self.draining {
            // Revoked meanwhile (its next owner delivers it again), or stopping: not retried.
            if let Some(running) = self.running.remove(&task) {
                self.lanes.done(running.lane);
            }
            return 0;
        }
        // The error handler decides inside the delivery's span (a dead-letter send is a span
        // inside it).
        let span = std::mem::replace(&mut running.span, Span::none());
        spans::failed(&span, &failure);
        let decision = span.in_scope(|| {
            if let Some(interceptor) = plan.settings.record_interceptor.as_deref() {
                hook(shared, "the record interceptor's failure hook", || {
                    interceptor.failure(&running.record, &failure, &plan.listener_id)
                });
            }
            let failed = running.attempts.failed_record(&plan.listener_id, &plan.group, &running.record, &failure);
            ask_record(&*plan.error_handler, &failed, error_handler_panicked(shared))
        });
        drop(span);
        let step = Step::of(decision);
        let record = &running.record;
        match step {
            Step::Recovered => {
                if let Some(id) = running.delivery {
                    let mut offsets = shared.offsets();
                    // An acknowledging listener's record too: the error handler dealt with it.
                    if !offsets.acknowledge(record.topic(), record.partition(), record.offset(), id) {
                        offsets.complete(record.topic(), record.partition(), record.offset());
                    }
                }
                shared.acknowledged();
                if let Some(running) = self.running.remove(&task) {
                    self.lanes.done(running.lane);
                }
                1
            }
            Step::Stop => {
                if let Some(running) = self.running.remove(&task) {
                    self.lanes.done(running.lane);
                }
                core.halt();
                0
            }
            Step::Retry(delay) => {
                core.topic_meters(record).retried();
                running.attempts.retry();
                if let Some(id) = running.delivery {
                    // A new delivery: an acknowledgment of the failed one no longer counts.
                    running.delivery =
                        shared.offsets().redeliver(record.topic(), record.partition(), record.offset(), id);
                }
                let why = "the record is retried after its back-off; only its lane waits";
                later(&mut self.retries, core, record, task, delay, why);
                0
            }
        }
    }
}

/// Schedules a started record's handler to run again after `after` (a nack's sleep, a retry's
/// back-off), logging `why`.
fn later(
    retries: &mut BinaryHeap<Reverse<(Instant, u64)>>,
    core: &Core<'_, '_>,
    record: &Record<'_>,
    task: u64,
    after: Duration,
    why: &str,
) {
    tracing::debug!(
        listener = core.listener(),
        topic = record.topic(),
        partition = record.partition(),
        offset = record.offset(),
        ?after,
        "{why}"
    );
    retries.push(Reverse((Instant::now() + after, task)));
}

/// Publishes a task's reply, if its handler returned one.
async fn publish(output: HandlerOutput, reply: Result<ReplyTarget, ListenerFailure>) -> Result<(), ListenerFailure> {
    match output {
        HandlerOutput::Reply(_) => reply?.publish(output).await,
        _ => Ok(()),
    }
}

/// A record a task completes itself when it succeeds (listeners that do not acknowledge).
struct Completion {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    id: DeliveryId,
}

/// What a task does when it ends.
struct TaskEnd {
    task: u64,
    shared: Arc<ContainerShared>,
    finished: Arc<Finished>,
    completes: Option<Completion>,
    /// When the delivery started (its arguments' conversion), when deliveries are timed.
    began: Option<Instant>,
}

impl TaskEnd {
    /// Completes the record (on success, unless the listener acknowledges it) and tells the poll
    /// thread. Completing here, not on the poll thread, lets a revocation (which waits on the poll
    /// thread, in librdkafka's callback) see the records finished while it waits.
    fn end(self, result: Result<(), ListenerFailure>) {
        if let (Ok(()), Some(c)) = (&result, &self.completes) {
            self.shared.offsets().acknowledge(&c.topic, c.partition, c.offset, c.id);
            self.shared.acknowledged();
        }
        lock(&self.finished).push((self.task, result, self.began.map(|b| b.elapsed())));
        self.shared.wakeup.notify();
    }
}

/// A handler's future whose panic becomes the record's failure (as on the consumer's thread).
struct Contained(Pin<Box<dyn Future<Output = RecordOutcome> + Send>>);

impl Future for Contained {
    type Output = RecordOutcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<RecordOutcome> {
        match contain(|| self.0.as_mut().poll(cx)) {
            Ok(poll) => poll,
            Err(panic) => Poll::Ready(Err(ListenerFailure::Panic(panic))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_polls_average_moves_an_eighth_toward_each_sample() {
        let mut polls = FirstPolls::default();
        polls.add(Duration::from_micros(400));
        assert_eq!(polls.average(), Duration::from_micros(50));
        // One stall (counted as 400 µs) keeps eager starts on; a third slow poll in a row does not.
        let mut quick = FirstPolls::default();
        quick.add(Duration::from_millis(10));
        assert!(quick.quick(), "{:?}", quick.average());
        for _ in 0..2 {
            polls.add(Duration::from_millis(2));
        }
        assert!(!polls.quick(), "{:?}", polls.average());
        // Quick polls bring it back under the limit.
        for _ in 0..12 {
            polls.add(Duration::from_micros(1));
        }
        assert!(polls.quick(), "{:?}", polls.average());
    }
}
