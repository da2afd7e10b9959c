//! Time-range replay: a listener run over the records of a time window, stopping by itself.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use tokio::sync::watch;

use super::shared::lock;
use crate::extract::Record;
use crate::TopicPartition;

/// What a replay handled: the records per partition, and whether it went through the whole
/// window (false when it was stopped first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Records handled per partition.
    pub records: BTreeMap<TopicPartition, u64>,
    /// Whether every partition was replayed to the end of the window.
    pub complete: bool,
}

impl ReplayReport {
    /// The records handled in all.
    pub fn total(&self) -> u64 {
        self.records.values().sum()
    }
}

/// A replay shared by the consumers of one listener.
pub(crate) struct Replay {
    pub(crate) from_ms: i64,
    pub(crate) to_ms: i64,
    state: Mutex<ReplayState>,
    finished: watch::Sender<Option<ReplayReport>>,
}

struct ReplayState {
    records: BTreeMap<TopicPartition, u64>,
    consumers_left: usize,
}

impl Replay {
    pub(crate) fn new(from_ms: i64, to_ms: i64, consumers: usize) -> Self {
        Replay {
            from_ms,
            to_ms,
            state: Mutex::new(ReplayState { records: BTreeMap::new(), consumers_left: consumers }),
            finished: watch::channel(None).0,
        }
    }

    /// Counts records handled.
    pub(crate) fn handled(&self, records: &[Record<'_>]) {
        let mut state = lock(&self.state);
        for r in records {
            match state.records.iter_mut().find(|(tp, _)| tp.is(r.topic(), r.partition())) {
                Some((_, n)) => *n += 1,
                None => {
                    state.records.insert(TopicPartition::new(r.topic(), r.partition()), 1);
                }
            }
        }
    }

    /// A consumer replayed all its partitions (`complete`), or stopped before.
    pub(crate) fn consumer_finished(&self, complete: bool) {
        let mut state = lock(&self.state);
        state.consumers_left = state.consumers_left.saturating_sub(1);
        if !complete || state.consumers_left == 0 {
            let report = ReplayReport { records: state.records.clone(), complete };
            self.finished.send_if_modified(|slot| {
                let first = slot.is_none();
                if first {
                    *slot = Some(report);
                }
                first
            });
        }
    }

    /// Resolves with the report once the replay is over.
    pub(crate) async fn wait(&self) -> ReplayReport {
        let mut receiver = self.finished.subscribe();
        loop {
            if let Some(report) = receiver.borrow_and_update().clone() {
                return report;
            }
            if receiver.changed().await.is_err() {
                return ReplayReport::default();
            }
        }
    }
}

/// One consumer's part of a replay: where each of its partitions ends.
pub(crate) struct ReplayWindow {
    pub(crate) from_ms: i64,
    pub(crate) to_ms: i64,
    /// The first offset of the window, per partition.
    pub(crate) starts: HashMap<TopicPartition, i64>,
    /// The offset after the last record of the window, per partition.
    pub(crate) ends: HashMap<TopicPartition, i64>,
    /// Partitions replayed to their end.
    pub(crate) done: HashSet<TopicPartition>,
}

impl ReplayWindow {
    /// Whether a record is in the window (offset before the partition's end, timestamp in
    /// [from, to)); records past the end of their partition are never handled.
    pub(crate) fn contains(&self, record: &Record<'_>) -> bool {
        let key = TopicPartition::new(record.topic(), record.partition());
        let before_end = self.ends.get(&key).is_some_and(|end| record.offset() < *end);
        let in_time = record.timestamp().is_none_or(|ts| ts >= self.from_ms && ts < self.to_ms);
        before_end && in_time && !self.done.contains(&key)
    }

    /// The partitions `records` reach the end of.
    pub(crate) fn reached(&self, records: &[Record<'_>]) -> Vec<TopicPartition> {
        let mut reached: Vec<TopicPartition> = Vec::new();
        for r in records {
            let key = TopicPartition::new(r.topic(), r.partition());
            if !self.done.contains(&key)
                && !reached.contains(&key)
                && self.ends.get(&key).is_some_and(|end| r.offset() + 1 >= *end)
            {
                reached.push(key);
            }
        }
        reached
    }

    /// Whether every partition is replayed.
    pub(crate) fn all_done(&self) -> bool {
        self.ends.keys().all(|k| self.done.contains(k))
    }
}
