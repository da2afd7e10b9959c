use std::sync::atomic::Ordering;
use std::sync::Arc;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::Consumer;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::TopicPartitionList;

use rdkafka::Offset;

use super::events::ContainerEvent;
use super::shared::{describe, ContainerShared, SeekTo};
use crate::ack::Selection;
use crate::registry::OnPartitionsAssigned;
use crate::support::offset_for_time;

/// The rdkafka context of a container's consumer: logs through `tracing`, commits processed
/// offsets before partitions are revoked, and learns of finished commits.
pub(crate) struct ContainerContext {
    pub(crate) shared: Arc<ContainerShared>,
    /// The listener's callback on assigned partitions.
    pub(crate) on_assigned: Option<OnPartitionsAssigned>,
    /// Client properties for reading records by offset (offsets for times without a broker index).
    pub(crate) probe_config: rdkafka::config::ClientConfig,
}

/// Calls the listener's assignment callback before the partitions in `tpl` are assigned, and puts
/// the seeks it asks for on them into `tpl`'s start offsets: a partition then starts where the
/// callback said, before any record is fetched (a seek after the assignment can fail, e.g. with
/// `auto_offset_reset = error`).
pub(crate) fn start_positions<C: rdkafka::consumer::ConsumerContext>(
    callback: &OnPartitionsAssigned,
    shared: &Arc<ContainerShared>,
    consumer: &BaseConsumer<C>,
    probe_config: &rdkafka::config::ClientConfig,
    tpl: &TopicPartitionList,
) {
    callback(&super::handle::pairs(tpl), &crate::ConsumerHandle::new(shared.clone()));
    let listener = &*shared.listener_id;
    let mut requests = super::shared::lock(&shared.requests);
    let (mine, others): (Vec<_>, Vec<_>) =
        std::mem::take(&mut requests.seeks).into_iter().partition(|(t, p, _)| tpl.find_partition(t, *p).is_some());
    requests.seeks = others;
    drop(requests);
    for (topic, partition, to) in mine {
        let offset = match to {
            SeekTo::Offset(offset) => Ok(Offset::Offset(offset)),
            SeekTo::Beginning => Ok(Offset::Beginning),
            SeekTo::End => Ok(Offset::End),
            SeekTo::Timestamp(ms) => {
                offset_for_time(consumer, probe_config, &topic, partition, ms, START_TIMEOUT).map(Offset::Offset)
            }
            SeekTo::Relative(delta) => relative_to_committed(consumer, &topic, partition, delta),
        };
        let set = offset.and_then(|offset| {
            tpl.elements()
                .into_iter()
                .filter(|e| e.topic() == topic && e.partition() == partition)
                .try_for_each(|mut e| e.set_offset(offset))
        });
        if let Err(error) = set {
            tracing::warn!(listener, topic, partition, ?to, %error, "could not start the partition where the assignment callback asked");
        }
    }
}

const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `delta` records from the partition's committed offset (from its first kept offset without one).
fn relative_to_committed<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
    delta: i64,
) -> KafkaResult<Offset> {
    let mut one = TopicPartitionList::new();
    one.add_partition(topic, partition);
    let committed = consumer.committed_offsets(one, START_TIMEOUT)?;
    let (low, high) = consumer.fetch_watermarks(topic, partition, START_TIMEOUT)?;
    let from = match committed.find_partition(topic, partition).map(|e| e.offset()) {
        Some(Offset::Offset(offset)) => offset,
        _ => low,
    };
    Ok(Offset::Offset(from.saturating_add(delta).clamp(low, high)))
}

impl ClientContext for ContainerContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let listener = &*self.shared.listener_id;
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", listener, facility, "{message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", listener, facility, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", listener, facility, "{message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", listener, facility, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", listener = &*self.shared.listener_id, %error, "{reason}");
    }
}

impl ConsumerContext for ContainerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let listener = &*self.shared.listener_id;
        match rebalance {
            Rebalance::Revoke(tpl) => {
                // Handlers run between polls on this thread, so none is in flight now: commit what
                // was processed before the partitions go to another consumer.
                let lost = consumer.assignment_lost();
                self.shared.emit(|listener, consumer| {
                    let partitions = super::handle::pairs(tpl);
                    if lost {
                        ContainerEvent::PartitionsLost { listener, consumer, partitions }
                    } else {
                        ContainerEvent::PartitionsRevoked { listener, consumer, partitions }
                    }
                });
                if lost {
                    tracing::warn!(listener, partitions = %describe(tpl), "assignment lost; processed offsets cannot be committed");
                } else if let Err(error) = self.shared.commit(consumer, true, Selection::Partitions(tpl)) {
                    tracing::warn!(listener, partitions = %describe(tpl), %error,
                        "could not commit before the partitions were revoked; their new owner resumes from the last commit");
                }
                let mut offsets = self.shared.offsets();
                let mut revoked = super::shared::lock(&self.shared.revoked);
                for element in tpl.elements() {
                    offsets.remove(element.topic(), element.partition());
                    revoked.push((element.topic().to_string(), element.partition()));
                }
                drop(revoked);
                drop(offsets);
                self.shared.generation.fetch_add(1, Ordering::AcqRel);
                tracing::info!(listener, partitions = %partitions(tpl), "partitions revoked");
            }
            Rebalance::Assign(tpl) => {
                if let Some(callback) = &self.on_assigned {
                    start_positions(callback, &self.shared, consumer, &self.probe_config, tpl);
                }
            }
            Rebalance::Error(error) => tracing::warn!(listener, %error, "rebalance error"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let mut offsets = self.shared.offsets();
            for element in tpl.elements() {
                offsets.assign(element.topic(), element.partition());
            }
            drop(offsets);
            if self.shared.pause_requested.load(Ordering::Acquire) {
                if let Err(error) = consumer.pause(tpl) {
                    tracing::warn!(listener = &*self.shared.listener_id, %error, "could not pause newly assigned partitions");
                }
            }
            tracing::info!(listener = &*self.shared.listener_id, partitions = %partitions(tpl), "partitions assigned");
            self.shared.emit(|listener, consumer| ContainerEvent::PartitionsAssigned {
                listener,
                consumer,
                partitions: super::handle::pairs(tpl),
            });
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        // librdkafka reports the container's own commits only when they are synchronous (and
        // then to the caller); this serves any other commit it reports.
        if let Err(error) = result {
            tracing::warn!(listener = &*self.shared.listener_id, offsets = %describe(offsets), %error, "commit failed");
        }
    }
}

fn partitions(tpl: &TopicPartitionList) -> String {
    tpl.elements().iter().map(|e| format!("{}-{}", e.topic(), e.partition())).collect::<Vec<_>>().join(", ")
}
