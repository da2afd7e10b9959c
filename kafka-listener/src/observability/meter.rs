//! A container's metric handles (see the module docs for names and labels).
//!
//! Handles are looked up once (per consumer, and per topic for the per-record ones) and kept:
//! recording through a kept handle costs a branch with no recorder installed, and no label
//! allocation with one. Rare events (failures, retries, lag) look their handle up each time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, Label};

use crate::container::lock;
use crate::extract::Record;

use super::{
    COMMITS, CONSUMED_MESSAGES, CONSUMER_LAG, DEAD_LETTERS, ERRORS, LABEL_DESTINATION, LABEL_ERROR_TYPE, LABEL_GROUP,
    LABEL_LISTENER, LABEL_PARTITION, PAUSED_PARTITIONS, PROCESS_DURATION, REBALANCES, RETRIES, SENT_MESSAGES,
};

/// The per-record handles of one topic.
#[derive(Clone)]
pub(crate) struct TopicMeters {
    consumed: Counter,
    duration: Histogram,
    labels: Arc<[Label]>,
}

impl TopicMeters {
    /// `n` records of the topic were polled.
    pub(crate) fn consumed(&self, n: u64) {
        self.consumed.increment(n);
    }

    /// A delivery ended: how long it took, and its failure's `error.type` if it failed (then
    /// `kafka_listener.errors` counts it too). Called only with a recorder installed (see
    /// [`ContainerMeters::clock`]).
    #[inline]
    pub(crate) fn processed(&self, took: Duration, error_type: Option<&'static str>) {
        match error_type {
            None => self.duration.record(took.as_secs_f64()),
            Some(error_type) => self.failed(took, error_type),
        }
    }

    #[cold]
    fn failed(&self, took: Duration, error_type: &'static str) {
        let mut labels = self.labels.to_vec();
        labels.push(Label::from_static_parts(LABEL_ERROR_TYPE, error_type));
        metrics::histogram!(PROCESS_DURATION, labels.clone()).record(took.as_secs_f64());
        metrics::counter!(ERRORS, labels).increment(1);
    }

    /// The error handler retries a delivery.
    pub(crate) fn retried(&self) {
        metrics::counter!(RETRIES, self.labels.to_vec()).increment(1);
    }
}

/// One consumer's handles: per listener, and per topic as records arrive.
pub(crate) struct ContainerMeters {
    listener: Arc<str>,
    group: Arc<str>,
    commits_ok: Counter,
    commits_failed: Counter,
    rebalances: Counter,
    paused: Gauge,
    /// The consumer's index, and every consumer's paused partitions: the gauge is the
    /// listener's total (set, not incremented, so that it reads right from any recorder).
    index: usize,
    paused_counts: Arc<PausedCounts>,
    /// A recorder is installed: deliveries are timed.
    timed: bool,
}

/// Partitions each consumer of a listener has paused, by consumer index.
#[derive(Debug, Default)]
pub(crate) struct PausedCounts(Mutex<HashMap<usize, usize>>);

impl ContainerMeters {
    pub(crate) fn new(listener: Arc<str>, group: Arc<str>, index: usize, paused_counts: Arc<PausedCounts>) -> Self {
        let labels = listener_labels(&listener, &group);
        let mut ok = labels.clone();
        ok.push(Label::from_static_parts("result", "ok"));
        let mut failed = labels.clone();
        failed.push(Label::from_static_parts("result", "failed"));
        ContainerMeters {
            commits_ok: metrics::counter!(COMMITS, ok),
            commits_failed: metrics::counter!(COMMITS, failed),
            rebalances: metrics::counter!(REBALANCES, labels.clone()),
            paused: metrics::gauge!(PAUSED_PARTITIONS, labels),
            index,
            paused_counts,
            timed: recorder_installed(),
            listener,
            group,
        }
    }

    /// Now, when a recorder is installed; `None` otherwise: without a recorder a delivery costs
    /// no clock read and no metric lookup (there is nothing to record them in).
    #[inline]
    pub(crate) fn clock(&self) -> Option<Instant> {
        self.timed.then(Instant::now)
    }

    /// Whether a recorder is installed (per-record metrics are recorded).
    #[inline]
    pub(crate) fn recording(&self) -> bool {
        self.timed
    }

    /// The handles of one topic's records.
    pub(crate) fn topic(&self, topic: &str) -> TopicMeters {
        let labels: Arc<[Label]> = self.topic_labels(topic).into();
        TopicMeters {
            consumed: metrics::counter!(CONSUMED_MESSAGES, labels.to_vec()),
            duration: metrics::histogram!(PROCESS_DURATION, labels.to_vec()),
            labels,
        }
    }

