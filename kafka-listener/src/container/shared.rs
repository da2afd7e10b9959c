//! State one container shares between its poll thread, its rdkafka context, and the
//! acknowledgments and handles it gives out: the offset tracker, the small state types of
//! `control.rs`, the consumer (for commits from other threads) and the event listener.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use rdkafka::TopicPartitionList;

use super::control::{Control, Revocations, Stats};
use super::events::{ContainerEvent, EventListener};
use super::port::DeliveredRecord;
use crate::ack::{DeliveryId, OffsetTracker};
use crate::config::AckMode;
use crate::TopicPartition;

pub(crate) use super::sync::lock;
use crate::observability::health::HealthState;
use crate::observability::meter::{ContainerMeters, PausedCounts};

/// State one `ListenerContainer` shares between its poll thread, its rdkafka context, and the
/// acknowledgments and handles it gives out.
pub(crate) struct ContainerShared {
    pub(crate) listener_id: Arc<str>,
    /// The consumer's index in its listener's container.
    pub(crate) index: usize,
    ack_mode: AckMode,
    sync_commits: bool,
    offsets: Mutex<OffsetTracker>,
    /// Signalled on acknowledgments while someone waits for them (`ack_waiters` > 0).
    acked: Condvar,
    ack_waiters: AtomicUsize,
    /// Processed offsets of partitions a consumer of the listener lost before it could commit
    /// them, for whichever consumer of the listener gets the partition next.
    handoff: Arc<HandOff>,
    control: Control,
    revocations: Revocations,
    stats: Stats,
    consumer: OnceLock<Weak<dyn Any + Send + Sync>>,
    poll_thread: OnceLock<ThreadId>,
    /// The consumer is being closed: no one else may take it from now on.
    closing: AtomicBool,
    /// A deferred commit (AckMode::Record) is scheduled.
    flush_scheduled: AtomicBool,
    events: Option<EventListener>,
    /// Wakes the poll thread of a concurrent processing order (a task finished, or the consumer's
    /// queue has something).
    pub(crate) wakeup: Arc<Wakeup>,
    /// Handlers run as tasks (a concurrent processing order): a nack names its record.
    tasks: AtomicBool,
    /// Records a task's handler nacked, by delivery: delivered again after the sleep.
    task_nacks: Mutex<HashMap<DeliveryId, Duration>>,
    /// `task_nacks` is not empty.
    any_task_nacks: AtomicBool,
    /// The consumer's metric handles.
    pub(crate) meters: ContainerMeters,
    /// What its thread and context report for `RunningListeners::health`.
    pub(crate) health: HealthState,
}

/// Wakes a poll thread that waits for its tasks or its consumer's queue (see
/// `dispatch::tasks`). A notification while the thread is not waiting costs one atomic swap
/// (tasks notify once each, librdkafka's callback on every record the queue gets after being
/// empty); only a waiting thread is woken through the condition variable.
#[derive(Debug, Default)]
pub(crate) struct Wakeup {
    /// `IDLE`, `NOTIFIED` (a notification not yet consumed) or `WAITING`.
    state: AtomicU8,
    mutex: Mutex<()>,
    cv: Condvar,
}

const IDLE: u8 = 0;
const NOTIFIED: u8 = 1;
const WAITING: u8 = 2;

impl Wakeup {
    /// Wakes the waiter (or the next one to wait).
    pub(crate) fn notify(&self) {
        if self.state.swap(NOTIFIED, Ordering::AcqRel) == WAITING {
            // The waiter set WAITING under the lock and waits on the condition variable, which
            // releases the lock atomically: taking it here means the waiter is waiting.
            drop(lock(&self.mutex));
            self.cv.notify_one();
        }
    }

    /// Waits until notified (since the last wait returned) or `timeout` passed; consumes the
    /// notification.
    pub(crate) fn wait(&self, timeout: Duration) {
        if self.state.compare_exchange(NOTIFIED, IDLE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return;
        }
        let deadline = Instant::now() + timeout;
        let mut guard = lock(&self.mutex);
        if self.state.compare_exchange(IDLE, WAITING, Ordering::AcqRel, Ordering::Acquire).is_err() {
            // Notified meanwhile.
            self.state.store(IDLE, Ordering::Release);
            return;
        }
        loop {
            let now = Instant::now();
            if self.state.load(Ordering::Acquire) == NOTIFIED || now >= deadline {
                break;
            }
            guard = self.cv.wait_timeout(guard, deadline - now).map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
        self.state.store(IDLE, Ordering::Release);
        drop(guard);
    }
}

/// What the consumers of one listener share beyond a restart: the pause request and the offsets
/// handed from one to another.
#[derive(Debug, Default)]
pub(crate) struct ListenerState {
    pub(crate) pause_requested: Arc<AtomicBool>,
    pub(crate) handoff: Arc<HandOff>,
    /// Partitions each consumer has paused, for the listener's paused-partitions gauge.
    pub(crate) paused: Arc<PausedCounts>,
}

/// Processed offsets of partitions whose commit failed when their consumer gave them up (a broker
/// rejects commits while the group rebalances), by partition: the next consumer of the same
/// listener to get the partition starts there and commits them (Spring stashes such offsets and
/// commits them after the rebalance; siblings in one process can do better).
#[derive(Debug, Default)]
pub(crate) struct HandOff {
    offsets: Mutex<HashMap<TopicPartition, i64>>,
}

impl HandOff {
    /// Keeps `next` (the offset after the last processed record) for the partition.
    pub(crate) fn put(&self, topic: &str, partition: i32, next: i64) {
        let mut offsets = lock(&self.offsets);
        let slot = offsets.entry(TopicPartition::new(topic, partition)).or_insert(next);
        *slot = (*slot).max(next);
    }

