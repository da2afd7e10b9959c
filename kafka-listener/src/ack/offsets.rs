//! Per-partition offset tracking: completions in any order, commits of the contiguous prefix only.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::Arc;

use rdkafka::{Offset, TopicPartitionList};

use super::offset_map::CompletedAbove;

/// Which delivery of a record an acknowledgment belongs to: unique per tracker, never reused.
///
/// A partition's deliveries restart when it is revoked and assigned again, sought, nacked or
/// retried; an acknowledgment of an earlier delivery then names an id the tracker no longer holds
/// and is ignored, so it can never complete the record's new delivery (or a record it never saw).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DeliveryId(u64);

/// One delivered record waiting for its acknowledgment.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    offset: i64,
    id: DeliveryId,
    done: bool,
    /// Handed to the listener (else queued to start later, by a concurrent processing order:
    /// nobody will acknowledge it while it waits, so a revocation does not wait for it).
    started: bool,
}

/// The offsets of one partition between delivery and commit.
#[derive(Debug, Default)]
struct PartitionOffsets {
    /// Records delivered and awaiting completion (manual acks), in offset order.
    outstanding: VecDeque<Delivery>,
    /// The next offset to commit: last record of the done prefix + 1.
    committable: Option<i64>,
    /// The offset last sent in a commit.
    committed: Option<i64>,
    /// The last commit sent is not known to have landed (asynchronous, or failed).
    unconfirmed: bool,
    /// The offset last known to have landed in a commit.
    landed: Option<i64>,
    /// The group's committed offset as librdkafka's statistics last reported it (for the lag
    /// gauge before this consumer committed).
    reported: Option<i64>,
    /// The first offset delivered or done since the partition was assigned (for counts).
    first: Option<i64>,
    /// The offset map last sent in a commit's metadata (offset maps only).
    map_sent: Option<String>,
    /// A map too large for the metadata was reported.
    map_unfit_reported: bool,
    /// Offsets completed before (read from the committed offset's metadata at assignment):
    /// their records are skipped when delivered again.
    restored: Option<CompletedAbove>,
}

impl PartitionOffsets {
    fn saw(&mut self, offset: i64) {
        if self.first.is_none() {
            self.first = Some(offset);
        }
    }

    fn advance(&mut self, next: i64) {
        if self.committable.is_none_or(|c| next > c) {
            self.committable = Some(next);
        }
    }

    /// Pops the done prefix of `outstanding` into `committable`.
    fn settle(&mut self) {
        while let Some(&Delivery { offset, done: true, .. }) = self.outstanding.front() {
            self.outstanding.pop_front();
            self.advance(offset + 1);
        }
    }

    /// The committable offset, unless it is known to have landed in a commit.
    fn unlanded(&self) -> Option<i64> {
        self.committable.filter(|&next| self.landed.is_none_or(|l| l < next))
    }

    /// [`unlanded`](Self::unlanded), or else the offset last sent with an offset map if that
    /// commit is not known to have landed (the map changed while the offset could not move).
    fn unlanded_or_map(&self) -> Option<i64> {
        self.unlanded().or(self.committed.filter(|_| self.unconfirmed && self.map_sent.is_some()))
    }

    /// A record is done (see `OffsetTracker::complete`).
    #[inline]
    fn complete(&mut self, offset: i64) {
        self.saw(offset);
        if self.outstanding.is_empty() {
            self.advance(offset + 1);
        } else if let Some(i) = self.find(offset) {
            self.outstanding[i].done = true;
            self.settle();
        } else if self.outstanding.back().is_some_and(|d| offset > d.offset) {
            // Completed without being tracked, after every outstanding record (a discarded
            // record): it is processed, but may only be committed once the records before it are.
            self.outstanding.push_back(Delivery { offset, id: DeliveryId(0), done: true, started: true });
            self.settle();
        }
    }

    fn find(&self, offset: i64) -> Option<usize> {
        self.outstanding.binary_search_by_key(&offset, |d| d.offset).ok()
    }

    /// Forgets the deliveries from `offset` on (they start over); the done prefix before them
    /// becomes committable.
    /// The completed offsets above the committed one (see `OffsetTracker::keep_offset_maps`): the
    /// done records waiting behind an unfinished one, and what a restored map says of records
    /// not delivered again yet. `None` when nothing was delivered.
    fn completed_above(&self) -> Option<CompletedAbove> {
        let base = self.committable.or(self.first)?;
        let done = self.outstanding.iter().filter(|d| d.done).map(|d| d.offset..d.offset + 1);
        let last_seen = self.outstanding.back().map_or(base, |d| d.offset + 1);
        let restored = self.restored.iter().flat_map(|r| r.ranges().iter().map(move |r| r.start.max(last_seen)..r.end));
        let mut ranges: Vec<std::ops::Range<i64>> = done.chain(restored).filter(|r| !r.is_empty()).collect();
        ranges.sort_by_key(|r| r.start);
        Some(CompletedAbove::from_ranges(base, ranges))
    }

