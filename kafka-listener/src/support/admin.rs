use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::NewTopic;
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

    /// The partition count of each topic of the cluster (one metadata request).
    ///
    /// # Errors
    /// When the broker cannot be reached in 10 s.
    pub(crate) fn partition_counts(&self) -> Result<BTreeMap<String, usize>> {
        let metadata = self
            .consumer(None)?
            .fetch_metadata(None, self.timeout)
            .map_err(|e| Error::kafka("reading the cluster's metadata", e))?;
        Ok(metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .map(|t| (t.name().to_string(), t.partitions().len()))
            .collect())
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

    /// The committed offset of every partition of `topic` for `group`: `Some(next offset to
    /// read)`, or `None` where the group has committed nothing (it then starts at its
    /// `auto.offset.reset` position). Every partition of the topic is in the map, as in
    /// [`end_offsets`](Self::end_offsets) and [`beginning_offsets`](Self::beginning_offsets), so
    /// `committed == end` reads as `committed.values().zip(end.values())`.
    ///
    /// # Errors
    /// When the topic does not exist or the broker cannot be reached in 10 s.
    pub fn committed_offsets(&self, group: &str, topic: &str) -> Result<BTreeMap<i32, Option<i64>>> {
        let (partitions, committed) = self.committed_list(group, topic)?;
        let mut offsets: BTreeMap<i32, Option<i64>> = partitions.into_iter().map(|p| (p, None)).collect();
        for e in committed.elements() {
            if let Offset::Offset(o) = e.offset() {
                offsets.insert(e.partition(), Some(o));
            }
        }
        Ok(offsets)
    }

    /// The partitions of `topic` and what `group` committed on them, as the broker returns it.
    fn committed_list(&self, group: &str, topic: &str) -> Result<(Vec<i32>, TopicPartitionList)> {
        let consumer = self.consumer(Some(group))?;
        let partitions = self.partitions_with(&consumer, topic)?;
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(topic, *p);
        }
        let committed = consumer
            .committed_offsets(tpl, self.timeout)
            .map_err(|e| Error::kafka(format!("reading committed offsets of group `{group}`"), e))?;
        Ok((partitions, committed))
    }

    /// How many records above each committed offset of `group` on `topic` were completed
    /// already, by the offset map a listener with [`ProcessingOrder::Key`](crate::ProcessingOrder)
    /// or `Unordered` writes into the commit's metadata (0 for a partition without one): the
    /// records its next consumer skips. With the committed offsets, what the group has done.
    ///
    /// # Errors
    /// When the topic does not exist or the broker cannot be reached in 10 s.
    pub fn completed_above(&self, group: &str, topic: &str) -> Result<BTreeMap<i32, u64>> {
        let (partitions, committed) = self.committed_list(group, topic)?;
        let mut completed: BTreeMap<i32, u64> = partitions.into_iter().map(|p| (p, 0)).collect();
        for (_, partition, offset, metadata) in crate::topic_partition::raw_metadata(&committed) {
            if let Ok(map) = crate::ack::CompletedAbove::decode(offset, &metadata) {
                completed.insert(partition, map.count().unsigned_abs());
            }
        }
        Ok(completed)
    }

    /// The lag of `group` on each partition of `topic`: end offset minus committed offset, in
    /// records; where nothing is committed, end minus the log start (every record is unread).
    ///
    /// # Errors
    /// When the topic does not exist or the broker cannot be reached in 10 s.
    pub fn lag(&self, group: &str, topic: &str) -> Result<BTreeMap<i32, i64>> {
        let committed = self.committed_offsets(group, topic)?;
        // One watermark read gives both ends of each partition.
        Ok(self
            .watermarks(topic, |marks| marks)?
            .into_iter()
            .map(|(p, (low, end))| (p, (end - committed.get(&p).copied().flatten().unwrap_or(low)).max(0)))
            .collect())
    }

    /// The log start offset (low watermark) of each partition of `topic`: the first offset a
    /// consumer can still read.
    ///
    /// # Errors
    /// When the topic does not exist or the broker cannot be reached in 10 s.
    pub fn beginning_offsets(&self, topic: &str) -> Result<BTreeMap<i32, i64>> {
        self.watermarks(topic, |(low, _)| low)
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

    /// The end offset (high watermark) of each partition of `topic`: the offset the next record
    /// will get.
    ///
    /// # Errors
    /// When the topic does not exist or the broker cannot be reached in 10 s.
    pub fn end_offsets(&self, topic: &str) -> Result<BTreeMap<i32, i64>> {
        self.watermarks(topic, |(_, high)| high)
    }

    /// What `pick` takes from each partition's (low, high) watermarks.
    fn watermarks<T>(&self, topic: &str, pick: fn((i64, i64)) -> T) -> Result<BTreeMap<i32, T>> {
        let consumer = self.consumer(None)?;
        self.partitions_with(&consumer, topic)?
            .into_iter()
            .map(|p| {
                consumer
                    .fetch_watermarks(topic, p, self.timeout)
                    .map(|marks| (p, pick(marks)))
                    .map_err(|e| Error::kafka(format!("reading the offsets of `{topic}`-{p}"), e))
            })
            .collect()
    }

    /// Creates a topic (the broker's default replication factor) unless it exists.
    ///
    /// # Errors
    /// As [`create_topics`](Self::create_topics).
    pub async fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        self.create_topics([NewTopic::new(name, partitions)]).await
    }

    /// Creates the topics that do not exist yet, in one request: [`NewTopic`]s, or
    /// `(name, partitions)` pairs. The cluster's metadata is read first; a topic that exists is
    /// left as it is (a partition count other than the declared one is logged at WARN).
    ///
    /// On an `EmbeddedKafka` of this process (librdkafka's mock cluster answers no CreateTopics
    /// request) the topics are created on the cluster directly, with replication factor 1 unless
    /// one is given, and without their configs (the mock cluster keeps none).
    ///
    /// # Errors
    /// When the broker refuses a topic (naming it and the broker's reason, e.g. a replication
    /// factor above the number of brokers), or cannot be reached, or does not answer the
    /// CreateTopics request within 10 s.
    pub async fn create_topics<T: Into<NewTopic>>(&self, topics: impl IntoIterator<Item = T>) -> Result<()> {
        let topics: Vec<NewTopic> = topics.into_iter().map(Into::into).collect();
        if topics.is_empty() {
            return Ok(());
        }
        #[cfg(feature = "embedded")]
        if let Some(created) = crate::embedded::create_topics_in_process(
            self.properties.get("bootstrap.servers").unwrap_or_default(),
            &topics,
        ) {
            return created;
        }
        let lookup = self.clone();
        let existing = tokio::task::spawn_blocking(move || lookup.partition_counts())
            .await
            .map_err(|e| Error::config("topics", format!("reading the cluster's metadata failed: {e}")))??;
        let topics: Vec<NewTopic> = topics
            .into_iter()
            .filter(|t| match existing.get(t.name()) {
                None => true,
                Some(&partitions) => {
                    if partitions != t.partitions() as usize {
                        tracing::warn!(
                            topic = t.name(),
                            partitions,
                            declared = t.partitions(),
                            "the topic exists with another partition count; it is left as it is"
                        );
                    }
                    false
                }
            })
            .collect();
        if topics.is_empty() {
            return Ok(());
        }
        let admin: AdminClient<DefaultClientContext> =
            self.properties.to_client_config().create().map_err(|e| Error::kafka("creating an admin client", e))?;
        let names: Vec<&str> = topics.iter().map(NewTopic::name).collect();
        let new: Vec<rdkafka::admin::NewTopic<'_>> = topics
            .iter()
            .map(|t| {
                let replication = TopicReplication::Fixed(t.replication().map_or(-1, i32::from));
                t.configs()
                    .iter()
                    .fold(rdkafka::admin::NewTopic::new(t.name(), t.partitions(), replication), |new, (k, v)| {
                        new.set(k, v)
                    })
            })
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(self.timeout)).request_timeout(Some(self.timeout));
        let results = admin.create_topics(&new, &options).await.map_err(|e| {
            let timed_out = matches!(
                e.rdkafka_error_code(),
                Some(RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::RequestTimedOut)
            );
            let context = if timed_out {
                format!(
                    "creating topics {names:?}: the broker did not answer within {:?} (librdkafka's mock cluster \
                     answers no CreateTopics: create the topics of an embedded broker in the process that runs it)",
                    self.timeout
                )
            } else {
                format!("creating topics {names:?}")
            };
            Error::kafka(context, e)
        })?;
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
        tracing::info!(topics = ?names, "topics created");
        Ok(())
    }
}
