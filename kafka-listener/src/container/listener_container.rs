//! One consumer and its poll loop, on a thread of its own.

use std::future::IntoFuture;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::Producer as _;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use super::commit_policy::{Commit, CommitPolicy, RECORD_COMMIT_SPACING};
use super::contain::contain;
use super::context::ContainerContext;
use super::events::ContainerEvent;
use super::replay::{Replay, ReplayWindow};
use super::shared::{lock, ContainerShared, HandlerRequests, KafkaConsumer, ListenerState, SeekTo};
use crate::ack::Selection;
use crate::config::{AckMode, FactorySettings};
use crate::error::Error;
use crate::error_handler::{attempt_of, due_of, now_millis, ErrorDecision, FailedBatch, FailedRecord};
use crate::extract::{ListenerContext, Record, StateMap};
use crate::handler::{drive, BatchInvoker, BatchListenerFailed, HandlerOutput, ListenerFailure, RecordInvoker};
use crate::handler::{RecordFilter, RecordInterceptor};
use crate::producer::{headers, KafkaTemplate};
use crate::registry::{AssignedPartition, OnPartitionsAssigned, StartPosition};
use crate::support::{offset_for_time, offsets_for_times};

/// How a listener's records are handed to it.
#[derive(Clone)]
pub(crate) enum Invoker {
    Record(RecordInvoker),
    Batch(BatchInvoker),
}

/// Everything a container needs to run one consumer of a listener.
pub(crate) struct ContainerPlan {
    pub(crate) listener_id: Arc<str>,
    pub(crate) group: Arc<str>,
    pub(crate) subscription: Vec<String>,
    /// The consumer's properties, complete but for `client.id`.
    pub(crate) client_config: ClientConfig,
    pub(crate) client_id: String,
    pub(crate) settings: Arc<FactorySettings>,
    pub(crate) ack_mode: AckMode,
    pub(crate) invoker: Invoker,
    pub(crate) acknowledging: bool,
    pub(crate) states: Arc<StateMap>,
    pub(crate) runtime: tokio::runtime::Handle,
    /// Where replies go, for listeners that return a value.
    pub(crate) reply: Option<ReplyPlan>,
    /// The listener's error handler, else its factory's.
    pub(crate) error_handler: Arc<dyn crate::ErrorHandler>,
    /// The container consumes retry topics: a record waits (its partition paused) until the time
    /// in its back-off header, and its delivery attempt continues from its attempts header.
    pub(crate) retry_topic: bool,
    /// Explicit partitions (assigned, not subscribed), shared out over the consumers.
    pub(crate) assignment: Vec<AssignedPartition>,
    /// The listener's callback on assigned partitions.
    pub(crate) on_assigned: Option<OnPartitionsAssigned>,
    /// A time-range replay: the explicit partitions start at its first time, and the consumers
    /// stop at its end time, committing nothing.
    pub(crate) replay: Option<Arc<Replay>>,
    /// The listener's record filter, else its factory's.
    pub(crate) filter: Option<RecordFilter>,
}

/// The template replies are published with, and the listener's `reply_to`.
#[derive(Clone)]
pub(crate) struct ReplyPlan {
    pub(crate) template: KafkaTemplate,
    pub(crate) topic: Option<String>,
}

/// One rdkafka consumer in the listener's group with its own poll loop (Spring's
/// `KafkaMessageListenerContainer`). Records of a partition are handled in order, one at a time,
/// on the container's thread.
pub(crate) struct ListenerContainer {
    pub(crate) shared: Arc<ContainerShared>,
    done: watch::Receiver<()>,
    _thread: JoinHandle<()>,
}

/// The longest a single poll blocks, so that stop and pause requests are served promptly.
const POLL_SLICE: Duration = Duration::from_millis(100);
const SEEK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an idle container confirms asynchronous commits.
const CONFIRM_INTERVAL: Duration = Duration::from_millis(500);
/// The least time the final commit is tried for.
const FINAL_COMMIT_GRACE: Duration = Duration::from_secs(3);
/// When an error handler panics, the record is delivered again after this (as when a recoverer
/// fails).
const ERROR_HANDLER_PANIC_RETRY: Duration = Duration::from_secs(1);

impl ListenerContainer {
    pub(crate) fn spawn(
        plan: Arc<ContainerPlan>,
        index: usize,
        siblings: Arc<Siblings>,
        state: &ListenerState,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(ContainerShared::new(
            plan.listener_id.clone(),
            plan.ack_mode,
            plan.settings.sync_commits,
            index,
            plan.settings.event_listener.clone(),
            state,
        ));
        let (done_tx, done) = watch::channel(());
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new().name(format!("kafka-listener-{}-{index}", plan.listener_id)).spawn(
            move || {
                // Dropped when the thread ends, however it ends: that is the "stopped" signal.
                let _done = done_tx;
                // Counts as arrived however the thread ends.
                let arrival = Arrival { siblings: &siblings, index, arrived: std::cell::Cell::new(false) };
                if let Err(panic) = contain(|| run(&plan, index, thread_shared.clone(), &arrival)) {
                    internal_panic(&thread_shared, "the container", panic);
                }
                thread_shared.finished.store(true, Ordering::Release);
                thread_shared.emit(|listener, consumer| ContainerEvent::Stopped { listener, consumer });
            },
        )?;
        Ok(ListenerContainer { shared, done, _thread: thread })
    }

    pub(crate) fn is_running(&self) -> bool {
        self.done.has_changed().is_ok()
    }

    pub(crate) fn request_stop(&self) {
        self.shared.stop_requested.store(true, Ordering::Release);
    }

    /// Resolves when the container's thread has ended.
    pub(crate) fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut done = self.done.clone();
        async move { while done.changed().await.is_ok() {} }
    }
}

/// The consumers of one `ConcurrentContainer` stopping together: each commits, then waits for
/// the others before leaving the group, so that no commit meets a rebalance caused by a
/// sibling's departure (a broker rejects commits while a rebalance is in progress).
#[derive(Debug, Default)]
pub(crate) struct Siblings {
    pub(crate) total: usize,
    arrived: std::sync::atomic::AtomicUsize,
    /// The whole container is stopping (not one consumer alone).
    pub(crate) stopping: std::sync::atomic::AtomicBool,
    /// How many consumers are ready to subscribe (created, or failed to be).
    ready: std::sync::Mutex<usize>,
    all_ready: std::sync::Condvar,
    /// Which stopping consumers have nothing left to commit.
    settled: std::sync::Mutex<Vec<bool>>,
}

/// The longest a consumer waits for its siblings before subscribing.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

impl Siblings {
    pub(crate) fn new(total: usize) -> Self {
        Siblings { total, settled: std::sync::Mutex::new(vec![false; total]), ..Siblings::default() }
    }

    /// Says whether consumer `index` has anything left to commit; returns whether none of them has.
    fn settle(&self, index: usize, settled: bool) -> bool {
        let mut all = lock(&self.settled);
        if let Some(slot) = all.get_mut(index) {
            *slot = settled;
        }
        all.iter().all(|s| *s)
    }

    fn all_arrived(&self) -> bool {
        self.arrived.load(Ordering::Acquire) >= self.total
    }

    /// This consumer is ready to subscribe.
    fn ready(&self) {
        *lock(&self.ready) += 1;
        self.all_ready.notify_all();
    }

    /// Waits (at most `READY_TIMEOUT`) until every consumer is ready, so that they subscribe
    /// together and, where the broker waits for members of a new group (Kafka's
    /// `group.initial.rebalance.delay.ms`, the embedded broker's delay), join its first generation
    /// together: one rebalance instead of one per consumer, and no commit of the first consumer
    /// rejected while the others join.
    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut ready = lock(&self.ready);
        while *ready < self.total {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            ready = self.all_ready.wait_timeout(ready, deadline - now).map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
    }
}

/// One consumer's arrival among its siblings, counted once.
struct Arrival<'a> {
    siblings: &'a Siblings,
    index: usize,
    arrived: std::cell::Cell<bool>,
}

