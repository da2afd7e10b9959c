//! An in-process Kafka for tests and examples: librdkafka's mock cluster, with fault injection.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::error::{Error, Result};

/// The request kinds and error codes of [`EmbeddedKafka::fail_requests`] (librdkafka's).
pub use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

/// The embedded broker's `group.initial.rebalance.delay.ms`.
const INITIAL_REBALANCE_DELAY: Duration = Duration::from_millis(100);

/// A Kafka cluster inside this process (librdkafka's mock cluster): real brokers on loopback
/// ports, speaking the Kafka protocol, with topics, consumer groups, committed offsets and
/// transactions. Nothing to install; data lives in memory until it is dropped.
///
/// A new consumer group waits 100 ms for more members before its first assignment (a real
/// broker's `group.initial.rebalance.delay.ms` is 3 s; the mock's own default, 3 s, is lowered):
/// the consumers of a listener with concurrency above 1 subscribe together and share the first
/// assignment instead of rebalancing once per consumer.
/// The mock keeps only about 5 MiB per partition: produce large volumes compressed.
///
/// ```
/// use kafka_listener::EmbeddedKafka;
///
/// let kafka = EmbeddedKafka::start(1)?;
/// kafka.create_topic("orders", 3)?;
/// kafka.produce("orders", Some(b"customer-1"), br#"{"id":1,"amount":9.5}"#)?;
/// kafka.flush()?;
/// assert!(kafka.bootstrap_servers().contains(':'));
/// # Ok::<(), kafka_listener::Error>(())
/// ```
pub struct EmbeddedKafka {
    // The mock cluster belongs to this client and lives as long as it does.
    producer: Arc<BaseProducer>,
    bootstrap_servers: String,
}

/// The embedded clusters of this process, by bootstrap servers: the mock cluster answers no
/// CreateTopics request, so topics a listener creates at start (retry topics) are created on
/// it directly.
static LIVE: Mutex<Vec<(String, Weak<BaseProducer>, i32)>> = Mutex::new(Vec::new());

/// Creates `topics` (name, partitions) on the embedded cluster of this process at
/// `bootstrap_servers`, skipping those that exist; `None` when no live embedded cluster has
/// those bootstrap servers (a real broker: create them through the admin API).
pub(crate) fn create_topics_in_process(
    bootstrap_servers: &str,
    topics: &[crate::support::NewTopic],
) -> Option<Result<()>> {
    let (producer, brokers) = LIVE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .find(|(servers, _, _)| servers == bootstrap_servers)
        .and_then(|(_, cluster, brokers)| cluster.upgrade().map(|c| (c, *brokers)))?;
    let cluster = producer.client().mock_cluster()?;
    Some(topics.iter().try_for_each(|topic| {
        let (name, replication) = (topic.name(), topic.replication().map_or(1, i32::from));
        if replication > brokers {
            // The mock cluster would accept it; Kafka refuses (INVALID_REPLICATION_FACTOR).
            return Err(Error::config(
                "replication_factor",
                format!(
                    "topic `{name}`: replication factor {replication} is larger than the {brokers} broker(s) of the embedded cluster; declare at most {brokers}"
                ),
            ));
        }
        match cluster.create_topic(name, topic.partitions(), replication) {
            Ok(()) | Err(KafkaError::MockCluster(RDKafkaErrorCode::TopicAlreadyExists)) => Ok(()),
            Err(error) => Err(Error::kafka(
                format!(
                    "creating topic `{name}` ({} partitions, replication factor {replication}) on the embedded cluster",
                    topic.partitions()
                ),
                error,
            )),
        }
    }))
}

/// A request an [`EmbeddedKafka`] broker received, recorded after
/// [`EmbeddedKafka::track_requests`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MockRequest {
    /// The request kind: Kafka's API key (`RDKafkaApiKey::OffsetCommit as i16` is 8).
    pub api_key: i16,
    /// The broker that received it (1-based).
    pub broker_id: i32,
    /// When it was received, in µs of librdkafka's monotonic clock.
    pub timestamp_us: i64,
}

impl fmt::Debug for EmbeddedKafka {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedKafka").field("bootstrap_servers", &self.bootstrap_servers).finish()
    }
}