    fn truncate_from(&mut self, offset: i64) {
        let keep = self.outstanding.partition_point(|d| d.offset < offset);
        self.outstanding.truncate(keep);
        self.settle();
    }
}

/// Whether a partition's offset map changed since it was last sent.
enum MapChange {
    Same,
    /// The new metadata (`None`: no map, nothing completed above the committed offset).
    To(Option<String>),
}

/// The partition's offset map, if it differs from the one sent last. A map too large for the
/// metadata is sent as none (logged once per partition): a restart then redoes what is above the
/// committed offset, as without maps.
fn offset_map(topic: &str, partition: i32, p: &mut PartitionOffsets) -> MapChange {
    let Some(completed) = p.completed_above() else { return MapChange::Same };
    let metadata = completed.encode();
    if metadata.is_none() && !completed.is_empty() && !p.map_unfit_reported {
        p.map_unfit_reported = true;
        tracing::warn!(topic, partition, committed = completed.committed(), completed_above = completed.count(),
            "the offsets completed above the committed one do not fit in a commit's metadata (4,096 bytes); committed without them, so a restart handles them again");
    }
    if metadata == p.map_sent {
        MapChange::Same
    } else {
        MapChange::To(metadata)
    }
}

/// A partition's processed offset not known to have landed in a commit, and how many records it
/// covers (see `OffsetTracker::uncommitted`).
fn uncommitted(p: &PartitionOffsets) -> Option<(i64, i64)> {
    let next = p.unlanded()?;
    let from = p.landed.or(p.first).unwrap_or(next);
    Some((next, (next - from).max(0)))
}

/// Which offsets a commit carries.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Selection<'a> {
    /// Those that advanced since the last commit.
    Advanced,
    /// Every committable offset not known to have landed, even one sent before: an asynchronous
    /// commit may have been rejected (a broker rejects commits while a rebalance is in progress).
    All,
    /// Every committable offset of these partitions (about to be revoked) not known to have
    /// landed, as with `All`.
    Partitions(&'a TopicPartitionList),
    /// The offsets sent before and not known to have landed, sent again as they were.
    Unconfirmed,
}

/// A topic's name as the tracker looks a partition up: compared in place, and read as a `&str`
/// only to make a new partition known. A consumed record's name is librdkafka's C string;
/// comparing it in place spares the conversion (length and UTF-8 check) on every record.
pub(crate) trait TopicName {
    /// Whether this is the topic named `topic`.
    fn is(&self, topic: &str) -> bool;
    /// The name.
    fn name(&self) -> &str;
}

impl TopicName for str {
    fn is(&self, topic: &str) -> bool {
        self == topic
    }

    fn name(&self) -> &str {
        self
    }
}

/// The offsets of every partition a container owns.
///
/// Records are *tracked* when delivered to a listener that acknowledges them itself and *completed*
/// when acknowledged (or handled, or recovered by the error handler). Only the contiguous prefix of
/// completed records becomes committable, so a commit never passes an unprocessed record, whatever
/// the order of completions. This is also what key-ordered parallelism will need.
///
/// Partitions are kept in a vector with the index of the one looked up last: a poll's records
/// come in runs per partition, so a record's partition is found by comparing one entry, without
/// hashing its topic's name (a miss scans the owned partitions, comparing partition numbers
/// first).
#[derive(Debug, Default)]
pub(crate) struct OffsetTracker {
    partitions: Vec<Entry>,
    /// The index of the partition looked up last.
    last: Cell<usize>,
    /// The last delivery id handed out.
    deliveries: u64,
    /// Commits carry the offsets completed above the committed one in their metadata (a
    /// concurrent processing order).
    offset_maps: bool,
}

/// What becomes of a record queued to start later (`OffsetTracker::queue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queued {
    /// Hand it to the listener; its acknowledgment names this delivery (`None`: it is below
    /// the committable offset, its completion changes nothing).
    Run(Option<DeliveryId>),
    /// It was completed before (the offset map of the committed offset says so): skip it.
    Done,
}

/// One owned partition: its topic's shared name, its number and its offsets.
#[derive(Debug)]
struct Entry {
    topic: Arc<str>,
    partition: i32,
    offsets: PartitionOffsets,
}

impl OffsetTracker {
    /// Where the partition is kept, if owned.
    #[inline]
    fn slot(&self, topic: &(impl TopicName + ?Sized), partition: i32) -> Option<usize> {
        let last = self.last.get();
        if let Some(e) = self.partitions.get(last) {
            if e.partition == partition && topic.is(&e.topic) {
                return Some(last);
            }
        }
        let found = self.partitions.iter().position(|e| e.partition == partition && topic.is(&e.topic))?;
        self.last.set(found);
        Some(found)
    }

    fn get(&self, topic: &str, partition: i32) -> Option<&PartitionOffsets> {
        self.slot(topic, partition).map(|i| &self.partitions[i].offsets)
    }

