use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;

use super::control::SeekTo;
use super::shared::ContainerShared;
use crate::error::{Error, Result};
use crate::extract::{BatchConversion, ConversionError, FromBatch, FromRecord, ListenerContext, Record, Requirements};
use crate::topic_partition::{of_list, to_list};
use crate::TopicPartition;

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
        f: impl FnOnce(&super::context::KafkaConsumer) -> rdkafka::error::KafkaResult<T>,
    ) -> Result<T> {
        let consumer = self.container.consumer().ok_or_else(|| self.stopped())?;
        f(&consumer).map_err(|e| Error::kafka(format!("{what} (listener `{}`)", self.container.listener_id), e))
    }

    /// The partitions this container's consumer owns now, sorted.
    ///
    /// Errors: [`Error::ContainerStopped`] once the container has stopped; [`Error::Kafka`] when
    /// librdkafka cannot say.
    pub fn assignment(&self) -> Result<Vec<TopicPartition>> {
        self.with_consumer("reading the assignment", |c| c.assignment()).map(|tpl| of_list(&tpl))
    }

    /// Stops fetching from these partitions until [`resume`](Self::resume) (Kafka's
    /// `Consumer.pause`). They stay paused across a rebalance that gives them back, and the
    /// container's own waits (retries, back-pressure) do not resume them. Records of these
    /// partitions already fetched in the current poll are still delivered (as with Kafka's and
    /// Spring's pause); only later fetches stop. Takes `TopicPartition`s or `(topic, partition)`
    /// pairs: `handle.pause(&[("orders", 0)])`.
    ///
    /// Errors: [`Error::ContainerStopped`], [`Error::Kafka`].
    pub fn pause<P: Into<TopicPartition> + Clone>(&self, partitions: &[P]) -> Result<()> {
        let partitions = owned(partitions);
        let tpl = to_list(&partitions);
        self.with_consumer("pausing partitions", |c| c.pause(&tpl))?;
        self.container.control().paused_by_handler(partitions);
        Ok(())
    }

    /// Resumes fetching from these partitions (Kafka's `Consumer.resume`).
    ///
    /// Errors: [`Error::ContainerStopped`], [`Error::Kafka`].
    pub fn resume<P: Into<TopicPartition> + Clone>(&self, partitions: &[P]) -> Result<()> {
        let partitions = owned(partitions);
        let tpl = to_list(&partitions);
        self.with_consumer("resuming partitions", |c| c.resume(&tpl))?;
        self.container.control().resumed_by_handler(&partitions);
        Ok(())
    }

    /// The partitions paused through a handle of this container, sorted.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.container.control().paused()
    }

    /// Moves the partition's position to `offset`: the next record delivered from it is the one at
    /// `offset`. From a handler, applied after it returns (the records of that partition still in
    /// hand are dropped); from elsewhere, before the container's next poll.
    pub fn seek(&self, topic: &str, partition: i32, offset: i64) {
        self.seek_to(topic, partition, SeekTo::Offset(offset));
    }

    /// Moves these partitions to their first kept record.
    pub fn seek_to_beginning<P: Into<TopicPartition> + Clone>(&self, partitions: &[P]) {
        self.seek_all(partitions, SeekTo::Beginning);
    }

    /// Moves these partitions to their end: only records produced from now on are delivered.
    pub fn seek_to_end<P: Into<TopicPartition> + Clone>(&self, partitions: &[P]) {
        self.seek_all(partitions, SeekTo::End);
    }

    /// Moves these partitions to their first record at or after `timestamp_ms` (ms since the
    /// epoch; Kafka's offsets for times); to their end when there is none.
    pub fn seek_to_timestamp<P: Into<TopicPartition> + Clone>(&self, partitions: &[P], timestamp_ms: i64) {
        self.seek_all(partitions, SeekTo::Timestamp(timestamp_ms));
    }

    fn seek_all<P: Into<TopicPartition> + Clone>(&self, partitions: &[P], to: SeekTo) {
        for tp in owned(partitions) {
            self.request_seek(tp, to);
        }
    }

    /// Queues a seek for the poll loop; a seek on a stopped consumer would never be applied, so
    /// it is dropped with a warning instead.
    fn request_seek(&self, tp: TopicPartition, to: SeekTo) {
        if self.container.stats().is_finished() {
            tracing::warn!(listener = %self.container.listener_id, consumer = self.container.index,
                partition = %tp, ?to, "seek ignored: this handle's consumer is stopped (handles do not survive a stop; take a new one from the running container)");
            return;
        }
        self.container.control().seek(tp, to);
    }

    /// Moves the partition `delta` records from its current position (negative: back): the next
    /// record the listener has not been handed yet (in hand from the current poll, or waiting to
    /// start with `ProcessingOrder::Key`/`Unordered`), else the consumer's position. Spring
    /// Kafka's `seekRelative(.., toCurrent = true)`.
    pub fn seek_relative(&self, topic: &str, partition: i32, delta: i64) {
        self.seek_to(topic, partition, SeekTo::Relative(delta));
    }

    /// Moves the partition's position; every `seek_*` method comes here. From a handler, applied
    /// after it returns; from elsewhere, before the container's next poll. On a handle whose
    /// consumer has stopped, the seek is dropped with a warning (handles do not survive a stop).
    pub fn seek_to(&self, topic: &str, partition: i32, to: SeekTo) {
        self.request_seek(TopicPartition::new(topic, partition), to);
    }

    /// The committed offset of each partition this consumer owns (`None`: nothing committed yet).
    /// Blocks up to `timeout` for the broker.
    ///
    /// Errors: [`Error::ContainerStopped`], [`Error::Kafka`] (e.g. the broker did not answer in
    /// `timeout`).
    pub fn committed(&self, timeout: Duration) -> Result<BTreeMap<TopicPartition, Option<i64>>> {
        let tpl = self.with_consumer("reading committed offsets", |c| c.committed(timeout))?;
        Ok(tpl
            .elements()
            .iter()
            .map(|e| (TopicPartition::new(e.topic(), e.partition()), e.offset().to_raw().filter(|o| *o >= 0)))
            .collect())
    }

    /// The first kept offset (low watermark) of each partition this consumer owns.
    ///
    /// Errors: [`Error::ContainerStopped`], [`Error::Kafka`].
    pub fn beginning_offsets(&self, timeout: Duration) -> Result<BTreeMap<TopicPartition, i64>> {
        Ok(self.watermarks(timeout)?.into_iter().map(|(tp, (low, _))| (tp, low)).collect())
    }

    /// The end offset (high watermark: the offset the next record will get) of each partition this
    /// consumer owns.
    ///
    /// Errors: [`Error::ContainerStopped`], [`Error::Kafka`].
    pub fn end_offsets(&self, timeout: Duration) -> Result<BTreeMap<TopicPartition, i64>> {
        Ok(self.watermarks(timeout)?.into_iter().map(|(tp, (_, high))| (tp, high)).collect())
    }

    /// The records of each owned partition not committed yet: end offset − committed offset (or −
    /// the first kept offset when nothing is committed).
    ///
    /// Errors: [`Error::ContainerStopped`], [`Error::Kafka`].
    pub fn lag(&self, timeout: Duration) -> Result<BTreeMap<TopicPartition, i64>> {
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

    fn watermarks(&self, timeout: Duration) -> Result<BTreeMap<TopicPartition, (i64, i64)>> {
        let owned = self.assignment()?;
        let mut marks = BTreeMap::new();
        for tp in owned {
            let mark =
                self.with_consumer("reading watermarks", |c| c.fetch_watermarks(&tp.topic, tp.partition, timeout))?;
            marks.insert(tp, mark);
        }
        Ok(marks)
    }

    /// Commits the offsets processed so far, waiting for the broker.
    pub fn commit_sync(&self) -> Result<()> {
        let consumer = self.container.consumer().ok_or_else(|| self.stopped())?;
        self.container
            .commit(&consumer, true, crate::ack::Selection::All)
            .map_err(|e| Error::kafka(format!("committing (listener `{}`)", self.container.listener_id), e))
    }

    fn stopped(&self) -> Error {
        Error::ContainerStopped { listener: self.container.listener_id.to_string(), consumer: self.container.index }
    }

    /// The listener id of the container.
    pub fn listener_id(&self) -> &str {
        &self.container.listener_id
    }
}

/// The partitions of a slice of `TopicPartition`s or `(topic, partition)` pairs.
fn owned<P: Into<TopicPartition> + Clone>(partitions: &[P]) -> Vec<TopicPartition> {
    partitions.iter().cloned().map(Into::into).collect()
}

impl FromRecord for ConsumerHandle {
    fn from_record(_record: &Record<'_>, cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
        Ok(cx.container.consumer_handle())
    }

    fn requirements(requirements: &mut Requirements) {
        requirements.consumer_aware = true;
    }
}

impl FromBatch for ConsumerHandle {
    fn from_batch(_records: &[Record<'_>], cx: &ListenerContext<'_>) -> BatchConversion<Self> {
        Ok(cx.container.consumer_handle())
    }

    fn requirements(requirements: &mut Requirements) {
        requirements.consumer_aware = true;
    }
}
