use std::collections::HashMap;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, Producer};
use tokio::sync::OnceCell;

use super::delivery::{Delivery, Prepared};
use super::{KafkaTemplateBuilder, Partitioner, Payload};
use crate::config::Properties;
use crate::error::{Error, Result};
use crate::observability::spans;

/// Where the broker stored a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) timestamp: Option<i64>,
}

impl RecordMetadata {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The offset.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The record's timestamp (ms since the epoch), if the broker reported one.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }
}

/// Told of every send's outcome (Spring's `ProducerListener`); serves fire-and-forget sends.
pub trait ProducerListener: Send + Sync + 'static {
    /// A record was stored.
    fn on_success(&self, metadata: &RecordMetadata) {
        let _ = metadata;
    }

    /// A record could not be sent to `topic`.
    fn on_error(&self, topic: &str, error: &Error) {
        let _ = (topic, error);
    }
}

/// Sends records (Spring's `KafkaTemplate`). Cheap to clone: clones share one producer.
///
/// ```no_run
/// use kafka_listener::prelude::*;
///
/// # async fn run() -> kafka_listener::Result<()> {
/// #[derive(serde::Serialize)]
/// struct Order { id: u64 }
///
/// let template = KafkaTemplate::builder()
///     .bootstrap_servers("localhost:9092")
///     .partitioner(DefaultPartitioner)
///     .build()?;
/// let stored = template.send("orders", Json(&Order { id: 7 })).key("customer-1").await?;
/// println!("{}-{}@{}", stored.topic(), stored.partition(), stored.offset());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct KafkaTemplate {
    pub(crate) inner: Arc<TemplateInner>,
}

pub(crate) struct TemplateInner {
    pub(crate) producer: FutureProducer,
    pub(crate) properties: Properties,
    pub(crate) default_topic: Option<String>,
    pub(crate) partitioner: Option<Arc<dyn Partitioner>>,
    pub(crate) listener: Option<Arc<dyn ProducerListener>>,
    pub(crate) send_timeout: Duration,
    pub(crate) close_timeout: Duration,
    /// Partition counts by topic, for the partitioner; refreshed when a send fails for metadata.
    pub(crate) partition_counts: Mutex<HashMap<String, Arc<OnceCell<i32>>>>,
    /// Built with a `transactional_id`.
    pub(crate) transactional: bool,
    /// One transaction at a time per producer.
    pub(crate) transaction_lock: tokio::sync::Mutex<()>,
    /// Records that could not be queued at once, served in order by one task.
    pub(crate) backlog: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<super::delivery::Backlogged>>,
    /// How many records wait in the backlog (sends queue directly only when none does).
    pub(crate) backlog_len: std::sync::atomic::AtomicUsize,
    /// Deliveries dropped before they completed, waited for by one task.
    pub(crate) orphans: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Delivery>>,
}

impl fmt::Debug for KafkaTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaTemplate")
            .field("properties", &self.inner.properties)
            .field("default_topic", &self.inner.default_topic)
            .finish_non_exhaustive()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// No key (the default of [`SendRecord`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKey;

impl Payload for NoKey {
    fn to_bytes(&self) -> std::result::Result<Option<std::borrow::Cow<'_, [u8]>>, BoxError> {
        Ok(None)
    }
}

/// A record being sent: add a key, partition, headers or timestamp, then `.await` it for the
/// broker's [`RecordMetadata`], or [`queue`](Self::queue) it to go on without waiting.
///
/// The record is queued in the producer when it is awaited or queued (not when the first poll of
/// a future gets to it): records are queued in the order of those calls, and a loop that queues
/// each record and awaits the deliveries afterwards sends them in batches (see
/// [`KafkaTemplate::send_all`]). Awaiting each send before the next one waits a round trip
/// (plus `linger.ms`) per record.
#[must_use = "a record is sent when awaited or queued (.queue())"]
pub struct SendRecord<'t, P, K = NoKey> {
    template: &'t KafkaTemplate,
    topic: Option<&'t str>,
    payload: P,
    key: K,
    partition: Option<i32>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    timestamp: Option<i64>,
}

