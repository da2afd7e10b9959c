//! Which queued records may start now, by processing order (issue 16): records of one key one at
//! a time in offset order and different keys concurrently (`Key`, a key's *lane*), or any record
//! (`Unordered`), with at most `max_in_flight` started and not done. A pure unit: the
//! dispatcher that runs records as tasks pushes what it polled, starts what `next` gives, and
//! reports each `done`.
//!
//! Lanes are per partition: the same key in two partitions is two lanes (Kafka orders within a
//! partition only). Records without a key share one lane per partition (in offset order).
//!
//! A lane is found by a 64-bit hash of its key (randomly seeded per dispatcher, so keys cannot be
//! chosen to collide), not by the key's bytes: no allocation per record. Two keys whose hashes
//! collide share a lane, which only runs them one after the other; a key's records never leave
//! their lane, so its order holds whatever the hash.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

use crate::TopicPartition;

/// How a partition's records may overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// One record at a time per key (per partition); keys concurrently.
    Key,
    /// Any record concurrently.
    Unordered,
}

/// A started record's lane, to give back to `done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LaneId {
    slot: usize,
    generation: u64,
}

/// Which lane of its partition a record joins (`Lanes::key`): its key's hash, or `None` for
/// records without a key (and for every record when unordered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct LaneKey(Option<u64>);

/// A key's records waiting, and whether one of them is running.
#[derive(Debug)]
struct Lane<T> {
    part: usize,
    key: LaneKey,
    busy: bool,
    queue: VecDeque<T>,
    generation: u64,
}

/// A partition's lanes and the records waiting in them.
#[derive(Debug, Default)]
struct Part {
    lanes: HashMap<LaneKey, usize>,
    queued: usize,
}

/// The records waiting to start, by lane.
#[derive(Debug)]
pub(crate) struct Lanes<T> {
    order: Order,
    max_in_flight: usize,
    in_flight: usize,
    /// Lanes in use (`None`: a free slot), found through their partition's `Part`.
    slots: Vec<Option<Lane<T>>>,
    free: Vec<usize>,
    /// Partitions with lanes, by number (`parts`), and their numbers.
    part_ids: HashMap<TopicPartition, usize>,
    parts: Vec<Part>,
    free_parts: Vec<usize>,
    /// Lanes with a record to start and none running, in the order they became so.
    ready: VecDeque<usize>,
    generations: u64,
    hasher: RandomState,
}

impl<T> Lanes<T> {
    /// `max_in_flight`: records started and not done, at most (at least 1).
    pub(crate) fn new(order: Order, max_in_flight: usize) -> Self {
        Lanes {
            order,
            max_in_flight: max_in_flight.max(1),
            in_flight: 0,
            slots: Vec::new(),
            free: Vec::new(),
            part_ids: HashMap::new(),
            parts: Vec::new(),
            free_parts: Vec::new(),
            ready: VecDeque::new(),
            generations: 0,
            hasher: RandomState::new(),
        }
    }

    /// The lane a record with `key` (`None`: no key) joins in its partition.
    pub(crate) fn key(&self, key: Option<&[u8]>) -> LaneKey {
        match self.order {
            Order::Key => LaneKey(key.map(|k| self.hasher.hash_one(k))),
            // Unordered: one lane per partition that never waits for its running records.
            Order::Unordered => LaneKey(None),
        }
    }

