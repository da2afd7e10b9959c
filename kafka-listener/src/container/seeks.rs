//! Seeks: the one resolution of a `SeekTo` into an offset, used by handler seeks, seeks from
//! outside, an assignment callback's seeks and the start positions of explicit partitions.
//!
//! They differ only in what a relative seek counts from (`Base`): a running partition counts from
//! the next record the listener would get, a partition being assigned from the group's committed
//! offset, `"end-10"` from the end. One difference is kept on purpose: a partition being assigned
//! starts at `Beginning` / `End` as librdkafka's logical offsets (`start_offset`), which
//! librdkafka resolves when fetching starts (no round trip, nothing appended in between is
//! missed); a running partition needs the concrete offset, since its tracker is rewound to it.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};

pub(crate) use super::control::SeekTo;
use crate::support::offset_for_time;
use crate::TopicPartition;
use kafka_listener_rules::StartPosition;

/// How long a seek, or a look-up for one, may take.
pub(crate) const SEEK_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a relative seek counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    /// The next record the listener would get (the first held one of the partition).
    Next(i64),
    /// The consumer's position (the partition's first kept offset without one).
    Position,
    /// The group's committed offset (the first kept offset without one).
    Committed,
    /// The partition's end.
    End,
}

/// The broker look-ups a seek may need, through a consumer.
pub(crate) struct Lookup<'a, C: ConsumerContext> {
    pub(crate) consumer: &'a BaseConsumer<C>,
    /// Client properties for reading records by offset (offsets for times without a broker index).
    pub(crate) config: &'a ClientConfig,
}

impl<C: ConsumerContext> Lookup<'_, C> {
    fn watermarks(&self, tp: &TopicPartition) -> KafkaResult<(i64, i64)> {
        self.consumer.fetch_watermarks(&tp.topic, tp.partition, SEEK_TIMEOUT)
    }

    fn base(&self, tp: &TopicPartition, base: Base, low: i64, high: i64) -> KafkaResult<i64> {
        let offset_of = |tpl: TopicPartitionList| match tpl.find_partition(&tp.topic, tp.partition).map(|e| e.offset())
        {
            Some(Offset::Offset(offset)) => offset,
            _ => low,
        };
        Ok(match base {
            Base::Next(offset) => offset,
            Base::End => high,
            Base::Position => offset_of(self.consumer.position()?),
            Base::Committed => {
                offset_of(self.consumer.committed_offsets(crate::topic_partition::to_list([tp]), SEEK_TIMEOUT)?)
            }
        })
    }
}

/// The offset a seek moves `tp` to. A relative seek counts from `base` and stays within the
/// partition's kept records.
pub(crate) fn resolve<C: ConsumerContext>(
    lookup: &Lookup<'_, C>,
    tp: &TopicPartition,
    to: SeekTo,
    base: Base,
) -> KafkaResult<i64> {
    match to {
        SeekTo::Offset(offset) => Ok(offset),
        SeekTo::Beginning => lookup.watermarks(tp).map(|(low, _)| low),
        SeekTo::End => lookup.watermarks(tp).map(|(_, high)| high),
        SeekTo::Timestamp(ms) => {
            offset_for_time(lookup.consumer, lookup.config, &tp.topic, tp.partition, ms, SEEK_TIMEOUT)
        }
        SeekTo::Relative(delta) => {
            let (low, high) = lookup.watermarks(tp)?;
            let from = lookup.base(tp, base, low, high)?;
            Ok(from.saturating_add(delta).clamp(low, high))
        }
    }
}

/// Where a partition being assigned starts, for a seek asked before it is fetched: `Beginning`
/// and `End` stay logical offsets (see the module docs); a relative seek counts from `base`.
pub(crate) fn start_offset<C: ConsumerContext>(
    lookup: &Lookup<'_, C>,
    tp: &TopicPartition,
    to: SeekTo,
    base: Base,
) -> KafkaResult<Offset> {
    match to {
        SeekTo::Beginning => Ok(Offset::Beginning),
        SeekTo::End => Ok(Offset::End),
        other => resolve(lookup, tp, other, base).map(Offset::Offset),
    }
}

/// The seek a start position of `topic_partitions` is (`None`: the group's committed offset,
/// librdkafka's `Offset::Stored`), and what its relative form counts from.
pub(crate) fn of_start(start: StartPosition) -> Option<(SeekTo, Base)> {
    match start {
        StartPosition::Committed => None,
        StartPosition::Beginning => Some((SeekTo::Beginning, Base::Committed)),
        StartPosition::End => Some((SeekTo::End, Base::Committed)),
        StartPosition::Offset(offset) => Some((SeekTo::Offset(offset), Base::Committed)),
        StartPosition::FromEnd(count) => Some((SeekTo::Relative(count.saturating_neg()), Base::End)),
        StartPosition::Timestamp(ms) => Some((SeekTo::Timestamp(ms), Base::Committed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_are_seeks() {
        assert_eq!(of_start(StartPosition::Committed), None);
        assert_eq!(of_start(StartPosition::FromEnd(10)), Some((SeekTo::Relative(-10), Base::End)));
        assert_eq!(of_start(StartPosition::Timestamp(5)), Some((SeekTo::Timestamp(5), Base::Committed)));
        assert_eq!(of_start(StartPosition::Offset(42)), Some((SeekTo::Offset(42), Base::Committed)));
    }
}
