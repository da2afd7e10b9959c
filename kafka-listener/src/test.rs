//! Test utilities (cargo feature `test-utils`), as Spring's `@EmbeddedKafka`, `KafkaTestUtils`
//! and `ContainerTestUtils` give them: an embedded broker with topics, waiting until a listener's
//! partitions are assigned, reading the records of a topic, committed offsets and lag. Every wait
//! has a deadline and its error says what it waited for and what it saw.
//!
//! Give test factories a short `session.timeout.ms` (e.g. `.set("session.timeout.ms", "6000")`):
//! once a group has had members, the embedded broker (like Kafka) waits up to the session timeout
//! for them before it assigns partitions again, ~44 s with librdkafka's default, when a listener
//! is stopped and started again or a second instance joins.
//!
//! ```no_run
//! use std::time::Duration;
//! use kafka_listener::prelude::*;
//! use kafka_listener::test;
//!
//! # async fn run() -> kafka_listener::Result<()> {
//! let kafka = test::embedded_kafka([NewTopic::new("orders", 2), NewTopic::new("invoices", 2)])?;
//! let factory = ContainerFactory::builder().bootstrap_servers(kafka.bootstrap_servers()).build()?;
//! let running = ListenerRegistry::from_annotations().with_default_factory(factory).start().await?;
//! // By listener id: `id = "billing"` in its attribute (without one, the function's path).
//! test::wait_for_assignment(&running, "billing", 2, Duration::from_secs(10)).await?;
//! // ... produce to "orders" ...
//! let invoices = test::records(&kafka.bootstrap_servers(), "invoices", 3, Duration::from_secs(10)).await?;
//! assert_eq!(invoices.len(), 3);
//! test::wait_for_committed(&kafka.bootstrap_servers(), "billing", "orders", Duration::from_secs(10)).await?;
//! running.shutdown().await
//! # }
//! ```
//!
//! The reads run on a blocking thread (librdkafka's calls block), so they suit any tokio test,
//! `#[tokio::test]` included.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{Error, Result};
use crate::extract::{ConsumerRecord, Record};
use crate::registry::RunningListeners;
use crate::support::{Admin, NewTopic};

/// Starts an embedded broker (one broker; see [`EmbeddedKafka`](crate::EmbeddedKafka)) with
/// these topics (Spring's `@EmbeddedKafka(topics = ..., partitions = ...)`).
///
/// # Errors
/// When the mock cluster cannot start or refuses a topic (zero partitions, a replication factor
/// above 1).
#[cfg(feature = "embedded")]
pub fn embedded_kafka<T: Into<NewTopic>>(topics: impl IntoIterator<Item = T>) -> Result<crate::EmbeddedKafka> {
    let kafka = crate::EmbeddedKafka::start(1)?;
    let topics: Vec<NewTopic> = topics.into_iter().map(Into::into).collect();
    crate::embedded::create_topics_in_process(&kafka.bootstrap_servers(), &topics).unwrap_or(Ok(()))?;
    Ok(kafka)
}

