//! Start-up of one consumer: creating it with the container's rdkafka context, then subscribing
//! (group management) or assigning its share of explicit partitions at their start positions,
//! and, for a time-range replay, finding where the window starts and ends.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};

use super::context::KafkaConsumer;
use super::context::{AssignedCallback, ContainerContext};
use super::handle::ConsumerHandle;
use super::plan::ContainerPlan;
use super::protocol_watch::ProtocolWatch;
use super::replay::{Replay, ReplayWindow};
use super::seeks::{self, Lookup, SEEK_TIMEOUT};
use super::shared::ContainerShared;
use super::siblings::Siblings;
use crate::support::offsets_for_times;
use crate::TopicPartition;
use kafka_listener_rules::StartPosition;

/// How often librdkafka reports its statistics unless the factory sets `statistics.interval.ms`
/// (how soon readiness sees brokers back; the group's committed offsets for the lag gauge).
const STATISTICS_INTERVAL_MS: &str = "5000";

/// Creates the consumer (client id `<client_id>-<index>`) and tells the siblings it is ready;
/// `None` (logged) when librdkafka refuses the configuration.
pub(crate) fn create(
    plan: &ContainerPlan,
    index: usize,
    shared: &Arc<ContainerShared>,
    siblings: &Siblings,
) -> Option<Arc<KafkaConsumer>> {
    let mut config = plan.client_config.clone();
    config.set("client.id", plan.consumer_client_id(index));
    if config.get("statistics.interval.ms").is_none() {
        // Readiness's broker states and the lag gauge's committed offsets come from them.
        config.set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
    }
    let protocol_watch =
        if plan.assignment.is_empty() { ProtocolWatch::arm(&mut config) } else { ProtocolWatch::default() };
    let created: KafkaResult<KafkaConsumer> = config.create_with_context(ContainerContext {
        shared: shared.clone(),
        on_assigned: assigned_callback(plan, shared),
        probe_config: plan.client_config.clone(),
        revocation_wait: revocation_wait(plan),
        seeds: std::sync::Mutex::new(Vec::new()),
        offset_maps: plan.order.is_concurrent(),
        restored: std::sync::Mutex::new(Vec::new()),
        protocol_watch,
    });
    siblings.ready();
    match created {
        Ok(mut consumer) => {
            if plan.order.is_concurrent() {
                // The poll thread waits for its tasks and for records at once: librdkafka calls
                // this (from its own thread) when the consumer's queue gets something.
                let wakeup = shared.wakeup.clone();
                consumer.set_nonempty_callback(move || wakeup.notify());
            }
            let consumer = Arc::new(consumer);
            shared.attach(&consumer);
            Some(consumer)
        }
        Err(error) => {
            tracing::error!(listener = &*plan.listener_id, %error, "could not create the consumer; the container is not running");
            shared.health.failed(format!("could not create the consumer: {error}"));
            None
        }
    }
}

/// Subscribes, or assigns the explicit partitions; returns the replay window of a replay
/// (`Some(None)` otherwise). `None` (logged) when the consumer cannot start.
pub(crate) fn start(
    plan: &ContainerPlan,
    index: usize,
    siblings: &Siblings,
    shared: &Arc<ContainerShared>,
    consumer: &KafkaConsumer,
) -> Option<Option<ReplayWindow>> {
    let listener = &*plan.listener_id;
    siblings.wait_ready();
    if plan.assignment.is_empty() {
        subscribe(plan, index, siblings, shared, consumer)?;
    }
    // A replay finds where its window starts and ends before its partitions are assigned.
    let replay = match plan.replay.as_deref().map(|r| replay_window(plan, r, consumer, index, siblings.total)) {
        Some(Ok(window)) => Some(window),
        Some(Err(error)) => {
            tracing::error!(listener, %error, "could not find the replay window's offsets; the container is not running");
            finished_early(plan);
            return None;
        }
        None => None,
    };
    if !plan.assignment.is_empty() {
        if let Err(error) = assign(plan, consumer, shared, index, siblings.total, replay.as_ref()) {
            tracing::error!(listener, %error, "could not assign the listener's partitions; the container is not running");
            finished_early(plan);
            return None;
        }
        if let Some(window) = &replay {
            if !window.done.is_empty() {
                if let Err(error) = consumer.pause(&crate::topic_partition::to_list(&window.done)) {
                    tracing::warn!(listener, %error, "could not pause the partitions with nothing to replay");
                }
            }
        }
    }
    Some(replay)
}

/// A replay's consumer that could not start counts as finished, incomplete.
fn finished_early(plan: &ContainerPlan) {
    if let Some(replay) = &plan.replay {
        replay.consumer_finished(false);
    }
}