    /// Queues a record of `partition` in the lane of `key` (from [`key`](Self::key)), behind
    /// the records pushed before it.
    pub(crate) fn push(&mut self, partition: &TopicPartition, key: LaneKey, item: T) {
        let part = match self.part_ids.get(partition) {
            Some(&part) => part,
            None => {
                let part = match self.free_parts.pop() {
                    Some(part) => part,
                    None => {
                        self.parts.push(Part::default());
                        self.parts.len() - 1
                    }
                };
                self.part_ids.insert(partition.clone(), part);
                part
            }
        };
        let slot = match self.parts[part].lanes.get(&key) {
            Some(&slot) => slot,
            None => {
                self.generations += 1;
                let lane = Lane { part, key, busy: false, queue: VecDeque::new(), generation: self.generations };
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.slots[slot] = Some(lane);
                        slot
                    }
                    None => {
                        self.slots.push(Some(lane));
                        self.slots.len() - 1
                    }
                };
                self.parts[part].lanes.insert(key, slot);
                slot
            }
        };
        let Some(lane) = self.slots[slot].as_mut() else { return };
        let becomes_ready = lane.queue.is_empty() && (!lane.busy || self.order == Order::Unordered);
        lane.queue.push_back(item);
        self.parts[part].queued += 1;
        if becomes_ready {
            self.ready.push_back(slot);
        }
    }

    /// The next record to start, if one may: a lane's first record, while fewer than
    /// `max_in_flight` run.
    pub(crate) fn next(&mut self) -> Option<(LaneId, T)> {
        while self.in_flight < self.max_in_flight {
            let slot = self.ready.pop_front()?;
            let Some(lane) = self.slots[slot].as_mut() else { continue };
            let Some(item) = lane.queue.pop_front() else { continue };
            lane.busy = true;
            self.in_flight += 1;
            self.parts[lane.part].queued -= 1;
            let id = LaneId { slot, generation: lane.generation };
            if self.order == Order::Unordered && !lane.queue.is_empty() {
                self.ready.push_back(slot);
            }
            return Some((id, item));
        }
        None
    }

    /// The record started on `lane` is done (handled, recovered or given up): the lane's next
    /// record may start. A lane dropped meanwhile (`drop_partition`) is ignored but for the count.
    pub(crate) fn done(&mut self, lane: LaneId) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let Some(Some(l)) = self.slots.get_mut(lane.slot) else { return };
        if l.generation != lane.generation {
            return;
        }
        if self.order == Order::Key {
            l.busy = false;
            if !l.queue.is_empty() {
                self.ready.push_back(lane.slot);
                return;
            }
        } else if !l.queue.is_empty() {
            return;
        }
        // Nothing waits on the lane: its slot is freed (memory stays bounded by the keys
        // waiting). Unordered: records of it still running end as a dropped lane's would.
        let (part, key) = (l.part, l.key);
        self.parts[part].lanes.remove(&key);
        self.slots[lane.slot] = None;
        self.free.push(lane.slot);
    }

    /// Drops the records of `partition` not started (revoked, or sought): returns them, in no
    /// particular order. Its running records stay counted until `done`.
    pub(crate) fn drop_partition(&mut self, partition: &TopicPartition) -> Vec<T> {
        let mut dropped = Vec::new();
        let Some(part) = self.part_ids.remove(partition) else { return dropped };
        for (_, slot) in self.parts[part].lanes.drain() {
            if let Some(lane) = self.slots[slot].take() {
                dropped.extend(lane.queue);
            }
            self.free.push(slot);
        }
        self.parts[part].queued = 0;
        self.free_parts.push(part);
        self.ready.retain(|&slot| self.slots[slot].is_some());
        dropped
    }

    /// The least of `partition`'s records waiting to start, by `order_of` (each lane's first is
    /// its least: lanes keep their records in the order pushed).
    pub(crate) fn first_waiting(&self, partition: &TopicPartition, order_of: impl Fn(&T) -> i64) -> Option<i64> {
        let part = self.part_ids.get(partition)?;
        self.parts[*part]
            .lanes
            .values()
            .filter_map(|&slot| self.slots[slot].as_ref()?.queue.front().map(&order_of))
            .min()
    }

    /// Records of `partition` waiting to start.
    pub(crate) fn queued(&self, partition: &TopicPartition) -> usize {
        self.part_ids.get(partition).map_or(0, |&part| self.parts[part].queued)
    }

    /// Records started and not done.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition::new("t", partition)
    }

    /// Queues `item` in the lane of `key`.
    fn push(lanes: &mut Lanes<i64>, partition: i32, key: Option<&[u8]>, item: i64) {
        let key = lanes.key(key);
        lanes.push(&tp(partition), key, item);
    }

    /// Starts everything that may start now.
    fn start_all(lanes: &mut Lanes<i64>) -> Vec<(LaneId, i64)> {
        std::iter::from_fn(|| lanes.next()).collect()
    }

    #[test]
    fn a_keys_records_run_one_at_a_time_in_order_and_keys_run_together() {
        let mut lanes = Lanes::new(Order::Key, 100);
        for (offset, key) in [(0, "a"), (1, "b"), (2, "a"), (3, "c"), (4, "b")] {
            push(&mut lanes, 0, Some(key.as_bytes()), offset);
        }
        let started = start_all(&mut lanes);
        assert_eq!(started.iter().map(|s| s.1).collect::<Vec<_>>(), [0, 1, 3], "the first of each key");
        assert_eq!(lanes.queued(&tp(0)), 2);
        // a's first is done: a's second starts, b's still waits for b's first.
        lanes.done(started[0].0);
        let next = start_all(&mut lanes);
        assert_eq!(next.iter().map(|s| s.1).collect::<Vec<_>>(), [2]);
        lanes.done(started[1].0);
        assert_eq!(start_all(&mut lanes).iter().map(|s| s.1).collect::<Vec<_>>(), [4]);
        assert_eq!(lanes.in_flight(), 3);
    }

    #[test]
    fn keyless_records_share_one_lane_per_partition_and_partitions_are_apart() {
        let mut lanes = Lanes::new(Order::Key, 100);
        push(&mut lanes, 0, None, 0);
        push(&mut lanes, 0, None, 1);
        push(&mut lanes, 1, None, 0);
        push(&mut lanes, 1, Some(b"k"), 1);
        push(&mut lanes, 0, Some(b"k"), 2);
        let started = start_all(&mut lanes);
        assert_eq!(started.len(), 4, "keyless p0, keyless p1, k in p1, k in p0: {started:?}");
        assert_eq!(lanes.queued(&tp(0)), 1, "the second keyless record of p0 waits");
    }

    #[test]
    fn unordered_starts_anything_up_to_the_bound() {
        let mut lanes = Lanes::new(Order::Unordered, 3);
        for offset in 0..5 {
            push(&mut lanes, 0, Some(b"same"), offset);
        }
        let started = start_all(&mut lanes);
        assert_eq!(started.iter().map(|s| s.1).collect::<Vec<_>>(), [0, 1, 2], "three, the bound");
        lanes.done(started[1].0);
        assert_eq!(start_all(&mut lanes).iter().map(|s| s.1).collect::<Vec<_>>(), [3]);
        lanes.done(started[0].0);
        assert_eq!(start_all(&mut lanes).iter().map(|s| s.1).collect::<Vec<_>>(), [4]);
        assert_eq!(lanes.queued(&tp(0)), 0);
    }

    #[test]
    fn the_bound_holds_keys_back_until_records_are_done() {
        let mut lanes = Lanes::new(Order::Key, 2);
        for offset in 0..4 {
            push(&mut lanes, 0, Some(format!("k{offset}").as_bytes()), offset);
        }
        let started = start_all(&mut lanes);
        assert_eq!(started.len(), 2);
        lanes.done(started[0].0);
        assert_eq!(start_all(&mut lanes).iter().map(|s| s.1).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn a_dropped_partition_gives_back_its_waiting_records_and_its_running_ones_still_count() {
        let mut lanes = Lanes::new(Order::Key, 10);
        push(&mut lanes, 0, Some(b"a"), 0);
        push(&mut lanes, 0, Some(b"a"), 1);
        push(&mut lanes, 1, Some(b"a"), 0);
        let started = start_all(&mut lanes);
        assert_eq!(started.len(), 2);
        assert_eq!(lanes.drop_partition(&tp(0)), vec![1]);
        assert_eq!(lanes.queued(&tp(0)), 0);
        assert_eq!(lanes.in_flight(), 2);
        // The dropped lane's running record ends: counted, nothing of it starts again.
        lanes.done(started[0].0);
        assert_eq!(lanes.in_flight(), 1);
        assert!(start_all(&mut lanes).is_empty());
        // A new record of the same key gets a new lane.
        push(&mut lanes, 0, Some(b"a"), 5);
        assert_eq!(start_all(&mut lanes).iter().map(|s| s.1).collect::<Vec<_>>(), [5]);
    }

    #[test]
    fn the_first_waiting_record_is_the_least_across_the_partitions_lanes() {
        let mut lanes = Lanes::new(Order::Key, 1);
        assert_eq!(lanes.first_waiting(&tp(0), |o| *o), None);
        for (offset, key) in [(10, "a"), (11, "b"), (12, "a"), (13, "c")] {
            push(&mut lanes, 0, Some(key.as_bytes()), offset);
        }
        push(&mut lanes, 1, Some(b"a"), 5);
        // 10 starts (the bound is 1): 11 is the first of partition 0 still waiting.
        let started = start_all(&mut lanes);
        assert_eq!(started.iter().map(|s| s.1).collect::<Vec<_>>(), [10]);
        assert_eq!(lanes.first_waiting(&tp(0), |o| *o), Some(11));
        assert_eq!(lanes.first_waiting(&tp(1), |o| *o), Some(5));
        lanes.drop_partition(&tp(0));
        assert_eq!(lanes.first_waiting(&tp(0), |o| *o), None);
    }

    #[test]
    fn lanes_are_freed_when_idle() {
        let mut lanes = Lanes::new(Order::Key, 1000);
        for offset in 0..500 {
            push(&mut lanes, 0, Some(format!("k{offset}").as_bytes()), offset);
        }
        for (id, _) in start_all(&mut lanes) {
            lanes.done(id);
        }
        assert!(lanes.parts.iter().all(|p| p.lanes.is_empty()) && lanes.ready.is_empty());
        assert_eq!(lanes.free.len(), lanes.slots.len(), "every slot free for reuse");
    }
}
