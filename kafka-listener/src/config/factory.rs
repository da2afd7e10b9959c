use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{validate_property, AckMode, GroupProtocol, ProcessingOrder, Properties};

/// Records in flight per consumer with a concurrent processing order, unless set (Confluent
/// Parallel Consumer's default `maxConcurrency`).
pub(crate) const DEFAULT_MAX_CONCURRENCY: usize = 16;
use crate::container::{ContainerEvent, EventListener};
use crate::error::{Error, Result};
use crate::error_handler::{DefaultErrorHandler, ErrorHandler, RetryTopics};
use crate::extract::Record;
use crate::handler::{BatchInterceptor, RecordFilter, RecordInterceptor};
use crate::producer::KafkaTemplate;

/// Builds the containers of the listeners that name it (Spring's `ConcurrentKafkaListenerContainerFactory`).
///
/// Cheap to clone. Derive variants with [`ContainerFactory::to_builder`].
///
/// ```
/// use std::time::Duration;
/// use kafka_listener::prelude::*;
///
/// let factory = ContainerFactory::builder()
///     .bootstrap_servers("localhost:9092")
///     .concurrency(3)
///     .ack_mode(AckMode::Batch)
///     .poll_timeout(Duration::from_millis(1500))
///     .build()?;
/// let manual = factory.to_builder().ack_mode(AckMode::Manual).build()?;
/// assert_eq!(manual.ack_mode(), AckMode::Manual);
/// # Ok::<(), kafka_listener::Error>(())
/// ```
#[derive(Clone)]
pub struct ContainerFactory {
    pub(crate) settings: Arc<FactorySettings>,
}

#[derive(Clone)]
pub(crate) struct FactorySettings {
    pub(crate) properties: Properties,
    pub(crate) concurrency: usize,
    pub(crate) ack_mode: AckMode,
    pub(crate) ack_count: u64,
    pub(crate) ack_time: Duration,
    pub(crate) poll_timeout: Duration,
    pub(crate) max_poll_records: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) startup_timeout: Duration,
    pub(crate) missing_topics_fatal: bool,
    pub(crate) sync_commits: bool,
    pub(crate) delivery_attempt_header: bool,
    pub(crate) retry_topics: Option<Arc<RetryTopics>>,
    pub(crate) record_filter: Option<RecordFilter>,
    pub(crate) ack_discarded: bool,
    pub(crate) record_interceptor: Option<Arc<dyn RecordInterceptor>>,
    pub(crate) batch_interceptor: Option<Arc<dyn BatchInterceptor>>,
    pub(crate) event_listener: Option<EventListener>,
    pub(crate) idle_event_interval: Option<Duration>,
    pub(crate) non_responsive_after: Duration,
    pub(crate) broker_outage_threshold: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) processing_order: ProcessingOrder,
    pub(crate) max_concurrency: usize,
    pub(crate) fix_tx_offsets: bool,
    pub(crate) error_handler: Arc<dyn ErrorHandler>,
    /// Each record is handled in a transaction of this template, its offset committed in it.
    pub(crate) transactional: Option<KafkaTemplate>,
}

impl fmt::Debug for FactorySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContainerFactory")
            .field("properties", &self.properties)
            .field("concurrency", &self.concurrency)
            .field("ack_mode", &self.ack_mode)
            .field("ack_count", &self.ack_count)
            .field("ack_time", &self.ack_time)
            .field("poll_timeout", &self.poll_timeout)
            .field("max_poll_records", &self.max_poll_records)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("startup_timeout", &self.startup_timeout)
            .field("missing_topics_fatal", &self.missing_topics_fatal)
            .field("sync_commits", &self.sync_commits)
            .field("processing_order", &self.processing_order)
            .field("max_concurrency", &self.max_concurrency)
            .field("transactional", &self.transactional.is_some())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ContainerFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.settings.fmt(f)
    }
}

impl ContainerFactory {
    /// A builder with Spring's defaults: concurrency 1, `AckMode::Batch`, the default error handler
    /// (9 retries, then log), `auto.offset.reset=earliest`.
    pub fn builder() -> ContainerFactoryBuilder {
        ContainerFactoryBuilder { settings: FactorySettings::default() }
    }

    /// A builder holding this factory's settings, to derive another factory from it.
    pub fn to_builder(&self) -> ContainerFactoryBuilder {
        ContainerFactoryBuilder { settings: (*self.settings).clone() }
    }

    /// The ack mode of the containers this factory creates.
    pub fn ack_mode(&self) -> AckMode {
        self.settings.ack_mode
    }