impl<'t, P, K> SendRecord<'t, P, K> {
    /// The key (any [`Payload`]: `&str`, `String`, `Json(&key)`, bytes).
    pub fn key<K2: Payload>(self, key: K2) -> SendRecord<'t, P, K2> {
        SendRecord {
            template: self.template,
            topic: self.topic,
            payload: self.payload,
            key,
            partition: self.partition,
            headers: self.headers,
            timestamp: self.timestamp,
        }
    }

    /// The partition, over any partitioner.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// A header (names may repeat).
    pub fn header(mut self, name: impl Into<String>, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.into().into_bytes(), Some(value.as_ref().to_vec())));
        self
    }

    /// A header with a null value (Kafka tells it apart from an empty one; Java's
    /// `new RecordHeader(name, null)`).
    pub fn null_header(mut self, name: impl Into<String>) -> Self {
        self.headers.push((name.into().into_bytes(), None));
        self
    }

    /// A header as bytes, name included (Kafka's header names are bytes on the wire; a name need
    /// not be UTF-8), and `None` for a null value: forwards a consumed record's headers as they
    /// were (`Headers::iter_raw`). librdkafka ends a header name at its first NUL byte.
    pub fn raw_header(mut self, name: &[u8], value: Option<&[u8]>) -> Self {
        self.headers.push((name.to_vec(), value.map(<[u8]>::to_vec)));
        self
    }

    /// The record's timestamp, in ms since the epoch (default: now).
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }
}

impl<P: Payload, K: Payload> IntoFuture for SendRecord<'_, P, K> {
    type Output = Result<RecordMetadata>;
    type IntoFuture = Delivery;

    /// Queues the record (as [`queue`](SendRecord::queue)); the future reports its delivery.
    fn into_future(self) -> Delivery {
        self.queue()
    }
}

impl<P: Payload, K: Payload> SendRecord<'_, P, K> {
    /// Serializes the record and queues it in the producer now (Spring's `send()`), returning
    /// its [`Delivery`]: await it for the [`RecordMetadata`], or drop it (the record is still
    /// delivered and its outcome goes to the template's [`ProducerListener`]).
    ///
    /// Never waits: when librdkafka's queue is full (`queue.buffering.max.messages`, 100,000
    /// records by default) or the partitioner needs the topic's partition count first, the record
    /// waits in the template, in order with the records sent after it, for up to the send timeout.
    /// Awaiting deliveries bounds how many records wait.
    ///
    /// # Errors
    /// The delivery resolves to [`Error::Serialization`] when the key or value does not
    /// serialize, [`Error::NoDefaultTopic`] for `send_default` on a template without one, and the
    /// errors of the broker's answer ([`Error::UnknownTopic`], [`Error::MessageTooLarge`],
    /// [`Error::SendTimeout`], ...).
    pub fn queue(self) -> Delivery {
        // Only the `opentelemetry` feature adds headers.
        #[cfg_attr(not(feature = "opentelemetry"), allow(unused_mut))]
        let mut record = self;
        let template = record.template;
        let topic = record.topic.unwrap_or_default();
        let span = spans::send(topic, record.partition);
        #[cfg(feature = "opentelemetry")]
        record.carry_trace_context(&span);
        match record.prepare() {
            Ok(prepared) => {
                spans::send_key(&span, prepared.key.as_deref());
                Delivery::queue(&template.inner, prepared, span)
            }
            Err(error) => {
                spans::send_failed(&span, &error);
                Delivery::failed(&template.inner, topic, error, span)
            }
        }
    }

    /// Sets the headers that carry the send span's context (W3C `traceparent`, `tracestate`, or
    /// the application's propagator's), replacing any the record had: a forward to a dead-letter
    /// or retry topic, which copies the failed record's headers, then continues the trace of the
    /// delivery that failed, as a reply does. Without a valid context (no OpenTelemetry layer)
    /// the headers stay as they are.
    #[cfg(feature = "opentelemetry")]
    fn carry_trace_context(&mut self, span: &tracing::Span) {
        let carried = crate::observability::propagation::headers_for(span);
        if carried.is_empty() {
            return;
        }
        self.headers.retain(|(name, _)| !carried.iter().any(|(carried, _)| carried.as_bytes() == &name[..]));
        self.headers.extend(carried.into_iter().map(|(name, value)| (name.into_bytes(), Some(value.into_bytes()))));
    }

    /// The record, serialized (borrowing what it can).
    fn prepare(&self) -> Result<Prepared<'_>> {
        let topic = self.topic.ok_or(Error::NoDefaultTopic)?;
        let value = self.payload.to_bytes().map_err(|e| serialization(topic, "value", e))?;
        let key = self.key.to_bytes().map_err(|e| serialization(topic, "key", e))?;
        Ok(Prepared {
            topic: std::borrow::Cow::Borrowed(topic),
            key,
            value,
            partition: self.partition,
            timestamp: self.timestamp,
            headers: (!self.headers.is_empty()).then(|| owned_headers(&self.headers)),
        })
    }
}