impl EmbeddedKafka {
    /// Starts a cluster of `brokers` brokers (at least 1).
    ///
    /// # Errors
    /// When librdkafka cannot create the mock cluster.
    pub fn start(brokers: i32) -> Result<EmbeddedKafka> {
        if brokers < 1 {
            return Err(Error::config("brokers", "EmbeddedKafka needs at least 1 broker"));
        }
        let producer: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", brokers.to_string())
            .set("linger.ms", "5")
            .set("reconnect.backoff.max.ms", "1000")
            .create()
            .map_err(|e| Error::kafka("starting the embedded Kafka cluster", e))?;
        let cluster = producer
            .client()
            .mock_cluster()
            .ok_or_else(|| Error::config("test.mock.num.brokers", "librdkafka did not create a mock cluster"))?;
        let bootstrap_servers = cluster.bootstrap_servers();
        drop(cluster);
        let producer = Arc::new(producer);
        let mut live = LIVE.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|(_, cluster, _)| cluster.strong_count() > 0);
        live.push((bootstrap_servers.clone(), Arc::downgrade(&producer), brokers));
        drop(live);
        let kafka = EmbeddedKafka { producer, bootstrap_servers };
        kafka.set_initial_rebalance_delay(INITIAL_REBALANCE_DELAY);
        Ok(kafka)
    }

    /// How long a new consumer group waits for more members before its first assignment
    /// (the broker's `group.initial.rebalance.delay.ms`; 100 ms after `start`). The consumers of
    /// a listener with concurrency above 1 subscribe together, so a short delay gets them all
    /// into the first assignment, instead of a second rebalance (which the mock cluster lets
    /// wait `session.timeout.ms - 1 s`, rejecting commits meanwhile). 0 starts a lone consumer
    /// ~0.1 s sooner.
    pub fn set_initial_rebalance_delay(&self, delay: Duration) {
        self.set_millis(rdkafka::bindings::rd_kafka_mock_group_initial_rebalance_delay_ms, delay);
    }

    /// The heartbeat interval the broker gives members of consumer-protocol groups (KIP-848's
    /// `group.consumer.heartbeat.interval.ms`; the mock cluster's default is 3 s). A member
    /// learns of a new assignment at its next heartbeat, so a shorter one makes rebalances
    /// quicker in tests.
    pub fn set_consumer_group_heartbeat_interval(&self, interval: Duration) {
        self.set_millis(rdkafka::bindings::rd_kafka_mock_set_group_consumer_heartbeat_interval_ms, interval);
    }

    /// How long a silent member of a consumer-protocol group keeps its partitions (KIP-848's
    /// `group.consumer.session.timeout.ms`; the mock cluster's default is 30 s).
    pub fn set_consumer_group_session_timeout(&self, timeout: Duration) {
        self.set_millis(rdkafka::bindings::rd_kafka_mock_set_group_consumer_session_timeout_ms, timeout);
    }

    /// Calls one of the mock cluster's millisecond setters.
    fn set_millis(
        &self,
        setter: unsafe extern "C" fn(*mut rdkafka::bindings::rd_kafka_mock_cluster_t, i32),
        value: Duration,
    ) {
        // SAFETY: see `with_mock`; the setters only store the value.
        self.with_mock(|cluster| unsafe { setter(cluster, i32::try_from(value.as_millis()).unwrap_or(i32::MAX)) });
    }

    /// The brokers' addresses, for `bootstrap_servers`.
    pub fn bootstrap_servers(&self) -> String {
        self.bootstrap_servers.clone()
    }

    /// Creates a topic with `partitions` partitions.
    ///
    /// # Errors
    /// When the cluster refuses (e.g. zero partitions).
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<()> {
        self.with_cluster(|cluster| cluster.create_topic(name, partitions, 1))?
            .map_err(|e| Error::kafka(format!("creating topic `{name}`"), e))
    }

    /// Sends a record (partition chosen from the key, as the producer's default partitioner does).
    /// Queued: call [`flush`](Self::flush) to wait for delivery.
    ///
    /// # Errors
    /// When the record cannot be queued.
    pub fn produce(&self, topic: &str, key: Option<&[u8]>, payload: &[u8]) -> Result<()> {
        self.send(topic, None, key, payload)
    }

    /// Sends a record to a given partition. Queued: call [`flush`](Self::flush) to wait.
    ///
    /// # Errors
    /// When the record cannot be queued.
    pub fn produce_to(&self, topic: &str, partition: i32, key: Option<&[u8]>, payload: &[u8]) -> Result<()> {
        self.send(topic, Some(partition), key, payload)
    }

    /// Sends a record with headers (name, value). Queued: call [`flush`](Self::flush) to wait.
    ///
    /// # Errors
    /// When the record cannot be queued.
    pub fn produce_with_headers(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: &[(&str, &[u8])],
    ) -> Result<()> {
        let mut owned = OwnedHeaders::new_with_capacity(headers.len());
        for (name, value) in headers {
            owned = owned.insert(Header { key: name, value: Some(*value) });
        }
        self.send_with(topic, None, key, payload, Some(owned))
    }

    fn send(&self, topic: &str, partition: Option<i32>, key: Option<&[u8]>, payload: &[u8]) -> Result<()> {
        self.send_with(topic, partition, key, payload, None)
    }

    fn send_with(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<()> {
        loop {
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(payload);
            if let Some(headers) = &headers {
                record = record.headers(headers.clone());
            }
            if let Some(key) = key {
                record = record.key(key);
            }
            if let Some(partition) = partition {
                record = record.partition(partition);
            }
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((error, _)) => return Err(Error::kafka(format!("producing to `{topic}`"), error)),
            }
        }
    }

    fn with_cluster<T>(
        &self,
        action: impl FnOnce(&rdkafka::mocking::MockCluster<'_, rdkafka::producer::DefaultProducerContext>) -> T,
    ) -> Result<T> {
        let cluster = self
            .producer
            .client()
            .mock_cluster()
            .ok_or_else(|| Error::config("test.mock.num.brokers", "the mock cluster is gone"))?;
        Ok(action(&cluster))
    }

    /// Fault injection: the next requests of kind `api` fail with `errors`, one error per request,
    /// in order (`RD_KAFKA_RESP_ERR__TRANSPORT` disconnects the client instead). E.g. failing
    /// commits: `fail_requests(RDKafkaApiKey::OffsetCommit, &[RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT; 5])`.
    ///
    /// # Errors
    /// When the mock cluster is gone.
    pub fn fail_requests(&self, api: RDKafkaApiKey, errors: &[RDKafkaRespErr]) -> Result<()> {
        self.with_cluster(|cluster| cluster.request_errors(api, errors))
    }

    /// Drops the injected errors of requests of kind `api` not used yet.
    ///
    /// # Errors
    /// When the mock cluster is gone.
    pub fn clear_request_errors(&self, api: RDKafkaApiKey) -> Result<()> {
        self.with_cluster(|cluster| cluster.clear_request_errors(api))
    }

    /// Takes broker `broker_id` (1-based; -1 for all) down: it drops its connections and refuses
    /// new ones until [`broker_up`](Self::broker_up). Its data and consumer groups are kept.
    ///
    /// # Errors
    /// When the mock cluster refuses (e.g. no such broker).
    pub fn broker_down(&self, broker_id: i32) -> Result<()> {
        self.with_cluster(|cluster| cluster.broker_down(broker_id))?
            .map_err(|e| Error::kafka(format!("taking broker {broker_id} down"), e))
    }

    /// Brings broker `broker_id` (-1 for all) back up.
    ///
    /// # Errors
    /// When the mock cluster refuses (e.g. no such broker).
    pub fn broker_up(&self, broker_id: i32) -> Result<()> {
        self.with_cluster(|cluster| cluster.broker_up(broker_id))?
            .map_err(|e| Error::kafka(format!("bringing broker {broker_id} up"), e))
    }

    /// Starts recording the requests the brokers receive (from every client of the cluster),
    /// for [`requests`](Self::requests): e.g. to tell a transactional commit
    /// (`TxnOffsetCommit`) from a consumer's own (`OffsetCommit`). Clears what was recorded.
    pub fn track_requests(&self) {
        self.with_mock(|cluster| {
            // SAFETY: see `with_mock`.
            unsafe {
                rdkafka::bindings::rd_kafka_mock_clear_requests(cluster);
                rdkafka::bindings::rd_kafka_mock_start_request_tracking(cluster);
            }
        });
    }

    /// The requests received since [`track_requests`](Self::track_requests), oldest first: the
    /// request kind (Kafka's API key, e.g. `28` for `TxnOffsetCommit`; compare with
    /// `RDKafkaApiKey::X as i16`), the broker id (1-based) and when (µs, librdkafka's monotonic
    /// clock). Empty when tracking was not started.
    pub fn requests(&self) -> Vec<MockRequest> {
        self.with_mock(|cluster| {
            let mut count = 0usize;
            // SAFETY: see `with_mock`; librdkafka returns a copy of `count` requests that we
            // read and then free with its own destructor.
            unsafe {
                let array = rdkafka::bindings::rd_kafka_mock_get_requests(cluster, &mut count);
                if array.is_null() {
                    return Vec::new();
                }
                let requests = (0..count)
                    .map(|i| {
                        let request = *array.add(i);
                        MockRequest {
                            api_key: rdkafka::bindings::rd_kafka_mock_request_api_key(request),
                            broker_id: rdkafka::bindings::rd_kafka_mock_request_id(request),
                            timestamp_us: rdkafka::bindings::rd_kafka_mock_request_timestamp(request),
                        }
                    })
                    .collect();
                rdkafka::bindings::rd_kafka_mock_request_destroy_array(array, count);
                requests
            }
        })
        .unwrap_or_default()
    }

    /// How many requests of kind `api` were received since [`track_requests`](Self::track_requests).
    pub fn request_count(&self, api: RDKafkaApiKey) -> usize {
        self.requests().iter().filter(|r| r.api_key == api as i16).count()
    }

    /// Runs `action` on the raw mock cluster handle; `None` when there is none.
    fn with_mock<T>(&self, action: impl FnOnce(*mut rdkafka::bindings::rd_kafka_mock_cluster_t) -> T) -> Option<T> {
        // SAFETY: the client was created with `test.mock.num.brokers`, so it owns a mock cluster
        // that lives as long as the client; the mock API is thread-safe (it sends an operation to
        // the cluster's own thread and waits for it).
        let cluster = unsafe { rdkafka::bindings::rd_kafka_handle_mock_cluster(self.producer.client().native_ptr()) };
        (!cluster.is_null()).then(|| action(cluster))
    }

    /// Waits until every produced record is delivered.
    ///
    /// # Errors
    /// When delivery does not finish within 30 s.
    pub fn flush(&self) -> Result<()> {
        self.producer.flush(Duration::from_secs(30)).map_err(|e| Error::kafka("flushing the embedded producer", e))
    }
}