impl Arrival<'_> {
    fn arrive(&self) {
        if !self.arrived.replace(true) {
            self.siblings.arrived.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Arrival<'_> {
    /// A consumer that ended early (or panicked) must not hold its siblings back.
    fn drop(&mut self) {
        self.arrive();
        self.siblings.settle(self.index, true);
    }
}

fn run(plan: &ContainerPlan, index: usize, shared: Arc<ContainerShared>, arrival: &Arrival<'_>) {
    let _runtime = plan.runtime.enter();
    let listener = &*plan.listener_id;
    let mut config = plan.client_config.clone();
    config.set("client.id", format!("{}-{index}", plan.client_id));
    let created = config.create_with_context(ContainerContext {
        shared: shared.clone(),
        on_assigned: plan.on_assigned.clone(),
        probe_config: plan.client_config.clone(),
        revocation_wait: revocation_wait(plan),
        seeds: std::sync::Mutex::new(Vec::new()),
    });
    arrival.siblings.ready();
    let consumer: Arc<KafkaConsumer> = match created {
        Ok(consumer) => Arc::new(consumer),
        Err(error) => {
            tracing::error!(listener, %error, "could not create the consumer; the container is not running");
            return;
        }
    };
    shared.attach(&consumer);
    arrival.siblings.wait_ready();
    if plan.assignment.is_empty() {
        let topics: Vec<&str> = plan.subscription.iter().map(String::as_str).collect();
        if let Err(error) = consumer.subscribe(&topics) {
            tracing::error!(listener, %error, topics = ?plan.subscription, "could not subscribe; the container is not running");
            return;
        }
        if plan.replay.is_none() {
            super::missing_topics::watch(shared.clone(), &plan.subscription, &plan.runtime);
        }
        if index == 0 && plan.replay.is_none() {
            // Until the group's first rebalance completes nothing else is logged, which can take
            // tens of seconds: say what the consumers wait for, once per listener.
            let group = plan.client_config.get("group.id").unwrap_or_default();
            let session_timeout = match plan.client_config.get("session.timeout.ms") {
                Some(ms) => format!("{ms} ms"),
                None => "45000 ms, librdkafka's default".to_string(),
            };
            tracing::info!(listener, group, topics = ?plan.subscription, consumers = arrival.siblings.total,
                "joining the consumer group; partitions are assigned once the group coordinator has every member (a broker may wait up to session.timeout.ms = {session_timeout} for members that left; lower session.timeout.ms for faster joins)");
        }
    }
    // A replay finds where its window starts and ends before its partitions are assigned.
    let replay = match plan.replay.as_deref().map(|r| replay_window(plan, r, &consumer, index, arrival.siblings.total))
    {
        Some(Ok(window)) => Some(window),
        Some(Err(error)) => {
            tracing::error!(listener, %error, "could not find the replay window's offsets; the container is not running");
            if let Some(replay) = &plan.replay {
                replay.consumer_finished(false);
            }
            return;
        }
        None => None,
    };
    if !plan.assignment.is_empty() {
        if let Err(error) = assign(plan, &consumer, &shared, index, arrival.siblings.total, replay.as_ref()) {
            tracing::error!(listener, %error, "could not assign the listener's partitions; the container is not running");
            if let Some(replay) = &plan.replay {
                replay.consumer_finished(false);
            }
            return;
        }
        if let Some(window) = &replay {
            let mut empty = TopicPartitionList::new();
            for (topic, partition) in &window.done {
                empty.add_partition(topic, *partition);
            }
            if empty.count() > 0 {
                if let Err(error) = consumer.pause(&empty) {
                    tracing::warn!(listener, %error, "could not pause the partitions with nothing to replay");
                }
            }
        }
    }
    tracing::debug!(listener, index, topics = ?plan.subscription, "container started");
    shared.emit(|listener, consumer| ContainerEvent::Started { listener, consumer });
    {
        let mut poll_loop = PollLoop {
            plan,
            shared: &shared,
            consumer: &consumer,
            policy: CommitPolicy::new(plan.ack_mode, &plan.settings),
            stop_deadline: None,
            last_confirm: Instant::now(),
            last_poll_error: None,
            transaction: None,
            halted: false,
            waiting: Vec::new(),
            throttled: Vec::new(),
            sought: Vec::new(),
            replay,
            idle: IdleWatch::new(plan.settings.idle_event_interval),
            pre_failed: Vec::new(),
            last_tx_fix: Instant::now(),
        };
        if let Err(panic) = contain(|| poll_loop.run()) {
            // What was processed is still committed below.
            internal_panic(&shared, "the container's poll loop", panic);
        }
        poll_loop.finish();
        if let (Some(replay), Some(window)) = (&plan.replay, &poll_loop.replay) {
            replay.consumer_finished(window.all_done());
        }
        arrival.arrive();
        if arrival.siblings.stopping.load(Ordering::Acquire) {
            poll_loop.wait_for(arrival.siblings);
        }
        poll_loop.report_uncommitted();
    }
    // Dropping the last reference closes the consumer: it leaves the group (the revocation
    // callback commits again, a no-op by now).
    shared.close(consumer);
    tracing::debug!(listener, index, "container stopped");
}

/// How long a revocation waits for acknowledgments in flight: the shutdown timeout, but no more
/// than half of `max.poll.interval.ms` (the group waits that long for a member to rejoin; longer
/// and the partitions are lost anyway).
fn revocation_wait(plan: &ContainerPlan) -> Duration {
    let max_poll_interval = plan
        .client_config
        .get("max.poll.interval.ms")
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(300), Duration::from_millis);
    plan.settings.shutdown_timeout.min(max_poll_interval / 2)
}

/// Where each of this consumer's partitions leaves a replay's window: the first offset at or after
/// its end time (the end of the partition when there is none). Partitions whose window is empty
/// are done at once.
fn replay_window(
    plan: &ContainerPlan,
    replay: &Replay,
    consumer: &KafkaConsumer,
    index: usize,
    total: usize,
) -> rdkafka::error::KafkaResult<ReplayWindow> {
    let mut window = ReplayWindow {
        from_ms: replay.from_ms,
        to_ms: replay.to_ms,
        starts: std::collections::HashMap::new(),
        ends: std::collections::HashMap::new(),
        done: std::collections::HashSet::new(),
    };
    for a in share(plan, index, total) {
        let bounds = [replay.from_ms, replay.to_ms];
        let found = offsets_for_times(consumer, &plan.client_config, &a.topic, a.partition, &bounds, SEEK_TIMEOUT)?;
        let (start, end) = (found[0], found[1]);
        let key = (a.topic.clone(), a.partition);
        if start >= end {
            window.done.insert(key.clone());
        }
        window.starts.insert(key.clone(), start);
        window.ends.insert(key, end);
    }
    tracing::info!(listener = &*plan.listener_id, ends = ?window.ends, "replaying up to these offsets");
    Ok(window)
}

/// Consumer `index`'s share of the listener's explicit partitions: every `total`-th from `index`.
fn share(plan: &ContainerPlan, index: usize, total: usize) -> impl Iterator<Item = &AssignedPartition> {
    plan.assignment.iter().skip(index).step_by(total.max(1))
}

/// Assigns this consumer its share of the listener's explicit partitions (every `total`-th from
/// `index`), each at its start position; then tells the listener's assignment callback.
fn assign(
    plan: &ContainerPlan,
    consumer: &KafkaConsumer,
    shared: &Arc<ContainerShared>,
    index: usize,
    total: usize,
    replay: Option<&ReplayWindow>,
) -> rdkafka::error::KafkaResult<()> {
    let mine: Vec<&AssignedPartition> = share(plan, index, total).collect();
    let mut tpl = TopicPartitionList::new();
    for a in &mine {
        let offset = match a.start {
            StartPosition::Committed => Offset::Stored,
            StartPosition::Beginning => Offset::Beginning,
            StartPosition::End => Offset::End,
            StartPosition::Offset(offset) => Offset::Offset(offset),
            StartPosition::FromEnd(count) => Offset::OffsetTail(count),
            StartPosition::Timestamp(_) if replay.is_some() => {
                let start = replay.and_then(|w| w.starts.get(&(a.topic.clone(), a.partition)));
                start.map_or(Offset::End, |start| Offset::Offset(*start))
            }
            StartPosition::Timestamp(ms) => {
                Offset::Offset(offset_for_time(consumer, &plan.client_config, &a.topic, a.partition, ms, SEEK_TIMEOUT)?)
            }
        };
        tpl.add_partition_offset(&a.topic, a.partition, offset)?;
    }
    if let Some(callback) = &plan.on_assigned {
        super::context::start_positions(callback, shared, consumer, &plan.client_config, &tpl);
    }
    consumer.assign(&tpl)?;
    let mut offsets = shared.offsets();
    mine.iter().for_each(|a| offsets.assign(&a.topic, a.partition));
    drop(offsets);
    let pairs: Vec<(String, i32)> = mine.iter().map(|a| (a.topic.clone(), a.partition)).collect();
    tracing::info!(listener = &*plan.listener_id, partitions = ?pairs, "partitions assigned (explicitly)");
    Ok(())
}

/// What the filter and interceptor made of a record.
enum Prepared<'r> {
    /// Hand it over: as it is (`None`), or changed by the interceptor.
    Keep(Option<Record<'r>>),
    /// Left out: it counts as processed (unless `ack_discarded` is false).
    Discard,
    /// One of them panicked: the record failed.
    Failed(ListenerFailure),
}

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

struct PollLoop<'p, 'c> {
    plan: &'p ContainerPlan,
    shared: &'p Arc<ContainerShared>,
    consumer: &'c KafkaConsumer,
    policy: CommitPolicy,
    stop_deadline: Option<Instant>,
    last_confirm: Instant,
    last_poll_error: Option<(String, Instant)>,
    /// The open transaction's hold on its template (transactional factories).
    transaction: Option<tokio::sync::MutexGuard<'p, ()>>,
    /// The error handler stopped the container: nothing more is handled.
    halted: bool,
    /// Partitions of a retry topic paused until their head record is due.
    waiting: Vec<(String, i32, Instant)>,
    /// Partitions paused because too many of their records wait for an acknowledgment.
    throttled: Vec<(String, i32)>,
    /// Partitions a seek moved during the current poll.
    sought: Vec<(String, i32)>,
    /// This consumer's part of a time-range replay.
    replay: Option<ReplayWindow>,
    idle: IdleWatch,
    /// Records of the current poll a filter or interceptor panicked on, with the failure.
    pre_failed: Vec<(String, i32, i64, ListenerFailure)>,
    /// When positions were last compared with commits (`fix_tx_offsets`).
    last_tx_fix: Instant,
}