/// librdkafka headers with these names and values (`None`: a null value).
fn owned_headers(headers: &[(Vec<u8>, Option<Vec<u8>>)]) -> OwnedHeaders {
    let mut owned = OwnedHeaders::new_with_capacity(headers.len());
    for (name, value) in headers {
        match std::str::from_utf8(name) {
            Ok(key) => owned = owned.insert(Header { key, value: value.as_deref() }),
            Err(_) => add_raw_header(&owned, name, value.as_deref()),
        }
    }
    owned
}

/// Adds a header whose name is not UTF-8: rust-rdkafka's `insert` takes a `&str` name, librdkafka
/// takes bytes.
fn add_raw_header(headers: &OwnedHeaders, name: &[u8], value: Option<&[u8]>) {
    use rdkafka::bindings as rd;
    // `BorrowedHeaders` is a zero-sized view placed at the address of librdkafka's
    // `rd_kafka_headers_t` (rust-rdkafka casts it back the same way), and `OwnedHeaders` owns
    // that list, writable.
    let list = std::ptr::from_ref(headers.as_borrowed()).cast::<rd::rd_kafka_headers_t>().cast_mut();
    let (value_ptr, value_len) = match value {
        Some(v) => (v.as_ptr().cast::<std::os::raw::c_void>(), v.len() as isize),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: `list` is the live header list of `headers`; librdkafka copies name and value.
    let err = unsafe {
        rd::rd_kafka_header_add(
            list,
            name.as_ptr().cast::<std::os::raw::c_char>(),
            name.len() as isize,
            value_ptr,
            value_len,
        )
    };
    if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        tracing::warn!(name = %String::from_utf8_lossy(name), ?err, "could not add a header; it is left out");
    }
}

fn serialization(topic: &str, part: &'static str, source: BoxError) -> Error {
    Error::Serialization { topic: topic.to_string(), part, source }
}

impl KafkaTemplate {
    /// A builder: `bootstrap_servers`, `acks`, `compression`, `partitioner`, ...
    pub fn builder() -> KafkaTemplateBuilder {
        KafkaTemplateBuilder::default()
    }

    /// A librdkafka property as set on this template's producer (secrets are not returned).
    pub fn property(&self, key: &str) -> Option<&str> {
        if crate::config::is_secret(key) {
            return None;
        }
        self.inner.properties.get(key)
    }

    /// The topic of `send_default`, if one was given.
    pub fn default_topic(&self) -> Option<&str> {
        self.inner.default_topic.as_deref()
    }

    /// How long a send may wait for room and delivery.
    pub fn send_timeout(&self) -> std::time::Duration {
        self.inner.send_timeout
    }

    /// Sends `payload` to `topic`; add `.key(..)`, `.partition(..)`, `.header(..)`, `.timestamp(..)`
    /// and await the broker's [`RecordMetadata`].
    pub fn send<'t, P: Payload>(&'t self, topic: &'t str, payload: P) -> SendRecord<'t, P> {
        self.record(Some(topic), payload)
    }