/// Waits until the listener `id` has at least `partitions` partitions assigned across its
/// consumers (Spring's `ContainerTestUtils.waitForAssignment`), and returns them as
/// `TopicPartition`s, sorted.
///
/// `id` is the listener's id: its attribute's `id = "..."`, else the function's path
/// (`my_service::on_order`), or the `Endpoint`'s.
///
/// # Errors
/// [`Error::Config`] naming the running listeners for an unknown id; [`Error::Timeout`] naming
/// the partitions assigned so far when `timeout` passes first.
pub async fn wait_for_assignment(
    running: &RunningListeners,
    id: &str,
    partitions: usize,
    timeout: Duration,
) -> Result<Vec<crate::TopicPartition>> {
    let container = running.container(id).ok_or_else(|| {
        let ids: Vec<&str> = running.containers().map(|c| c.id()).collect();
        Error::config(
            "listener id",
            format!(
                "no running listener has id `{id}`; the running ones are {ids:?} (a listener without `id = \"...\"` has its function's path as id)"
            ),
        )
    })?;
    let deadline = Instant::now() + timeout;
    loop {
        let mut assigned = container.assignment();
        if assigned.len() >= partitions {
            assigned.sort();
            return Ok(assigned);
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!(
                    "listener `{id}` to have {partitions} partition(s) assigned; it has [{}] (a group that had members waits up to session.timeout.ms for them before it assigns again: set it low in tests, e.g. 6000)",
                    crate::topic_partition::join(&assigned)
                ),
                waited: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads the first `count` records of `topic` (every partition from its log start, without a
/// consumer group: nothing is committed), sorted by partition then offset (Spring's
/// `KafkaTestUtils.getRecords` with a minimum count). Reads only committed records of
/// transactions (`isolation.level = read_committed`). The first fetch takes ~0.6 s on the
/// embedded broker: give it seconds (10 s is a good deadline in tests; it returns as soon as the
/// records are read).
///
/// # Errors
/// [`Error::Timeout`] naming how many records were read when `timeout` passes first; the
/// client's error when the topic does not exist or the broker cannot be reached.
pub async fn records(
    bootstrap_servers: &str,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<ConsumerRecord>> {
    let (servers, topic) = (bootstrap_servers.to_string(), topic.to_string());
    blocking(move || read_records(&servers, &topic, count, timeout)).await
}

fn read_records(bootstrap_servers: &str, topic: &str, count: usize, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
    let deadline = Instant::now() + timeout;
    let partitions = Admin::new(bootstrap_servers).partitions(topic)?;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", "kafka-listener-test-records")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(|e| Error::kafka("creating a consumer to read records", e))?;
    let mut tpl = TopicPartitionList::new();
    for partition in partitions {
        tpl.add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(|e| Error::kafka(format!("reading `{topic}`-{partition}"), e))?;
    }
    consumer.assign(&tpl).map_err(|e| Error::kafka(format!("assigning the partitions of `{topic}`"), e))?;
    let mut read = Vec::with_capacity(count);
    while read.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout {
                what: format!("{count} record(s) in `{topic}`; read {}", read.len()),
                waited: timeout,
            });
        }
        match consumer.poll(left.min(Duration::from_millis(100))) {
            Some(Ok(message)) => read.push(Record::new(message).to_owned()),
            Some(Err(error)) => return Err(Error::kafka(format!("reading `{topic}`"), error)),
            None => {}
        }
    }
    read.sort_by_key(|r| (r.partition, r.offset));
    Ok(read)
}

/// The committed offset of every partition of `topic` for `group` (`None` where the group
/// committed nothing), as [`Admin::committed_offsets`].
///
/// # Errors
/// When the topic does not exist or the broker cannot be reached.
pub async fn committed_offsets(
    bootstrap_servers: &str,
    group: &str,
    topic: &str,
) -> Result<BTreeMap<i32, Option<i64>>> {
    let (admin, group, topic) = (Admin::new(bootstrap_servers), group.to_string(), topic.to_string());
    blocking(move || admin.committed_offsets(&group, &topic)).await
}

/// The lag of `group` on every partition of `topic`, in records, as [`Admin::lag`].
///
/// # Errors
/// When the topic does not exist or the broker cannot be reached.
pub async fn lag(bootstrap_servers: &str, group: &str, topic: &str) -> Result<BTreeMap<i32, i64>> {
    let (admin, group, topic) = (Admin::new(bootstrap_servers), group.to_string(), topic.to_string());
    blocking(move || admin.lag(&group, &topic)).await
}

/// Waits until `group` has committed every record of `topic` (its committed offset equals the
/// end offset in every partition; lag 0) and returns the committed offsets.
///
/// # Errors
/// [`Error::Timeout`] giving the committed and end offsets last read when `timeout` passes
/// first; the client's error when the topic does not exist.
pub async fn wait_for_committed(
    bootstrap_servers: &str,
    group: &str,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<i32, i64>> {
    let deadline = Instant::now() + timeout;
    loop {
        let admin = Admin::new(bootstrap_servers);
        let (g, t) = (group.to_string(), topic.to_string());
        let (committed, end) = blocking(move || Ok((admin.committed_offsets(&g, &t)?, admin.end_offsets(&t)?))).await?;
        if end.iter().all(|(p, end)| committed.get(p).copied().flatten().unwrap_or(0) >= *end) {
            return Ok(end);
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!(
                    "group `{group}` to commit every record of `{topic}`: committed {committed:?}, end offsets {end:?}"
                ),
                waited: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a blocking client call off the runtime's threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::config("test", format!("a blocking read failed: {e}")))?
}
