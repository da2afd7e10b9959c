use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::container::{ContainerPort, DeliveredRecord};
use crate::extract::{BatchConversion, ConversionError, FromBatch, FromRecord, ListenerContext, Record, Requirements};

/// Acknowledges the record (or batch) a listener was given, with `AckMode::Manual` or
/// `AckMode::ManualImmediate` (Spring's `Acknowledgment`).
///
/// It may be cloned and moved into a spawned task and acknowledged there, in any order: the
/// container commits only the contiguous prefix of acknowledged records of each partition.
/// A record that is never acknowledged holds back its partition's commits.
#[derive(Clone)]
pub struct Acknowledgment {
    container: ContainerPort,
    records: AckTarget,
}

#[derive(Clone)]
enum AckTarget {
    Record(DeliveredRecord),
    Batch(Arc<[DeliveredRecord]>),
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
        let targets = match &self.records {
            AckTarget::Record(target) => std::slice::from_ref(target),
            AckTarget::Batch(targets) => &targets[..],
        };
        self.container.acknowledge(targets);
    }

    /// Negatively acknowledges: the record (for a batch, the whole batch) and the rest of its poll
    /// are delivered again after `sleep`. What was acknowledged before it is committed before the
    /// sleep (as Spring commits pending offsets before a nack's pause), and the consumer stays in
    /// its group meanwhile (its partitions are paused, not slept on). Call it in the handler, on
    /// the container's thread; elsewhere it is ignored with a warning.
    ///
    /// With [`ProcessingOrder::Key`](crate::ProcessingOrder::Key) or
    /// [`Unordered`](crate::ProcessingOrder::Unordered), where handlers run as tasks, a nack
    /// concerns only this record: when its handler returns, the record is delivered again after
    /// `sleep` (the delivery attempt unchanged; not the error handler's business) while only its
    /// key (Key) or only it (Unordered) waits; other records go on. Call it before the handler
    /// returns, and not after [`acknowledge`](Self::acknowledge) (an acknowledged record is done).
    pub fn nack(&self, sleep: Duration) {
        let targets = match &self.records {
            AckTarget::Record(target) => std::slice::from_ref(target),
            AckTarget::Batch(targets) => &targets[..],
        };
        self.container.nack(targets, sleep);
    }

    fn for_record(record: &Record<'_>, cx: &ListenerContext<'_>) -> Self {
        let target = cx.container.delivery(record);
        Acknowledgment { container: cx.container.clone(), records: AckTarget::Record(target) }
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
        let targets = cx.container.deliveries(records);
        Ok(Acknowledgment { container: cx.container.clone(), records: AckTarget::Batch(targets.into()) })
    }

    fn requirements(requirements: &mut Requirements) {
        requirements.acknowledging = true;
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