    /// Takes what was kept for the partition.
    pub(crate) fn take(&self, topic: &str, partition: i32) -> Option<i64> {
        lock(&self.offsets).remove(&TopicPartition::new(topic, partition))
    }

    /// Whether anything is kept.
    pub(crate) fn is_empty(&self) -> bool {
        lock(&self.offsets).is_empty()
    }

    /// Everything kept, sorted: `(partition, next)`.
    pub(crate) fn pending(&self) -> Vec<(TopicPartition, i64)> {
        let mut all: Vec<_> = lock(&self.offsets).iter().map(|(tp, n)| (tp.clone(), *n)).collect();
        all.sort();
        all
    }
}

impl ContainerShared {
    pub(crate) fn new(
        listener_id: Arc<str>,
        group: Arc<str>,
        ack_mode: AckMode,
        sync_commits: bool,
        index: usize,
        events: Option<EventListener>,
        state: &ListenerState,
    ) -> Self {
        ContainerShared {
            meters: ContainerMeters::new(listener_id.clone(), group, index, state.paused.clone()),
            health: HealthState::default(),
            listener_id,
            index,
            ack_mode,
            sync_commits,
            offsets: Mutex::new(OffsetTracker::default()),
            acked: Condvar::new(),
            ack_waiters: AtomicUsize::new(0),
            handoff: state.handoff.clone(),
            control: Control::new(state.pause_requested.clone()),
            revocations: Revocations::default(),
            stats: Stats::default(),
            consumer: OnceLock::new(),
            poll_thread: OnceLock::new(),
            closing: AtomicBool::new(false),
            flush_scheduled: AtomicBool::new(false),
            events,
            wakeup: Arc::new(Wakeup::default()),
            tasks: AtomicBool::new(false),
            task_nacks: Mutex::new(HashMap::new()),
            any_task_nacks: AtomicBool::new(false),
        }
    }

    /// Requests to the container (seeks, nack, pauses, stop).
    pub(crate) fn control(&self) -> &Control {
        &self.control
    }

    /// Revocations the rebalance callback saw.
    pub(crate) fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// Counters and liveness.
    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Offsets processed by consumers of the listener that lost their partitions.
    pub(crate) fn handoff(&self) -> &HandOff {
        &self.handoff
    }

    pub(crate) fn ack_mode(&self) -> AckMode {
        self.ack_mode
    }

    /// Tells the subscriber, if any (the event is built only then).
    ///
    /// A panicking subscriber is logged and the event dropped: the container goes on.
    pub(crate) fn emit(&self, event: impl FnOnce(String, usize) -> ContainerEvent) {
        if let Some(events) = &self.events {
            let event = event(self.listener_id.to_string(), self.index);
            if let Err(panic) = super::contain::contain(|| events(&event)) {
                tracing::error!(
                    listener = &*self.listener_id,
                    consumer = self.index,
                    ?event,
                    panic,
                    "the factory's event listener panicked; the event is dropped and the container goes on"
                );
            }
        }
    }

    /// Tells the subscriber that code the container called panicked (`during`: what it was).
    pub(crate) fn emit_panicked(&self, during: &str, message: String, stopped: bool) {
        self.emit(|listener, consumer| ContainerEvent::Panicked {
            listener,
            consumer,
            during: during.to_string(),
            message,
            stopped,
        });
    }

    /// Whether a subscriber listens.
    pub(crate) fn has_events(&self) -> bool {
        self.events.is_some()
    }

    #[inline]
    pub(crate) fn offsets(&self) -> MutexGuard<'_, OffsetTracker> {
        lock(&self.offsets)
    }

    /// Wakes whoever waits for acknowledgments (after the tracker's lock is released).
    pub(crate) fn acknowledged(&self) {
        if self.ack_waiters.load(Ordering::Acquire) > 0 {
            self.acked.notify_all();
        }
    }

