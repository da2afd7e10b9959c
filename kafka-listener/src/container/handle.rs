use std::fmt;
use std::sync::Arc;

use rdkafka::consumer::Consumer;
use rdkafka::TopicPartitionList;

use super::shared::{lock, ContainerShared};
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
    /// `offset`. Applied after the handler returns.
    pub fn seek(&self, topic: &str, partition: i32, offset: i64) {
        lock(&self.container.requests).seeks.push((topic.to_string(), partition, offset));
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
