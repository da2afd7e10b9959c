//! State one container shares between its poll thread, its rdkafka context, and the
//! acknowledgments and handles it gives out: the offset tracker, the small state types of
//! `control.rs`, the consumer (for commits from other threads) and the event listener.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::context::ContainerContext;
use super::control::{Control, Revocations, Stats};
use super::events::{ContainerEvent, EventListener};
use crate::ack::{OffsetTracker, Selection};
use crate::config::AckMode;
use crate::TopicPartition;

pub(crate) type KafkaConsumer = BaseConsumer<ContainerContext>;

/// Locks, recovering from poisoning: the guarded data stays consistent because nothing panics
/// while holding these locks (handler panics are caught outside them).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

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
    consumer: OnceLock<Weak<KafkaConsumer>>,
    poll_thread: OnceLock<ThreadId>,
    /// The consumer is being closed: no one else may take it from now on.
    closing: AtomicBool,
    /// A deferred commit (AckMode::Record) is scheduled.
    flush_scheduled: AtomicBool,
    events: Option<EventListener>,
}

/// What the consumers of one listener share beyond a restart: the pause request and the offsets
/// handed from one to another.
#[derive(Debug, Default)]
pub(crate) struct ListenerState {
    pub(crate) pause_requested: Arc<AtomicBool>,
    pub(crate) handoff: Arc<HandOff>,
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
        ack_mode: AckMode,
        sync_commits: bool,
        index: usize,
        events: Option<EventListener>,
        state: &ListenerState,
    ) -> Self {
        ContainerShared {
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

    pub(crate) fn attach(&self, consumer: &Arc<KafkaConsumer>) {
        let _ = self.consumer.set(Arc::downgrade(consumer));
        let _ = self.poll_thread.set(std::thread::current().id());
    }

    pub(crate) fn consumer(&self) -> Option<Arc<KafkaConsumer>> {
        if self.closing.load(Ordering::Acquire) {
            return None;
        }
        self.consumer.get().and_then(Weak::upgrade)
    }

    /// Closes the consumer on this (its poll) thread: no one else may take it from now on, and
    /// those who hold it (a metadata refresh, a `ConsumerHandle` call) are waited for (5 s at
    /// most), so that the consumer has left its group and its client is gone when the container
    /// says it stopped.
    pub(crate) fn close(&self, consumer: Arc<KafkaConsumer>) {
        self.closing.store(true, Ordering::Release);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&consumer) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if Arc::strong_count(&consumer) > 1 {
            tracing::debug!(listener = %self.listener_id, "the consumer is still in use; it closes when its last user is done");
        }
        drop(consumer);
    }

    pub(crate) fn on_poll_thread(&self) -> bool {
        self.poll_thread.get() == Some(&std::thread::current().id())
    }

    /// Commits the selected offsets. The commit call is made under the tracker's lock so that
    /// commits from several threads reach the broker in offset order.
    ///
    /// An asynchronous commit leaves the offsets *unconfirmed* until its outcome is polled
    /// (`ContainerContext::commit_callback`); the poll loop confirms what stays unconfirmed with a
    /// synchronous commit when idle (a broker rejects commits while a rebalance is in progress). A
    /// failed synchronous commit returns its error and the offsets are sent again by the next
    /// commit.
    pub(crate) fn commit(
        &self,
        consumer: &KafkaConsumer,
        sync: bool,
        selection: Selection<'_>,
    ) -> Result<(), rdkafka::error::KafkaError> {
        let mut offsets = self.offsets();
        let Some(tpl) = offsets.take_commits(selection) else { return Ok(()) };
        let asynchronous = !(sync || self.sync_commits);
        let result = if asynchronous { commit_async(consumer, &tpl) } else { consumer.commit(&tpl, CommitMode::Sync) };
        if result.is_ok() && !asynchronous {
            offsets.confirmed(&tpl);
        }
        // The subscriber may use the container (and its tracker): not under the lock.
        drop(offsets);
        if let Err(error) = &result {
            self.emit(|listener, consumer| ContainerEvent::CommitFailed {
                listener,
                consumer,
                error: format!("{error} (offsets {})", describe(&tpl)),
            });
        }
        tracing::trace!(listener = %self.listener_id, offsets = %describe(&tpl), asynchronous, ok = result.is_ok(), "commit");
        result
    }

    /// [`commit`](Self::commit), logging a failure.
    pub(crate) fn commit_logged(&self, consumer: &KafkaConsumer, sync: bool, selection: Selection<'_>) {
        if let Err(error) = self.commit(consumer, sync, selection) {
            tracing::warn!(listener = %self.listener_id, %error, "commit failed; it will be sent again");
        }
    }

    /// A commit from an acknowledgment (`ManualImmediate`), from any thread.
    pub(crate) fn commit_now(&self) {
        if let Some(consumer) = self.consumer() {
            self.commit_logged(&consumer, false, Selection::Advanced);
        }
    }

    pub(crate) fn request_nack(&self, sleep: Duration) {
        if !self.on_poll_thread() {
            tracing::warn!(listener = %self.listener_id, "Acknowledgment::nack ignored: call it in the handler, not from another task");
            return;
        }
        self.control.nack(sleep);
    }

    /// Claims the one deferred commit (`AckMode::Record` spacing); false if one is scheduled.
    pub(crate) fn schedule_flush(&self) -> bool {
        !self.flush_scheduled.swap(true, Ordering::AcqRel)
    }

    /// The deferred commit ran.
    pub(crate) fn flushed(&self) {
        self.flush_scheduled.store(false, Ordering::Release);
    }
}

/// Sends an asynchronous commit whose outcome comes back to the consumer's queue, where polling
/// hands it to `ContainerContext::commit_callback`.
///
/// rust-rdkafka's `commit(.., Async)` reports nothing back, and librdkafka retries a failed
/// commit request on its own — possibly after a newer commit landed, putting an older offset
/// back (seen with coordinator errors under load). Knowing each commit's outcome, in the order
/// they finish, lets the tracker see such a regression and commit the newer offset again.
fn commit_async(consumer: &KafkaConsumer, tpl: &TopicPartitionList) -> rdkafka::error::KafkaResult<()> {
    use rdkafka::bindings as rd;
    let client = consumer.client().native_ptr();
    // SAFETY: `client` is the live consumer; the consumer queue reference is released after the
    // call, which copies the offsets; the result is enqueued on that queue (polled by the
    // consumer, which owns it) as an offset-commit event.
    let err = unsafe {
        let queue = rd::rd_kafka_queue_get_consumer(client);
        let err = rd::rd_kafka_commit_queue(client, tpl.ptr(), queue, None, std::ptr::null_mut());
        if !queue.is_null() {
            rd::rd_kafka_queue_destroy(queue);
        }
        err
    };
    if err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        Ok(())
    } else {
        Err(rdkafka::error::KafkaError::ConsumerCommit(err.into()))
    }
}

/// `topic-partition@offset, ...` for log lines.
pub(crate) fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => format!("{}-{}@{}", e.topic(), e.partition(), o),
            other => format!("{}-{}@{:?}", e.topic(), e.partition(), other),
        })
        .collect::<Vec<_>>()
        .join(", ")
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
