//! Per-partition offset tracking: completions in any order, commits of the contiguous prefix only.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use rdkafka::{Offset, TopicPartitionList};

/// The offsets of one partition between delivery and commit.
#[derive(Debug, Default)]
struct PartitionOffsets {
    /// Records delivered and awaiting completion (manual acks), in offset order; `true` once done.
    outstanding: VecDeque<(i64, bool)>,
    /// The next offset to commit: last record of the done prefix + 1.
    committable: Option<i64>,
    /// The offset last sent in a commit.
    committed: Option<i64>,
    /// The last commit sent is not known to have landed (asynchronous, or failed).
    unconfirmed: bool,
}

impl PartitionOffsets {
    fn advance(&mut self, next: i64) {
        if self.committable.is_none_or(|c| next > c) {
            self.committable = Some(next);
        }
    }

    /// Pops the done prefix of `outstanding` into `committable`.
    fn settle(&mut self) {
        while let Some(&(offset, true)) = self.outstanding.front() {
            self.outstanding.pop_front();
            self.advance(offset + 1);
        }
    }
}

/// Which offsets a commit carries.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Selection<'a> {
    /// Those that advanced since the last commit.
    Advanced,
    /// Every committable offset not known to have landed, even one sent before: an asynchronous
    /// commit may have been rejected (a broker rejects commits while a rebalance is in progress).
    All,
    /// Every committable offset of these partitions (about to be revoked), as with `All`.
    Partitions(&'a TopicPartitionList),
    /// The offsets sent before and not known to have landed, sent again as they were.
    Unconfirmed,
}

/// The offsets of every partition a container owns.
///
/// Records are *tracked* when delivered to a listener that acknowledges them itself and *completed*
/// when acknowledged (or handled, or recovered by the error handler). Only the contiguous prefix of
/// completed records becomes committable, so a commit never passes an unprocessed record, whatever
/// the order of completions. This is also what key-ordered parallelism will need.
#[derive(Debug, Default)]
pub(crate) struct OffsetTracker {
    topics: HashMap<Arc<str>, HashMap<i32, PartitionOffsets>>,
}

impl OffsetTracker {
    /// The shared name of a topic, to hold in acknowledgments without allocating per record.
    pub(crate) fn intern(&mut self, topic: &str) -> Arc<str> {
        match self.topics.get_key_value(topic) {
            Some((name, _)) => name.clone(),
            None => {
                let name: Arc<str> = Arc::from(topic);
                self.topics.insert(name.clone(), HashMap::new());
                name
            }
        }
    }

    fn partition_mut(&mut self, topic: &str, partition: i32) -> &mut PartitionOffsets {
        let name = self.intern(topic);
        self.topics.entry(name).or_default().entry(partition).or_default()
    }

    /// Makes a partition known (on assignment); completions for unknown partitions are ignored.
    pub(crate) fn assign(&mut self, topic: &str, partition: i32) {
        self.partition_mut(topic, partition);
    }

    /// Forgets a partition (revoked); late acknowledgments for it are then ignored.
    pub(crate) fn remove(&mut self, topic: &str, partition: i32) {
        if let Some(partitions) = self.topics.get_mut(topic) {
            partitions.remove(&partition);
        }
    }

    /// Whether the partition is owned.
    pub(crate) fn owns(&self, topic: &str, partition: i32) -> bool {
        self.topics.get(topic).is_some_and(|p| p.contains_key(&partition))
    }

    /// A record was delivered to a listener that will acknowledge it.
    pub(crate) fn track(&mut self, topic: &str, partition: i32, offset: i64) {
        let p = self.partition_mut(topic, partition);
        if p.committable.is_some_and(|c| offset < c) {
            return;
        }
        match p.outstanding.back() {
            Some(&(last, _)) if last >= offset => {}
            _ => p.outstanding.push_back((offset, false)),
        }
    }

    /// A record is done. Returns whether the committable offset advanced.
    ///
    /// `owned_only`: ignore partitions the container does not own (acknowledgments from other
    /// threads arriving after a revocation); the poll thread passes false.
    pub(crate) fn complete(&mut self, topic: &str, partition: i32, offset: i64, owned_only: bool) -> bool {
        let p = if owned_only {
            match self.topics.get_mut(topic).and_then(|p| p.get_mut(&partition)) {
                Some(p) => p,
                None => return false,
            }
        } else {
            self.partition_mut(topic, partition)
        };
        let before = p.committable;
        if p.outstanding.is_empty() {
            p.advance(offset + 1);
        } else if let Ok(i) = p.outstanding.binary_search_by_key(&offset, |&(o, _)| o) {
            p.outstanding[i].1 = true;
            p.settle();
        } else if p.outstanding.back().is_some_and(|&(last, _)| offset > last) {
            // Completed without being tracked, after every outstanding record: it is handled, but
            // may only be committed once the records before it are.
            p.outstanding.push_back((offset, true));
            p.settle();
        }
        p.committable != before
    }

    /// A seek back to `offset`: records from there on will be delivered again.
    pub(crate) fn rewind(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = self.topics.get_mut(topic).and_then(|p| p.get_mut(&partition)) {
            p.outstanding.retain(|&(o, _)| o < offset);
            p.settle();
        }
    }