/// When records last arrived, for idle events (kept only with an `idle_event_interval`).
struct IdleWatch {
    interval: Option<Duration>,
    /// When the consumer started: the partitions' last record before any arrived.
    since: Instant,
    last_record: Instant,
    partitions: std::collections::HashMap<(String, i32), Instant>,
    next_check: Instant,
}

impl IdleWatch {
    fn new(interval: Option<Duration>) -> Self {
        let now = Instant::now();
        IdleWatch {
            interval,
            since: now,
            last_record: now,
            partitions: std::collections::HashMap::new(),
            next_check: now,
        }
    }

    fn arrived(&mut self, records: &[Record<'_>]) {
        if self.interval.is_none() || records.is_empty() {
            return;
        }
        let now = Instant::now();
        self.last_record = now;
        for r in records {
            match self.partitions.get_mut(&(r.topic().to_string(), r.partition())) {
                Some(at) => *at = now,
                None => {
                    self.partitions.insert((r.topic().to_string(), r.partition()), now);
                }
            }
        }
    }
}

/// The failures so far of the batch record a listener named in `BatchListenerFailed`, and the
/// back-off before it is delivered again.
#[derive(Default)]
struct BatchAttempts {
    attempt: u32,
    first_failure: Option<Instant>,
    wait: Option<Duration>,
}

impl<'c> PollLoop<'_, 'c> {
    fn run(&mut self) {
        let limit = self.plan.settings.max_poll_records;
        while !self.stopping() {
            self.apply_container_pause();
            self.resume_due();
            self.release_throttled();
            if self.shared.handed_over.swap(false, Ordering::AcqRel) {
                // Offsets another consumer of the listener processed: committed now, whatever
                // the ack mode (they were due before the rebalance).
                self.commit();
            }
            // Nothing is in hand: revocations so far concern no record.
            lock(&self.shared.revoked).clear();
            self.sought.clear();
            self.pre_failed.clear();
            self.idle_events();
            let mut records = self.gather(limit);
            self.idle.arrived(&records);
            let seeks = std::mem::take(&mut lock(&self.shared.requests).seeks);
            if !seeks.is_empty() {
                // Requested from outside (or when partitions were assigned): applied before any
                // record of those partitions is handled.
                let sought = self.apply_seeks(seeks, &records);
                records.retain(|r| !sought.iter().any(|(t, p)| t == r.topic() && *p == r.partition()));
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
            let mut records = self.discard(records);
            if records.is_empty() {
                if polled {
                    // Every record was discarded: they count as a handled poll (committed).
                    let decision = self.policy.poll_done();
                    self.apply(decision);
                }
                self.replayed(reached);
                self.idle();
                continue;
            }
            self.drop_revoked(&mut records);
            // Record listeners are throttled record by record (`handle_records`); a batch is
            // checked once it is handled.
            let batch = matches!(self.plan.invoker, Invoker::Batch(_));
            let touched = if self.plan.acknowledging && batch { partitions_of(&records) } else { Vec::new() };
            match self.plan.invoker.clone() {
                Invoker::Record(invoker) => self.handle_records(&invoker, records),
                Invoker::Batch(invoker) => self.handle_batch(&invoker, records),
            }
            self.throttle(touched);
            let decision = self.policy.poll_done();
            self.apply(decision);
            self.replayed(reached);
        }
    }

    /// Applies the record filter and the factory's interceptor: the records left out count as
    /// processed (unless `ack_discarded` is false).
    ///
    /// A filter or interceptor that panics fails the record (for a batch interceptor, the batch)
    /// as a listener would: it is handed on as polled, and the error handler decides about it
    /// before the listener sees it (`pre_failed`); a record listener's retry runs the filter and
    /// interceptor again first.
    fn discard(&mut self, records: Vec<Record<'c>>) -> Vec<Record<'c>> {
        let settings = &self.plan.settings;
        let (record_interceptor, batch_interceptor) = match self.plan.invoker {
            Invoker::Record(_) => (settings.record_interceptor.clone(), None),
            Invoker::Batch(_) => (None, settings.batch_interceptor.clone()),
        };
        if self.plan.filter.is_none() && record_interceptor.is_none() && batch_interceptor.is_none() {
            return records;
        }
        let ack = settings.ack_discarded;
        let mut discarded: Vec<(String, i32, i64)> = Vec::new();
        let mut kept = Vec::with_capacity(records.len());
        for record in records {
            match self.prepare(&record, record_interceptor.as_deref()) {
                Prepared::Keep(None) => kept.push(record),
                Prepared::Keep(Some(changed)) => kept.push(changed),
                Prepared::Discard => discarded.push((record.topic().to_string(), record.partition(), record.offset())),
                Prepared::Failed(failure) => {
                    self.pre_failed.push((record.topic().to_string(), record.partition(), record.offset(), failure));
                    kept.push(record);
                }
            }
        }
        if let Some(interceptor) = batch_interceptor {
            let before: Vec<(String, i32, i64)> =
                kept.iter().map(|r| (r.topic().to_string(), r.partition(), r.offset())).collect();
            // The interceptor consumes the records: keep copies to fail if it panics.
            let copies: Vec<Record<'c>> = kept.iter().map(|r| r.duplicate()).collect();
            match contain(|| interceptor.intercept(kept, &self.plan.listener_id)) {
                Ok(intercepted) => kept = intercepted,
                Err(panic) => {
                    if let Some(first) = copies.first() {
                        let failure = self.stage_panicked("the batch interceptor", first, panic);
                        self.pre_failed.push((first.topic().to_string(), first.partition(), first.offset(), failure));
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
        if ack && !discarded.is_empty() {
            let mut offsets = self.shared.offsets();
            for (topic, partition, offset) in discarded {
                offsets.complete(&topic, partition, offset);
            }
        }
        kept
    }

    /// Runs the record filter and the record interceptor (given for record listeners) on a record,
    /// each contained: the record as it is (`Keep(None)`), changed (`Keep(Some)`: an owned copy),
    /// discarded, or failed by a panic.
    fn prepare<'r>(&self, record: &Record<'_>, interceptor: Option<&dyn RecordInterceptor>) -> Prepared<'r> {
        if let Some(keep) = &self.plan.filter {
            match contain(|| keep(record)) {
                Ok(true) => {}
                Ok(false) => return Prepared::Discard,
                Err(panic) => return Prepared::Failed(self.stage_panicked("the record filter", record, panic)),
            }
        }
        let Some(interceptor) = interceptor else { return Prepared::Keep(None) };
        // The interceptor consumes the record: it gets a copy, and the record stays to fail if it
        // panics.
        match contain(|| interceptor.intercept(record.duplicate(), &self.plan.listener_id)) {
            Ok(Some(changed)) => Prepared::Keep(Some(changed)),
            Ok(None) => Prepared::Discard,
            Err(panic) => Prepared::Failed(self.stage_panicked("the record interceptor", record, panic)),
        }
    }

    /// Code run for a record before its listener panicked: logged and told; the record fails with
    /// the returned failure.
    fn stage_panicked(&self, during: &str, record: &Record<'_>, panic: String) -> ListenerFailure {
        tracing::error!(
            listener = &*self.plan.listener_id,
            topic = record.topic(),
            partition = record.partition(),
            offset = record.offset(),
            panic,
            "{during} panicked; the record goes to the error handler"
        );
        self.shared.emit_panicked(during, panic.clone(), false);
        ListenerFailure::Panic(format!("{during} panicked: {panic}"))
    }

    /// The failure of code run for the record before its listener, if it failed (once).
    fn take_pre_failure(&mut self, record: &Record<'_>) -> Option<ListenerFailure> {
        if self.pre_failed.is_empty() {
            return None;
        }
        let i = self
            .pre_failed
            .iter()
            .position(|(t, p, o, _)| t == record.topic() && *p == record.partition() && *o == record.offset())?;
        Some(self.pre_failed.swap_remove(i).3)
    }

    /// Calls a user's hook whose failure changes nothing but must not end the container.
    fn hook(&self, during: &str, f: impl FnOnce()) {
        if let Err(panic) = contain(f) {
            tracing::error!(listener = &*self.plan.listener_id, panic, "{during} panicked; ignored");
            self.shared.emit_panicked(during, panic, false);
        }
    }

    /// Asks the error handler about a failed record; a handler (or recoverer) that panics has the
    /// record delivered again after a second, never skipped.
    fn ask_error_handler(&self, failed: &FailedRecord<'_>) -> ErrorDecision {
        contain(|| self.plan.error_handler.handle_record(failed))
            .unwrap_or_else(|panic| self.error_handler_panicked(panic))
    }

    /// [`ask_error_handler`](Self::ask_error_handler) for a failed batch.
    fn ask_batch_error_handler(&self, failed: &FailedBatch<'_>) -> ErrorDecision {
        contain(|| self.plan.error_handler.handle_batch(failed))
            .unwrap_or_else(|panic| self.error_handler_panicked(panic))
    }

    fn error_handler_panicked(&self, panic: String) -> ErrorDecision {
        tracing::error!(listener = &*self.plan.listener_id, panic,
            "the error handler (or its recoverer) panicked; the record is delivered again in {ERROR_HANDLER_PANIC_RETRY:?}");
        self.shared.emit_panicked("the error handler (or its recoverer)", panic, false);
        ErrorDecision::Retry(ERROR_HANDLER_PANIC_RETRY)
    }

    /// Pauses the partitions with `max_in_flight` records or more waiting for an acknowledgment,
    /// and seeks each to the record after the last one delivered, so that records fetched ahead
    /// are dropped (fetched again after the resume) instead of piling up.
    fn throttle(&mut self, touched: Vec<(String, i32, i64)>) {
        let bound = self.plan.settings.max_in_flight;
        let mut over: Vec<(String, i32, i64)> = Vec::new();
        {
            let offsets = self.shared.offsets();
            for (topic, partition, last) in touched {
                let owned = offsets.owns(&topic, partition);
                let throttled = self.throttled.iter().any(|(t, p)| *t == topic && *p == partition);
                if owned && !throttled && offsets.outstanding(&topic, partition) >= bound {
                    over.push((topic, partition, last));
                }
            }
        }
        if over.is_empty() {
            return;
        }
        // A wait: what is done is committed first, not held back by it.
        self.commit();
        let listener = &*self.plan.listener_id;
        for (topic, partition, last) in over {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&topic, partition);
            let held = self.consumer.pause(&tpl).and_then(|()| {
                if self.sought.iter().any(|(t, p)| *t == topic && *p == partition) {
                    // A handler moved the partition in this poll: its position stands.
                    return Ok(());
                }
                self.consumer.seek(&topic, partition, Offset::Offset(last + 1), SEEK_TIMEOUT)
            });
            match held {
                Ok(()) => {
                    tracing::debug!(
                        listener,
                        topic,
                        partition,
                        bound,
                        "paused: too many records wait for an acknowledgment"
                    );
                    self.throttled.push((topic, partition));
                }
                Err(error) => tracing::warn!(listener, topic, partition, %error, "could not pause for back-pressure"),
            }
        }
    }

    /// Resumes throttled partitions once half their records in flight are acknowledged.
    fn release_throttled(&mut self) {
        if self.throttled.is_empty() {
            return;
        }
        let low = self.plan.settings.max_in_flight / 2;
        let offsets = self.shared.offsets();
        let (release, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.throttled)
            .into_iter()
            .partition(|(t, p)| !offsets.owns(t, *p) || offsets.outstanding(t, *p) <= low);
        drop(offsets);
        self.throttled = keep;
        self.resume_released(&release, "after back-pressure");
    }

    /// Sends the idle events that are due (at most once per interval).
    fn idle_events(&mut self) {
        let Some(interval) = self.idle.interval else { return };
        let now = Instant::now();
        if now < self.idle.next_check {
            return;
        }
        self.idle.next_check = now + interval;
        let idle_for = now.duration_since(self.idle.last_record);
        if idle_for >= interval {
            self.shared.emit(|listener, consumer| ContainerEvent::Idle { listener, consumer, idle_for });
        }
        let Ok(assignment) = self.consumer.assignment() else { return };
        for e in assignment.elements() {
            let key = (e.topic().to_string(), e.partition());
            let last = *self.idle.partitions.entry(key).or_insert(self.idle.since);
            let idle_for = now.duration_since(last);
            if idle_for >= interval {
                self.shared.emit(|listener, consumer| ContainerEvent::PartitionIdle {
                    listener,
                    consumer,
                    topic: e.topic().to_string(),
                    partition: e.partition(),
                    idle_for,
                });
            }
        }
    }

    /// Partitions that reached the end of the replay window are paused; when all have, the
    /// consumer stops.
    fn replayed(&mut self, reached: Vec<(String, i32)>) {
        let Some(window) = &mut self.replay else { return };
        if reached.is_empty() && !window.all_done() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in reached {
            tpl.add_partition(&topic, partition);
            window.done.insert((topic, partition));
        }
        if tpl.count() > 0 {
            if let Err(error) = self.consumer.pause(&tpl) {
                tracing::warn!(listener = &*self.plan.listener_id, %error, "could not pause a replayed partition");
            }
        }
        if window.all_done() {
            tracing::info!(listener = &*self.plan.listener_id, "replay window done; stopping");
            self.shared.stop_requested.store(true, Ordering::Release);
        }
    }

    fn stopping(&mut self) -> bool {
        let stop = self.shared.stop_requested.load(Ordering::Acquire);
        if stop && self.stop_deadline.is_none() {
            self.stop_deadline = Some(Instant::now() + self.plan.settings.shutdown_timeout);
        }
        stop
    }

    fn past_deadline(&mut self) -> bool {
        self.stopping() && self.stop_deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn commit(&mut self) {
        if self.plan.settings.transactional.is_some() || self.plan.replay.is_some() {
            // Offsets are committed in each record's transaction.
            return;
        }
        self.shared.commit_logged(self.consumer, false, Selection::Advanced);
        self.policy.committed();
    }

    /// Nothing was polled: commit what is due, and confirm asynchronous commits with a
    /// synchronous one (they may have been rejected during a rebalance).
    fn idle(&mut self) {
        if self.policy.idle() {
            self.commit();
        }
        if self.plan.settings.fix_tx_offsets {
            self.fix_tx_offsets();
        }
        if self.last_confirm.elapsed() >= CONFIRM_INTERVAL && self.shared.offsets().has_unconfirmed() {
            self.last_confirm = Instant::now();
            if let Err(error) = self.shared.commit(self.consumer, true, Selection::Unconfirmed) {
                tracing::debug!(listener = &*self.plan.listener_id, %error, "commit not confirmed yet; trying again");
            }
        }
    }

    /// Waits (serving the consumer, handling nothing) until every sibling has committed, or the
    /// shutdown deadline. Meanwhile a rebalance may hand this consumer partitions whose offsets a
    /// sibling processed but could not commit (the broker rejected it during the rebalance):
    /// they are committed here, and the wait lasts until no such offsets are left.
    fn wait_for(&mut self, siblings: &Siblings) {
        let deadline = self.stop_deadline.unwrap_or_else(Instant::now).max(Instant::now() + FINAL_COMMIT_GRACE);
        let mut last_try = Instant::now();
        loop {
            let uncommitted = !self.shared.offsets().all_uncommitted().is_empty();
            // Nobody leaves (which would start another rebalance) before all have committed.
            let all_settled = siblings.settle(self.shared.index, !uncommitted);
            if (siblings.all_arrived() && self.shared.handoff.is_empty() && all_settled) || Instant::now() >= deadline {
                return;
            }
            if uncommitted && last_try.elapsed() >= Duration::from_millis(100) {
                last_try = Instant::now();
                if let Err(error) = self.shared.commit(self.consumer, true, Selection::All) {
                    tracing::debug!(listener = &*self.plan.listener_id, %error, "commit while stopping rejected; trying again");
                }
            }
            self.shared.polled();
            // Records fetched now are neither handled nor committed: the group's next consumer
            // gets them.
            let _ = self.consumer.poll(Duration::from_millis(10));
        }
    }

    /// Says (at WARN) which processed records this consumer leaves uncommitted.
    fn report_uncommitted(&self) {
        if self.plan.settings.transactional.is_some() || self.plan.replay.is_some() {
            return;
        }
        let left = self.shared.offsets().all_uncommitted();
        if !left.is_empty() {
            let counts: Vec<(String, i32, String)> =
                left.into_iter().map(|(t, p, next, n)| (t, p, format!("{n} record(s) before offset {next}"))).collect();
            tracing::warn!(listener = &*self.plan.listener_id, uncommitted = %super::context::describe_counts(&counts),
                "stopping with processed records not committed: the group's next consumer handles them again");
        }
    }

    /// Spring's `fixTxOffsets`: records written in transactions are followed by a commit marker
    /// the listener never sees, so a caught-up partition's committed offset stays one (or more)
    /// short of its end and its lag never reaches 0. When nothing was polled and a partition has
    /// nothing in flight, its committed offset is the last processed record + 1 and the
    /// consumer's position is past it (over markers, or records of aborted transactions), the
    /// position is committed.
    fn fix_tx_offsets(&mut self) {
        if self.plan.settings.transactional.is_some() || self.plan.replay.is_some() {
            return;
        }
        if self.last_tx_fix.elapsed() < CONFIRM_INTERVAL {
            return;
        }
        self.last_tx_fix = Instant::now();
        let Ok(positions) = self.consumer.position() else { return };
        let mut moved = Vec::new();
        {
            let mut offsets = self.shared.offsets();
            for e in positions.elements() {
                if let Offset::Offset(position) = e.offset() {
                    if offsets.skip_to(e.topic(), e.partition(), position) {
                        moved.push(format!("{}-{}@{position}", e.topic(), e.partition()));
                    }
                }
            }
        }
        if !moved.is_empty() {
            tracing::debug!(listener = &*self.plan.listener_id, positions = %moved.join(", "),
                "committing positions past transaction markers (fix_tx_offsets)");
            self.commit();
        }
    }

    /// Waits (up to `deadline`) until the records delivered to the listener are acknowledged,
    /// serving the consumer with its partitions paused so that it stays in its group and fetches
    /// nothing more.
    fn wait_for_acknowledgments(&mut self, deadline: Instant) {
        if self.shared.offsets().unacknowledged(None).is_empty() {
            return;
        }
        if let Ok(assignment) = self.consumer.assignment() {
            if let Err(error) = self.consumer.pause(&assignment) {
                tracing::debug!(listener = &*self.plan.listener_id, %error, "could not pause while waiting for acknowledgments");
            }
        }
        loop {
            let slice = (Instant::now() + POLL_SLICE).min(deadline);
            let left = self.shared.wait_for_acks(None, slice);
            if left.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(listener = &*self.plan.listener_id, waiting = %super::context::describe_counts(&left),
                    timeout = ?self.plan.settings.shutdown_timeout,
                    "stopping with records delivered but not acknowledged within shutdown_timeout: they are not committed and will be delivered again");
                return;
            }
            self.shared.polled();
            // Records fetched before the pause are not handled (nor committed): the group's next
            // consumer gets them.
            let _ = self.consumer.poll(Duration::ZERO);
        }
    }

    /// Commits what was processed before the consumer leaves its group, once the records handed
    /// to tasks were acknowledged (or the shutdown timeout passed). A commit rejected while a
    /// rebalance is in progress is tried again, serving the rebalance meanwhile, until the
    /// shutdown deadline (at least `FINAL_COMMIT_GRACE`).
    fn finish(&mut self) {
        // A replay commits nothing: the group's position stays where it was.
        if self.plan.settings.transactional.is_some() || self.plan.replay.is_some() {
            return;
        }
        let ack_deadline = self.stop_deadline.unwrap_or_else(|| Instant::now() + self.plan.settings.shutdown_timeout);
        self.wait_for_acknowledgments(ack_deadline);
        let deadline = self.stop_deadline.unwrap_or_else(Instant::now).max(Instant::now() + FINAL_COMMIT_GRACE);
        loop {
            match self.shared.commit(self.consumer, true, Selection::All) {
                Ok(()) => break,
                Err(error) if Instant::now() >= deadline => {
                    tracing::warn!(listener = &*self.plan.listener_id, %error, "the final commit failed");
                    break;
                }
                Err(error) => {
                    tracing::debug!(listener = &*self.plan.listener_id, %error, "final commit rejected; trying again");
                    // Records fetched now are neither handled nor committed: the group's next
                    // consumer gets them.
                    self.shared.polled();
                    let _ = self.consumer.poll(POLL_SLICE);
                }
            }
        }
    }

    fn apply(&mut self, decision: Commit) {
        match decision {
            Commit::Now => self.commit(),
            Commit::Soon => self.schedule_commit(),
            Commit::No => {}
        }
    }

    /// Sends the held-back commit once the spacing has passed, from a runtime task, so that a
    /// slow next handler does not hold it back (commits are ordered under the tracker's lock).
    fn schedule_commit(&self) {
        if self.shared.flush_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = self.shared.clone();
        self.plan.runtime.spawn(async move {
            tokio::time::sleep(RECORD_COMMIT_SPACING).await;
            shared.flush_scheduled.store(false, Ordering::Release);
            // On stop, the poll thread commits synchronously itself.
            if !shared.stop_requested.load(Ordering::Acquire) {
                shared.commit_now();
            }
        });
    }

    fn gather(&mut self, limit: usize) -> Vec<Record<'c>> {
        let mut records = Vec::new();
        let first = self.plan.settings.poll_timeout.min(POLL_SLICE);
        self.shared.polled();
        match self.consumer.poll(first) {
            Some(Ok(message)) => records.push(Record::new(message)),
            Some(Err(error)) => {
                self.poll_error(error);
                return records;
            }
            None => return records,
        }
        while records.len() < limit {
            match self.consumer.poll(Duration::ZERO) {
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
        if error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::AutoOffsetReset) {
            tracing::error!(listener = &*self.plan.listener_id, %error,
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
            tracing::warn!(listener = &*self.plan.listener_id, error = %text, "consumer error");
            self.last_poll_error = Some((text, Instant::now()));
        }
    }

    /// Drops the records of partitions revoked while they were gathered (and those not owned).
    fn drop_revoked(&self, records: &mut Vec<Record<'c>>) {
        let revoked = std::mem::take(&mut *lock(&self.shared.revoked));
        if revoked.is_empty() {
            return;
        }
        let offsets = self.shared.offsets();
        records.retain(|r| {
            offsets.owns(r.topic(), r.partition())
                && !revoked.iter().any(|(t, p)| t == r.topic() && *p == r.partition())
        });
    }

    fn apply_container_pause(&mut self) {
        let wanted = self.shared.pause_requested.load(Ordering::Acquire);
        if wanted == self.shared.paused.load(Ordering::Acquire) {
            return;
        }
        let result = match self.consumer.assignment() {
            Ok(assignment) if wanted => self.consumer.pause(&assignment),
            Ok(_) => self.resume_all(),
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => {
                self.shared.paused.store(wanted, Ordering::Release);
                tracing::info!(
                    listener = &*self.plan.listener_id,
                    paused = wanted,
                    "container {}",
                    if wanted { "paused" } else { "resumed" }
                );
            }
            Err(error) => tracing::warn!(listener = &*self.plan.listener_id, %error, "could not pause/resume"),
        }
    }

    /// Resumes the assignment but for partitions paused through a `ConsumerHandle` and those
    /// waiting for a retry record to be due.
    fn resume_all(&self) -> rdkafka::error::KafkaResult<()> {
        let assignment = self.consumer.assignment()?;
        let by_handler = lock(&self.shared.paused_by_handler);
        let mut tpl = TopicPartitionList::new();
        for e in assignment.elements() {
            if !self.held_back(e.topic(), e.partition(), &by_handler) {
                tpl.add_partition(e.topic(), e.partition());
            }
        }
        drop(by_handler);
        self.consumer.resume(&tpl)
    }

    /// Whether a partition must stay paused: its head retry record is not due, too many of its
    /// records wait for an acknowledgment, or a `ConsumerHandle` paused it.
    fn held_back(&self, topic: &str, partition: i32, by_handler: &std::collections::HashSet<(String, i32)>) -> bool {
        self.waiting.iter().any(|(t, p, _)| t == topic && *p == partition)
            || self.throttled.iter().any(|(t, p)| t == topic && *p == partition)
            || by_handler.contains(&(topic.to_string(), partition))
    }

    /// Resumes the partitions one reason held back, unless another still does (or the whole
    /// container is paused: its resume covers them).
    fn resume_released(&self, released: &[(String, i32)], why: &str) {
        if released.is_empty() || self.shared.paused.load(Ordering::Acquire) {
            return;
        }
        let offsets = self.shared.offsets();
        let by_handler = lock(&self.shared.paused_by_handler);
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in released {
            if offsets.owns(topic, *partition) && !self.held_back(topic, *partition, &by_handler) {
                tpl.add_partition(topic, *partition);
            }
        }
        drop((offsets, by_handler));
        if tpl.count() > 0 {
            if let Err(error) = self.consumer.resume(&tpl) {
                tracing::warn!(listener = &*self.plan.listener_id, %error, "could not resume {why}");
            }
        }
    }

    /// How long until a retry topic's record is due (`None`: it is due, or not from a retry topic).
    fn not_due(&self, record: &Record<'_>) -> Option<Duration> {
        if !self.plan.retry_topic {
            return None;
        }
        let wait = due_of(record)?.saturating_sub(now_millis());
        (wait > 0).then(|| Duration::from_millis(wait.unsigned_abs()))
    }

    /// Holds a retry topic's partition until its head record is due: sought back to the record and
    /// paused (the consumer keeps polling, so it stays in its group; Spring pauses likewise).
    fn wait_until_due(&mut self, record: &Record<'_>, wait: Duration) {
        // A wait: what is done is committed first, not held back by it.
        self.commit();
        let (topic, partition, offset) = (record.topic(), record.partition(), record.offset());
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, partition);
        let held = self
            .consumer
            .pause(&tpl)
            .and_then(|()| self.consumer.seek(topic, partition, Offset::Offset(offset), SEEK_TIMEOUT));
        match held {
            Ok(()) => {
                self.shared.offsets().rewind(topic, partition, offset);
                tracing::debug!(
                    listener = &*self.plan.listener_id,
                    topic,
                    partition,
                    offset,
                    ?wait,
                    "waiting for the retry to be due"
                );
                self.waiting.push((topic.to_string(), partition, Instant::now() + wait));
            }
            Err(error) => {
                tracing::warn!(listener = &*self.plan.listener_id, topic, partition, offset, %error,
                    "could not pause until the retry is due; the record is delivered again");
                let _ = self.consumer.seek(topic, partition, Offset::Offset(offset), SEEK_TIMEOUT);
            }
        }
    }

    /// Resumes the partitions whose head retry record is due (unless the whole container is paused:
    /// its resume includes them).
    fn resume_due(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let now = Instant::now();
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting).into_iter().partition(|w| w.2 <= now);
        self.waiting = waiting;
        let due: Vec<(String, i32)> = due.into_iter().map(|(topic, partition, _)| (topic, partition)).collect();
        self.resume_released(&due, "a retry topic's partition");
    }

    fn context(&self, attempt: u32) -> ListenerContext<'_> {
        ListenerContext {
            listener_id: &self.plan.listener_id,
            states: &self.plan.states,
            container: self.shared,
            attempt,
            attempt_header: self.plan.settings.delivery_attempt_header,
        }
    }

    fn handle_records(&mut self, invoker: &RecordInvoker, records: Vec<Record<'c>>) {
        let mut skipped: Vec<(String, i32)> = Vec::new();
        let mut generation = self.shared.generation.load(Ordering::Acquire);
        for (index, record) in records.iter().enumerate() {
            // On stop, the records in hand are finished (Spring's default, `stopImmediate`
            // false), within the shutdown timeout; a retry is not (see `decide`).
            if self.past_deadline() {
                return;
            }
            if !skipped.is_empty() && skipped.iter().any(|(t, p)| t == record.topic() && *p == record.partition()) {
                continue;
            }
            let now = self.shared.generation.load(Ordering::Acquire);
            if now != generation {
                generation = now;
                // A revocation happened while handling (during a retry wait): give up the
                // records of revoked partitions; another consumer (or this one, again) gets them.
                skipped.extend(std::mem::take(&mut *lock(&self.shared.revoked)));
                if skipped.iter().any(|(t, p)| t == record.topic() && *p == record.partition()) {
                    continue;
                }
            }
            if let Some(wait) = self.not_due(record) {
                self.wait_until_due(record, wait);
                skipped.push((record.topic().to_string(), record.partition()));
                continue;
            }
            let outcome = self.invoke_record(invoker, record);
            let requests = std::mem::take(&mut *lock(&self.shared.requests));
            match outcome {
                Outcome::Handled if !self.plan.acknowledging => self.complete(record),
                Outcome::Handled => {}
                Outcome::Recovered => self.complete(record),
                Outcome::Discarded if self.plan.settings.ack_discarded => self.complete(record),
                Outcome::Discarded => {}
                Outcome::Abandoned => {
                    // Not processed: its delivery no longer waits for an acknowledgment.
                    self.shared.offsets().rewind(record.topic(), record.partition(), record.offset());
                    if self.shared.stop_requested.load(Ordering::Acquire) {
                        return;
                    }
                    continue;
                }
            }
            if self.plan.settings.transactional.is_some() && !self.commit_transaction(std::slice::from_ref(record)) {
                // Its outputs were aborted: the record is delivered again, with the rest.
                self.redeliver(&records[index..], Duration::ZERO);
                return;
            }
            self.shared.handled.fetch_add(1, Ordering::Relaxed);
            if let Some(replay) = &self.plan.replay {
                replay.handled(std::slice::from_ref(record));
            }
            if self.apply_requests(requests, &records[index..], &records[index + 1..], &mut skipped) {
                return;
            }
            if self.plan.acknowledging
                && self.shared.offsets().outstanding(record.topic(), record.partition())
                    >= self.plan.settings.max_in_flight
            {
                // Back-pressure: the rest of the partition waits (sought back) until acks catch up.
                self.throttle(vec![(record.topic().to_string(), record.partition(), record.offset())]);
                skipped.push((record.topic().to_string(), record.partition()));
            }
            let decision = self.policy.handled(1);
            self.apply(decision);
        }
    }

    fn complete(&self, record: &Record<'_>) {
        self.shared.offsets().complete(record.topic(), record.partition(), record.offset());
    }

    /// One delivery of a record to its listener (tracked, for acknowledging listeners), in the
    /// record's transaction, with its reply published.
    fn attempt(&mut self, invoker: &RecordInvoker, record: &Record<'_>, delivery: u32) -> Result<(), ListenerFailure> {
        if self.plan.acknowledging {
            // Each attempt is a delivery of its own: an acknowledgment of an earlier (failed) one
            // no longer counts.
            self.shared.offsets().track(record.topic(), record.partition(), record.offset());
        }
        self.begin_transaction()
            .and_then(|()| {
                let cx = self.context(delivery);
                contain(|| invoker(record, &cx)).unwrap_or_else(|panic| Err(ListenerFailure::Panic(panic)))
            })
            .and_then(|output| self.reply(record, output))
    }

    fn invoke_record(&mut self, invoker: &RecordInvoker, record: &Record<'_>) -> Outcome {
        let mut attempt = 1;
        let mut first_failure: Option<Instant> = None;
        // On a retry topic, the deliveries before this one.
        let earlier = if self.plan.retry_topic { attempt_of(record) - 1 } else { 0 };
        // A filter or interceptor that panicked on the record failed its first attempt; then each
        // retry runs them again first (as a redelivery would).
        let mut failed_before = self.take_pre_failure(record);
        let prepare_again = failed_before.is_some();
        let interceptor = self.plan.settings.record_interceptor.as_deref();
        loop {
            let result = match failed_before.take() {
                Some(failure) => Err(failure),
                None => match if prepare_again { self.prepare(record, interceptor) } else { Prepared::Keep(None) } {
                    Prepared::Discard => return Outcome::Discarded,
                    Prepared::Failed(failure) => Err(failure),
                    Prepared::Keep(Some(changed)) => self.attempt(invoker, &changed, earlier + attempt),
                    Prepared::Keep(None) => self.attempt(invoker, record, earlier + attempt),
                },
            };
            let failure = match result {
                Ok(()) => {
                    if let Some(interceptor) = interceptor {
                        self.hook("the record interceptor's success hook", || {
                            interceptor.success(record, &self.plan.listener_id)
                        });
                    }
                    return Outcome::Handled;
                }
                Err(failure) => failure,
            };
            if let Some(interceptor) = interceptor {
                self.hook("the record interceptor's failure hook", || {
                    interceptor.failure(record, &failure, &self.plan.listener_id)
                });
            }
            if self.plan.acknowledging {
                // The failed delivery is over: a task of it acknowledging later does not count.
                self.shared.offsets().rewind(record.topic(), record.partition(), record.offset());
            }
            self.abort_transaction();
            let decision = self.ask_error_handler(&FailedRecord {
                listener_id: &self.plan.listener_id,
                group: &self.plan.group,
                record,
                failure: &failure,
                attempt,
                elapsed: first_failure.get_or_insert_with(Instant::now).elapsed(),
            });
            match self.decide(decision, &[(record.topic(), record.partition())]) {
                Some(outcome) => return outcome,
                None => attempt += 1,
            }
        }
    }

    /// Applies the error handler's decision; `None` means: try again.
    fn decide(&mut self, decision: ErrorDecision, partitions: &[(&str, i32)]) -> Option<Outcome> {
        match decision {
            ErrorDecision::Recovered | ErrorDecision::RecoveredFirst { recovered: 1.., .. } => Some(Outcome::Recovered),
            ErrorDecision::RecoveredFirst { recovered: 0, retry_after } => {
                self.decide(ErrorDecision::Retry(retry_after), partitions)
            }
            ErrorDecision::Stop => {
                tracing::error!(listener = &*self.plan.listener_id, "the error handler stopped the container");
                self.halted = true;
                self.shared.stop_requested.store(true, Ordering::Release);
                Some(Outcome::Abandoned)
            }
            ErrorDecision::Retry(delay) => {
                // A failed record is not retried once a stop is requested (nor the records behind
                // it handled): it stays uncommitted, for the next start.
                if self.stopping() {
                    return Some(Outcome::Abandoned);
                }
                if !delay.is_zero() {
                    // Seek-to-current: what was processed before the failed record is committed
                    // before the wait, not held back by it.
                    self.commit();
                    self.paused_wait(delay);
                    if self.stopping() {
                        return Some(Outcome::Abandoned);
                    }
                    let offsets = self.shared.offsets();
                    if partitions.iter().any(|(t, p)| !offsets.owns(t, *p)) {
                        return Some(Outcome::Abandoned);
                    }
                }
                None
            }
        }
    }

    /// Applies a handler's nack and seeks: `rest` is what a nack delivers again (from the records
    /// just handled on), `held` the records not handled yet. Returns true when the rest of the poll
    /// was given up.
    fn apply_requests(
        &mut self,
        requests: HandlerRequests,
        rest: &[Record<'_>],
        held: &[Record<'_>],
        skipped: &mut Vec<(String, i32)>,
    ) -> bool {
        if let Some(sleep) = requests.nack {
            self.redeliver(rest, sleep);
            return true;
        }
        // The records not handled yet are the position a relative seek starts from.
        skipped.extend(self.apply_seeks(requests.seeks, held));
        false
    }

    /// Applies seeks (from a handler, from outside, or from an assignment callback); returns the
    /// partitions sought, whose records in hand (`held`, not handled yet) must be dropped.
    fn apply_seeks(&mut self, seeks: Vec<(String, i32, SeekTo)>, held: &[Record<'_>]) -> Vec<(String, i32)> {
        let mut sought = Vec::new();
        for (topic, partition, to) in seeks {
            let listener = &*self.plan.listener_id;
            if !self.shared.offsets().owns(&topic, partition) {
                tracing::warn!(
                    listener,
                    topic,
                    partition,
                    ?to,
                    "seek ignored: this consumer does not own the partition"
                );
                continue;
            }
            let next_held = held.iter().find(|r| r.topic() == topic && r.partition() == partition).map(Record::offset);
            let target = self.resolve_seek(&topic, partition, to, next_held);
            let result = target.and_then(|offset| {
                self.consumer.seek(&topic, partition, Offset::Offset(offset), SEEK_TIMEOUT).map(|()| offset)
            });
            match result {
                Ok(offset) => {
                    tracing::debug!(listener, topic, partition, ?to, offset, "sought");
                    self.shared.offsets().rewind(&topic, partition, offset);
                    self.sought.push((topic.clone(), partition));
                    sought.push((topic, partition));
                }
                Err(error) => tracing::warn!(listener, topic, partition, ?to, %error, "seek failed"),
            }
        }
        sought
    }

    /// The offset a seek moves to. A relative seek starts from the next record the listener would
    /// get: the first held one of the partition, else the consumer's position.
    fn resolve_seek(
        &self,
        topic: &str,
        partition: i32,
        to: SeekTo,
        next_held: Option<i64>,
    ) -> rdkafka::error::KafkaResult<i64> {
        let watermarks = || self.consumer.fetch_watermarks(topic, partition, SEEK_TIMEOUT);
        match to {
            SeekTo::Offset(offset) => Ok(offset),
            SeekTo::Beginning => watermarks().map(|(low, _)| low),
            SeekTo::End => watermarks().map(|(_, high)| high),
            SeekTo::Timestamp(ts) => {
                offset_for_time(self.consumer, &self.plan.client_config, topic, partition, ts, SEEK_TIMEOUT)
            }
            SeekTo::Relative(delta) => {
                let (low, high) = watermarks()?;
                let current = match next_held {
                    Some(offset) => offset,
                    None => match self.consumer.position()?.find_partition(topic, partition).map(|e| e.offset()) {
                        Some(Offset::Offset(offset)) => offset,
                        _ => low,
                    },
                };
                Ok(current.saturating_add(delta).clamp(low, high))
            }
        }
    }

    /// Seeks every partition of `records` back to its first record there, then waits `sleep`
    /// with the assignment paused (the consumer stays in its group).
    fn redeliver(&mut self, records: &[Record<'_>], sleep: Duration) {
        for (topic, partition, offset) in firsts(records) {
            self.shared.offsets().rewind(topic, partition, offset);
            if let Err(error) = self.consumer.seek(topic, partition, Offset::Offset(offset), SEEK_TIMEOUT) {
                tracing::warn!(listener = &*self.plan.listener_id, topic, partition, offset, %error, "seek for nack failed");
            }
        }
        if !sleep.is_zero() {
            // What was processed before (acknowledged, handled) is committed before the wait, as
            // Spring commits pending offsets before a nack's pause.
            self.commit();
            self.paused_wait(sleep);
        }
    }

    /// Waits with the assignment paused, serving rebalances. Records fetched meanwhile are not
    /// lost: their partitions are sought back to them afterwards.
    fn paused_wait(&mut self, duration: Duration) {
        let listener = &*self.plan.listener_id;
        let paused = self.consumer.assignment().and_then(|a| self.consumer.pause(&a).map(|()| a));
        if let Err(error) = &paused {
            tracing::warn!(listener, %error, "could not pause for a retry wait");
        }
        let deadline = Instant::now() + duration;
        let mut rewinds: Vec<(String, i32, i64)> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // A stop ends the wait at once: nothing more is handled.
            if left.is_zero() || self.stopping() {
                break;
            }
            self.shared.polled();
            if let Some(Ok(message)) = self.consumer.poll(left.min(POLL_SLICE)) {
                let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
                match rewinds.iter_mut().find(|(t, p, _)| t == topic && *p == partition) {
                    Some(entry) => entry.2 = entry.2.min(offset),
                    None => rewinds.push((topic.to_string(), partition, offset)),
                }
            }
        }
        if !self.shared.pause_requested.load(Ordering::Acquire) {
            if let Err(error) = self.resume_all() {
                tracing::warn!(listener, %error, "could not resume after a retry wait");
            }
        }
        for (topic, partition, offset) in rewinds {
            if let Err(error) = self.consumer.seek(&topic, partition, Offset::Offset(offset), SEEK_TIMEOUT) {
                tracing::warn!(listener, topic, partition, offset, %error, "seek after a retry wait failed");
            }
        }
    }

    fn handle_batch(&mut self, invoker: &BatchInvoker, records: Vec<Record<'c>>) {
        let mut start = 0;
        let mut carried = BatchAttempts::default();
        while start < records.len() {
            if self.past_deadline() || self.halted {
                return;
            }
            let (end, outcome) = self.invoke_batch(invoker, &records, start, &mut carried);
            let requests = std::mem::take(&mut *lock(&self.shared.requests));
            let handled = &records[start..end];
            match outcome {
                Outcome::Handled if !self.plan.acknowledging => handled.iter().for_each(|r| self.complete(r)),
                Outcome::Handled => {}
                Outcome::Recovered => handled.iter().for_each(|r| self.complete(r)),
                // Batches are filtered and intercepted before the listener only.
                Outcome::Discarded => {}
                Outcome::Abandoned => {
                    // Not processed: their deliveries no longer wait for acknowledgments.
                    let mut offsets = self.shared.offsets();
                    for (topic, partition, first) in firsts(&records[start..]) {
                        offsets.rewind(topic, partition, first);
                    }
                    return;
                }
            }
            if self.plan.settings.transactional.is_some() && !self.commit_transaction(handled) {
                // Their outputs were aborted: the records are delivered again, with the rest.
                self.redeliver(&records[start..], Duration::ZERO);
                return;
            }
            self.shared.handled.fetch_add(handled.len() as u64, Ordering::Relaxed);
            if let Some(replay) = &self.plan.replay {
                replay.handled(handled);
            }
            if self.apply_requests(requests, &records[start..], &records[end..], &mut Vec::new()) {
                return;
            }
            if carried.wait.is_some() {
                // A record of the batch failed: what came before it is committed before its back-off.
                self.commit();
            } else {
                let decision = self.policy.handled(handled.len() as u64);
                self.apply(decision);
            }
            start = end;
        }
    }

    /// Opens the transaction a record is handled in (transactional factories only).
    fn begin_transaction(&mut self) -> Result<(), ListenerFailure> {
        let Some(template) = self.plan.settings.transactional.as_ref() else { return Ok(()) };
        if self.transaction.is_none() {
            self.transaction = Some(drive(template.inner.transaction_lock.lock()));
        }
        template
            .inner
            .producer
            .begin_transaction()
            .map_err(|e| ListenerFailure::Transaction(Box::new(Error::kafka("beginning the record's transaction", e))))
    }

    fn abort_transaction(&mut self) {
        let Some(template) = self.plan.settings.transactional.as_ref() else { return };
        if self.transaction.take().is_some() {
            if let Err(error) = template.inner.producer.abort_transaction(template.inner.send_timeout) {
                tracing::warn!(listener = &*self.plan.listener_id, %error, "could not abort the record's transaction");
            }
        }
    }

    /// Commits the transaction the records were handled in, with their offsets. Returns false when
    /// it was aborted instead.
    fn commit_transaction(&mut self, records: &[Record<'_>]) -> bool {
        let Some(template) = self.plan.settings.transactional.as_ref() else { return true };
        // A recovered record's transaction was aborted: its offset goes in a new one.
        if self.transaction.is_none() && self.begin_transaction().is_err() {
            self.abort_transaction();
            return false;
        }
        // The offset after the last record of each partition.
        let mut next: Vec<(&str, i32, i64)> = Vec::new();
        for r in records {
            match next.iter_mut().find(|(t, p, _)| *t == r.topic() && *p == r.partition()) {
                Some(entry) => entry.2 = entry.2.max(r.offset() + 1),
                None => next.push((r.topic(), r.partition(), r.offset() + 1)),
            }
        }
        let mut offsets = TopicPartitionList::new();
        let added = next.iter().try_for_each(|(topic, partition, offset)| {
            offsets.add_partition_offset(topic, *partition, Offset::Offset(*offset))
        });
        let producer = &template.inner.producer;
        let timeout = template.inner.send_timeout;
        let committed = added
            .and_then(|()| {
                let metadata = self.consumer.group_metadata().ok_or(KafkaError::NoMessageReceived)?;
                producer.send_offsets_to_transaction(&offsets, &metadata, timeout)
            })
            .and_then(|()| producer.commit_transaction(timeout));
        match committed {
            Ok(()) => {
                self.transaction = None;
                let mut tracker = self.shared.offsets();
                for (topic, partition, offset) in next {
                    tracker.committed_at(topic, partition, offset);
                }
                true
            }
            Err(error) => {
                tracing::warn!(listener = &*self.plan.listener_id, offsets = %super::shared::describe(&offsets), %error,
                    "could not commit the transaction; its records are delivered again");
                self.abort_transaction();
                false
            }
        }
    }

    /// [`publish`](Self::publish), with a panic of the template's partitioner or producer
    /// listener (user code) failing the record like a listener's.
    fn reply(&self, request: &Record<'_>, output: HandlerOutput) -> Result<(), ListenerFailure> {
        if !matches!(output, HandlerOutput::Reply(_)) {
            return Ok(());
        }
        contain(|| self.publish(request, output)).unwrap_or_else(|panic| {
            Err(ListenerFailure::Panic(format!(
                "publishing the reply panicked (the template's partitioner or producer listener): {panic}"
            )))
        })
    }

    /// Publishes a handler's reply (Spring's `@SendTo`): to the listener's `reply_to`, else to the
    /// request's `kafka_replyTopic` (and `kafka_replyPartition`), with the request's
    /// `kafka_correlationId`; awaited before the request counts as handled.
    fn publish(&self, request: &Record<'_>, output: HandlerOutput) -> Result<(), ListenerFailure> {
        let HandlerOutput::Reply(value) = output else { return Ok(()) };
        let no_destination = || {
            ListenerFailure::Reply(Box::new(Error::NoReplyDestination { listener: self.plan.listener_id.to_string() }))
        };
        let Some(reply) = &self.plan.reply else { return Err(no_destination()) };
        let header_topic = request.header(headers::REPLY_TOPIC).flatten().and_then(|t| std::str::from_utf8(t).ok());
        let (topic, partition) = match (&reply.topic, header_topic) {
            (Some(topic), _) => (topic.as_str(), None),
            (None, Some(topic)) => {
                let partition = request
                    .header(headers::REPLY_PARTITION)
                    .flatten()
                    .and_then(|p| <[u8; 4]>::try_from(p).ok())
                    .map(i32::from_be_bytes);
                (topic, partition)
            }
            (None, None) => return Err(no_destination()),
        };
        let mut send = reply.template.send(topic, value);
        if let Some(correlation) = request.header(headers::CORRELATION_ID).flatten() {
            send = send.header(headers::CORRELATION_ID, correlation);
        }
        if let Some(partition) = partition {
            send = send.partition(partition);
        }
        drive(send.into_future()).map(|_| ()).map_err(|e| ListenerFailure::Reply(Box::new(e)))
    }

    /// Invokes the listener on the longest convertible run of records from `start`. A record that
    /// cannot be converted goes alone to the error handler. Returns the end of what was dealt with.
    fn invoke_batch(
        &mut self,
        invoker: &BatchInvoker,
        records: &[Record<'_>],
        start: usize,
        carried: &mut BatchAttempts,
    ) -> (usize, Outcome) {
        let mut end = records.len();
        let BatchAttempts { attempt: failures, mut first_failure, wait } = std::mem::take(carried);
        let mut attempt = failures + 1;
        if let Some(delay) = wait {
            // The back-off of the record at `start`, which failed in the previous invocation.
            let partitions: Vec<(&str, i32)> = records[start..].iter().map(|r| (r.topic(), r.partition())).collect();
            if let Some(outcome) = self.decide(ErrorDecision::Retry(delay), &partitions) {
                return (start, outcome);
            }
        }
        // A filter or interceptor that panicked on a record of the batch failed the first attempt.
        let mut failed_before: Option<ListenerFailure> = None;
        for record in &records[start..end] {
            if let Some(failure) = self.take_pre_failure(record) {
                failed_before.get_or_insert(failure);
            }
        }
        loop {
            let result = match failed_before.take() {
                Some(failure) => Err((None, failure)),
                None => {
                    if self.plan.acknowledging {
                        // Each invocation is a delivery of its own: acknowledgments of an earlier
                        // (failed) one no longer count.
                        let mut offsets = self.shared.offsets();
                        for r in &records[start..end] {
                            offsets.track(r.topic(), r.partition(), r.offset());
                        }
                    }
                    let result = self.begin_transaction().map_err(|failure| (None, failure)).and_then(|()| {
                        let cx = self.context(attempt);
                        let slice = &records[start..end];
                        contain(|| invoker(slice, &cx))
                            .unwrap_or_else(|panic| Err((None, ListenerFailure::Panic(panic))))
                    });
                    result.and_then(|output| match records.get(start) {
                        Some(first) => self.reply(first, output).map_err(|failure| (None, failure)),
                        None => Ok(()),
                    })
                }
            };
            if result.is_err() {
                self.abort_transaction();
                if self.plan.acknowledging {
                    // The failed delivery is over: its tasks acknowledging later do not count.
                    let mut offsets = self.shared.offsets();
                    for (topic, partition, first) in firsts(&records[start..end]) {
                        offsets.rewind(topic, partition, first);
                    }
                }
            }
            if let Some(interceptor) = self.plan.settings.batch_interceptor.as_deref() {
                let slice = &records[start..end];
                match &result {
                    Ok(()) => self.hook("the batch interceptor's success hook", || {
                        interceptor.success(slice, &self.plan.listener_id)
                    }),
                    Err((_, failure)) => self.hook("the batch interceptor's failure hook", || {
                        interceptor.failure(slice, failure, &self.plan.listener_id)
                    }),
                }
            }
            let failure = match result {
                Ok(()) => return (end, Outcome::Handled),
                Err((Some(0), failure @ ListenerFailure::Conversion(_))) => {
                    return (start + 1, self.recover_unconvertible(&records[start], failure));
                }
                Err((Some(index), ListenerFailure::Conversion(_))) => {
                    // Hand over the records before the one that cannot be converted first.
                    end = start + index;
                    continue;
                }
                Err((_, ListenerFailure::Handler(error))) if self.plan.settings.transactional.is_none() => {
                    match error.into_batch_failed() {
                        Ok(failed) if failed.index < end - start => {
                            let first_failure = if failed.index == 0 { first_failure } else { None };
                            let attempt = if failed.index == 0 { attempt } else { 1 };
                            return self.batch_record_failed(records, start, failed, attempt, first_failure, carried);
                        }
                        Ok(failed) => {
                            tracing::warn!(
                                listener = &*self.plan.listener_id,
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
            let slice = &records[start..end];
            let decision = self.ask_batch_error_handler(&FailedBatch {
                listener_id: &self.plan.listener_id,
                group: &self.plan.group,
                records: slice,
                failure: &failure,
                attempt,
                elapsed: first_failure.get_or_insert_with(Instant::now).elapsed(),
            });
            if let ErrorDecision::RecoveredFirst { recovered, retry_after } = decision {
                if recovered > 0 && recovered < slice.len() {
                    // The first records are recovered (committed before the wait); the rest comes
                    // again after it.
                    *carried = BatchAttempts { attempt, first_failure, wait: Some(retry_after) };
                    return (start + recovered, Outcome::Recovered);
                }
            }
            let partitions: Vec<(&str, i32)> = slice.iter().map(|r| (r.topic(), r.partition())).collect();
            match self.decide(decision, &partitions) {
                Some(outcome) => return (end, outcome),
                None => attempt += 1,
            }
        }
    }

    /// The listener said which record of the batch failed (`BatchListenerFailed`): the records
    /// before it count as handled; the error handler decides for that record alone. A retry
    /// invokes the listener again from that record, after the back-off (carried to the next step,
    /// so that the records before it are committed first).
    fn batch_record_failed(
        &mut self,
        records: &[Record<'_>],
        start: usize,
        failed: BatchListenerFailed,
        attempt: u32,
        first_failure: Option<Instant>,
        carried: &mut BatchAttempts,
    ) -> (usize, Outcome) {
        let at = start + failed.index;
        let first_failure = first_failure.unwrap_or_else(Instant::now);
        let failure = ListenerFailure::Handler(failed.error);
        let decision = self.ask_error_handler(&FailedRecord {
            listener_id: &self.plan.listener_id,
            group: &self.plan.group,
            record: &records[at],
            failure: &failure,
            attempt,
            elapsed: first_failure.elapsed(),
        });
        // The records before `at` were handled; `Recovered` completes them (whatever the ack mode,
        // as Spring commits them).
        match decision {
            ErrorDecision::Retry(delay) => {
                *carried = BatchAttempts { attempt, first_failure: Some(first_failure), wait: Some(delay) };
                (at, Outcome::Recovered)
            }
            ErrorDecision::Recovered | ErrorDecision::RecoveredFirst { recovered: 1.., .. } => {
                (at + 1, Outcome::Recovered)
            }
            ErrorDecision::RecoveredFirst { recovered: 0, retry_after } => {
                *carried = BatchAttempts { attempt, first_failure: Some(first_failure), wait: Some(retry_after) };
                (at, Outcome::Recovered)
            }
            ErrorDecision::Stop => {
                self.decide(ErrorDecision::Stop, &[]);
                (at, Outcome::Recovered)
            }
        }
    }

    fn recover_unconvertible(&mut self, record: &Record<'_>, failure: ListenerFailure) -> Outcome {
        let mut attempt = 1;
        let first_failure = Instant::now();
        loop {
            let decision = self.ask_error_handler(&FailedRecord {
                listener_id: &self.plan.listener_id,
                group: &self.plan.group,
                record,
                failure: &failure,
                attempt,
                elapsed: first_failure.elapsed(),
            });
            match self.decide(decision, &[(record.topic(), record.partition())]) {
                Some(outcome) => return outcome,
                // Converting again gives the same result; the handler asked for it, though.
                None => attempt += 1,
            }
        }
    }
}

/// The partitions of these records, each once, with the offset of its last record.
fn partitions_of(records: &[Record<'_>]) -> Vec<(String, i32, i64)> {
    let mut partitions: Vec<(String, i32, i64)> = Vec::new();
    for r in records {
        match partitions.iter_mut().find(|(t, p, _)| t == r.topic() && *p == r.partition()) {
            Some(entry) => entry.2 = entry.2.max(r.offset()),
            None => partitions.push((r.topic().to_string(), r.partition(), r.offset())),
        }
    }
    partitions
}

/// A panic of our own code stopped a consumer (user code is contained where it is called): said
/// in the log and as an event.
fn internal_panic(shared: &ContainerShared, during: &str, panic: String) {
    tracing::error!(
        listener = &*shared.listener_id,
        consumer = shared.index,
        during,
        panic,
        "the consumer stops after an internal panic; please report it"
    );
    shared.emit_panicked(during, panic, true);
}

/// The first offset of each partition among these records.
fn firsts<'r>(records: &'r [Record<'_>]) -> Vec<(&'r str, i32, i64)> {
    let mut firsts: Vec<(&str, i32, i64)> = Vec::new();
    for r in records {
        if !firsts.iter().any(|(t, p, _)| *t == r.topic() && *p == r.partition()) {
            firsts.push((r.topic(), r.partition(), r.offset()));
        }
    }
    firsts
}
