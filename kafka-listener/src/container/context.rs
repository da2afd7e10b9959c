use std::sync::Arc;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::Consumer;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;

use rdkafka::Offset;

use std::time::Instant;

use super::contain::contain;
use super::events::ContainerEvent;
use super::seeks::{self, Base, Lookup};
use super::shared::ContainerShared;
use crate::ack::{CompletedAbove, OffsetMapError, Selection};
use crate::topic_partition::describe_offsets as describe;
use crate::topic_partition::of_list;

/// The listener's `on_partitions_assigned` callback, bound to a handle on this container.
pub(crate) type AssignedCallback = Arc<dyn Fn(&[crate::TopicPartition]) + Send + Sync>;

/// A container's consumer.
pub(crate) type KafkaConsumer = BaseConsumer<ContainerContext>;

/// The rdkafka context of a container's consumer: logs through `tracing`, commits processed
/// offsets before partitions are revoked, and learns of finished commits.
pub(crate) struct ContainerContext {
    pub(crate) shared: Arc<ContainerShared>,
    /// The listener's callback on assigned partitions.
    pub(crate) on_assigned: Option<AssignedCallback>,
    /// Client properties for reading records by offset (offsets for times without a broker index).
    pub(crate) probe_config: rdkafka::config::ClientConfig,
    /// Start offsets handed over (`take_handoff`), to seed the tracker with once assigned.
    pub(crate) seeds: std::sync::Mutex<Vec<(String, i32, i64)>>,
    /// How long a revocation waits for acknowledgments of records delivered from the revoked
    /// partitions (the factory's `shutdown_timeout`, at most half of `max.poll.interval.ms`).
    pub(crate) revocation_wait: std::time::Duration,
    /// Commits carry offset maps (a concurrent processing order): read them at assignment.
    pub(crate) offset_maps: bool,
    /// Offset maps read at assignment, to give the tracker once the partitions are assigned.
    pub(crate) restored: std::sync::Mutex<Vec<(String, i32, CompletedAbove)>>,
    /// Hears a broker refuse the consumer group protocol (KIP-848).
    pub(crate) protocol_watch: super::protocol_watch::ProtocolWatch,
}

/// Calls the listener's assignment callback before the partitions in `tpl` are assigned, and puts
/// the seeks it asks for on them into `tpl`'s start offsets: a partition then starts where the
/// callback said, before any record is fetched (a seek after the assignment can fail, e.g. with
/// `auto_offset_reset = error`).
pub(crate) fn start_positions<C: rdkafka::consumer::ConsumerContext>(
    callback: &AssignedCallback,
    shared: &Arc<ContainerShared>,
    consumer: &BaseConsumer<C>,
    probe_config: &rdkafka::config::ClientConfig,
    tpl: &TopicPartitionList,
) {
    let listener = &*shared.listener_id;
    if let Err(panic) = contain(|| callback(&of_list(tpl))) {
        tracing::error!(listener, partitions = %describe(tpl), panic,
            "the on_partitions_assigned callback panicked; the partitions start where they would without it (the seeks it asked for before the panic still apply)");
        shared.emit_panicked("the on_partitions_assigned callback", panic, false);
    }
    let mine = shared.control().take_seeks_of(|tp| tpl.find_partition(&tp.topic, tp.partition).is_some());
    let lookup = Lookup { consumer, config: probe_config };
    for (tp, to) in mine {
        // A relative seek counts from the group's committed offset: nothing is fetched yet.
        let set = seeks::start_offset(&lookup, &tp, to, Base::Committed)
            .and_then(|offset| set_start(tpl, &tp.topic, tp.partition, offset));
        if let Err(error) = set {
            tracing::warn!(listener, topic = tp.topic, partition = tp.partition, ?to, %error, "could not start the partition where the assignment callback asked");
        }
    }
}

/// Sets where a partition of an assignment about to be made starts.
fn set_start(tpl: &TopicPartitionList, topic: &str, partition: i32, offset: Offset) -> KafkaResult<()> {
    tpl.elements()
        .into_iter()
        .filter(|e| e.topic() == topic && e.partition() == partition)
        .try_for_each(|mut e| e.set_offset(offset))
}

