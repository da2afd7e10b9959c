use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::ack::DeliveryId;
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
    Record(Target),
    Batch(Arc<[Target]>),
}

/// One delivered record: where it is, and which delivery of it this is (`None`: not tracked, so
/// acknowledging it changes nothing).
#[derive(Clone)]
struct Target {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    delivery: Option<DeliveryId>,
}

impl Target {
    fn of(record: &Record<'_>, offsets: &mut crate::ack::OffsetTracker) -> Self {
        Target {
            topic: offsets.intern(record.topic()),
            partition: record.partition(),
            offset: record.offset(),
            delivery: offsets.delivery(record.topic(), record.partition(), record.offset()),
        }
    }
}

impl Acknowledgment {
    /// Marks the record(s) processed. With `ManualImmediate` the commit is sent right away;
    /// with `Manual` it is sent once the current poll's records are handled.
    ///
    /// Acknowledging twice is harmless. An acknowledgment counts only for the delivery it was
    /// given with: once the record's partition was revoked, sought, nacked or its record retried,
    /// the record is (or will be) delivered again with a new `Acknowledgment`, and this one is
    /// ignored (logged at debug level), so a late task can never commit records nobody
    /// acknowledged.
    pub fn acknowledge(&self) {
        {
            let mut offsets = self.container.offsets();
            let targets = match &self.records {
                AckTarget::Record(target) => std::slice::from_ref(target),
                AckTarget::Batch(targets) => &targets[..],
            };
            for t in targets {
                let counted = t.delivery.is_some_and(|id| offsets.acknowledge(&t.topic, t.partition, t.offset, id));
                if !counted {
                    tracing::debug!(listener = &*self.container.listener_id, topic = &*t.topic, partition = t.partition,
                        offset = t.offset, "acknowledgment ignored: it belongs to an earlier delivery of the record (revoked, sought, nacked or retried since)");
                }
            }
        }
        self.container.acknowledged();
        if self.container.ack_mode == AckMode::ManualImmediate {
            self.container.commit_now();
        }
    }

    /// Negatively acknowledges: the record (for a batch, the whole batch) and the rest of its poll
    /// are delivered again after `sleep`. What was acknowledged before it is committed before the
    /// sleep (as Spring commits pending offsets before a nack's pause), and the consumer stays in
    /// its group meanwhile (its partitions are paused, not slept on). Call it in the handler, on
    /// the container's thread; elsewhere it is ignored with a warning.
    pub fn nack(&self, sleep: Duration) {
        self.container.request_nack(sleep);
    }

    fn for_record(record: &Record<'_>, cx: &ListenerContext<'_>) -> Self {
        let target = Target::of(record, &mut cx.container.offsets());
        Acknowledgment { container: cx.container.clone(), records: AckTarget::Record(target) }
    }
}

impl fmt::Debug for Acknowledgment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.records {
            AckTarget::Record(t) => write!(f, "Acknowledgment({}-{}@{})", t.topic, t.partition, t.offset),
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
        let targets: Vec<Target> = {
            let mut offsets = cx.container.offsets();
            records.iter().map(|r| Target::of(r, &mut offsets)).collect()
        };
        Ok(Acknowledgment { container: cx.container.clone(), records: AckTarget::Batch(targets.into()) })
    }

    fn requirements(requirements: &mut Requirements) {
        requirements.acknowledging = true;
    }
}
