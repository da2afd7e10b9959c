use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::TopicPartitionList;

use super::shared::{lock, ContainerShared, SeekTo};
use crate::error::{Error, Result};
use crate::extract::{BatchConversion, ConversionError, FromBatch, FromRecord, ListenerContext, Record, Requirements};

/// A handle on the consumer of the container that invokes the listener (Spring's
/// consumer-aware listeners): pause, resume, seek, inspect the assignment, commit.
///
/// Seeks are applied after the handler returns, and the records of that partition still held
/// from the current poll are dropped (they will be fetched again from the new position).
#[derive(Clone)]
pub struct ConsumerHandle {
    container: Arc<ContainerShared>,
}

impl fmt::Debug for ConsumerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumerHandle").field("listener", &&*self.container.listener_id).finish()
    }
}

impl ConsumerHandle {
    pub(crate) fn new(container: Arc<ContainerShared>) -> Self {
        ConsumerHandle { container }
    }

    fn with_consumer<T>(
        &self,
        what: &str,
        f: impl FnOnce(&super::shared::KafkaConsumer) -> rdkafka::error::KafkaResult<T>,
    ) -> Result<T> {
        let consumer = self.container.consumer().ok_or_else(|| {
            Error::config("consumer", format!("the container of listener `{}` is stopped", self.container.listener_id))
        })?;
        f(&consumer).map_err(|e| Error::kafka(format!("{what} (listener `{}`)", self.container.listener_id), e))
    }

    /// The partitions this container's consumer owns now.
    pub fn assignment(&self) -> Result<Vec<(String, i32)>> {
        self.with_consumer("reading the assignment", |c| c.assignment()).map(|tpl| pairs(&tpl))
    }

    /// Stops fetching from these partitions until [`resume`](Self::resume).
    pub fn pause(&self, partitions: &[(&str, i32)]) -> Result<()> {
        let tpl = tpl(partitions);
        self.with_consumer("pausing partitions", |c| c.pause(&tpl))?;
        let mut paused = lock(&self.container.paused_by_handler);
        paused.extend(partitions.iter().map(|(t, p)| (t.to_string(), *p)));
        Ok(())
    }

    /// Resumes fetching from these partitions.
    pub fn resume(&self, partitions: &[(&str, i32)]) -> Result<()> {
        let tpl = tpl(partitions);
        self.with_consumer("resuming partitions", |c| c.resume(&tpl))?;
        let mut paused = lock(&self.container.paused_by_handler);
        for (topic, partition) in partitions {
            paused.remove(&(topic.to_string(), *partition));
        }
        Ok(())
    }

    /// The partitions paused through this handle.
    pub fn paused(&self) -> Vec<(String, i32)> {
        lock(&self.container.paused_by_handler).iter().cloned().collect()
    }

    /// Moves the partition's position to `offset`: the next record delivered from it is the one at
    /// `offset`. From a handler, applied after it returns (the records of that partition still in
    /// hand are dropped); from elsewhere, before the container's next poll.
    pub fn seek(&self, topic: &str, partition: i32, offset: i64) {
        self.seek_to(topic, partition, SeekTo::Offset(offset));
    }

    /// Moves these partitions to their first kept record.
    pub fn seek_to_beginning(&self, partitions: &[(&str, i32)]) {
        partitions.iter().for_each(|(t, p)| self.seek_to(t, *p, SeekTo::Beginning));
    }

    /// Moves these partitions to their end: only records produced from now on are delivered.
    pub fn seek_to_end(&self, partitions: &[(&str, i32)]) {
        partitions.iter().for_each(|(t, p)| self.seek_to(t, *p, SeekTo::End));
    }

    /// Moves these partitions to their first record at or after `timestamp_ms` (offsets for
    /// times); to their end when there is none.
    pub fn seek_to_timestamp(&self, partitions: &[(&str, i32)], timestamp_ms: i64) {
        partitions.iter().for_each(|(t, p)| self.seek_to(t, *p, SeekTo::Timestamp(timestamp_ms)));
    }