    fn get_mut(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionOffsets> {
        self.slot(topic, partition).map(|i| &mut self.partitions[i].offsets)
    }

    /// Every owned partition: topic, number, offsets.
    fn each(&self) -> impl Iterator<Item = (&Arc<str>, i32, &PartitionOffsets)> {
        self.partitions.iter().map(|e| (&e.topic, e.partition, &e.offsets))
    }

    /// The shared name of a topic, to hold in acknowledgments without allocating per record.
    pub(crate) fn intern(&mut self, topic: &str) -> Arc<str> {
        let last = self.last.get();
        match self.partitions.get(last).filter(|e| *e.topic == *topic) {
            Some(e) => e.topic.clone(),
            None => match self.partitions.iter().find(|e| *e.topic == *topic) {
                Some(e) => e.topic.clone(),
                None => Arc::from(topic),
            },
        }
    }

    /// The partition's offsets, made known if it was not.
    fn partition_mut(&mut self, topic: &(impl TopicName + ?Sized), partition: i32) -> &mut PartitionOffsets {
        let i = match self.slot(topic, partition) {
            Some(i) => i,
            None => {
                let topic = self.intern(topic.name());
                self.partitions.push(Entry { topic, partition, offsets: PartitionOffsets::default() });
                self.partitions.len() - 1
            }
        };
        &mut self.partitions[i].offsets
    }

    /// Makes a partition known (on assignment); completions for unknown partitions are ignored.
    pub(crate) fn assign(&mut self, topic: &str, partition: i32) {
        self.partition_mut(topic, partition);
    }

    /// Forgets a partition (revoked); late acknowledgments for it are then ignored.
    pub(crate) fn remove(&mut self, topic: &str, partition: i32) {
        if let Some(i) = self.slot(topic, partition) {
            self.partitions.swap_remove(i);
            self.last.set(0);
        }
    }

    /// Whether the partition is owned.
    pub(crate) fn owns(&self, topic: &str, partition: i32) -> bool {
        self.slot(topic, partition).is_some()
    }

    /// A record was delivered to a listener that will acknowledge it: returns the id its
    /// acknowledgment must carry, or `None` when the record is below the committable offset
    /// (already processed, delivered again after a seek back: its acknowledgment changes nothing).
    ///
    /// A delivery at or before records still outstanding starts the partition's deliveries over
    /// from there (a seek, nack or retry delivers it again): those records are forgotten, and the
    /// acknowledgments of their earlier deliveries no longer count.
    pub(crate) fn track(&mut self, topic: &str, partition: i32, offset: i64) -> Option<DeliveryId> {
        self.deliver(topic, partition, offset, true)
    }

    /// A record was queued to start later (a concurrent processing order): tracked as by
    /// [`track`](Self::track), but not counted as waiting for an acknowledgment until
    /// [`start`](Self::start)ed.
    pub(crate) fn queue(&mut self, topic: &(impl TopicName + ?Sized), partition: i32, offset: i64) -> Queued {
        let p = self.partition_mut(topic, partition);
        if let Some(restored) = &p.restored {
            if restored.contains(offset) && p.committable.is_none_or(|c| offset >= c) {
                p.saw(offset);
                if p.outstanding.back().is_some_and(|d| d.offset >= offset) {
                    p.truncate_from(offset);
                }
                p.outstanding.push_back(Delivery { offset, id: DeliveryId(0), done: true, started: true });
                p.settle();
                return Queued::Done;
            }
            if restored.ranges().last().is_none_or(|r| offset >= r.end) {
                // Past everything it names: the map is not needed any more.
                p.restored = None;
            }
        }
        Queued::Run(self.deliver(topic, partition, offset, false))
    }

    /// Commits carry offset maps from now on: the offsets completed above each committed offset,
    /// in its metadata (see `offset_map.rs`), whenever they change.
    pub(crate) fn keep_offset_maps(&mut self) {
        self.offset_maps = true;
    }

    /// The offsets completed above the committed one, read from the metadata of the committed
    /// offset when the partition was assigned: records delivered again at those offsets are
    /// skipped (`queue` says `Done`).
    pub(crate) fn restore(&mut self, topic: &str, partition: i32, map: CompletedAbove) {
        if let Some(p) = self.get_mut(topic, partition) {
            p.restored = (!map.is_empty()).then_some(map);
        }
    }

    /// A queued delivery was handed to the listener.
    pub(crate) fn start(&mut self, topic: &str, partition: i32, offset: i64, id: DeliveryId) {
        if let Some(p) = self.get_mut(topic, partition) {
            if let Some(i) = p.find(offset).filter(|&i| p.outstanding[i].id == id) {
                p.outstanding[i].started = true;
            }
        }
    }

    /// A started delivery that failed is delivered again (a concurrent processing order retries one
    /// record while the others go on): it gets a new id, so that an acknowledgment of the failed
    /// delivery no longer counts. `None` when it is not outstanding any more.
    pub(crate) fn redeliver(&mut self, topic: &str, partition: i32, offset: i64, id: DeliveryId) -> Option<DeliveryId> {
        self.deliveries += 1;
        let new = DeliveryId(self.deliveries);
        let p = self.get_mut(topic, partition)?;
        let i = p.find(offset).filter(|&i| p.outstanding[i].id == id && !p.outstanding[i].done)?;
        p.outstanding[i].id = new;
        Some(new)
    }

    /// Forgets the partition's queued deliveries that were never started (given up: sought, or
    /// dropped); the done prefix before them becomes committable.
    pub(crate) fn forget_queued(&mut self, topic: &str, partition: i32) {
        if let Some(p) = self.get_mut(topic, partition) {
            p.outstanding.retain(|d| d.started);
            p.settle();
        }
    }

    fn deliver(
        &mut self,
        topic: &(impl TopicName + ?Sized),
        partition: i32,
        offset: i64,
        started: bool,
    ) -> Option<DeliveryId> {
        self.deliveries += 1;
        let id = DeliveryId(self.deliveries);
        let p = self.partition_mut(topic, partition);
        p.saw(offset);
        if p.committable.is_some_and(|c| offset < c) {
            return None;
        }
        if p.outstanding.back().is_some_and(|d| d.offset >= offset) {
            p.truncate_from(offset);
        }
        p.outstanding.push_back(Delivery { offset, id, done: false, started });
        Some(id)
    }

    /// The id of the outstanding delivery of this record, if it is tracked.
    pub(crate) fn delivery(&self, topic: &str, partition: i32, offset: i64) -> Option<DeliveryId> {
        let p = self.get(topic, partition)?;
        p.find(offset).map(|i| p.outstanding[i].id)
    }

    /// An acknowledgment of one delivery. It counts only if the partition is owned and that very
    /// delivery is outstanding: an acknowledgment of an earlier delivery (before a revocation, a
    /// seek, a nack or a retry) or of a record never tracked is ignored. Returns whether it
    /// counted.
    pub(crate) fn acknowledge(&mut self, topic: &str, partition: i32, offset: i64, id: DeliveryId) -> bool {
        let Some(p) = self.get_mut(topic, partition) else { return false };
        match p.find(offset) {
            Some(i) if p.outstanding[i].id == id => {
                p.outstanding[i].done = true;
                p.settle();
                true
            }
            _ => false,
        }
    }

    /// A record is done: handled, recovered or discarded by the container itself (on the poll
    /// thread, which knows the record is of the partition's current delivery). Returns whether
    /// the committable offset advanced.
    pub(crate) fn complete(&mut self, topic: &str, partition: i32, offset: i64) -> bool {
        let p = self.partition_mut(topic, partition);
        let before = p.committable;
        p.complete(offset);
        p.committable != before
    }

    /// Completes records of one partition, in the order given (a run of a poll's records):
    /// the same as completing each, with one look-up of the partition.
    pub(crate) fn complete_run(
        &mut self,
        topic: &(impl TopicName + ?Sized),
        partition: i32,
        offsets: impl IntoIterator<Item = i64>,
    ) {
        let p = self.partition_mut(topic, partition);
        for offset in offsets {
            p.complete(offset);
        }
    }

    /// A seek back to `offset`: records from there on will be delivered again.
    pub(crate) fn rewind(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = self.get_mut(topic, partition) {
            // Sought: the records from there on are delivered (handled) again, whatever a
            // restored offset map said of them.
            p.restored = None;
            p.truncate_from(offset);
        }
    }

    /// The offsets to commit, marked as sent (and unconfirmed); `None` when there is nothing to send.
    pub(crate) fn take_commits(&mut self, selection: Selection<'_>) -> Option<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        let offset_maps = self.offset_maps;
        for Entry { topic, partition, offsets: p } in &mut self.partitions {
            let map = if offset_maps { offset_map(topic, *partition, p) } else { MapChange::Same };
            let offset = match selection {
                Selection::Advanced => p.committable.filter(|&next| p.committed.is_none_or(|c| c < next)),
                Selection::All => p.unlanded_or_map(),
                Selection::Partitions(only) => {
                    p.unlanded_or_map().filter(|_| only.find_partition(topic, *partition).is_some())
                }
                Selection::Unconfirmed => p.committed.filter(|_| p.unconfirmed),
            };
            // The completions above the committed offset changed: sent even when the offset
            // itself cannot move (a stalled record must not keep them uncommitted).
            let offset = match (&map, offset) {
                (_, Some(offset)) => Some(offset),
                (MapChange::To(_), None) => p.committable.or(p.first),
                (MapChange::Same, None) => None,
            };
            if let Some(offset) = offset {
                if tpl.add_partition_offset(topic, *partition, Offset::Offset(offset)).is_ok() {
                    p.committed = Some(offset);
                    p.unconfirmed = true;
                    let metadata = match map {
                        MapChange::To(metadata) => {
                            p.map_sent = metadata;
                            p.map_sent.as_deref()
                        }
                        // Sent again as it was (a commit without it would erase it).
                        MapChange::Same => p.map_sent.as_deref().filter(|_| offset_maps),
                    };
                    if let (Some(metadata), Some(mut element)) = (metadata, tpl.find_partition(topic, *partition)) {
                        element.set_metadata(metadata);
                    }
                }
            }
        }
        (tpl.count() > 0).then_some(tpl)
    }

    /// A commit of these offsets landed (reported in the order commits finish). An offset below
    /// the one sent last landed after it (librdkafka retried an older request): the broker holds
    /// the older offset now, so the last one is marked to be sent again.
    pub(crate) fn confirmed(&mut self, tpl: &TopicPartitionList) {
        for element in tpl.elements() {
            if let (Some(p), Offset::Offset(offset)) =
                (self.get_mut(element.topic(), element.partition()), element.offset())
            {
                if p.committed == Some(offset) {
                    p.unconfirmed = false;
                    p.landed = Some(offset);
                } else if p.committed.is_some_and(|c| offset < c) {
                    p.unconfirmed = true;
                    p.landed = Some(offset);
                }
            }
        }
    }

    /// `next` was committed (in a transaction) for this partition.
    pub(crate) fn committed_at(&mut self, topic: &str, partition: i32, next: i64) {
        if let Some(p) = self.get_mut(topic, partition) {
            p.committed = Some(next);
            p.unconfirmed = false;
            p.landed = Some(next);
        }
    }

    /// librdkafka's statistics say the group's committed offset of the partition is `offset`.
    pub(crate) fn reported_committed(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(p) = self.get_mut(topic, partition) {
            p.reported = Some(offset);
        }
    }

    /// For the lag gauge, each owned partition's committed offset as best known: the last
    /// commit this consumer sent (its outcome is only polled between handlers), else the one
    /// librdkafka's statistics reported, else the first offset delivered since assignment (where
    /// consumption started: the group's committed offset or the reset position); `None` when
    /// none of these is known.
    pub(crate) fn lag_bases(&self) -> Vec<(Arc<str>, i32, Option<i64>)> {
        self.each()
            .map(|(topic, partition, p)| (topic.clone(), partition, p.committed.or(p.reported).or(p.first)))
            .collect()
    }

    /// A partition's processed offset not known to have landed in a commit: the next offset to
    /// commit, and how many records it covers since the last landed commit (since the first
    /// record seen when none landed).
    pub(crate) fn uncommitted(&self, topic: &str, partition: i32) -> Option<(i64, i64)> {
        uncommitted(self.get(topic, partition)?)
    }

    /// [`uncommitted`](Self::uncommitted) for every partition that has such an offset:
    /// `(topic, partition, next, records)`, sorted.
    pub(crate) fn all_uncommitted(&self) -> Vec<(String, i32, i64, i64)> {
        let mut all: Vec<_> = self
            .each()
            .filter_map(|(topic, partition, p)| uncommitted(p).map(|(next, n)| (topic.to_string(), partition, next, n)))
            .collect();
        all.sort();
        all
    }

    /// Moves an owned partition's committable offset up to the consumer's `position` when all it
    /// delivered is done and committed, and the position is past it (over transaction markers
    /// the listener never sees). Returns whether it moved.
    pub(crate) fn skip_to(&mut self, topic: &str, partition: i32, position: i64) -> bool {
        let Some(p) = self.get_mut(topic, partition) else { return false };
        match p.committable {
            Some(c) if p.outstanding.is_empty() && p.committed == Some(c) && position > c => {
                p.committable = Some(position);
                true
            }
            _ => false,
        }
    }

    /// A processed offset handed over for an owned partition (a sibling consumer processed the
    /// records before it and could not commit them): it becomes committable, and the partition's
    /// deliveries start there.
    pub(crate) fn seed(&mut self, topic: &str, partition: i32, next: i64) {
        if let Some(p) = self.get_mut(topic, partition) {
            p.outstanding.clear();
            p.advance(next);
            p.saw(next);
        }
    }

    /// The records delivered and not acknowledged yet, per owned partition that has any
    /// (`only`: of these partitions): `(topic, partition, records)`, sorted. A record acknowledged
    /// behind an unacknowledged one counts too (it cannot be committed either).
    pub(crate) fn unacknowledged(&self, only: Option<&TopicPartitionList>) -> Vec<(String, i32, usize)> {
        let mut all: Vec<_> = self
            .each()
            // Up to the last record started and not acknowledged; records queued behind it (not
            // started, a concurrent processing order's) wait for nobody: a revocation or a stop
            // gives them up.
            .map(|(topic, p, o)| {
                (topic, p, o.outstanding.iter().rposition(|d| d.started && !d.done).map_or(0, |i| i + 1))
            })
            .filter(|(topic, p, n)| *n > 0 && only.is_none_or(|only| only.find_partition(topic, *p).is_some()))
            .map(|(topic, p, n)| (topic.to_string(), p, n))
            .collect();
        all.sort();
        all
    }

    /// How many records of the partition were delivered and wait for an acknowledgment, counting
    /// those acknowledged behind an unacknowledged one (they cannot be committed yet either).
    pub(crate) fn outstanding(&self, topic: &str, partition: i32) -> usize {
        self.get(topic, partition).map_or(0, |p| p.outstanding.len())
    }

    /// Whether a commit sent is not known to have landed.
    pub(crate) fn has_unconfirmed(&self) -> bool {
        self.partitions.iter().any(|e| e.offsets.unconfirmed)
    }

    /// The next offset to commit for a partition, if any record of it is done.
    #[cfg(test)]
    pub(crate) fn committable(&self, topic: &str, partition: i32) -> Option<i64> {
        self.get(topic, partition)?.committable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tracks `offsets` of t-0 and returns their delivery ids.
    fn deliver(t: &mut OffsetTracker, offsets: std::ops::Range<i64>) -> Vec<DeliveryId> {
        offsets.map(|o| t.track("t", 0, o).unwrap_or(DeliveryId(0))).collect()
    }

    /// The offset and metadata of t-0 in a commit.
    fn sent(tpl: &TopicPartitionList) -> (i64, String) {
        let element = tpl.find_partition("t", 0).expect("t-0 in the commit");
        (element.offset().to_raw().unwrap(), element.metadata().to_string())
    }

    /// Queues `offsets` of t-0 and starts them; returns their delivery ids.
    fn queue_and_start(t: &mut OffsetTracker, offsets: std::ops::Range<i64>) -> Vec<DeliveryId> {
        offsets
            .map(|o| match t.queue("t", 0, o) {
                Queued::Run(Some(id)) => {
                    t.start("t", 0, o, id);
                    id
                }
                other => panic!("{o} queued as {other:?}"),
            })
            .collect()
    }

    #[test]
    fn commits_carry_the_offsets_completed_above_a_stalled_record_whenever_they_change() {
        let mut t = OffsetTracker::default();
        t.keep_offset_maps();
        t.assign("t", 0);
        let ids = queue_and_start(&mut t, 100..110);
        for o in 101..110 {
            t.acknowledge("t", 0, o, ids[(o - 100) as usize]);
        }
        // Record 100 stalls: nothing is committable, but 101..109 are written down at 100.
        let (offset, metadata) = sent(&t.take_commits(Selection::Advanced).expect("a commit with the map"));
        assert_eq!(offset, 100);
        let map = CompletedAbove::decode(100, metadata.as_bytes()).unwrap();
        assert_eq!(map.ranges(), std::slice::from_ref(&(101..110)));
        // Unchanged: nothing to send.
        assert!(t.take_commits(Selection::Advanced).is_none());
        // Sent again as it was (a commit without it would erase it from the broker).
        assert_eq!(sent(&t.take_commits(Selection::All).unwrap()), (100, metadata));
        // The stalled record completes: the offset moves past all of them, with no map.
        t.acknowledge("t", 0, 100, ids[0]);
        assert_eq!(sent(&t.take_commits(Selection::Advanced).unwrap()), (110, String::new()));
        // Queued records (not started) are not completed, and a revocation does not wait for them.
        let ids = queue_and_start(&mut t, 110..112);
        assert_eq!(t.queue("t", 0, 112), Queued::Run(Some(DeliveryId(t.deliveries))));
        assert_eq!(t.unacknowledged(None), vec![("t".to_string(), 0, 2)]);
        t.acknowledge("t", 0, 110, ids[0]);
        t.acknowledge("t", 0, 111, ids[1]);
        assert!(t.unacknowledged(None).is_empty(), "only a queued record is left");
        assert_eq!(t.committable("t", 0), Some(112));
    }

    #[test]
    fn records_a_restored_map_names_are_skipped_and_kept_in_the_next_map() {
        let mut t = OffsetTracker::default();
        t.keep_offset_maps();
        t.assign("t", 0);
        t.restore("t", 0, CompletedAbove::from_offsets(10, [12, 13, 20, 21]));
        let ids = queue_and_start(&mut t, 10..12);
        assert_eq!(t.queue("t", 0, 12), Queued::Done);
        assert_eq!(t.queue("t", 0, 13), Queued::Done);
        // 10 and 11 run; 12 and 13 wait behind them as done; 20 and 21 are not fetched yet but
        // stay in the map (a second crash must not lose them).
        let (offset, metadata) = sent(&t.take_commits(Selection::Advanced).unwrap());
        assert_eq!(offset, 10);
        assert_eq!(CompletedAbove::decode(10, metadata.as_bytes()).unwrap().ranges(), [12..14, 20..22]);
        t.acknowledge("t", 0, 10, ids[0]);
        t.acknowledge("t", 0, 11, ids[1]);
        assert_eq!(t.committable("t", 0), Some(14), "the skipped records complete with the others");
        assert!(matches!(t.queue("t", 0, 14), Queued::Run(_)));
        // A seek forgets the map: records sought back to are handled again.
        t.rewind("t", 0, 14);
        assert!(matches!(t.queue("t", 0, 20), Queued::Run(_)));
    }

    #[test]
    fn a_retried_record_gets_a_new_delivery_and_a_sought_partition_forgets_its_queue() {
        let mut t = OffsetTracker::default();
        t.assign("t", 0);
        let ids = queue_and_start(&mut t, 0..2);
        let retry = t.redeliver("t", 0, 0, ids[0]).expect("outstanding");
        assert!(!t.acknowledge("t", 0, 0, ids[0]), "the failed delivery's acknowledgment");
        assert!(t.acknowledge("t", 0, 0, retry));
        assert!(matches!(t.queue("t", 0, 2), Queued::Run(Some(_))));
        t.acknowledge("t", 0, 1, ids[1]);
        t.forget_queued("t", 0);
        assert_eq!(t.committable("t", 0), Some(2), "nothing waits for the forgotten record");
    }

    #[test]
    fn a_run_of_completions_is_the_same_as_completing_each() {
        // Untracked (the in-order case): the committable offset follows the last record.
        let (mut one, mut run) = (OffsetTracker::default(), OffsetTracker::default());
        for o in [3, 4, 7] {
            one.complete("t", 0, o);
        }
        run.complete_run("t", 0, [3, 4, 7]);
        assert_eq!(one.committable("t", 0), Some(8));
        assert_eq!(run.committable("t", 0), one.committable("t", 0));
        assert_eq!(run.uncommitted("t", 0), one.uncommitted("t", 0));
        // With deliveries outstanding, a run completes only what it names: 10 stays open.
        let (mut one, mut run) = (OffsetTracker::default(), OffsetTracker::default());
        for t in [&mut one, &mut run] {
            t.assign("t", 0);
            deliver(t, 10..14);
        }
        for o in [11, 12] {
            one.complete("t", 0, o);
        }
        run.complete_run("t", 0, [11, 12]);
        assert_eq!(run.committable("t", 0), None);
        assert_eq!(one.committable("t", 0), None);
        one.complete("t", 0, 10);
        run.complete_run("t", 0, [10]);
        assert_eq!(run.committable("t", 0), Some(13));
        assert_eq!(one.committable("t", 0), Some(13));
    }

    #[test]
    fn out_of_order_acknowledgments_commit_only_the_contiguous_prefix() {
        let mut t = OffsetTracker::default();
        t.assign("t", 0);
        let ids = deliver(&mut t, 10..15);
        assert!(t.acknowledge("t", 0, 12, ids[2]));
        assert!(t.acknowledge("t", 0, 11, ids[1]));
        assert_eq!(t.committable("t", 0), None);
        assert!(t.acknowledge("t", 0, 10, ids[0]));
        assert_eq!(t.committable("t", 0), Some(13));
        assert!(t.acknowledge("t", 0, 14, ids[4]));
        assert_eq!(t.committable("t", 0), Some(13));
        assert!(t.acknowledge("t", 0, 13, ids[3]));
        assert_eq!(t.committable("t", 0), Some(15));
    }

    #[test]
    fn commits_are_taken_once_and_resent_until_confirmed() {
        let mut t = OffsetTracker::default();
        t.complete("t", 1, 4);
        let tpl = t.take_commits(Selection::Advanced).unwrap_or_default();
        assert_eq!(tpl.find_partition("t", 1).map(|e| e.offset()), Some(Offset::Offset(5)));
        assert!(t.take_commits(Selection::Advanced).is_none());
        t.complete("t", 1, 5);
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
        let ids = deliver(&mut t, 0..1);
        t.remove("t", 0);
        assert!(!t.acknowledge("t", 0, 0, ids[0]));
        assert!(!t.owns("t", 0));
    }

    #[test]
    fn rewind_drops_outstanding_records_from_the_seek_offset() {
        let mut t = OffsetTracker::default();
        t.assign("t", 0);
        let ids = deliver(&mut t, 0..4);
        t.acknowledge("t", 0, 0, ids[0]);
        t.acknowledge("t", 0, 2, ids[2]);
        t.rewind("t", 0, 1);
        assert_eq!(t.committable("t", 0), Some(1));
        let again = deliver(&mut t, 1..2);
        t.acknowledge("t", 0, 1, again[0]);
        assert_eq!(t.committable("t", 0), Some(2));
    }

    /// Issue 10, scenario 1: the partition is revoked and assigned back; a late acknowledgment of
    /// the first delivery of record 9 must not count for the second delivery.
    #[test]
    fn an_acknowledgment_of_an_earlier_delivery_is_ignored_after_reassignment() {
        let mut t = OffsetTracker::default();
        t.assign("t", 0);
        let first = deliver(&mut t, 0..10);
        t.remove("t", 0);
        t.assign("t", 0);
        let second = deliver(&mut t, 0..1);
        assert!(!t.acknowledge("t", 0, 9, first[9]), "never tracked in this delivery");
        assert!(!t.acknowledge("t", 0, 0, first[0]), "an earlier delivery of a tracked record");
        assert_eq!(t.committable("t", 0), None);
        assert!(t.acknowledge("t", 0, 0, second[0]));
        assert_eq!(t.committable("t", 0), Some(1));
        let rest = deliver(&mut t, 1..10);
        assert!(!t.acknowledge("t", 0, 9, first[9]));
        assert!(t.acknowledge("t", 0, 9, rest[8]), "the record's own delivery counts");
        assert_eq!(t.committable("t", 0), Some(1), "records 1..8 are not acknowledged");
    }

    /// A seek back, a nack or a retry delivers records again without a rebalance: the
    /// acknowledgments of the deliveries before are stale.
    #[test]
    fn delivering_again_from_an_offset_makes_earlier_acknowledgments_stale() {
        let mut t = OffsetTracker::default();
        t.assign("t", 0);
        let first = deliver(&mut t, 0..5);
        // Delivered again from 2 (no explicit rewind: a retry of record 2).
        let second = deliver(&mut t, 2..3);
        assert!(t.acknowledge("t", 0, 0, first[0]), "record 0's delivery is still current");
        assert!(t.acknowledge("t", 0, 1, first[1]));
        assert!(!t.acknowledge("t", 0, 2, first[2]), "the failed attempt's acknowledgment");
        assert!(!t.acknowledge("t", 0, 4, first[4]), "record 4 starts over too");
        assert_eq!(t.committable("t", 0), Some(2));
        assert!(t.acknowledge("t", 0, 2, second[0]));
        assert_eq!(t.committable("t", 0), Some(3));
        assert_eq!(t.delivery("t", 0, 3), None, "not delivered again yet");
    }

    /// An older commit landing after a newer one (librdkafka retried it) puts the older offset
    /// back on the broker: the newer one must be sent again.
    #[test]
    fn an_older_commit_landing_last_is_undone() {
        let mut t = OffsetTracker::default();
        t.assign("t", 0);
        t.complete("t", 0, 4);
        let older = t.take_commits(Selection::Advanced).unwrap_or_default();
        t.complete("t", 0, 9);
        let newer = t.take_commits(Selection::Advanced).unwrap_or_default();
        t.confirmed(&newer);
        assert!(!t.has_unconfirmed());
        t.confirmed(&older);
        assert_eq!(t.uncommitted("t", 0), Some((10, 5)), "the broker holds 5 again");
        let again = t.take_commits(Selection::Unconfirmed).unwrap_or_default();
        assert_eq!(again.find_partition("t", 0).map(|e| e.offset()), Some(Offset::Offset(10)));
    }

    #[test]
    fn uncommitted_counts_from_the_last_landed_commit() {
        let mut t = OffsetTracker::default();
        t.assign("t", 0);
        for o in 100..110 {
            t.complete("t", 0, o);
        }
        assert_eq!(t.uncommitted("t", 0), Some((110, 10)));
        let sent = t.take_commits(Selection::All).unwrap_or_default();
        assert_eq!(t.uncommitted("t", 0), Some((110, 10)), "sent, not confirmed");
        t.confirmed(&sent);
        assert_eq!(t.uncommitted("t", 0), None);
        t.complete("t", 0, 110);
        assert_eq!(t.all_uncommitted(), vec![("t".to_string(), 0, 111, 1)]);
    }

    #[test]
    fn a_seeded_offset_is_committed_by_the_new_owner() {
        let mut t = OffsetTracker::default();
        t.assign("t", 0);
        t.seed("t", 0, 500);
        let tpl = t.take_commits(Selection::Advanced).unwrap_or_default();
        assert_eq!(tpl.find_partition("t", 0).map(|e| e.offset()), Some(Offset::Offset(500)));
        // Records below the seed delivered again change nothing.
        assert_eq!(t.track("t", 0, 499), None);
        t.complete("t", 0, 499);
        assert_eq!(t.committable("t", 0), Some(500));
    }

    #[test]
    fn unacknowledged_lists_partitions_with_records_waiting() {
        let mut t = OffsetTracker::default();
        t.assign("t", 0);
        t.assign("t", 1);
        let ids = deliver(&mut t, 0..3);
        t.acknowledge("t", 0, 1, ids[1]);
        assert_eq!(t.unacknowledged(None), vec![("t".to_string(), 0, 3)]);
        t.acknowledge("t", 0, 0, ids[0]);
        t.acknowledge("t", 0, 2, ids[2]);
        assert!(t.unacknowledged(None).is_empty());
    }
}