const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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
            RDKafkaLogLevel::Debug => {
                self.protocol_watch.saw(message, &self.shared);
                tracing::debug!(target: "librdkafka", listener, facility, "{message}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", listener = &*self.shared.listener_id, %error, "{reason}");
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.shared.health.brokers_reachable(false, &self.shared.listener_id);
        }
    }

    /// librdkafka's statistics (every `statistics.interval.ms`): whether any broker is up (for
    /// readiness), and the group's committed offsets (for the lag gauge, `lag.rs`).
    fn stats(&self, statistics: Statistics) {
        let shared = &self.shared;
        let up = statistics.brokers.values().any(|b| b.nodeid >= 0 && b.state == "UP");
        shared.health.brokers_reachable(up, &shared.listener_id);
        let mut offsets = shared.offsets();
        for (topic, t) in &statistics.topics {
            for p in t.partitions.values().filter(|p| p.partition >= 0 && p.committed_offset >= 0) {
                offsets.reported_committed(topic, p.partition, p.committed_offset);
            }
        }
    }
}

impl ConsumerContext for ContainerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // librdkafka calls this from C: a panic must not unwind there.
        if let Err(panic) = contain(|| match rebalance {
            Rebalance::Revoke(tpl) => self.revoke(consumer, tpl),
            Rebalance::Assign(tpl) => {
                self.shared.meters.rebalanced();
                self.assign(consumer, tpl)
            }
            Rebalance::Error(error) => tracing::warn!(listener = &*self.shared.listener_id, %error, "rebalance error"),
        }) {
            tracing::error!(
                listener = &*self.shared.listener_id,
                panic,
                "internal panic in the rebalance callback; please report it"
            );
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.protocol_watch.assigned(consumer);
            if let Err(panic) = contain(|| self.assigned(consumer, tpl)) {
                tracing::error!(
                    listener = &*self.shared.listener_id,
                    panic,
                    "internal panic after an assignment; please report it"
                );
            }
        }
    }

    /// The outcome of an asynchronous commit (`shared::commit_async`), in the order they finish.
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            // Landed: confirmed, or — an older offset landing after a newer one, which librdkafka
            // retried — to be sent again.
            Ok(()) => {
                self.shared.meters.committed(true);
                self.shared.health.brokers_reachable(true, &self.shared.listener_id);
                self.shared.offsets().confirmed(offsets)
            }
            Err(error) => {
                self.shared.meters.committed(false);
                tracing::debug!(listener = &*self.shared.listener_id, offsets = %describe(offsets), %error,
                    "asynchronous commit failed; it will be sent again");
                self.shared.emit(|listener, consumer| ContainerEvent::CommitFailed {
                    listener,
                    consumer,
                    error: format!("{error} (offsets {})", describe(offsets)),
                });
            }
        }
    }
}

