//! What others ask of a running container, and what it tells them back: handler requests (nack,
//! seeks), pauses and stop (`Control`), revocations seen by the rebalance callback
//! (`Revocations`), and counters read by `ConcurrentContainer` and its watchers (`Stats`).
//!
//! Each is a small state type with its own lock or atomics; the poll loop reads them between
//! polls. None of them calls into the loop.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::sync::lock;
use crate::TopicPartition;

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

/// Requests a handler makes through its acknowledgment or consumer handle, applied by the
/// container after the handler returns (Spring's semantics for nack and seek).
#[derive(Debug, Default)]
pub(crate) struct HandlerRequests {
    pub(crate) nack: Option<Duration>,
    pub(crate) seeks: Vec<(TopicPartition, SeekTo)>,
}

impl HandlerRequests {
    /// Nothing asked (the usual case, after every record).
    pub(crate) fn is_empty(&self) -> bool {
        self.nack.is_none() && self.seeks.is_empty()
    }
}

/// Requests to the container and its pause state.
#[derive(Debug)]
pub(crate) struct Control {
    requests: Mutex<HandlerRequests>,
    /// Something is in `requests`: lets the loop skip the lock after each record.
    pending: AtomicBool,
    /// Partitions paused through a `ConsumerHandle`: the container's own waits never resume them.
    by_handler: Mutex<BTreeSet<TopicPartition>>,
    /// A pause of the listener was requested (`ConcurrentContainer::pause`); shared by its
    /// consumers and kept across stop and start.
    pause_requested: Arc<AtomicBool>,
    /// The poll loop has paused its consumer's partitions.
    paused: AtomicBool,
    stop_requested: AtomicBool,
}

impl Control {
    pub(crate) fn new(pause_requested: Arc<AtomicBool>) -> Self {
        Control {
            requests: Mutex::new(HandlerRequests::default()),
            pending: AtomicBool::new(false),
            by_handler: Mutex::new(BTreeSet::new()),
            pause_requested,
            paused: AtomicBool::new(false),
            stop_requested: AtomicBool::new(false),
        }
    }

    /// Asks for a seek: applied after the handler returns, or before the next poll.
    pub(crate) fn seek(&self, tp: TopicPartition, to: SeekTo) {
        lock(&self.requests).seeks.push((tp, to));
        self.pending.store(true, Ordering::Release);
    }

    /// Asks for the current record(s) and the rest of the poll again after `sleep`.
    pub(crate) fn nack(&self, sleep: Duration) {
        lock(&self.requests).nack = Some(sleep);
        self.pending.store(true, Ordering::Release);
    }

    /// Takes every request made so far.
    #[inline]
    pub(crate) fn take_requests(&self) -> HandlerRequests {
        if !self.pending.load(Ordering::Acquire) {
            return HandlerRequests::default();
        }
        let mut requests = lock(&self.requests);
        self.pending.store(false, Ordering::Release);
        std::mem::take(&mut *requests)
    }

    /// Takes the seeks asked for these partitions (an assignment about to be made); the others
    /// stay.
    pub(crate) fn take_seeks_of(&self, wanted: impl Fn(&TopicPartition) -> bool) -> Vec<(TopicPartition, SeekTo)> {
        let mut requests = lock(&self.requests);
        let (mine, others) = std::mem::take(&mut requests.seeks).into_iter().partition(|(tp, _)| wanted(tp));
        requests.seeks = others;
        self.pending.store(!requests.is_empty(), Ordering::Release);
        mine
    }

    /// A `ConsumerHandle` paused these partitions.
    pub(crate) fn paused_by_handler(&self, partitions: Vec<TopicPartition>) {
        lock(&self.by_handler).extend(partitions);
    }

    /// A `ConsumerHandle` resumed these partitions.
    pub(crate) fn resumed_by_handler(&self, partitions: &[TopicPartition]) {
        let mut paused = lock(&self.by_handler);
        partitions.iter().for_each(|tp| {
            paused.remove(tp);
        });
    }

    /// The partitions paused through a `ConsumerHandle`, sorted.
    pub(crate) fn paused(&self) -> Vec<TopicPartition> {
        lock(&self.by_handler).iter().cloned().collect()
    }

    /// The partitions paused through a `ConsumerHandle`, to check many against.
    pub(crate) fn handler_pauses(&self) -> BTreeSet<TopicPartition> {
        lock(&self.by_handler).clone()
    }

