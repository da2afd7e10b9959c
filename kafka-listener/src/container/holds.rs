//! Partition holds: why a partition is paused, and the one rule for resuming it.
//!
//! A partition is paused for one of four reasons: the head record of a retry topic is not due
//! yet, too many of its records wait for an acknowledgment (back-pressure), a `ConsumerHandle`
//! paused it, or the whole container is paused. Each reason is released on its own; a partition
//! is resumed only when no reason holds it any more (`PartitionHolds::resumable`). A retry's
//! back-off pauses the whole assignment for its duration (`paused_wait`) and resumes by the same
//! rule. Spring splits the same concern out of its container as `ListenerContainerPauseService`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaResult;
use rdkafka::message::Message;
use rdkafka::Offset;

use super::context::KafkaConsumer;
use super::seeks::SEEK_TIMEOUT;
use super::shared::ContainerShared;
use super::stop_clock::StopClock;
use crate::topic_partition::to_list;
use crate::TopicPartition;

/// The longest a single poll blocks during a wait, so that a stop is served promptly.
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// Why the container itself holds a partition paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hold {
    /// A retry topic's head record is due at this time.
    DueAt(Instant),
    /// Too many records wait for an acknowledgment.
    Throttled,
}

/// The partitions the container holds paused, by reason. Pure state: the caller pauses and
/// resumes the consumer as it says.
#[derive(Debug, Default)]
pub(crate) struct PartitionHolds {
    due: HashMap<TopicPartition, Instant>,
    throttled: HashSet<TopicPartition>,
    /// Where held partitions were sought when paused, and the rebalance generation then: sought
    /// there again when resumed in the same generation (see `resume_released`). Forgotten when
    /// anything else may have moved them.
    positions: HashMap<TopicPartition, (i64, u64)>,
}

impl PartitionHolds {
    /// Holds a partition (it was paused) for this reason.
    pub(crate) fn hold(&mut self, tp: TopicPartition, hold: Hold) {
        match hold {
            Hold::DueAt(at) => {
                self.due.insert(tp, at);
            }
            Hold::Throttled => {
                self.throttled.insert(tp);
            }
        }
    }