    /// The default concurrency of its containers.
    pub fn concurrency(&self) -> usize {
        self.settings.concurrency
    }

    /// The processing order of its record listeners (default [`ProcessingOrder::Partition`]).
    pub fn processing_order(&self) -> ProcessingOrder {
        self.settings.processing_order
    }

    /// The records in flight per consumer with [`ProcessingOrder::Key`] or
    /// [`ProcessingOrder::Unordered`] (default 16).
    pub fn max_concurrency(&self) -> usize {
        self.settings.max_concurrency
    }

    /// The consumer group protocol of its consumers (`group.protocol`; classic unless set).
    pub fn group_protocol(&self) -> GroupProtocol {
        GroupProtocol::of(self.settings.properties.iter())
    }

    /// The most records one poll hands to a listener.
    pub fn max_poll_records(&self) -> usize {
        self.settings.max_poll_records
    }

    /// The ack count of `AckMode::Count` / `CountTime`.
    pub fn ack_count(&self) -> u64 {
        self.settings.ack_count
    }

    /// The interval of `AckMode::Time` / `CountTime`.
    pub fn ack_time(&self) -> Duration {
        self.settings.ack_time
    }

    /// How long one poll waits for records.
    pub fn poll_timeout(&self) -> Duration {
        self.settings.poll_timeout
    }

    /// How long a stop waits for records in hand.
    pub fn shutdown_timeout(&self) -> Duration {
        self.settings.shutdown_timeout
    }

    /// Whether a missing topic fails `start()`.
    pub fn missing_topics_fatal(&self) -> bool {
        self.settings.missing_topics_fatal
    }

    /// The bootstrap servers its consumers connect to.
    pub fn bootstrap_servers(&self) -> Option<&str> {
        self.settings.properties.get("bootstrap.servers")
    }

    /// A librdkafka property as set on this factory (secrets are not returned).
    pub fn property(&self, key: &str) -> Option<&str> {
        if super::is_secret(key) {
            return None;
        }
        self.settings.properties.get(key)
    }
}

impl Default for FactorySettings {
    fn default() -> Self {
        let mut properties = Properties::default();
        properties.set("auto.offset.reset", "earliest");
        // librdkafka's default (1000 ms) throttles a fast consumer to a few 100k records/s
        // (DESIGN.md, measured facts); 10 ms keeps the fetch queue full.
        properties.set("fetch.queue.backoff.ms", "10");
        // librdkafka backs reconnects off up to 10 s, longer than a session: after a broker outage
        // the consumer would lose its partitions. The Java client's 1 s brings it back within a second.
        properties.set("reconnect.backoff.max.ms", "1000");
        FactorySettings {
            properties,
            concurrency: 1,
            ack_mode: AckMode::Batch,
            ack_count: 1,
            ack_time: Duration::from_secs(5),
            poll_timeout: Duration::from_millis(100),
            max_poll_records: 500,
            shutdown_timeout: Duration::from_secs(10),
            startup_timeout: Duration::from_secs(10),
            missing_topics_fatal: false,
            sync_commits: false,
            delivery_attempt_header: false,
            retry_topics: None,
            record_filter: None,
            ack_discarded: true,
            record_interceptor: None,
            batch_interceptor: None,
            event_listener: None,
            idle_event_interval: None,
            non_responsive_after: Duration::from_secs(30),
            broker_outage_threshold: Duration::from_secs(30),
            max_in_flight: 10_000,
            processing_order: ProcessingOrder::Partition,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            fix_tx_offsets: false,
            error_handler: Arc::new(DefaultErrorHandler::default()),
            transactional: None,
        }
    }
}

/// Configures a [`ContainerFactory`]; [`build`](Self::build) checks every setting.
#[must_use]
pub struct ContainerFactoryBuilder {
    settings: FactorySettings,
}

impl fmt::Debug for ContainerFactoryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.settings.fmt(f)
    }
}

impl ContainerFactoryBuilder {
    /// The brokers to bootstrap from (`bootstrap.servers`), e.g. `localhost:9092`.
    pub fn bootstrap_servers(self, servers: impl Into<String>) -> Self {
        self.set("bootstrap.servers", servers)
    }

    /// The client id; each consumer gets `<client_id>-<n>`.
    pub fn client_id(self, client_id: impl Into<String>) -> Self {
        self.set("client.id", client_id)
    }

    /// The consumer group of listeners that do not name one (else the listener id is the group).
    pub fn group(self, group: impl Into<String>) -> Self {
        self.set("group.id", group)
    }

