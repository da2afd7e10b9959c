//! A topic to create when it is missing (Spring's `NewTopic` beans, built with `TopicBuilder`,
//! which `KafkaAdmin` creates at start).

use std::collections::BTreeMap;

/// A topic a program declares: its name, partition count, replication factor and topic configs
/// (`retention.ms`, `cleanup.policy`, ...). Declared on a [`ListenerRegistry`](crate::ListenerRegistry)
/// with `with_topic`, it is created at start when missing, on a real broker (Kafka's CreateTopics)
/// and on an [`EmbeddedKafka`](crate::EmbeddedKafka) alike; [`Admin::create_topics`](super::Admin::create_topics)
/// creates it on demand.
///
/// ```
/// use kafka_listener::support::NewTopic;
///
/// let orders = NewTopic::new("orders", 3).replication_factor(3).config("retention.ms", "604800000");
/// assert_eq!(orders.name(), "orders");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    name: String,
    partitions: i32,
    replication_factor: Option<i16>,
    configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and the broker's default replication factor
    /// (`default.replication.factor`; 1 on an embedded broker).
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        NewTopic { name: name.into(), partitions, replication_factor: None, configs: BTreeMap::new() }
    }

    /// The number of copies of each partition (at most the number of brokers).
    pub fn replication_factor(mut self, replicas: i16) -> Self {
        self.replication_factor = Some(replicas);
        self
    }

    /// A topic config (Kafka's topic-level settings, e.g. `cleanup.policy = compact`). The
    /// embedded broker keeps no topic configs and ignores them.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(key.into(), value.into());
        self
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The partition count.
    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// The replication factor, if one was given (`None`: the broker's default).
    pub fn replication(&self) -> Option<i16> {
        self.replication_factor
    }

    /// The topic configs.
    pub fn configs(&self) -> &BTreeMap<String, String> {
        &self.configs
    }
}

impl From<(&str, i32)> for NewTopic {
    fn from((name, partitions): (&str, i32)) -> Self {
        NewTopic::new(name, partitions)
    }
}

impl From<&(&str, i32)> for NewTopic {
    fn from((name, partitions): &(&str, i32)) -> Self {
        NewTopic::new(*name, *partitions)
    }
}

impl From<&NewTopic> for NewTopic {
    fn from(topic: &NewTopic) -> Self {
        topic.clone()
    }
}