    pub(crate) fn pause_requested(&self) -> bool {
        self.pause_requested.load(Ordering::Acquire)
    }

    /// Whether the loop has paused the whole assignment.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    pub(crate) fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
    }

    /// Asks the poll loop to stop (finishing the records in hand within the shutdown timeout).
    pub(crate) fn request_stop(&self) {
        self.stop_requested.store(true, Ordering::Release);
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.stop_requested.load(Ordering::Acquire)
    }
}

/// Revocations as the rebalance callback saw them, for the poll loop to act on.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    /// Bumped at every revocation: the poll thread then re-checks the records it holds.
    generation: AtomicU64,
    /// Partitions revoked since the poll thread last looked: the records it holds of them are
    /// dropped, even if the partition was assigned again (it is then fetched again from the
    /// committed offset).
    revoked: Mutex<HashSet<TopicPartition>>,
    /// Offsets handed over by another consumer were put into the tracker: the loop commits them.
    handed_over: AtomicBool,
}

impl Revocations {
    /// The rebalance callback gave up these partitions.
    pub(crate) fn revoked(&self, partitions: impl IntoIterator<Item = TopicPartition>) {
        lock(&self.revoked).extend(partitions);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// How many revocations there were (a rebalance count).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The partitions revoked since the last call.
    pub(crate) fn take(&self) -> HashSet<TopicPartition> {
        std::mem::take(&mut *lock(&self.revoked))
    }

    /// Offsets handed over await their commit.
    pub(crate) fn set_handed_over(&self) {
        self.handed_over.store(true, Ordering::Release);
    }

    /// Whether offsets handed over await their commit (once).
    pub(crate) fn take_handed_over(&self) -> bool {
        self.handed_over.swap(false, Ordering::AcqRel)
    }
}

/// The process's reference instant for poll times.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// What the container reports about itself: records handled, when it last polled, whether it
/// has ended.
#[derive(Debug)]
pub(crate) struct Stats {
    handled: AtomicU64,
    /// When the poll loop last polled, in ms since `epoch()`.
    last_poll_ms: AtomicU64,
    /// A non-responsive event was sent and the loop has not polled since.
    non_responsive: AtomicBool,
    /// The poll thread has ended.
    finished: AtomicBool,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            handled: AtomicU64::new(0),
            last_poll_ms: AtomicU64::new(epoch().elapsed().as_millis() as u64),
            non_responsive: AtomicBool::new(false),
            finished: AtomicBool::new(false),
        }
    }
}

impl Stats {
    /// `n` records were handled.
    pub(crate) fn handled(&self, n: u64) {
        self.handled.fetch_add(n, Ordering::Relaxed);
    }

    /// Records handled since start.
    pub(crate) fn handled_total(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
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

    /// Marks the consumer non-responsive; true if it was not already (tell once per stall).
    pub(crate) fn mark_non_responsive(&self) -> bool {
        !self.non_responsive.swap(true, Ordering::Relaxed)
    }

    pub(crate) fn set_finished(&self) {
        self.finished.store(true, Ordering::Release);
    }

    /// Whether the poll thread has ended.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_taken_once_and_seeks_of_an_assignment_apart() {
        let control = Control::new(Arc::default());
        assert!(control.take_requests().seeks.is_empty());
        control.seek(TopicPartition::new("t", 0), SeekTo::Offset(3));
        control.seek(TopicPartition::new("t", 1), SeekTo::End);
        let mine = control.take_seeks_of(|tp| tp.partition == 1);
        assert_eq!(mine, [(TopicPartition::new("t", 1), SeekTo::End)]);
        control.nack(Duration::from_millis(5));
        let taken = control.take_requests();
        assert_eq!(taken.nack, Some(Duration::from_millis(5)));
        assert_eq!(taken.seeks, [(TopicPartition::new("t", 0), SeekTo::Offset(3))]);
        assert!(control.take_requests().nack.is_none());
    }

    #[test]
    fn revocations_count_and_are_taken() {
        let revocations = Revocations::default();
        revocations.revoked([TopicPartition::new("t", 0)]);
        revocations.revoked([TopicPartition::new("t", 0), TopicPartition::new("t", 1)]);
        assert_eq!(revocations.generation(), 2);
        assert_eq!(revocations.take().len(), 2);
        assert!(revocations.take().is_empty());
    }
}