    /// The partitions held now (a retry topic's wait, back-pressure), for the paused gauge.
    pub(crate) fn holding(&self) -> impl Iterator<Item = TopicPartition> + '_ {
        self.due.keys().chain(&self.throttled).cloned()
    }

    pub(crate) fn is_throttled(&self, tp: &TopicPartition) -> bool {
        self.throttled.contains(tp)
    }

    /// Releases the retry waits that are due at `now`; returns their partitions.
    pub(crate) fn release_due(&mut self, now: Instant) -> Vec<TopicPartition> {
        if self.due.is_empty() {
            return Vec::new();
        }
        let due: Vec<TopicPartition> =
            self.due.iter().filter(|(_, at)| **at <= now).map(|(tp, _)| tp.clone()).collect();
        due.iter().for_each(|tp| {
            self.due.remove(tp);
        });
        due
    }

    /// Releases the throttled partitions `caught_up` says may go on; returns them.
    pub(crate) fn release_throttled(&mut self, caught_up: impl Fn(&TopicPartition) -> bool) -> Vec<TopicPartition> {
        if self.throttled.is_empty() {
            return Vec::new();
        }
        let released: Vec<TopicPartition> = self.throttled.iter().filter(|tp| caught_up(tp)).cloned().collect();
        released.iter().for_each(|tp| {
            self.throttled.remove(tp);
        });
        released
    }

    /// The one resume rule: whether a partition must stay paused, because a retry wait or
    /// back-pressure holds it or a `ConsumerHandle` paused it.
    pub(crate) fn held(&self, tp: &TopicPartition, by_handler: &BTreeSet<TopicPartition>) -> bool {
        self.due.contains_key(tp) || self.throttled.contains(tp) || by_handler.contains(tp)
    }

    /// Of the partitions one reason released, those to resume: still owned and held by no other
    /// reason. None while the whole container is paused (its resume covers them).
    pub(crate) fn resumable(
        &self,
        released: Vec<TopicPartition>,
        container_paused: bool,
        by_handler: &BTreeSet<TopicPartition>,
        owned: impl Fn(&TopicPartition) -> bool,
    ) -> Vec<TopicPartition> {
        if container_paused {
            return Vec::new();
        }
        released.into_iter().filter(|tp| owned(tp) && !self.held(tp, by_handler)).collect()
    }

    /// Pauses one partition and, given an offset, seeks it there (records fetched beyond are
    /// dropped and fetched again after the resume).
    pub(crate) fn pause_at(
        &mut self,
        consumer: &KafkaConsumer,
        shared: &ContainerShared,
        tp: &TopicPartition,
        seek: Option<i64>,
    ) -> KafkaResult<()> {
        self.positions.remove(tp);
        consumer.pause(&to_list([tp]))?;
        if let Some(offset) = seek {
            consumer.seek(&tp.topic, tp.partition, Offset::Offset(offset), SEEK_TIMEOUT)?;
            self.positions.insert(tp.clone(), (offset, shared.revocations().generation()));
        }
        Ok(())
    }

    /// These partitions were sought, or resumed by another path: where they were paused no
    /// longer says where they are (a revocation is caught by the generation instead).
    pub(crate) fn forget_positions<'a>(&mut self, partitions: impl IntoIterator<Item = &'a TopicPartition>) {
        if self.positions.is_empty() {
            return;
        }
        for tp in partitions {
            self.positions.remove(tp);
        }
    }

    /// Resumes the partitions one reason released, by the resume rule.
    ///
    /// Each is also sought to where it was paused: librdkafka wakes its fetcher when a fetch
    /// starts (a seek does) but not on a resume (`rd_kafka_toppar_pause_resume`), so a resumed
    /// partition would wait for the broker thread's next wakeup (up to a second when it idles,
    /// `fetch.wait.max.ms` when a fetch of other partitions waits at their end) before its first
    /// fetch. Nothing of a paused partition is delivered, so the position still stands.
    pub(crate) fn resume_released(
        &mut self,
        consumer: &KafkaConsumer,
        shared: &ContainerShared,
        released: Vec<TopicPartition>,
        why: &str,
    ) {
        if released.is_empty() {
            return;
        }
        // Released: whether resumed here or later by another path, records may flow after it.
        // A revocation since the pause (the partition may be assigned again, from its committed
        // offset) makes the position stale.
        let generation = shared.revocations().generation();
        let positions: HashMap<TopicPartition, i64> = released
            .iter()
            .filter_map(|tp| match self.positions.remove(tp)? {
                (offset, paused_in) if paused_in == generation => Some((tp.clone(), offset)),
                _ => None,
            })
            .collect();
        let by_handler = shared.control().handler_pauses();
        let resume = {
            let offsets = shared.offsets();
            let owned = |tp: &TopicPartition| offsets.owns(&tp.topic, tp.partition);
            self.resumable(released, shared.control().is_paused(), &by_handler, owned)
        };
        if resume.is_empty() {
            return;
        }
        let listener = &*shared.listener_id;
        if let Err(error) = consumer.resume(&to_list(&resume)) {
            tracing::warn!(listener, %error, "could not resume {why}");
            return;
        }
        for tp in &resume {
            let Some(&offset) = positions.get(tp) else { continue };
            if let Err(error) = consumer.seek(&tp.topic, tp.partition, Offset::Offset(offset), SEEK_TIMEOUT) {
                // It still fetches from there, only later.
                tracing::debug!(listener, topic = tp.topic, partition = tp.partition, offset, %error,
                    "seek at resume failed");
            }
        }
    }

    /// Resumes the whole assignment but for the partitions the resume rule holds.
    pub(crate) fn resume_all(&mut self, consumer: &KafkaConsumer, shared: &ContainerShared) -> KafkaResult<()> {
        let assignment = consumer.assignment()?;
        let by_handler = shared.control().handler_pauses();
        let resume: Vec<TopicPartition> =
            crate::topic_partition::of_list(&assignment).into_iter().filter(|tp| !self.held(tp, &by_handler)).collect();
        self.forget_positions(&resume);
        consumer.resume(&to_list(&resume))
    }

    /// Waits `duration` with the assignment paused, serving rebalances (a stop ends the wait at
    /// once). Records fetched meanwhile are not lost: their partitions are sought back to them
    /// afterwards.
    pub(crate) fn paused_wait(
        &mut self,
        consumer: &KafkaConsumer,
        shared: &ContainerShared,
        stop: &mut StopClock,
        duration: Duration,
    ) {
        let listener = &*shared.listener_id;
        let paused = consumer.assignment().and_then(|a| consumer.pause(&a));
        if let Err(error) = &paused {
            tracing::warn!(listener, %error, "could not pause for a retry wait");
        }
        let deadline = Instant::now() + duration;
        let mut rewinds: HashMap<TopicPartition, i64> = HashMap::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || stop.stopping(shared) {
                break;
            }
            shared.stats().polled();
            if let Some(Ok(message)) = consumer.poll(left.min(WAIT_SLICE)) {
                let offset = message.offset();
                rewinds
                    .entry(TopicPartition::new(message.topic(), message.partition()))
                    .and_modify(|o| *o = (*o).min(offset))
                    .or_insert(offset);
            }
        }
        if !shared.control().pause_requested() {
            if let Err(error) = self.resume_all(consumer, shared) {
                tracing::warn!(listener, %error, "could not resume after a retry wait");
            }
        }
        for (tp, offset) in rewinds {
            if let Err(error) = consumer.seek(&tp.topic, tp.partition, Offset::Offset(offset), SEEK_TIMEOUT) {
                tracing::warn!(listener, topic = tp.topic, partition = tp.partition, offset, %error,
                    "seek after a retry wait failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    #[test]
    fn a_partition_resumes_only_when_no_reason_holds_it() {
        let mut holds = PartitionHolds::default();
        let now = Instant::now();
        holds.hold(tp(0), Hold::DueAt(now));
        holds.hold(tp(0), Hold::Throttled);
        holds.hold(tp(1), Hold::DueAt(now + Duration::from_secs(60)));
        let none = BTreeSet::new();
        // Due, but still throttled: released by one reason, held by the other.
        let due = holds.release_due(now);
        assert_eq!(due, [tp(0)]);
        assert!(holds.resumable(due, false, &none, |_| true).is_empty());
        // Caught up: nothing holds it any more.
        let caught_up = holds.release_throttled(|_| true);
        assert_eq!(holds.resumable(caught_up, false, &none, |_| true), [tp(0)]);
        // Partition 1 is not due yet.
        assert!(holds.release_due(now).is_empty());
        assert!(holds.held(&tp(1), &none));
    }

    #[test]
    fn handler_pauses_container_pauses_and_lost_partitions_are_not_resumed() {
        let mut holds = PartitionHolds::default();
        let now = Instant::now();
        for p in 0..3 {
            holds.hold(tp(p), Hold::DueAt(now));
        }
        let by_handler: BTreeSet<TopicPartition> = [tp(0)].into();
        let released = holds.release_due(now);
        assert_eq!(released.len(), 3);
        assert!(holds.resumable(released.clone(), true, &by_handler, |_| true).is_empty());
        let mut resumed = holds.resumable(released, false, &by_handler, |tp| tp.partition != 2);
        resumed.sort();
        assert_eq!(resumed, [tp(1)]);
    }

    #[test]
    fn throttled_partitions_release_by_the_callers_rule() {
        let mut holds = PartitionHolds::default();
        holds.hold(tp(0), Hold::Throttled);
        holds.hold(tp(1), Hold::Throttled);
        assert!(holds.is_throttled(&tp(1)));
        assert_eq!(holds.release_throttled(|tp| tp.partition == 1), [tp(1)]);
        assert!(!holds.is_throttled(&tp(1)));
        assert!(holds.is_throttled(&tp(0)));
    }
}