    /// Moves the partition `delta` records from its current position (negative: back).
    pub fn seek_relative(&self, topic: &str, partition: i32, delta: i64) {
        self.seek_to(topic, partition, SeekTo::Relative(delta));
    }

    /// Moves the partition's position; every `seek_*` method comes here.
    pub fn seek_to(&self, topic: &str, partition: i32, to: SeekTo) {
        lock(&self.container.requests).seeks.push((topic.to_string(), partition, to));
    }

    /// The committed offset of each partition this consumer owns (`None`: nothing committed yet).
    /// Blocks up to `timeout` for the broker.
    pub fn committed(&self, timeout: Duration) -> Result<BTreeMap<(String, i32), Option<i64>>> {
        let tpl = self.with_consumer("reading committed offsets", |c| c.committed(timeout))?;
        Ok(tpl
            .elements()
            .iter()
            .map(|e| ((e.topic().to_string(), e.partition()), e.offset().to_raw().filter(|o| *o >= 0)))
            .collect())
    }

    /// The first kept offset (low watermark) of each partition this consumer owns.
    pub fn beginning_offsets(&self, timeout: Duration) -> Result<BTreeMap<(String, i32), i64>> {
        Ok(self.watermarks(timeout)?.into_iter().map(|(tp, (low, _))| (tp, low)).collect())
    }

    /// The end offset (high watermark: the offset the next record will get) of each partition this
    /// consumer owns.
    pub fn end_offsets(&self, timeout: Duration) -> Result<BTreeMap<(String, i32), i64>> {
        Ok(self.watermarks(timeout)?.into_iter().map(|(tp, (_, high))| (tp, high)).collect())
    }

    /// The records of each owned partition not committed yet: end offset − committed offset (or −
    /// the first kept offset when nothing is committed).
    pub fn lag(&self, timeout: Duration) -> Result<BTreeMap<(String, i32), i64>> {
        let committed = self.committed(timeout)?;
        Ok(self
            .watermarks(timeout)?
            .into_iter()
            .map(|(tp, (low, high))| {
                let from = committed.get(&tp).copied().flatten().unwrap_or(low);
                (tp, (high - from).max(0))
            })
            .collect())
    }

    fn watermarks(&self, timeout: Duration) -> Result<BTreeMap<(String, i32), (i64, i64)>> {
        let owned = self.assignment()?;
        let mut marks = BTreeMap::new();
        for (topic, partition) in owned {
            let mark = self.with_consumer("reading watermarks", |c| c.fetch_watermarks(&topic, partition, timeout))?;
            marks.insert((topic, partition), mark);
        }
        Ok(marks)
    }

    /// Commits the offsets processed so far, waiting for the broker.
    pub fn commit_sync(&self) -> Result<()> {
        let consumer = self.container.consumer().ok_or_else(|| {
            Error::config("consumer", format!("the container of listener `{}` is stopped", self.container.listener_id))
        })?;
        self.container
            .commit(&consumer, true, crate::ack::Selection::All)
            .map_err(|e| Error::kafka(format!("committing (listener `{}`)", self.container.listener_id), e))
    }

    /// The listener id of the container.
    pub fn listener_id(&self) -> &str {
        &self.container.listener_id
    }
}

fn tpl(partitions: &[(&str, i32)]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in partitions {
        tpl.add_partition(topic, *partition);
    }
    tpl
}

pub(crate) fn pairs(tpl: &TopicPartitionList) -> Vec<(String, i32)> {
    let mut pairs: Vec<_> = tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
    pairs.sort();
    pairs
}

impl FromRecord for ConsumerHandle {
    fn from_record(_record: &Record<'_>, cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
        Ok(ConsumerHandle::new(cx.container.clone()))
    }

    fn requirements(requirements: &mut Requirements) {
        requirements.consumer_aware = true;
    }
}

impl FromBatch for ConsumerHandle {
    fn from_batch(_records: &[Record<'_>], cx: &ListenerContext<'_>) -> BatchConversion<Self> {
        Ok(ConsumerHandle::new(cx.container.clone()))
    }

    fn requirements(requirements: &mut Requirements) {
        requirements.consumer_aware = true;
    }
}