fn subscribe(
    plan: &ContainerPlan,
    index: usize,
    siblings: &Siblings,
    shared: &Arc<ContainerShared>,
    consumer: &KafkaConsumer,
) -> Option<()> {
    let listener = &*plan.listener_id;
    let topics: Vec<&str> = plan.subscription.iter().map(String::as_str).collect();
    if let Err(error) = consumer.subscribe(&topics) {
        tracing::error!(listener, %error, topics = ?plan.subscription, "could not subscribe; the container is not running");
        return None;
    }
    if plan.replay.is_none() {
        super::missing_topics::watch(shared.clone(), &plan.subscription, &plan.runtime);
    }
    if index == 0 && plan.replay.is_none() {
        // Until the group's first rebalance completes nothing else is logged, which can take
        // tens of seconds: say what the consumers wait for, once per listener.
        let group = plan.client_config.get("group.id").unwrap_or_default();
        if crate::config::GroupProtocol::of_config(&plan.client_config) == crate::config::GroupProtocol::Consumer {
            tracing::info!(listener, group, topics = ?plan.subscription, consumers = siblings.total,
                "joining the consumer group with the consumer protocol (KIP-848); the broker assigns partitions at the members' heartbeats");
        } else {
            let session_timeout = match plan.client_config.get("session.timeout.ms") {
                Some(ms) => format!("{ms} ms"),
                None => "45000 ms, librdkafka's default".to_string(),
            };
            tracing::info!(listener, group, topics = ?plan.subscription, consumers = siblings.total,
                "joining the consumer group; partitions are assigned once the group coordinator has every member (a broker may wait up to session.timeout.ms = {session_timeout} for members that left; lower session.timeout.ms for faster joins)");
        }
    }
    Some(())
}

/// The listener's assignment callback, given a handle on this container.
fn assigned_callback(plan: &ContainerPlan, shared: &Arc<ContainerShared>) -> Option<AssignedCallback> {
    let callback = plan.on_assigned.clone()?;
    let handle = ConsumerHandle::new(shared.clone());
    Some(Arc::new(move |partitions: &[TopicPartition]| callback(partitions, &handle)))
}

/// How long a revocation waits for acknowledgments in flight: the shutdown timeout, but no more
/// than half of `max.poll.interval.ms` (the group waits that long for a member to rejoin; longer
/// and the partitions are lost anyway).
fn revocation_wait(plan: &ContainerPlan) -> Duration {
    let max_poll_interval = plan
        .client_config
        .get("max.poll.interval.ms")
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(300), Duration::from_millis);
    plan.settings.shutdown_timeout.min(max_poll_interval / 2)
}

/// Where each of this consumer's partitions leaves a replay's window: the first offset at or after
/// its end time (the end of the partition when there is none). Partitions whose window is empty
/// are done at once.
fn replay_window(
    plan: &ContainerPlan,
    replay: &Replay,
    consumer: &KafkaConsumer,
    index: usize,
    total: usize,
) -> KafkaResult<ReplayWindow> {
    let mut window = ReplayWindow {
        from_ms: replay.from_ms,
        to_ms: replay.to_ms,
        starts: std::collections::HashMap::new(),
        ends: std::collections::HashMap::new(),
        done: std::collections::HashSet::new(),
    };
    for a in plan.share(index, total) {
        let bounds = [replay.from_ms, replay.to_ms];
        let found = offsets_for_times(consumer, &plan.client_config, &a.topic, a.partition, &bounds, SEEK_TIMEOUT)?;
        let (start, end) = (found[0], found[1]);
        let key = TopicPartition::new(a.topic.as_str(), a.partition);
        if start >= end {
            window.done.insert(key.clone());
        }
        window.starts.insert(key.clone(), start);
        window.ends.insert(key, end);
    }
    let mut ends: Vec<_> = window.ends.iter().map(|(tp, end)| format!("{tp}@{end}")).collect();
    ends.sort();
    tracing::info!(listener = &*plan.listener_id, ends = %ends.join(", "), "replaying up to these offsets");
    Ok(window)
}

/// Assigns this consumer its share of the listener's explicit partitions (every `total`-th from
/// `index`), each at its start position (resolved as a seek, `seeks::of_start`); then tells the
/// listener's assignment callback.
fn assign(
    plan: &ContainerPlan,
    consumer: &KafkaConsumer,
    shared: &Arc<ContainerShared>,
    index: usize,
    total: usize,
    replay: Option<&ReplayWindow>,
) -> KafkaResult<()> {
    let mine: Vec<(TopicPartition, StartPosition)> =
        plan.share(index, total).map(|a| (TopicPartition::new(a.topic.as_str(), a.partition), a.start)).collect();
    let lookup = Lookup { consumer, config: &plan.client_config };
    let mut tpl = TopicPartitionList::new();
    for (tp, start) in &mine {
        let offset = match (replay, *start) {
            // A replay starts at its window's first offset (its end when it has none).
            (Some(window), StartPosition::Timestamp(_)) => {
                window.starts.get(tp).map_or(Offset::End, |start| Offset::Offset(*start))
            }
            (_, start) => match seeks::of_start(start) {
                None => Offset::Stored,
                Some((to, base)) => seeks::start_offset(&lookup, tp, to, base)?,
            },
        };
        tpl.add_partition_offset(&tp.topic, tp.partition, offset)?;
    }
    if let Some(callback) = assigned_callback(plan, shared) {
        super::context::start_positions(&callback, shared, consumer, &plan.client_config, &tpl);
    }
    consumer.assign(&tpl)?;
    let mut offsets = shared.offsets();
    mine.iter().for_each(|(tp, _)| offsets.assign(&tp.topic, tp.partition));
    drop(offsets);
    tracing::info!(listener = &*plan.listener_id, partitions = %crate::topic_partition::join(mine.iter().map(|(tp, _)| tp)), "partitions assigned (explicitly)");
    Ok(())
}