    /// Sends to the builder's `default_topic` (an error when there is none).
    pub fn send_default<P: Payload>(&self, payload: P) -> SendRecord<'_, P> {
        self.record(self.inner.default_topic.as_deref(), payload)
    }

    fn record<'t, P>(&'t self, topic: Option<&'t str>, payload: P) -> SendRecord<'t, P> {
        SendRecord { template: self, topic, payload, key: NoKey, partition: None, headers: Vec::new(), timestamp: None }
    }

    /// Runs `work` in a transaction: every record it sends through the template it is given is
    /// committed if it returns `Ok`, and aborted (never seen by `read_committed` consumers) if it
    /// returns `Err`. Transactions of one template run one at a time.
    ///
    /// ```no_run
    /// # use kafka_listener::prelude::*;
    /// # async fn run(template: KafkaTemplate) -> kafka_listener::Result<()> {
    /// template
    ///     .transaction(|tx| async move {
    ///         tx.send("ledger", "debit 10").key("acct-1").await?;
    ///         tx.send("ledger", "credit 10").key("acct-2").await?;
    ///         Ok::<_, ListenerError>(())
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::TransactionAborted`] with the cause when `work` fails; the client's error when
    /// the transaction cannot begin or commit (it is then aborted); a config error for a template
    /// built without `transactional_id`.
    pub async fn transaction<F, Fut, T>(&self, work: F) -> Result<T>
    where
        F: FnOnce(KafkaTemplate) -> Fut,
        Fut: Future<Output = std::result::Result<T, crate::ListenerError>>,
    {
        if !self.inner.transactional {
            return Err(Error::config(
                "transactional_id",
                "this template is not transactional; build it with .transactional_id(\"...\")",
            ));
        }
        let _one_at_a_time = self.inner.transaction_lock.lock().await;
        self.inner.producer.begin_transaction().map_err(|e| Error::kafka("beginning a transaction", e))?;
        match work(self.clone()).await {
            Ok(value) => match self.end_transaction(true).await {
                Ok(()) => Ok(value),
                Err(error) => {
                    let _ = self.end_transaction(false).await;
                    Err(error)
                }
            },
            Err(cause) => {
                self.end_transaction(false).await?;
                Err(Error::TransactionAborted { source: cause.into_error() })
            }
        }
    }

    /// Commits or aborts the open transaction (blocking calls, off the runtime's threads).
    pub(crate) async fn end_transaction(&self, commit: bool) -> Result<()> {
        let (producer, timeout) = (self.inner.producer.clone(), self.inner.send_timeout);
        let result = tokio::task::spawn_blocking(move || {
            if commit {
                producer.commit_transaction(timeout)
            } else {
                producer.abort_transaction(timeout)
            }
        })
        .await
        .map_err(|e| Error::config("producer", format!("ending the transaction failed: {e}")))?;
        result.map_err(|e| {
            Error::kafka(if commit { "committing the transaction" } else { "aborting the transaction" }, e)
        })
    }

    /// Waits until every queued record is delivered (bounded by the close timeout).
    ///
    /// # Errors
    /// When records are still queued after the timeout.
    pub async fn flush(&self) -> Result<()> {
        let (producer, timeout) = (self.inner.producer.clone(), self.inner.close_timeout);
        tokio::task::spawn_blocking(move || producer.flush(timeout))
            .await
            .map_err(|e| Error::config("producer", format!("flush failed: {e}")))?
            .map_err(|e| Error::kafka(format!("flushing within {timeout:?}"), e))
    }

    /// Delivers what is queued (bounded by the close timeout) before the template is dropped.
    ///
    /// # Errors
    /// As [`flush`](Self::flush).
    pub async fn close(self) -> Result<()> {
        self.flush().await
    }

    /// The partition count of `topic`, from the cache or the broker's metadata (read once for all
    /// the sends waiting on it).
    ///
    /// # Errors
    /// When the topic does not exist or its metadata cannot be read.
    pub async fn partition_count(&self, topic: &str) -> Result<i32> {
        self.inner.partition_count(topic).await
    }

    /// Sends every record of `records` (built with [`send`](Self::send) on this template) and
    /// waits for all the broker's answers: the records are queued first, all of them, then their
    /// deliveries are awaited together, so the whole batch takes about one round trip.
    ///
    /// ```no_run
    /// # use kafka_listener::prelude::*;
    /// # async fn run(template: KafkaTemplate) -> kafka_listener::Result<()> {
    /// let orders = [(1, "a"), (2, "b")];
    /// let sent = template
    ///     .send_all(orders.iter().map(|(id, customer)| template.send("orders", id.to_string()).key(*customer)))
    ///     .await;
    /// for (index, error) in sent.failures() {
    ///     eprintln!("order {} was not sent: {error}", orders[index].0);
    /// }
    /// let stored = sent.into_result()?; // or stop at the first failure
    /// # Ok(()) }
    /// ```
    ///
    /// A failed record does not stop the others: [`SendResults`] holds one outcome per record, in
    /// the order given.
    pub async fn send_all<'t, P, K>(&'t self, records: impl IntoIterator<Item = SendRecord<'t, P, K>>) -> SendResults
    where
        P: Payload + 't,
        K: Payload + 't,
    {
        let deliveries: Vec<Delivery> = records.into_iter().map(SendRecord::queue).collect();
        let mut outcomes = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            outcomes.push(delivery.await);
        }
        SendResults { outcomes }
    }
}

