use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::AckMode;
use crate::container::ContainerShared;
use crate::extract::{BatchConversion, ConversionError, FromBatch, FromRecord, ListenerContext, Record, Requirements};

/// Acknowledges the record (or batch) a listener was given, with `AckMode::Manual` or
/// `AckMode::ManualImmediate` (Spring's `Acknowledgment`).
///
/// It may be cloned and moved into a spawned task and acknowledged there, in any order: the
/// container commits only the contiguous prefix of acknowledged records of each partition.
/// A record that is never acknowledged holds back its partition's commits.
#[derive(Clone)]
pub struct Acknowledgment {
    container: Arc<ContainerShared>,
    records: AckTarget,
}

#[derive(Clone)]
enum AckTarget {
    Record { topic: Arc<str>, partition: i32, offset: i64 },
    Batch(Arc<[(Arc<str>, i32, i64)]>),
}

impl Acknowledgment {
    /// Marks the record(s) processed. With `ManualImmediate` the commit is sent right away;
    /// with `Manual` it is sent once the current poll's records are handled.
    /// Acknowledging twice is harmless; acknowledging after the partition was revoked is ignored.
    pub fn acknowledge(&self) {
        {
            let mut offsets = self.container.offsets();
            match &self.records {
                AckTarget::Record { topic, partition, offset } => {
                    offsets.complete(topic, *partition, *offset, true);
                }
                AckTarget::Batch(records) => {
                    for (topic, partition, offset) in records.iter() {
                        offsets.complete(topic, *partition, *offset, true);
                    }
                }
            }
        }
        if self.container.ack_mode == AckMode::ManualImmediate {
            self.container.commit_now();
        }
    }

    /// Negatively acknowledges: the record (for a batch, the whole batch) and the rest of its poll
    /// are delivered again after `sleep`. The consumer stays in its group meanwhile (its partitions
    /// are paused, not slept on). Call it in the handler, on the container's thread; elsewhere it
    /// is ignored with a warning.
    pub fn nack(&self, sleep: Duration) {
        self.container.request_nack(sleep);
    }

    fn for_record(record: &Record<'_>, cx: &ListenerContext<'_>) -> Self {
        let topic = cx.container.offsets().intern(record.topic());
        Acknowledgment {
            container: cx.container.clone(),
            records: AckTarget::Record { topic, partition: record.partition(), offset: record.offset() },
        }
    }
}

impl fmt::Debug for Acknowledgment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.records {
            AckTarget::Record { topic, partition, offset } => {
                write!(f, "Acknowledgment({topic}-{partition}@{offset})")
            }
            AckTarget::Batch(records) => write!(f, "Acknowledgment({} records)", records.len()),
        }
    }
}

impl FromRecord for Acknowledgment {
    fn from_record(record: &Record<'_>, cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
        Ok(Acknowledgment::for_record(record, cx))
    }

    fn requirements(requirements: &mut Requirements) {
        requirements.acknowledging = true;
    }
}

impl FromBatch for Acknowledgment {
    fn from_batch(records: &[Record<'_>], cx: &ListenerContext<'_>) -> BatchConversion<Self> {
        let targets: Vec<_> = {
            let mut offsets = cx.container.offsets();
            records.iter().map(|r| (offsets.intern(r.topic()), r.partition(), r.offset())).collect()
        };
        Ok(Acknowledgment { container: cx.container.clone(), records: AckTarget::Batch(targets.into()) })
    }

    fn requirements(requirements: &mut Requirements) {
        requirements.acknowledging = true;
    }
}