    /// The offsets to commit, marked as sent (and unconfirmed); `None` when there is nothing to send.
    pub(crate) fn take_commits(&mut self, selection: Selection<'_>) -> Option<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for (topic, partitions) in &mut self.topics {
            for (&partition, p) in partitions.iter_mut() {
                let offset = match selection {
                    Selection::Advanced => p.committable.filter(|&next| p.committed.is_none_or(|c| c < next)),
                    Selection::All => p.committable,
                    Selection::Partitions(only) => {
                        p.committable.filter(|_| only.find_partition(topic, partition).is_some())
                    }
                    Selection::Unconfirmed => p.committed.filter(|_| p.unconfirmed),
                };
                if let Some(offset) = offset {
                    if tpl.add_partition_offset(topic, partition, Offset::Offset(offset)).is_ok() {
                        p.committed = Some(offset);
                        p.unconfirmed = true;
                    }
                }
            }
        }
        (tpl.count() > 0).then_some(tpl)
    }

    /// A synchronous commit of these offsets succeeded.
    pub(crate) fn confirmed(&mut self, tpl: &TopicPartitionList) {
        for element in tpl.elements() {
            if let (Some(p), Offset::Offset(offset)) =
                (self.topics.get_mut(element.topic()).and_then(|p| p.get_mut(&element.partition())), element.offset())
            {
                if p.committed == Some(offset) {
                    p.unconfirmed = false;
                }
            }
        }
    }

    /// `next` was committed (in a transaction) for this partition.
    pub(crate) fn committed_at(&mut self, topic: &str, partition: i32, next: i64) {
        if let Some(p) = self.topics.get_mut(topic).and_then(|p| p.get_mut(&partition)) {
            p.committed = Some(next);
            p.unconfirmed = false;
        }
    }

    /// How many records of the partition were delivered and wait for an acknowledgment, counting
    /// those acknowledged behind an unacknowledged one (they cannot be committed yet either).
    pub(crate) fn outstanding(&self, topic: &str, partition: i32) -> usize {
        self.topics.get(topic).and_then(|p| p.get(&partition)).map_or(0, |p| p.outstanding.len())
    }

    /// Whether a commit sent is not known to have landed.
    pub(crate) fn has_unconfirmed(&self) -> bool {
        self.topics.values().flat_map(HashMap::values).any(|p| p.unconfirmed)
    }

    /// The next offset to commit for a partition, if any record of it is done.
    #[cfg(test)]
    pub(crate) fn committable(&self, topic: &str, partition: i32) -> Option<i64> {
        self.topics.get(topic)?.get(&partition)?.committable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_completions_commit_only_the_contiguous_prefix() {
        let mut t = OffsetTracker::default();
        t.assign("t", 0);
        for o in 10..15 {
            t.track("t", 0, o);
        }
        assert!(!t.complete("t", 0, 12, true));
        assert!(!t.complete("t", 0, 11, true));
        assert_eq!(t.committable("t", 0), None);
        assert!(t.complete("t", 0, 10, true));
        assert_eq!(t.committable("t", 0), Some(13));
        assert!(!t.complete("t", 0, 14, true));
        assert_eq!(t.committable("t", 0), Some(13));
        assert!(t.complete("t", 0, 13, true));
        assert_eq!(t.committable("t", 0), Some(15));
    }

    #[test]
    fn commits_are_taken_once_and_resent_until_confirmed() {
        let mut t = OffsetTracker::default();
        t.complete("t", 1, 4, false);
        let tpl = t.take_commits(Selection::Advanced).unwrap_or_default();
        assert_eq!(tpl.find_partition("t", 1).map(|e| e.offset()), Some(Offset::Offset(5)));
        assert!(t.take_commits(Selection::Advanced).is_none());
        t.complete("t", 1, 5, false);
        // Confirming re-sends what was sent, not what became committable since.
        let again = t.take_commits(Selection::Unconfirmed).unwrap_or_default();
        assert_eq!(again.find_partition("t", 1).map(|e| e.offset()), Some(Offset::Offset(5)));
        t.confirmed(&again);
        assert!(!t.has_unconfirmed());
        assert!(t.take_commits(Selection::Unconfirmed).is_none());
        assert!(t.take_commits(Selection::Advanced).is_some());
    }

    #[test]
    fn acknowledgments_for_revoked_partitions_are_ignored() {
        let mut t = OffsetTracker::default();
        t.assign("t", 0);
        t.track("t", 0, 0);
        t.remove("t", 0);
        assert!(!t.complete("t", 0, 0, true));
        assert!(!t.owns("t", 0));
    }

    #[test]
    fn rewind_drops_outstanding_records_from_the_seek_offset() {
        let mut t = OffsetTracker::default();
        for o in 0..4 {
            t.track("t", 0, o);
        }
        t.complete("t", 0, 0, true);
        t.complete("t", 0, 2, true);
        t.rewind("t", 0, 1);
        assert_eq!(t.committable("t", 0), Some(1));
        t.track("t", 0, 1);
        t.complete("t", 0, 1, true);
        assert_eq!(t.committable("t", 0), Some(2));
    }
}
