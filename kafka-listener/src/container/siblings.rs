//! The consumers of one `ConcurrentContainer` starting and stopping together.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::shared::lock;

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
    pub(crate) fn settle(&self, index: usize, settled: bool) -> bool {
        let mut all = lock(&self.settled);
        if let Some(slot) = all.get_mut(index) {
            *slot = settled;
        }
        all.iter().all(|s| *s)
    }

    pub(crate) fn all_arrived(&self) -> bool {
        self.arrived.load(Ordering::Acquire) >= self.total
    }

    /// This consumer is ready to subscribe.
    pub(crate) fn ready(&self) {
        *lock(&self.ready) += 1;
        self.all_ready.notify_all();
    }

    /// Waits (at most `READY_TIMEOUT`) until every consumer is ready, so that they subscribe
    /// together and, where the broker waits for members of a new group (Kafka's
    /// `group.initial.rebalance.delay.ms`, the embedded broker's delay), join its first generation
    /// together: one rebalance instead of one per consumer, and no commit of the first consumer
    /// rejected while the others join.
    pub(crate) fn wait_ready(&self) {
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
pub(crate) struct Arrival<'a> {
    pub(crate) siblings: &'a Siblings,
    index: usize,
    arrived: std::cell::Cell<bool>,
}

impl<'a> Arrival<'a> {
    pub(crate) fn new(siblings: &'a Siblings, index: usize) -> Self {
        Arrival { siblings, index, arrived: std::cell::Cell::new(false) }
    }

    /// This consumer has finished its own commits.
    pub(crate) fn arrive(&self) {
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
