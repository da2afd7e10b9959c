//! Offsets for times: the broker's ListOffsets by timestamp, with a fallback for brokers that do
//! not answer it (librdkafka's mock cluster, the embedded broker, always answers "none").

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// The offset of the first record of the partition whose timestamp is at or after `timestamp_ms`;
/// the end offset when there is none.
///
/// Asks the broker first. When it answers "none" although the partition's last record is at or
/// after the time, the broker does not index timestamps, and the offset is found by a binary
/// search over the partition's records (read one at a time by a consumer of `probe_config`,
/// assuming timestamps grow with offsets, as with CreateTime from one producer or LogAppendTime).
pub(crate) fn offset_for_time<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    probe_config: &ClientConfig,
    topic: &str,
    partition: i32,
    timestamp_ms: i64,
    timeout: Duration,
) -> KafkaResult<i64> {
    offsets_for_times(consumer, probe_config, topic, partition, &[timestamp_ms], timeout).map(|found| found[0])
}

/// [`offset_for_time`] for several times of one partition, sharing one probe consumer.
pub(crate) fn offsets_for_times<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    probe_config: &ClientConfig,
    topic: &str,
    partition: i32,
    timestamps_ms: &[i64],
    timeout: Duration,
) -> KafkaResult<Vec<i64>> {
    let mut probe = None;
    timestamps_ms
        .iter()
        .map(|&ts| one_offset_for_time(consumer, probe_config, &mut probe, topic, partition, ts, timeout))
        .collect()
}

fn one_offset_for_time<'t, C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    probe_config: &ClientConfig,
    probe: &mut Option<Probe<'t>>,
    topic: &'t str,
    partition: i32,
    timestamp_ms: i64,
    timeout: Duration,
) -> KafkaResult<i64> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(timestamp_ms))?;
    let found = consumer.offsets_for_times(tpl, timeout)?;
    if let Some(Offset::Offset(offset)) = found.find_partition(topic, partition).map(|e| e.offset()) {
        return Ok(offset);
    }
    let (low, high) = consumer.fetch_watermarks(topic, partition, timeout)?;
    if low >= high {
        return Ok(high);
    }
    if probe.is_none() {
        *probe = Some(Probe::new(probe_config, topic, partition, timeout)?);
    }
    let Some(probe) = probe.as_ref() else { return Ok(high) };
    if probe.timestamp_at(high - 1)? < timestamp_ms {
        return Ok(high);
    }
    let (mut lo, mut hi) = (low, high - 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if probe.timestamp_at(mid)? >= timestamp_ms {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(lo)
}

/// A consumer that reads single records by offset.
struct Probe<'t> {
    consumer: BaseConsumer,
    topic: &'t str,
    partition: i32,
    timeout: Duration,
}

impl<'t> Probe<'t> {
    fn new(config: &ClientConfig, topic: &'t str, partition: i32, timeout: Duration) -> KafkaResult<Self> {
        let mut config = config.clone();
        config
            .set("group.id", "kafka-listener-time-index")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("fetch.wait.max.ms", "10")
            .set("fetch.queue.backoff.ms", "0")
            .set("queued.min.messages", "1")
            .set("fetch.message.max.bytes", "65536");
        config.remove("group.instance.id");
        Ok(Probe { consumer: config.create()?, topic, partition, timeout })
    }

    /// The timestamp of the record at `offset` (or the first one after it).
    fn timestamp_at(&self, offset: i64) -> KafkaResult<i64> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(self.topic, self.partition, Offset::Offset(offset))?;
        self.consumer.assign(&tpl)?;
        let deadline = Instant::now() + self.timeout;
        while Instant::now() < deadline {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) if message.partition() == self.partition && message.offset() >= offset => {
                    return message.timestamp().to_millis().ok_or(KafkaError::NoMessageReceived);
                }
                Some(Err(error)) => return Err(error),
                _ => {}
            }
        }
        Err(KafkaError::NoMessageReceived)
    }
}
