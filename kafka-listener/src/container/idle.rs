//! Idle events (Spring's `ListenerContainerIdleEvent` and `ListenerContainerPartitionIdleEvent`):
//! when records last arrived, for the container and each partition.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;

use super::context::KafkaConsumer;
use super::events::ContainerEvent;
use super::shared::ContainerShared;
use crate::extract::Record;
use crate::TopicPartition;

/// When records last arrived (kept only with an `idle_event_interval`).
pub(crate) struct IdleWatch {
    interval: Option<Duration>,
    /// When the consumer started: the partitions' last record before any arrived.
    since: Instant,
    last_record: Instant,
    partitions: HashMap<TopicPartition, Instant>,
    next_check: Instant,
}

impl IdleWatch {
    pub(crate) fn new(interval: Option<Duration>) -> Self {
        let now = Instant::now();
        IdleWatch { interval, since: now, last_record: now, partitions: HashMap::new(), next_check: now }
    }

    /// Records arrived.
    pub(crate) fn arrived(&mut self, records: &[Record<'_>]) {
        if self.interval.is_none() || records.is_empty() {
            return;
        }
        let now = Instant::now();
        self.last_record = now;
        let mut last: Option<(&str, i32)> = None;
        for r in records {
            // A poll's records come in runs per partition: one update per run.
            if last == Some((r.topic(), r.partition())) {
                continue;
            }
            last = Some((r.topic(), r.partition()));
            self.partitions.insert(TopicPartition::new(r.topic(), r.partition()), now);
        }
    }

    /// Sends the idle events that are due (at most once per interval).
    pub(crate) fn emit_due(&mut self, shared: &ContainerShared, consumer: &KafkaConsumer) {
        let Some(interval) = self.interval else { return };
        let now = Instant::now();
        if now < self.next_check {
            return;
        }
        self.next_check = now + interval;
        let idle_for = now.duration_since(self.last_record);
        if idle_for >= interval {
            shared.emit(|listener, consumer| ContainerEvent::Idle { listener, consumer, idle_for });
        }
        let Ok(assignment) = consumer.assignment() else { return };
        for tp in crate::topic_partition::of_list(&assignment) {
            let last = *self.partitions.entry(tp.clone()).or_insert(self.since);
            let idle_for = now.duration_since(last);
            if idle_for >= interval {
                shared.emit(|listener, consumer| ContainerEvent::PartitionIdle {
                    listener,
                    consumer,
                    topic_partition: tp.clone(),
                    idle_for,
                });
            }
        }
    }
}