    /// Waits until no record of the owned partitions (`only`: of these) waits for an
    /// acknowledgment, or until `deadline`. Returns what still waits: `(topic, partition, records)`.
    pub(crate) fn wait_for_acks(
        &self,
        only: Option<&TopicPartitionList>,
        deadline: Instant,
    ) -> Vec<(String, i32, usize)> {
        self.ack_waiters.fetch_add(1, Ordering::AcqRel);
        let mut offsets = self.offsets();
        let left = loop {
            let left = offsets.unacknowledged(only);
            let now = Instant::now();
            if left.is_empty() || now >= deadline {
                break left;
            }
            offsets = self.acked.wait_timeout(offsets, deadline - now).map_or_else(|e| e.into_inner().0, |(g, _)| g);
        };
        drop(offsets);
        self.ack_waiters.fetch_sub(1, Ordering::AcqRel);
        left
    }

    /// Keeps the consumer (weakly: the poll thread owns it), type-erased so that this module
    /// need not name the consumer's type: its rdkafka context holds this state, and naming it
    /// here would make the two modules depend on each other. `commits.rs` gives it back typed.
    pub(crate) fn attach_erased(&self, consumer: Weak<dyn Any + Send + Sync>) {
        let _ = self.consumer.set(consumer);
        let _ = self.poll_thread.set(std::thread::current().id());
    }

    /// The consumer, type-erased; `None` once it is closing or gone.
    pub(crate) fn consumer_erased(&self) -> Option<Arc<dyn Any + Send + Sync>> {
        if self.closing.load(Ordering::Acquire) {
            return None;
        }
        self.consumer.get().and_then(Weak::upgrade)
    }

    /// No one may take the consumer from now on.
    pub(crate) fn mark_closing(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Whether asynchronous commits are off (`sync_commits`).
    pub(crate) fn sync_commits(&self) -> bool {
        self.sync_commits
    }

    pub(crate) fn on_poll_thread(&self) -> bool {
        self.poll_thread.get() == Some(&std::thread::current().id())
    }

    /// Handlers run as tasks from now on (a concurrent processing order): a nack concerns only
    /// its own record.
    pub(crate) fn run_tasks(&self) {
        self.tasks.store(true, Ordering::Release);
    }

    /// A nack of these records' deliveries: with handlers as tasks, kept for the record's task
    /// to end with; else the poll's records are delivered again (on the poll thread only).
    pub(crate) fn request_nack(&self, records: &[DeliveredRecord], sleep: Duration) {
        if self.tasks.load(Ordering::Acquire) {
            let mut nacks = lock(&self.task_nacks);
            nacks.extend(records.iter().filter_map(|r| r.delivery).map(|id| (id, sleep)));
            self.any_task_nacks.store(!nacks.is_empty(), Ordering::Release);
            return;
        }
        if !self.on_poll_thread() {
            tracing::warn!(listener = %self.listener_id, "Acknowledgment::nack ignored: call it in the handler, not from another task");
            return;
        }
        self.control.nack(sleep);
    }

    /// The sleep of a nack of this delivery from its task, taken.
    pub(crate) fn take_task_nack(&self, delivery: DeliveryId) -> Option<Duration> {
        // A nack is requested before its task ends, and the task's end reaches this thread
        // after it: the flag is seen set (no lock per record when nothing was nacked).
        if !self.any_task_nacks.load(Ordering::Acquire) {
            return None;
        }
        let mut nacks = lock(&self.task_nacks);
        let sleep = nacks.remove(&delivery);
        self.any_task_nacks.store(!nacks.is_empty(), Ordering::Release);
        sleep
    }

    /// Claims the one deferred commit (`AckMode::Record` spacing); false if one is scheduled.
    pub(crate) fn schedule_flush(&self) -> bool {
        !self.flush_scheduled.swap(true, Ordering::AcqRel)
    }

    /// Whether a held-back record commit is scheduled and not sent yet.
    #[inline]
    pub(crate) fn flush_scheduled(&self) -> bool {
        self.flush_scheduled.load(Ordering::Acquire)
    }

    /// The deferred commit ran.
    pub(crate) fn flushed(&self) {
        self.flush_scheduled.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::HandOff;
    use crate::TopicPartition;

    #[test]
    fn a_handoff_keeps_the_furthest_offset_and_is_taken_once() {
        let handoff = HandOff::default();
        handoff.put("t", 0, 10);
        handoff.put("t", 0, 7);
        handoff.put("t", 1, 3);
        assert_eq!(handoff.pending(), [(TopicPartition::new("t", 0), 10), (TopicPartition::new("t", 1), 3)]);
        assert_eq!(handoff.take("t", 0), Some(10));
        assert_eq!(handoff.take("t", 0), None);
        assert!(!handoff.is_empty());
    }
}