impl ContainerContext {
    /// Before partitions go to another consumer: waits (up to `shutdown_timeout`) for the
    /// acknowledgments of records delivered from them, commits what was processed, and keeps what
    /// could not be committed for the listener's next consumer of each partition.
    fn revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let listener = &*self.shared.listener_id;
        // Handlers run between polls on this thread, so none is in flight now.
        let lost = consumer.assignment_lost();
        self.shared.emit(|listener, consumer| {
            let partitions = of_list(tpl);
            if lost {
                ContainerEvent::PartitionsLost { listener, consumer, partitions }
            } else {
                ContainerEvent::PartitionsRevoked { listener, consumer, partitions }
            }
        });
        let mut committed = false;
        if lost {
            tracing::warn!(listener, partitions = %describe(tpl), "assignment lost; processed offsets cannot be committed by this consumer");
        } else {
            // Records handed to tasks may still be acknowledged: give them the time a shutdown gets
            // (a stopping consumer has waited for them already).
            let stopping = self.shared.control().stop_requested();
            let wait = if stopping { std::time::Duration::ZERO } else { self.revocation_wait };
            let left = self.shared.wait_for_acks(Some(tpl), Instant::now() + wait);
            // A stopping consumer said what was left already.
            if !left.is_empty() && !stopping {
                tracing::warn!(listener, waiting = %describe_counts(&left), waited = ?wait,
                    "partitions revoked while records still wait for an acknowledgment; they will be delivered again to the partitions' next consumer");
            }
            match self.shared.commit(consumer, true, Selection::Partitions(tpl)) {
                Ok(()) => committed = true,
                // The group is rebalancing (the broker refuses commits then), but an earlier
                // asynchronous commit whose answer has not been polled yet may have landed
                // already: then nothing is left to commit, and nothing to warn of.
                Err(error) if self.broker_has_processed(consumer, tpl) => {
                    committed = true;
                    tracing::debug!(listener, partitions = %describe(tpl), %error,
                        "the commit at revocation was refused, but the group has the processed offsets already");
                }
                Err(error) => tracing::warn!(listener, partitions = %describe(tpl), %error,
                    "could not commit before the partitions were revoked; the listener's next consumer of each partition commits them"),
            }
        }
        let mut offsets = self.shared.offsets();
        for element in tpl.elements() {
            let (topic, partition) = (element.topic(), element.partition());
            if !committed {
                if let Some((next, _)) = offsets.uncommitted(topic, partition) {
                    self.shared.handoff().put(topic, partition, next);
                }
            }
            offsets.remove(topic, partition);
        }
        drop(offsets);
        self.shared.revocations().revoked(of_list(tpl));
        tracing::info!(listener, partitions = %partitions(tpl), "partitions revoked");
    }

    /// Whether the group's committed offsets (read from the broker, 2 s at most) are at or past
    /// what this consumer processed in each partition of `tpl`.
    fn broker_has_processed(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) -> bool {
        let wanted: Vec<(String, i32, i64)> = {
            let offsets = self.shared.offsets();
            tpl.elements()
                .iter()
                .filter_map(|e| {
                    offsets
                        .uncommitted(e.topic(), e.partition())
                        .map(|(next, _)| (e.topic().to_string(), e.partition(), next))
                })
                .collect()
        };
        if wanted.is_empty() {
            return true;
        }
        let Ok(committed) = consumer.committed_offsets(tpl.clone(), std::time::Duration::from_secs(2)) else {
            return false;
        };
        wanted.iter().all(|(topic, partition, next)| {
            committed
                .find_partition(topic, *partition)
                .is_some_and(|e| matches!(e.offset(), rdkafka::Offset::Offset(o) if o >= *next))
        })
    }

    /// Before partitions are assigned: those with offsets handed over by a consumer of the
    /// listener that processed them start there (unless the group has committed further since);
    /// then the listener's assignment callback may move them.
    fn assign(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        if self.offset_maps {
            self.read_offset_maps(consumer, tpl);
        }
        if !self.shared.handoff().is_empty() {
            self.take_handoff(consumer, tpl);
        }
        if let Some(callback) = &self.on_assigned {
            start_positions(callback, &self.shared, consumer, &self.probe_config, tpl);
        }
    }

    /// Reads the offset maps in the metadata of the group's committed offsets of `tpl`: the
    /// records completed above each committed offset (by this listener before a restart or a
    /// rebalance) are skipped when delivered again.
    fn read_offset_maps(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let listener = &*self.shared.listener_id;
        let committed = match consumer.committed_offsets(tpl.clone(), START_TIMEOUT) {
            Ok(committed) => committed,
            Err(error) => {
                tracing::warn!(listener, %error, "could not read the committed offsets' metadata (offset maps); records completed above the committed offsets are handled again");
                return;
            }
        };
        let mut restored = Vec::new();
        for (topic, partition, offset, metadata) in crate::topic_partition::raw_metadata(&committed) {
            if metadata.is_empty() || offset < 0 {
                continue;
            }
            match CompletedAbove::decode(offset, &metadata) {
                Ok(map) => {
                    tracing::info!(
                        listener,
                        topic,
                        partition,
                        committed = offset,
                        completed_above = map.count(),
                        "records completed above the committed offset (its offset map) are skipped"
                    );
                    restored.push((topic, partition, map));
                }
                // Another client's metadata: nothing to skip.
                Err(OffsetMapError::Foreign) => {}
                Err(error) => tracing::warn!(listener, topic, partition, %error,
                    "the committed offset's offset map cannot be read; the records above the committed offset are handled again"),
            }
        }
        *super::sync::lock(&self.restored) = restored;
    }

    fn take_handoff(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let listener = &*self.shared.listener_id;
        let handed: Vec<(String, i32, i64)> = tpl
            .elements()
            .iter()
            .filter_map(|e| {
                self.shared.handoff().take(e.topic(), e.partition()).map(|n| (e.topic().to_string(), e.partition(), n))
            })
            .collect();
        if handed.is_empty() {
            return;
        }
        let mut asked = TopicPartitionList::new();
        for (topic, partition, _) in &handed {
            asked.add_partition(topic, *partition);
        }
        let committed = match consumer.committed_offsets(asked, START_TIMEOUT) {
            Ok(committed) => committed,
            Err(error) => {
                tracing::warn!(listener, %error, "could not read the committed offsets of partitions handed over; they start from the group's committed offsets");
                return;
            }
        };
        let mut seeds = super::sync::lock(&self.seeds);
        for (topic, partition, next) in handed {
            let group_has =
                committed.find_partition(&topic, partition).and_then(|e| e.offset().to_raw()).filter(|o| *o >= 0);
            if group_has.is_some_and(|c| c >= next) {
                continue;
            }
            match set_start(tpl, &topic, partition, Offset::Offset(next)) {
                Ok(()) => {
                    tracing::info!(listener, topic, partition, next, committed = ?group_has,
                        "starting where another consumer of this listener stopped; its processed offset is committed from here");
                    seeds.push((topic, partition, next));
                }
                Err(error) => {
                    tracing::warn!(listener, topic, partition, %error, "could not start a handed-over partition at its processed offset")
                }
            }
        }
    }

    /// After partitions were assigned.
    fn assigned(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let mut offsets = self.shared.offsets();
        for element in tpl.elements() {
            offsets.assign(element.topic(), element.partition());
        }
        let seeds = std::mem::take(&mut *super::sync::lock(&self.seeds));
        if !seeds.is_empty() {
            self.shared.revocations().set_handed_over();
        }
        for (topic, partition, next) in seeds {
            offsets.seed(&topic, partition, next);
        }
        for (topic, partition, map) in std::mem::take(&mut *super::sync::lock(&self.restored)) {
            offsets.restore(&topic, partition, map);
        }
        drop(offsets);
        if self.shared.control().pause_requested() {
            if let Err(error) = consumer.pause(tpl) {
                tracing::warn!(listener = &*self.shared.listener_id, %error, "could not pause newly assigned partitions");
            }
        } else {
            // librdkafka keeps a partition's pause flag across its revocation and re-assignment:
            // one paused for a wait (nack, back-off) that a rebalance took away, and given back
            // after the wait ended, would never be fetched again. Resume what is assigned, except
            // partitions paused through a ConsumerHandle (which stay paused, as in Spring).
            let by_handler = self.shared.control().handler_pauses();
            let mut resume = TopicPartitionList::new();
            let mut pause = TopicPartitionList::new();
            for tp in of_list(tpl) {
                let list = if by_handler.contains(&tp) { &mut pause } else { &mut resume };
                list.add_partition(&tp.topic, tp.partition);
            }
            let outcome =
                consumer.resume(&resume).and_then(|()| if pause.count() > 0 { consumer.pause(&pause) } else { Ok(()) });
            if let Err(error) = outcome {
                tracing::warn!(listener = &*self.shared.listener_id, %error, "could not set the pause state of newly assigned partitions");
            }
        }
        tracing::info!(listener = &*self.shared.listener_id, partitions = %partitions(tpl), "partitions assigned");
        self.shared.emit(|listener, consumer| ContainerEvent::PartitionsAssigned {
            listener,
            consumer,
            partitions: of_list(tpl),
        });
    }
}

/// `topic-partition: n, ...` for log lines.
pub(crate) fn describe_counts<N: std::fmt::Display>(counts: &[(String, i32, N)]) -> String {
    counts.iter().map(|(t, p, n)| format!("{t}-{p}: {n}")).collect::<Vec<_>>().join(", ")
}

fn partitions(tpl: &TopicPartitionList) -> String {
    tpl.elements().iter().map(|e| format!("{}-{}", e.topic(), e.partition())).collect::<Vec<_>>().join(", ")
}
