use std::collections::HashSet;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::context::ContainerContext;
use super::events::{ContainerEvent, EventListener};
use crate::ack::{OffsetTracker, Selection};
use crate::config::AckMode;

pub(crate) type KafkaConsumer = BaseConsumer<ContainerContext>;

/// Locks, recovering from poisoning: the guarded data stays consistent because nothing panics
/// while holding these locks (handler panics are caught outside them).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Requests a handler makes through its acknowledgment or consumer handle, applied by the
/// container after the handler returns (Spring's semantics for nack and seek).
#[derive(Debug, Default)]
pub(crate) struct HandlerRequests {
    pub(crate) nack: Option<Duration>,
    pub(crate) seeks: Vec<(String, i32, SeekTo)>,
}

/// Where a seek moves a partition's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTo {
    /// This offset: the next record delivered is the one at it.
    Offset(i64),
    /// The partition's first offset still kept (low watermark).
    Beginning,
    /// The end: only records produced from now on.
    End,
    /// The first record whose timestamp is at or after this time (ms since the epoch); the end
    /// when there is none.
    Timestamp(i64),
    /// This many records after (positive) or before (negative) the current position.
    Relative(i64),
}

/// State one `ListenerContainer` shares between its poll thread, its rdkafka context, and the
/// acknowledgments and handles it gives out.
pub(crate) struct ContainerShared {
    pub(crate) listener_id: Arc<str>,
    pub(crate) ack_mode: AckMode,
    pub(crate) sync_commits: bool,
    offsets: Mutex<OffsetTracker>,
    /// Signalled on acknowledgments while someone waits for them (`ack_waiters` > 0).
    acked: Condvar,
    ack_waiters: AtomicUsize,
    /// Processed offsets of partitions a consumer of the listener lost before it could commit
    /// them, for whichever consumer of the listener gets the partition next.
    pub(crate) handoff: Arc<HandOff>,
    /// Offsets handed over were put into the tracker: the poll loop commits them.
    pub(crate) handed_over: AtomicBool,
    consumer: OnceLock<Weak<KafkaConsumer>>,
    poll_thread: OnceLock<ThreadId>,
    pub(crate) requests: Mutex<HandlerRequests>,
    /// Partitions paused through a `ConsumerHandle`: waits for retries must not resume them.
    pub(crate) paused_by_handler: Mutex<HashSet<(String, i32)>>,
    /// A pause of the listener was requested (`ConcurrentContainer::pause`); shared by its
    /// consumers and kept across stop and start.
    pub(crate) pause_requested: Arc<AtomicBool>,
    /// The poll loop has paused its consumer's partitions.
    pub(crate) paused: AtomicBool,
    pub(crate) stop_requested: AtomicBool,
    /// Bumped at every revocation: the poll thread then re-checks the records it holds.
    pub(crate) generation: AtomicU64,
    /// Partitions revoked since the poll thread last looked: the records it holds of them are
    /// dropped, even if the partition was assigned again (it is then fetched again from the
    /// committed offset).
    pub(crate) revoked: Mutex<Vec<(String, i32)>>,
    /// A deferred commit (AckMode::Record) is scheduled.
    pub(crate) flush_scheduled: AtomicBool,
    pub(crate) handled: AtomicU64,
    /// The consumer's index in its listener's container.
    pub(crate) index: usize,
    events: Option<EventListener>,
    /// When the poll loop last polled, in ms since `EPOCH`.
    last_poll_ms: AtomicU64,
    /// A non-responsive event was sent and the loop has not polled since.
    pub(crate) non_responsive: AtomicBool,
    /// The poll thread has ended.
    pub(crate) finished: AtomicBool,
    /// The consumer is being closed: no one else may take it from now on.
    closing: AtomicBool,
}

/// The process's reference instant for poll times.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
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
    offsets: Mutex<std::collections::HashMap<(String, i32), i64>>,
}

impl HandOff {
    /// Keeps `next` (the offset after the last processed record) for the partition.
    pub(crate) fn put(&self, topic: &str, partition: i32, next: i64) {
        let mut offsets = lock(&self.offsets);
        let slot = offsets.entry((topic.to_string(), partition)).or_insert(next);
        *slot = (*slot).max(next);
    }

    /// Takes what was kept for the partition.
    pub(crate) fn take(&self, topic: &str, partition: i32) -> Option<i64> {
        lock(&self.offsets).remove(&(topic.to_string(), partition))
    }

    /// Whether anything is kept.
    pub(crate) fn is_empty(&self) -> bool {
        lock(&self.offsets).is_empty()
    }

    /// Everything kept, sorted: `(topic, partition, next)`.
    pub(crate) fn pending(&self) -> Vec<(String, i32, i64)> {
        let mut all: Vec<_> = lock(&self.offsets).iter().map(|((t, p), n)| (t.clone(), *p, *n)).collect();
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
            acked: Condvar::new(),
            ack_waiters: AtomicUsize::new(0),
            handoff: state.handoff.clone(),
            handed_over: AtomicBool::new(false),
            index,
            events,
            last_poll_ms: AtomicU64::new(epoch().elapsed().as_millis() as u64),
            non_responsive: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            listener_id,
            ack_mode,
            sync_commits,
            offsets: Mutex::new(OffsetTracker::default()),
            consumer: OnceLock::new(),
            poll_thread: OnceLock::new(),
            requests: Mutex::new(HandlerRequests::default()),
            paused_by_handler: Mutex::new(HashSet::new()),
            pause_requested: state.pause_requested.clone(),
            paused: AtomicBool::new(false),
            stop_requested: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            revoked: Mutex::new(Vec::new()),
            flush_scheduled: AtomicBool::new(false),
            handled: AtomicU64::new(0),
        }
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

    /// The poll loop is about to poll.
    pub(crate) fn polled(&self) {
        self.last_poll_ms.store(epoch().elapsed().as_millis() as u64, Ordering::Relaxed);
        self.non_responsive.store(false, Ordering::Relaxed);
    }

    /// Since the poll loop last polled.
    pub(crate) fn since_last_poll(&self) -> Duration {
        let now = epoch().elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_poll_ms.load(Ordering::Relaxed)))
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
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&consumer) > 1 && std::time::Instant::now() < deadline {
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
        lock(&self.requests).nack = Some(sleep);
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

    #[test]
    fn a_handoff_keeps_the_furthest_offset_and_is_taken_once() {
        let handoff = HandOff::default();
        handoff.put("t", 0, 10);
        handoff.put("t", 0, 7);
        handoff.put("t", 1, 3);
        assert_eq!(handoff.pending(), [("t".to_string(), 0, 10), ("t".to_string(), 1, 3)]);
        assert_eq!(handoff.take("t", 0), Some(10));
        assert_eq!(handoff.take("t", 0), None);
        assert!(!handoff.is_empty());
    }
}
