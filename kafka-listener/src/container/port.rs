//! The narrow handle extractors reach their container through: acknowledgments, nack, seeks and
//! the consumer handle. Extractors see nothing else of the container.

use std::sync::Arc;
use std::time::Duration;

use super::shared::ContainerShared;
use crate::ack::{DeliveryId, OffsetTracker};
use crate::config::AckMode;
use crate::extract::Record;
use crate::ConsumerHandle;

/// A listener invocation's way to its container.
#[derive(Clone)]
pub(crate) struct ContainerPort {
    shared: Arc<ContainerShared>,
}

/// One delivered record as an acknowledgment holds it: the topic's shared name, the partition,
/// the offset, and which delivery it is (`None`: not tracked, acknowledging it changes nothing).
#[derive(Clone)]
pub(crate) struct DeliveredRecord {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) delivery: Option<DeliveryId>,
}

impl ContainerPort {
    pub(crate) fn new(shared: Arc<ContainerShared>) -> Self {
        ContainerPort { shared }
    }

    /// The deliveries of these records, for an acknowledgment to name.
    pub(crate) fn deliveries(&self, records: &[Record<'_>]) -> Vec<DeliveredRecord> {
        let mut offsets = self.shared.offsets();
        records.iter().map(|r| delivered(&mut offsets, r)).collect()
    }

    /// The delivery of one record.
    pub(crate) fn delivery(&self, record: &Record<'_>) -> DeliveredRecord {
        delivered(&mut self.shared.offsets(), record)
    }

    /// Acknowledges these deliveries; with `ManualImmediate`, commits at once. Deliveries that
    /// are no longer current (revoked, sought, nacked or retried since) are ignored and logged at
    /// debug level.
    pub(crate) fn acknowledge(&self, records: &[DeliveredRecord]) {
        {
            let mut offsets = self.shared.offsets();
            for r in records {
                let counted = r.delivery.is_some_and(|id| offsets.acknowledge(&r.topic, r.partition, r.offset, id));
                if !counted {
                    tracing::debug!(listener = &*self.shared.listener_id, topic = &*r.topic, partition = r.partition,
                        offset = r.offset, "acknowledgment ignored: it belongs to an earlier delivery of the record (revoked, sought, nacked or retried since)");
                }
            }
        }
        self.shared.acknowledged();
        if self.shared.ack_mode() == AckMode::ManualImmediate {
            self.shared.commit_now();
        }
    }

    /// Asks for the records to be delivered again after `sleep` (see `Acknowledgment::nack`).
    pub(crate) fn nack(&self, records: &[DeliveredRecord], sleep: Duration) {
        self.shared.request_nack(records, sleep);
    }

    /// A handle on the container's consumer.
    pub(crate) fn consumer_handle(&self) -> ConsumerHandle {
        ConsumerHandle::new(self.shared.clone())
    }
}

fn delivered(offsets: &mut OffsetTracker, r: &Record<'_>) -> DeliveredRecord {
    DeliveredRecord {
        topic: offsets.intern(r.topic()),
        partition: r.partition(),
        offset: r.offset(),
        delivery: offsets.delivery(r.topic(), r.partition(), r.offset()),
    }
}
