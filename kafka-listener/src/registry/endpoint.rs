use std::fmt;
use std::sync::Arc;

use super::annotation::AnnotatedInvoke;
use crate::config::{AckMode, ProcessingOrder};
use crate::container::Invoker;
use crate::error_handler::RetryTopics;
use crate::extract::Requirements;
use crate::handler::{BatchHandler, BlockingHandler, Handler};

/// A listener's callback on assigned partitions (see [`Endpoint::on_partitions_assigned`]).
pub type OnPartitionsAssigned = Arc<dyn Fn(&[crate::TopicPartition], &crate::ConsumerHandle) + Send + Sync>;

/// The listener type, decided from the handler's parameters (Spring's listener interfaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenerType {
    /// Records (or batches) only.
    Simple,
    /// Takes an `Acknowledgment`.
    Acknowledging,
    /// Takes a `ConsumerHandle`.
    ConsumerAware,
    /// Takes both.
    AcknowledgingConsumerAware,
}

impl ListenerType {
    pub(crate) fn of(requirements: &Requirements) -> Self {
        match (requirements.acknowledging, requirements.consumer_aware) {
            (false, false) => ListenerType::Simple,
            (true, false) => ListenerType::Acknowledging,
            (false, true) => ListenerType::ConsumerAware,
            (true, true) => ListenerType::AcknowledgingConsumerAware,
        }
    }
}