/// The outcome of each record of a [`KafkaTemplate::send_all`], in the order the records were
/// given.
#[derive(Debug)]
pub struct SendResults {
    outcomes: Vec<Result<RecordMetadata>>,
}

impl SendResults {
    /// One outcome per record.
    pub fn outcomes(&self) -> &[Result<RecordMetadata>] {
        &self.outcomes
    }

    /// Whether every record was stored.
    pub fn is_ok(&self) -> bool {
        self.outcomes.iter().all(Result::is_ok)
    }

    /// The records that were not stored: (index in the batch, error).
    pub fn failures(&self) -> impl Iterator<Item = (usize, &Error)> {
        self.outcomes.iter().enumerate().filter_map(|(i, outcome)| outcome.as_ref().err().map(|e| (i, e)))
    }

    /// Where each record was stored, or the first failure.
    ///
    /// # Errors
    /// The error of the first record (in batch order) that was not stored.
    pub fn into_result(self) -> Result<Vec<RecordMetadata>> {
        self.outcomes.into_iter().collect()
    }

    /// The outcomes, owned.
    pub fn into_outcomes(self) -> Vec<Result<RecordMetadata>> {
        self.outcomes
    }
}

impl TemplateInner {
    /// The partition count of `topic`, from the cache or the broker's metadata (read once for all
    /// the sends waiting on it).
    ///
    /// # Errors
    /// When the topic does not exist or its metadata cannot be read.
    pub(crate) async fn partition_count(&self, topic: &str) -> Result<i32> {
        let cell = {
            let mut counts = self.counts();
            match counts.get(topic) {
                Some(cell) => cell.clone(),
                None => counts.entry(topic.to_string()).or_default().clone(),
            }
        };
        let count = cell
            .get_or_try_init(|| async {
                let (producer, name, timeout) = (self.producer.clone(), topic.to_string(), self.send_timeout);
                let metadata =
                    tokio::task::spawn_blocking(move || producer.client().fetch_metadata(Some(&name), timeout))
                        .await
                        .map_err(|e| Error::config("producer", format!("reading metadata failed: {e}")))?
                        .map_err(|e| Error::kafka(format!("reading the metadata of `{topic}`"), e))?;
                metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
                    .map(|t| t.partitions().len() as i32)
                    .ok_or_else(|| Error::UnknownTopic { topic: topic.to_string() })
            })
            .await?;
        Ok(*count)
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<OnceCell<i32>>>> {
        self.partition_counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn send_error(&self, topic: &str, size: usize, error: KafkaError) -> Error {
        let code = error.rdkafka_error_code();
        if matches!(
            code,
            Some(
                RDKafkaErrorCode::UnknownPartition
                    | RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::LeaderNotAvailable
                    | RDKafkaErrorCode::NotLeaderForPartition
            )
        ) {
            // The partition count may have changed: read it again next time.
            self.counts().remove(topic);
        }
        match code {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                Error::UnknownTopic { topic: topic.to_string() }
            }
            Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize) => {
                Error::MessageTooLarge { topic: topic.to_string(), bytes: size }
            }
            Some(
                RDKafkaErrorCode::MessageTimedOut | RDKafkaErrorCode::QueueFull | RDKafkaErrorCode::RequestTimedOut,
            ) => Error::SendTimeout { topic: topic.to_string(), timeout: self.send_timeout },
            // librdkafka refuses a transactional producer's send outside a transaction with a
            // bare "Erroneous state" (Spring: "No transaction is in process").
            Some(RDKafkaErrorCode::State) if self.transactional => Error::kafka(
                format!(
                    "sending to `{topic}`: this template is transactional (transactional_id), so it sends only \
                     inside a transaction: call it inside template.transaction(..), or from a listener of a \
                     factory with .transactional_template(..); use a template without transactional_id for \
                     sends outside transactions"
                ),
                error,
            ),
            _ => Error::kafka(format!("sending to `{topic}`"), error),
        }
    }

    /// The partition count of `topic` if it is cached.
    pub(crate) fn cached_partition_count(&self, topic: &str) -> Option<i32> {
        self.counts().get(topic).and_then(|cell| cell.get().copied())
    }
}