    fn topic_labels(&self, topic: &str) -> Vec<Label> {
        let mut labels = vec![Label::new(LABEL_DESTINATION, topic.to_string())];
        labels.extend(listener_labels(&self.listener, &self.group));
        labels
    }

    /// A commit's outcome.
    pub(crate) fn committed(&self, ok: bool) {
        if ok { &self.commits_ok } else { &self.commits_failed }.increment(1);
    }

    /// Partitions were assigned to the consumer.
    pub(crate) fn rebalanced(&self) {
        self.rebalances.increment(1);
    }

    /// The consumer has `paused` partitions paused now.
    pub(crate) fn paused(&self, paused: usize) {
        let mut counts = lock(&self.paused_counts.0);
        counts.insert(self.index, paused);
        self.paused.set(counts.values().sum::<usize>() as f64);
    }

    /// A partition's lag, in records.
    pub(crate) fn lag(&self, topic: &str, partition: i32, lag: i64) {
        let mut labels = self.topic_labels(topic);
        labels.push(Label::new(LABEL_PARTITION, partition.to_string()));
        metrics::gauge!(CONSUMER_LAG, labels).set(lag as f64);
    }
}

/// Whether the application installed a recorder. The `metrics` facade answers with its no-op
/// recorder otherwise, a zero-sized type: a recorder keeps its values somewhere, so one of size
/// zero is taken for none (a recorder of your own that is zero-sized gets no durations).
fn recorder_installed() -> bool {
    metrics::with_recorder(|recorder| std::mem::size_of_val(recorder) != 0)
}

/// The labels every listener metric carries.
fn listener_labels(listener: &str, group: &str) -> Vec<Label> {
    vec![Label::new(LABEL_GROUP, group.to_string()), Label::new(LABEL_LISTENER, listener.to_string())]
}

/// The dead-letter recoverer published a failed record of `topic`.
pub(crate) fn dead_lettered(listener: &str, group: &str, topic: &str) {
    let mut labels = vec![Label::new(LABEL_DESTINATION, topic.to_string())];
    labels.extend(listener_labels(listener, group));
    metrics::counter!(DEAD_LETTERS, labels).increment(1);
}

/// Per-topic handles, found by comparing names in place (`Record::topic_is`): a listener reads
/// few topics, and comparing a short name costs less per record than converting and hashing it.
/// The entry found last is kept with its records' librdkafka topic object: records come in runs
/// of one topic, and comparing that pointer costs nothing (see [`new_turn`](Self::new_turn)).
#[derive(Default)]
pub(crate) struct TopicCache {
    topics: Vec<(Box<str>, TopicMeters)>,
    /// The entry found last.
    last: usize,
    /// The topic object of the record it was found for (0: none).
    last_topic: usize,
}

impl TopicCache {
    /// The handles of `record`'s topic.
    #[inline]
    pub(crate) fn of(&mut self, meters: &ContainerMeters, record: &Record<'_>) -> &TopicMeters {
        let topic = record.topic_object();
        if topic != 0 && topic == self.last_topic {
            return &self.topics[self.last].1;
        }
        self.find(meters, record, topic)
    }

    fn find(&mut self, meters: &ContainerMeters, record: &Record<'_>, topic: usize) -> &TopicMeters {
        self.last = match self.topics.iter().position(|(name, _)| record.topic_is(name)) {
            Some(index) => index,
            None => {
                let name = record.topic();
                self.topics.push((name.into(), meters.topic(name)));
                self.topics.len() - 1
            }
        };
        self.last_topic = topic;
        &self.topics[self.last].1
    }

    /// Forgets the topic object found last: called on each turn of the poll loop, so that a
    /// topic object freed meanwhile (its address then reused by another topic's) is never taken
    /// for its topic. Within a turn, the records looked up are alive, and keep theirs alive.
    pub(crate) fn new_turn(&mut self) {
        self.last_topic = 0;
    }
}

/// `KafkaTemplate` learned the outcome of a send to `topic` (`error_type`: it failed so).
pub(crate) fn sent(topic: &str, error_type: Option<&'static str>) {
    // Sends look their counter up each time (a template sends to any topic): not without a
    // recorder to count them.
    if !recorder_installed() {
        return;
    }
    let destination = Label::new(LABEL_DESTINATION, topic.to_string());
    match error_type {
        None => metrics::counter!(SENT_MESSAGES, vec![destination]).increment(1),
        Some(error_type) => {
            let error = Label::from_static_parts(LABEL_ERROR_TYPE, error_type);
            metrics::counter!(SENT_MESSAGES, vec![destination, error]).increment(1)
        }
    }
}
