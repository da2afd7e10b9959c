use std::sync::atomic::Ordering;
use std::sync::Arc;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::Consumer;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::TopicPartitionList;

use super::shared::{describe, ContainerShared};
use crate::ack::Selection;

/// The rdkafka context of a container's consumer: logs through `tracing`, commits processed
/// offsets before partitions are revoked, and learns of finished commits.
pub(crate) struct ContainerContext {
    pub(crate) shared: Arc<ContainerShared>,
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
                if consumer.assignment_lost() {
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
            Rebalance::Assign(_) => {}
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