    /// The consumer group protocol (`group.protocol`): [`GroupProtocol::Classic`] (librdkafka's
    /// default) or [`GroupProtocol::Consumer`] (KIP-848, broker-side assignment; needs Kafka 4.0+).
    /// With `Consumer`, `build()` refuses the classic protocol's client settings
    /// ([`GroupProtocol::CLASSIC_ONLY`]).
    pub fn group_protocol(self, protocol: GroupProtocol) -> Self {
        self.set("group.protocol", protocol.name())
    }

    /// Any librdkafka property, e.g. `session.timeout.ms`. Checked by `build()`.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.properties.set(key, value);
        self
    }

    /// How many consumers (each its own `ListenerContainer`) a listener gets. At least 1.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.settings.concurrency = concurrency;
        self
    }

    /// When offsets are committed.
    pub fn ack_mode(mut self, ack_mode: AckMode) -> Self {
        self.settings.ack_mode = ack_mode;
        self
    }

    /// Records handled between commits with `AckMode::Count` / `CountTime`. At least 1.
    pub fn ack_count(mut self, count: u64) -> Self {
        self.settings.ack_count = count;
        self
    }

    /// The interval between commits with `AckMode::Time` / `CountTime`. Above zero.
    pub fn ack_time(mut self, interval: Duration) -> Self {
        self.settings.ack_time = interval;
        self
    }

    /// How long one poll waits for records before the container does its housekeeping (time-based
    /// commits, pause/resume, stop). Polls are sliced to at most 100 ms so that stop is prompt.
    pub fn poll_timeout(mut self, timeout: Duration) -> Self {
        self.settings.poll_timeout = timeout;
        self
    }

    /// The most records one poll hands to the listener (Kafka's `max.poll.records`, default 500).
    pub fn max_poll_records(mut self, records: usize) -> Self {
        self.settings.max_poll_records = records;
        self
    }

    /// Where a group without a committed offset starts: `earliest` (default) or `latest`.
    pub fn auto_offset_reset(self, reset: impl Into<String>) -> Self {
        self.set("auto.offset.reset", reset)
    }

    /// How long a stop waits for the records in hand to be handled, then for records handed to
    /// tasks to be acknowledged, before committing what was processed and leaving the group
    /// (default 10 s). A revocation waits as long (at most half of `max.poll.interval.ms`) for
    /// acknowledgments of the partitions it takes away. What was not acknowledged by then is
    /// logged at WARN and delivered again to the partition's next consumer.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.shutdown_timeout = timeout;
        self
    }

    /// How long `start()` waits for the broker's metadata before reporting it unreachable.
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.settings.startup_timeout = timeout;
        self
    }

    /// Whether a listener's missing topic fails `start()` (default false: warn and wait for it).
    pub fn missing_topics_fatal(mut self, fatal: bool) -> Self {
        self.settings.missing_topics_fatal = fatal;
        self
    }

    /// Commit synchronously, waiting for the broker before the next record (Spring's `syncCommits`).
    /// Default false: commits are asynchronous, at most one in flight, and synchronous on rebalance
    /// and shutdown.
    pub fn sync_commits(mut self, sync: bool) -> Self {
        self.settings.sync_commits = sync;
        self
    }

    /// Adds a `kafka_deliveryAttempt` header (4-byte big-endian, 1 for the first delivery) to the
    /// headers listeners see through `Headers` and `ConsumerRecord` (Spring's
    /// `deliveryAttemptHeader`). `Meta::delivery_attempt()` gives it without the header. Default false.
    pub fn delivery_attempt_header(mut self, enabled: bool) -> Self {
        self.settings.delivery_attempt_header = enabled;
        self
    }

    /// Non-blocking retries through retry topics for every listener of this factory (a listener's
    /// own `retry(...)` takes precedence): see [`RetryTopics`]. Needs a template on the registry.
    pub fn retry_topics(mut self, policy: RetryTopics) -> Self {
        self.settings.retry_topics = Some(Arc::new(policy));
        self
    }

    /// Which records the listeners of this factory get (`true`: hand it over); a listener's own
    /// `filter` takes precedence. Discarded records count as processed unless
    /// [`ack_discarded`](Self::ack_discarded) is false.
    pub fn record_filter(mut self, filter: impl Fn(&Record<'_>) -> bool + Send + Sync + 'static) -> Self {
        self.settings.record_filter = Some(Arc::new(filter));
        self
    }

    /// Whether records a filter or interceptor discards are committed as processed (default true,
    /// Spring's `ackDiscarded`). With false, a discarded record is committed only with a later
    /// handled one (an acknowledging listener's commit passes it once the next record is acked).
    pub fn ack_discarded(mut self, ack: bool) -> Self {
        self.settings.ack_discarded = ack;
        self
    }

    /// Runs around each invocation of a record listener of this factory.
    pub fn record_interceptor(mut self, interceptor: impl RecordInterceptor) -> Self {
        self.settings.record_interceptor = Some(Arc::new(interceptor));
        self
    }

    /// Runs around each invocation of a batch listener of this factory.
    pub fn batch_interceptor(mut self, interceptor: impl BatchInterceptor) -> Self {
        self.settings.batch_interceptor = Some(Arc::new(interceptor));
        self
    }

    /// Receives the container events of this factory's listeners (started, stopped, partitions
    /// assigned / revoked / lost, idle, non-responsive, commit failures), on the container threads.
    pub fn event_listener(mut self, listener: impl Fn(&ContainerEvent) + Send + Sync + 'static) -> Self {
        self.settings.event_listener = Some(Arc::new(listener));
        self
    }

    /// Sends `Idle` (per consumer) and `PartitionIdle` events when no record arrived for this long,
    /// and again every interval while it lasts (default: none).
    pub fn idle_event_interval(mut self, interval: Duration) -> Self {
        self.settings.idle_event_interval = Some(interval);
        self
    }

    /// Sends a `NonResponsive` event when a consumer has not polled for this long (a handler stuck
    /// or slow; default 30 s), and counts the consumer as not live from then on
    /// ([`Health::is_live`](crate::Health::is_live)) until it polls again.
    pub fn non_responsive_after(mut self, threshold: Duration) -> Self {
        self.settings.non_responsive_after = threshold;
        self
    }

    /// How long no broker may be reachable before the listener's readiness turns off
    /// ([`Health::is_ready`](crate::Health::is_ready); default 30 s). It turns on again when a
    /// broker is back: librdkafka's broker states, read every `statistics.interval.ms` (5,000 ms
    /// unless set), and its "all brokers down" error say when.
    pub fn broker_outage_threshold(mut self, threshold: Duration) -> Self {
        self.settings.broker_outage_threshold = threshold;
        self
    }

    /// Back-pressure for acknowledging listeners: when this many records of a partition are
    /// delivered but not acknowledged, the container pauses the partition (the consumer keeps
    /// polling), and resumes it once half of them are (default 10,000). Work handed to tasks then
    /// cannot grow with the backlog.
    pub fn max_in_flight(mut self, records: usize) -> Self {
        self.settings.max_in_flight = records.max(1);
        self
    }

    /// In which order each partition's records reach record listeners (default
    /// [`ProcessingOrder::Partition`]: one at a time, in offset order, on the consumer's thread).
    ///
    /// With [`ProcessingOrder::Key`] (records of one key in offset order, different keys
    /// concurrently) or [`ProcessingOrder::Unordered`], each record's handler runs as a tokio task
    /// on the registry's runtime (a blocking handler on its blocking pool), up to
    /// [`max_concurrency`](Self::max_concurrency) records at a time per consumer, while the consumer
    /// keeps polling; a partition whose records queue up is paused. An `async` handler's future is
    /// first polled on the consumer's thread, in the runtime's context (an eager start, as Python
    /// asyncio's eager task factory): one that ends without waiting costs no task, one that waits
    /// becomes a task there; while handlers' first polls (their work before the first wait) average
    /// over 100 µs, they start as tasks directly. Only the contiguous prefix of
    /// completed records is committed, with the offsets completed above it in the commit's metadata,
    /// which a consumer that takes the partition over reads to skip them (Confluent Parallel
    /// Consumer's offset map). Batch listeners and transactions need `Partition` (a start error
    /// says so); retry-topic containers always run in `Partition` order.
    pub fn processing_order(mut self, order: ProcessingOrder) -> Self {
        self.settings.processing_order = order;
        self
    }

    /// How many records one consumer has in flight at most with [`ProcessingOrder::Key`] or
    /// [`ProcessingOrder::Unordered`], across its partitions (default 16, Parallel Consumer's
    /// default; at least 1). A partition is paused when `max(10 × max_concurrency,
    /// max_poll_records)` of its records wait to start, or [`max_in_flight`](Self::max_in_flight)
    /// wait between its committed offset and its newest record, and resumed when half of them
    /// have gone.
    pub fn max_concurrency(mut self, records: usize) -> Self {
        self.settings.max_concurrency = records.max(1);
        self
    }

    /// Spring's `fixTxOffsets`: a topic written in transactions ends with a commit marker that
    /// no listener sees, so a caught-up partition's committed offset stays one short of its end
    /// (lag 1, forever). With `true`, when a poll returns nothing and a partition has nothing in
    /// flight, the consumer's position past the marker is committed, and lag reaches 0. Default
    /// false. (It also commits past records of aborted transactions that a `read_committed`
    /// consumer skips.)
    pub fn fix_tx_offsets(mut self, fix: bool) -> Self {
        self.settings.fix_tx_offsets = fix;
        self
    }

    /// What happens when a handler fails (default: [`DefaultErrorHandler`]).
    pub fn error_handler(mut self, handler: impl ErrorHandler) -> Self {
        self.settings.error_handler = Arc::new(handler);
        self
    }

    /// Exactly-once consume-process-produce: each record (or batch) is handled inside a transaction of this
    /// (transactional) template, and its offset is committed in the same transaction
    /// (`send_offsets_to_transaction`); when the handler fails, the transaction is aborted and the
    /// error handler decides as usual. Handlers send through the same template (give it to the
    /// registry with `with_state` and take `State<KafkaTemplate>`). A batch listener's batch is one
    /// transaction. Acknowledging listeners do not apply: the transaction commits the offsets.
    pub fn transactional_template(mut self, template: KafkaTemplate) -> Self {
        self.settings.transactional = Some(template);
        self
    }

    /// Checks every setting and builds the factory.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first invalid setting: an unknown or invalid librdkafka
    /// property, properties librdkafka refuses together (e.g. `group.protocol=consumer` with
    /// `session.timeout.ms`), `enable.auto.commit=true`, a zero concurrency, `ack_count`,
    /// `ack_time` or `max_poll_records`, or no `bootstrap_servers`.
    pub fn build(self) -> Result<ContainerFactory> {
        let s = self.settings;
        if s.properties.get("bootstrap.servers").is_none_or(|v| v.trim().is_empty()) {
            return Err(Error::config(
                "bootstrap_servers",
                "not set; call .bootstrap_servers(\"host:9092\") or use EmbeddedKafka::bootstrap_servers()",
            ));
        }
        if s.properties.get("group.id").is_some_and(|g| g.trim().is_empty()) {
            return Err(Error::config(
                "group.id",
                "is empty; name the group, or leave it out (each listener's id is its group then)",
            ));
        }
        if s.concurrency == 0 {
            return Err(Error::config("concurrency", "must be at least 1"));
        }
        if s.max_poll_records == 0 {
            return Err(Error::config("max_poll_records", "must be at least 1"));
        }
        if matches!(s.ack_mode, AckMode::Count | AckMode::CountTime) && s.ack_count == 0 {
            return Err(Error::config("ack_count", format!("must be at least 1 with AckMode::{:?}", s.ack_mode)));
        }
        if matches!(s.ack_mode, AckMode::Time | AckMode::CountTime) && s.ack_time.is_zero() {
            return Err(Error::config("ack_time", format!("must be above zero with AckMode::{:?}", s.ack_mode)));
        }
        if s.transactional.as_ref().is_some_and(|t| !t.inner.transactional) {
            return Err(Error::config(
                "transactional_template",
                "the template has no transactional_id; build it with .transactional_id(\"...\")",
            ));
        }
        if s.poll_timeout.is_zero() {
            return Err(Error::config("poll_timeout", "must be above zero"));
        }
        for (key, value) in s.properties.iter() {
            check_owned_property(key, value)?;
            validate_property(key, value)?;
        }
        super::GroupProtocol::of(s.properties.iter()).check(s.properties.iter(), str::to_string)?;
        // Some properties conflict only together: check them as a consumer will be created.
        if let Err(reason) = super::check_container_consumer(&s.properties) {
            return Err(Error::config(
                super::named_property(&reason),
                format!(
                    "{reason}: librdkafka refuses these consumer properties together; change or remove one of them"
                ),
            ));
        }
        Ok(ContainerFactory { settings: Arc::new(s) })
    }
}

/// Properties the container owns: setting them would break its guarantees.
pub(crate) fn check_owned_property(key: &str, value: &str) -> Result<()> {
    match key {
        "enable.auto.commit" if value.trim() != "false" => {
            Err(Error::config(key, "the container owns commits (see AckMode); remove this property"))
        }
        "enable.auto.offset.store" if value.trim() != "false" => {
            Err(Error::config(key, "the container stores offsets only after handlers ran; remove this property"))
        }
        _ => Ok(()),
    }
}