/// A listener: what it consumes and the handler that gets the records. `#[kafka_listener]` makes
/// one per annotated function; [`Endpoint::new`] makes one in code (dynamic topics, tests).
///
/// The attribute builds its endpoint with these builder methods, one call per argument:
/// `#[kafka_listener(id = "audit", topics = ["orders"], group = "audit", concurrency = 3)]` is
/// `Endpoint::new("audit").topic("orders").group("audit").concurrency(3)` and the function as the
/// handler (without `id`, the id is the function's path, e.g. `my_app::listeners::audit`).
///
/// String settings accept `${ENV}` / `${ENV:default}` placeholders, resolved at start.
///
/// ```
/// use kafka_listener::prelude::*;
///
/// let endpoint = Endpoint::new("audit-dynamic")
///     .topics(["orders", "refunds"])
///     .group("audit")
///     .handler(|record: ConsumerRecord| async move {
///         println!("{}-{}@{}", record.topic, record.partition, record.offset);
///     });
/// assert_eq!(endpoint.listener_type(), Some(ListenerType::Simple));
/// ```
#[derive(Clone)]
#[must_use]
pub struct Endpoint {
    /// The id as written (placeholders unresolved).
    pub(crate) id: String,
    pub(crate) topics: Vec<String>,
    pub(crate) topic_pattern: Option<String>,
    /// Explicit partitions: (topic, partitions, start position as written).
    pub(crate) topic_partitions: Vec<(String, Vec<i32>, String)>,
    pub(crate) on_partitions_assigned: Option<OnPartitionsAssigned>,
    /// A time-range replay: [from, to) in ms since the epoch.
    pub(crate) replay: Option<(i64, i64)>,
    pub(crate) filter: Option<crate::handler::RecordFilter>,
    pub(crate) group: Option<String>,
    pub(crate) container_factory: Option<String>,
    /// As written: a number, or text with placeholders.
    pub(crate) concurrency: Option<String>,
    /// As written: `true`, `false`, or text with placeholders.
    pub(crate) auto_startup: Option<String>,
    pub(crate) client_id_prefix: Option<String>,
    /// `key=value`, as written.
    pub(crate) properties: Vec<String>,
    pub(crate) ack_mode: Option<AckMode>,
    pub(crate) processing_order: Option<ProcessingOrder>,
    pub(crate) max_concurrency: Option<usize>,
    pub(crate) reply_to: Option<String>,
    pub(crate) error_handler: Option<Arc<dyn crate::ErrorHandler>>,
    pub(crate) retry_topics: Option<Arc<RetryTopics>>,
    pub(crate) invoker: Option<Invoker>,
    pub(crate) requirements: Requirements,
    /// Where the listener is defined, for messages (the annotated function and its file and line).
    pub(crate) source: Option<String>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id())
            .field("topics", &self.topics)
            .field("topic_pattern", &self.topic_pattern)
            .field("group", &self.group)
            .field("container_factory", &self.container_factory)
            .field("listener_type", &self.listener_type())
            .field("batch", &self.is_batch())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// A listener with this id and no topic or handler yet.
    pub fn new(id: impl Into<String>) -> Self {
        Endpoint {
            id: id.into(),
            topics: Vec::new(),
            topic_pattern: None,
            topic_partitions: Vec::new(),
            on_partitions_assigned: None,
            replay: None,
            filter: None,
            group: None,
            container_factory: None,
            concurrency: None,
            auto_startup: None,
            client_id_prefix: None,
            properties: Vec::new(),
            ack_mode: None,
            processing_order: None,
            max_concurrency: None,
            reply_to: None,
            error_handler: None,
            retry_topics: None,
            invoker: None,
            requirements: Requirements::default(),
            source: None,
        }
    }

    /// Adds a topic.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topics.push(topic.into());
        self
    }

    /// Adds topics.
    pub fn topics<I: IntoIterator<Item = S>, S: Into<String>>(mut self, topics: I) -> Self {
        self.topics.extend(topics.into_iter().map(Into::into));
        self
    }

    /// Subscribes to every topic matching this regular expression instead of named topics.
    pub fn topic_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.topic_pattern = Some(pattern.into());
        self
    }

    /// The consumer group (default: the factory's group, else the listener id).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// The name of the container factory given to `ListenerRegistry::with_factory`.
    pub fn container_factory(mut self, name: impl Into<String>) -> Self {
        self.container_factory = Some(name.into());
        self
    }

    /// How many consumers run this listener (default: the factory's concurrency).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = Some(concurrency.to_string());
        self
    }

    /// The concurrency as text with `${ENV}` placeholders (`concurrency = "${CONSUMERS:3}"`),
    /// read at start.
    #[doc(hidden)]
    pub fn concurrency_text(mut self, concurrency: impl Into<String>) -> Self {
        self.concurrency = Some(concurrency.into());
        self
    }

    /// Whether `start()` starts it (default true); else start it with `RunningListeners::start(id)`
    /// (its retry topics' containers with it).
    pub fn auto_startup(mut self, auto_startup: bool) -> Self {
        self.auto_startup = Some(auto_startup.to_string());
        self
    }

    /// `auto_startup` as text with `${ENV}` placeholders (`auto_startup = "${START:true}"`), read
    /// at start.
    #[doc(hidden)]
    pub fn auto_startup_text(mut self, auto_startup: impl Into<String>) -> Self {
        self.auto_startup = Some(auto_startup.into());
        self
    }

    /// The prefix of its consumers' client ids.
    pub fn client_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.client_id_prefix = Some(prefix.into());
        self
    }

    /// A consumer property for this listener only, over the factory's.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.push(format!("{}={}", key.into(), value.into()));
        self
    }

    /// Consumer properties for this listener only, over the factory's, each written
    /// `"key=value"` (the attribute's `properties = [...]`). Placeholders are resolved before the
    /// text is split, so one may stand for a whole property: `"${EXTRA_PROPERTY:fetch.min.bytes=1}"`.
    ///
    /// ```
    /// # use kafka_listener::prelude::*;
    /// let endpoint = Endpoint::new("audit").properties(["fetch.min.bytes=1024", "max.poll.records=${MAX_POLL:500}"]);
    /// ```
    pub fn properties<I: IntoIterator<Item = S>, S: Into<String>>(mut self, properties: I) -> Self {
        self.properties.extend(properties.into_iter().map(Into::into));
        self
    }

    /// The ack mode this listener runs with, over the factory's.
    pub fn ack_mode(mut self, ack_mode: AckMode) -> Self {
        self.ack_mode = Some(ack_mode);
        self
    }

    /// In which order this listener's records are handled, over its factory's (see
    /// [`ContainerFactoryBuilder::processing_order`](crate::ContainerFactoryBuilder::processing_order)):
    /// the attribute's `processing_order = "key"`.
    ///
    /// ```
    /// # use kafka_listener::prelude::*;
    /// let endpoint = Endpoint::new("audit").topic("orders").processing_order(ProcessingOrder::Key).max_concurrency(1000);
    /// ```
    pub fn processing_order(mut self, order: ProcessingOrder) -> Self {
        self.processing_order = Some(order);
        self
    }

    /// How many of this listener's records one consumer has in flight at most with
    /// [`ProcessingOrder::Key`] or [`ProcessingOrder::Unordered`], over its factory's (at least
    /// 1): the attribute's `max_concurrency = 1000`.
    pub fn max_concurrency(mut self, records: usize) -> Self {
        self.max_concurrency = Some(records.max(1));
        self
    }

    /// The error handler of this listener, over its factory's.
    pub fn error_handler(mut self, handler: impl crate::ErrorHandler) -> Self {
        self.error_handler = Some(Arc::new(handler));
        self
    }

    /// Explicit partitions of `topic`, without group rebalancing (the consumer's `assign()`),
    /// starting at `start` (a [`StartPosition`](crate::registry::StartPosition) as text:
    /// `"committed"`, `"beginning"`, `"end"`, `"offset:42"`, `"end-10"`, `"time:2026-11-01T00:00:00Z"`).
    /// Call once per topic. Concurrency is capped at the number of partitions; offsets are still
    /// committed for the listener's group.
    pub fn topic_partitions(
        mut self,
        topic: impl Into<String>,
        partitions: impl IntoIterator<Item = i32>,
        start: impl Into<String>,
    ) -> Self {
        self.topic_partitions.push((topic.into(), partitions.into_iter().collect(), start.into()));
        self
    }

    /// Which records this listener gets (`true`: hand it over), over its factory's filter.
    pub fn filter(mut self, filter: impl Fn(&crate::Record<'_>) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Some(Arc::new(filter));
        self
    }

    /// Runs the listener over the records of its topics (all partitions) whose timestamps are in
    /// `[from, to)`, then stops it: each partition starts at the first record at or after `from`
    /// (offsets for times) and ends before the first at or after `to` (taken when the listener
    /// starts: with `to` in the future, the end of the partition then). Nothing is committed.
    /// `RunningListeners::replayed(id)` resolves with the records handled per partition.
    pub fn replay(mut self, from: std::time::SystemTime, to: std::time::SystemTime) -> Self {
        let ms = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        };
        self.replay = Some((ms(from), ms(to)));
        self
    }

    /// Where a new group starts a partition without a committed offset: `earliest`, `latest`, or
    /// `error` (the partition is not consumed until it is sought; a consumer error says so).
    pub fn auto_offset_reset(self, reset: impl Into<String>) -> Self {
        self.property("auto.offset.reset", reset)
    }

    /// Called on the container's thread when partitions are assigned to one of the listener's
    /// consumers (and at start for explicit partitions), before they are fetched: seeks on them
    /// through the handle set where they start (Spring's `onPartitionsAssigned`), e.g. always from
    /// the beginning, or past a group without committed offsets under `auto_offset_reset = error`.
    pub fn on_partitions_assigned(
        mut self,
        callback: impl Fn(&[crate::TopicPartition], &crate::ConsumerHandle) + Send + Sync + 'static,
    ) -> Self {
        self.on_partitions_assigned = Some(Arc::new(callback));
        self
    }

    /// Non-blocking retries through retry topics (over the factory's policy): a failed record is
    /// republished to `<topic>-retry-<n>` and handled there when due, then dead-lettered to
    /// `<topic>-dlt`. Needs a template on the registry (`with_template`).
    pub fn retry_topics(mut self, policy: RetryTopics) -> Self {
        self.retry_topics = Some(Arc::new(policy));
        self
    }

    /// Where the handler's return values are published (else the request's `kafka_replyTopic`).
    pub fn reply_to(mut self, topic: impl Into<String>) -> Self {
        self.reply_to = Some(topic.into());
        self
    }

    /// The handler: an async fn or closure of record extractors.
    pub fn handler<H: Handler<Args>, Args>(mut self, handler: H) -> Self {
        self.requirements = Requirements::default();
        H::requirements(&mut self.requirements);
        let handler = Arc::new(handler);
        let started = handler.clone();
        self.invoker = Some(Invoker::Record(
            Arc::new(move |record, cx| handler.call(record, cx)),
            Arc::new(move |record, cx| started.start(record, cx)),
        ));
        self
    }

    /// The handler: a plain fn or closure of record extractors.
    pub fn blocking_handler<H: BlockingHandler<Args>, Args>(mut self, handler: H) -> Self {
        self.requirements = Requirements::default();
        H::requirements(&mut self.requirements);
        let handler = Arc::new(handler);
        let started = handler.clone();
        self.invoker = Some(Invoker::Record(
            Arc::new(move |record, cx| handler.call(record, cx)),
            Arc::new(move |record, cx| started.clone().start(record, cx)),
        ));
        self
    }

    /// The handler of a batch listener: an async fn or closure of batch extractors.
    pub fn batch_handler<H: BatchHandler<Args>, Args>(mut self, handler: H) -> Self {
        self.requirements = Requirements::default();
        H::requirements(&mut self.requirements);
        self.invoker = Some(Invoker::Batch(Arc::new(move |records, cx| handler.call(records, cx))));
        self
    }

    /// The handler `#[kafka_listener]` generates: the function that converts the parameters and
    /// calls the annotated function, and what its parameters need.
    #[doc(hidden)]
    pub fn generated_handler(mut self, invoke: AnnotatedInvoke, requirements: fn(&mut Requirements)) -> Self {
        self.requirements = Requirements::default();
        requirements(&mut self.requirements);
        self.invoker = Some(match invoke {
            AnnotatedInvoke::Record(f, start) => Invoker::Record(Arc::new(f), Arc::new(start)),
            AnnotatedInvoke::Batch(f) => Invoker::Batch(Arc::new(f)),
        });
        self
    }

    /// Where the listener is defined, named in messages about it (e.g. two listeners with one
    /// id); `#[kafka_listener]` gives the function's path, file and line.
    #[doc(hidden)]
    pub fn defined_at(mut self, location: impl Into<String>) -> Self {
        self.source = Some(location.into());
        self
    }

    /// The listener id (placeholders unresolved): the `id` given, else (for `#[kafka_listener]`)
    /// the function's path.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The topics named.
    pub fn topics_named(&self) -> &[String] {
        &self.topics
    }

    /// The topic pattern, if any.
    pub fn pattern(&self) -> Option<&str> {
        self.topic_pattern.as_deref()
    }

    /// The group named, if any.
    pub fn group_named(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// The factory named, if any.
    pub fn factory_named(&self) -> Option<&str> {
        self.container_factory.as_deref()
    }

    /// The listener type, once a handler is set.
    pub fn listener_type(&self) -> Option<ListenerType> {
        self.invoker.as_ref().map(|_| ListenerType::of(&self.requirements))
    }

    /// Whether it receives batches.
    pub fn is_batch(&self) -> bool {
        matches!(self.invoker, Some(Invoker::Batch(_)))
    }

    /// What its parameters need.
    pub fn requirements(&self) -> &Requirements {
        &self.requirements
    }
}
