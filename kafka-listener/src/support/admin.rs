use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Properties;
use crate::error::{Error, Result};

/// Reads what tests and operators check: committed offsets of a group, end offsets of a topic;
/// and creates topics. Its reads block: call them from tests or `spawn_blocking`.
#[derive(Clone)]
pub struct Admin {
    properties: Properties,
    timeout: Duration,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin").field("properties", &self.properties).finish()
    }
}

impl Admin {
    /// An admin for these brokers.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        let mut properties = Properties::default();
        properties.set("bootstrap.servers", bootstrap_servers);
        Admin { properties, timeout: Duration::from_secs(10) }
    }

    /// An admin with a factory's (or template's) client properties.
    pub(crate) fn with_properties(properties: Properties) -> Self {
        Admin { properties, timeout: Duration::from_secs(10) }
    }

    /// Any librdkafka property (security settings for a real cluster).
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.set(key, value);
        self
    }

    fn consumer(&self, group: Option<&str>) -> Result<BaseConsumer> {
        let mut config: ClientConfig = self.properties.to_client_config();
        if let Some(group) = group {
            config.set("group.id", group).set("enable.auto.commit", "false");
        }
        config.create().map_err(|e| Error::kafka("creating an admin consumer", e))
    }

    /// The partitions of a topic.
    ///
    /// # Errors
    /// When the topic does not exist or the broker cannot be reached.
    pub fn partitions(&self, topic: &str) -> Result<Vec<i32>> {
        self.partitions_with(&self.consumer(None)?, topic)
    }

    fn partitions_with(&self, consumer: &BaseConsumer, topic: &str) -> Result<Vec<i32>> {
        let metadata = consumer
            .fetch_metadata(Some(topic), self.timeout)
            .map_err(|e| Error::kafka(format!("reading metadata of `{topic}`"), e))?;
        let t = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            .ok_or_else(|| Error::config("topic", format!("topic `{topic}` does not exist")))?;
        Ok(t.partitions().iter().map(|p| p.id()).collect())
    }

    /// The committed offset of each partition of `topic` for `group` (partitions without a
    /// committed offset are left out).
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub fn committed_offsets(&self, group: &str, topic: &str) -> Result<BTreeMap<i32, i64>> {
        let consumer = self.consumer(Some(group))?;
        let mut tpl = TopicPartitionList::new();
        for p in self.partitions_with(&consumer, topic)? {
            tpl.add_partition(topic, p);
        }
        let committed = consumer
            .committed_offsets(tpl, self.timeout)
            .map_err(|e| Error::kafka(format!("reading committed offsets of group `{group}`"), e))?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect())
    }

    /// The offset of the first record at or after `timestamp_ms` in each partition of `topic` (the
    /// end offset where there is none): the broker's offsets for times, or a binary search over
    /// the records where the broker keeps no time index (the embedded broker).
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub fn offsets_for_time(&self, topic: &str, timestamp_ms: i64) -> Result<BTreeMap<i32, i64>> {
        let consumer = self.consumer(None)?;
        let probe = self.properties.to_client_config();
        self.partitions_with(&consumer, topic)?
            .into_iter()
            .map(|p| {
                super::offset_for_time(&consumer, &probe, topic, p, timestamp_ms, self.timeout)
                    .map(|offset| (p, offset))
                    .map_err(|e| {
                        Error::kafka(format!("finding the offset for time {timestamp_ms} in `{topic}`-{p}"), e)
                    })
            })
            .collect()
    }

    /// The end offset (high watermark) of each partition of `topic`.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub fn end_offsets(&self, topic: &str) -> Result<BTreeMap<i32, i64>> {
        let consumer = self.consumer(None)?;
        self.partitions_with(&consumer, topic)?
            .into_iter()
            .map(|p| {
                consumer
                    .fetch_watermarks(topic, p, self.timeout)
                    .map(|(_, high)| (p, high))
                    .map_err(|e| Error::kafka(format!("reading the end offset of `{topic}`-{p}"), e))
            })
            .collect()
    }

    /// Creates a topic (replication factor 1) unless it exists.
    ///
    /// # Errors
    /// When the broker refuses.
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        self.create_topics(&[(name, partitions)]).await
    }

    /// Creates topics (name, partitions; replication factor 1) unless they exist, in one request.
    ///
    /// On an `EmbeddedKafka` of this process (librdkafka's mock cluster answers no CreateTopics
    /// request) the topics are created on the cluster directly.
    ///
    /// # Errors
    /// When the broker refuses or does not answer in time.
    pub async fn create_topics(&self, topics: &[(&str, i32)]) -> Result<()> {
        #[cfg(feature = "embedded")]
        if let Some(created) = crate::embedded::create_topics_in_process(
            self.properties.get("bootstrap.servers").unwrap_or_default(),
            topics,
        ) {
            return created;
        }
        let admin: AdminClient<DefaultClientContext> =
            self.properties.to_client_config().create().map_err(|e| Error::kafka("creating an admin client", e))?;
        let names: Vec<&str> = topics.iter().map(|(name, _)| *name).collect();
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(self.timeout)).request_timeout(Some(self.timeout));
        let results = admin
            .create_topics(&new, &options)
            .await
            .map_err(|e| Error::kafka(format!("creating topics {names:?}"), e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(Error::kafka(
                        format!("creating topic `{topic}`"),
                        rdkafka::error::KafkaError::AdminOp(code),
                    ))
                }
            }
        }
        Ok(())
    }
}
