//! Spring for Apache Kafka's `@KafkaListener`, in Rust: annotate a function, configure a
//! container factory in code, start the registry; records flow from Kafka (through rust-rdkafka)
//! into your handlers, converted by extractors, with offsets committed by the ack mode.
//!
//! ```no_run
//! use std::time::Duration;
//! use kafka_listener::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! struct Order { id: u64, amount: f64 }
//!
//! // A simple listener: the payload is JSON; an Err goes to the error handler.
//! #[kafka_listener(topic = "orders", group = "billing")]
//! async fn on_order(order: Json<Order>, meta: Meta) -> Result<(), ListenerError> {
//!     println!("order {} of {} at {}-{}@{}", order.id, order.amount, meta.topic, meta.partition, meta.offset);
//!     Ok(())
//! }
//!
//! // An acknowledging listener on a factory with a manual ack mode.
//! #[kafka_listener(id = "audit", topics = ["orders", "refunds"], group = "audit", container_factory = "manual")]
//! async fn audit(record: ConsumerRecord, ack: Acknowledgment) {
//!     ack.acknowledge();
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), kafka_listener::Error> {
//!     let factory = ContainerFactory::builder()
//!         .bootstrap_servers("localhost:9092")
//!         .concurrency(3)
//!         .ack_mode(AckMode::Batch)
//!         .poll_timeout(Duration::from_millis(1500))
//!         .build()?;
//!     let manual = factory.to_builder().ack_mode(AckMode::Manual).build()?;
//!     let running = ListenerRegistry::from_annotations()
//!         .with_default_factory(factory)
//!         .with_factory("manual", manual)
//!         .start()
//!         .await?;
//!     running.shutdown_on_signal().await
//! }
//! ```
//!
//! # Execution model
//!
//! A listener with `concurrency = N` runs N rdkafka consumers in its group, each with its own OS
//! thread (`kafka-listener-<listener id>-<n>`; Linux tools show its first 15 bytes) that polls the consumer and calls the handler
//! itself: an `fn` runs on it, an `async fn`'s future is driven to completion on it inside the
//! registry's tokio runtime (the one `ListenerRegistry::start` was awaited on), so handlers can
//! `.await` I/O, use timers and `tokio::spawn`. The consumer's next record waits for the handler,
//! which keeps each partition in order; a slow or blocking handler holds up only its own consumer,
//! never the runtime's worker threads. So `#[tokio::main(flavor = "current_thread")]` works too:
//! the runtime's one thread serves the application's tasks (and those handlers spawn) while the
//! consumers' threads run handlers. More throughput comes from partitions and `concurrency`, or
//! from spawning work and acknowledging it later (`AckMode::Manual`). The [`container`] module's
//! docs map which file does what inside a container.
//!
//! Partitions are [`TopicPartition`]s across the API (Kafka's and Spring's name); where you name
//! partitions, `(topic, partition)` pairs work too.
//!
//! # Processing order
//!
//! [`ProcessingOrder::Partition`] (the default) is the model above. With
//! [`ProcessingOrder::Key`] (`processing_order = "key"`, or the factory's or
//! [`Endpoint`]'s `processing_order`), records of one key (byte-equal; keyless
//! records form one lane per partition) run one at a time in offset order while different keys
//! run concurrently, up to `max_concurrency` records per consumer (default 16); with
//! [`ProcessingOrder::Unordered`] any record may run concurrently (Confluent's Parallel Consumer's
//! `KEY` and `UNORDERED`). Handlers then run as tokio tasks on the registry's runtime (an `fn`
//! handler on its blocking pool; an `async fn` handler's future is polled once on the consumer's
//! thread first, and becomes a task if it waits, unless handlers' first polls average over
//! 100 µs), so an `async fn` handler's future must be `Send`; the consumer's
//! thread keeps polling (a slow handler never exceeds `max.poll.interval.ms`) and pauses a
//! partition when enough of its records wait. Only the contiguous prefix of completed records is
//! committed; the offsets completed above it travel in the commit's metadata and are skipped after
//! a restart or rebalance, so a crash redoes only what was in flight. A failing record is retried
//! with the error handler's back-off while only its key waits. Batch listeners and transactional
//! factories need `Partition` (refused at start).
//!
//! ```no_run
//! use kafka_listener::prelude::*;
//!
//! # async fn charge(_: &[u8]) {}
//! // One account's payments in order; different accounts concurrently, up to 1,000 at once.
//! #[kafka_listener(topic = "payments", group = "ledger", processing_order = "key", max_concurrency = 1000)]
//! async fn on_payment(payment: Vec<u8>) -> Result<(), ListenerError> {
//!     charge(&payment).await;
//!     Ok(())
//! }
//! ```
//!
//! # Observability
//!
//! Each delivery runs inside a `tracing` span named `process` (target `kafka_listener`) with
//! OpenTelemetry's messaging fields; `KafkaTemplate` sends are `send` spans; metrics go through
//! the [`metrics`](https://docs.rs/metrics) facade (install a recorder before starting the
//! registry); [`RunningListeners::health`] gives liveness and readiness. With the cargo feature
//! `opentelemetry`, trace context crosses Kafka in W3C `traceparent` headers. Names and units:
//! [`observability`].
//!
//! ```no_run
//! # use kafka_listener::prelude::*;
//! # async fn run(running: RunningListeners) {
//! let health = running.health();
//! if !health.is_ready() {
//!     for listener in &health.listeners {
//!         println!("{}: {:?}", listener.id, listener.consumers);
//!     }
//! }
//! # }
//! ```
//!
//! # Configuration from files and the environment
//!
//! [`KafkaProperties`] is Spring Boot's `spring.kafka.*` tree (kebab-case keys, per-listener
//! overrides under `listeners.<id>`), read by any serde-based configuration library or from
//! `KAFKA_*` variables; the registry makes its default factory and template from it and applies
//! the overrides at start. `group-protocol = "consumer"` selects KIP-848's protocol
//! ([`GroupProtocol`]).
//!
//! ```no_run
//! # use kafka_listener::prelude::*;
//! # async fn run() -> Result<(), kafka_listener::Error> {
//! // KAFKA_BOOTSTRAP_SERVERS=localhost:9092 KAFKA_LISTENERS__AUDIT__CONCURRENCY=2 ...
//! ListenerRegistry::from_annotations()
//!     .with_properties(KafkaProperties::from_env()?)
//!     .start()
//!     .await?
//!     .shutdown_on_signal()
//!     .await
//! # }
//! ```
//!
//! # Choosing an ack mode
//!
//! Every ack mode commits a record's offset only after its handler returned (or the error handler
//! recovered it), so "commit after my database transaction" needs no special mode: commit the
//! database transaction inside the handler and return `Ok`; the offset is committed after that. What
//! the modes change is *when* the offsets of finished records reach Kafka, and so how much work is
//! delivered again after a crash (Kafka's delivery is at least once: make handlers idempotent, e.g.
//! an upsert keyed by the record's id, or by topic-partition-offset).
//!
//! | You want | Ack mode |
//! |---|---|
//! | The usual case: handle records in order, commit after each poll's records | `AckMode::Batch` (the default) |
//! | As little redelivery as possible after a crash, at one commit per record | `AckMode::Record` |
//! | Fewer commits on a busy topic | `AckMode::Time`, `Count` or `CountTime` (`ack_time`, `ack_count`) |
//! | Work that finishes after the handler returns (spawned tasks, a pipeline): commit when it is done | `AckMode::Manual` (commit on the next poll) or `ManualImmediate` (commit at once), with an `Acknowledgment` argument; out-of-order acks commit the contiguous prefix |
//! | Records written to other topics and the offsets committed together, all or nothing | any mode, with the factory's `transactional_template` |
//! | Exactly once into a database | store the next offset in the same database transaction, and start from it in `on_partitions_assigned` (then ack mode hardly matters) |
//!
//! Retries are independent of the ack mode: a failed record is retried by the error handler before
//! anything after it is committed.
//!
//! The layers follow spring-kafka's: [`registry`] (annotated and code-built endpoints),
//! [`config`] (factories, ack modes, properties), [`container`] (consumers and poll loops), [`ack`]
//! (acknowledgments, offset tracking), [`error_handler`], [`extract`] and [`handler`] (the
//! adapter from records to function arguments), and [`support`].
//!
//! Delivery is at least once: a record's offset is committed only after its handler returned
//! (or the error handler recovered it), never past an unprocessed record, and records of one
//! partition are handled in order.

pub mod ack;
pub mod config;
pub mod container;
#[cfg(feature = "embedded")]
pub mod embedded;
mod error;
pub mod error_handler;
pub mod extract;
pub mod handler;
pub mod observability;
pub mod producer;
pub mod registry;
pub mod support;
#[cfg(feature = "test-utils")]
pub mod test;
mod topic_partition;

pub use ack::Acknowledgment;
pub use config::{
    AckMode, ContainerFactory, ContainerFactoryBuilder, GroupProtocol, KafkaProperties, ProcessingOrder, SaslMechanism,
    SecuritySettings,
};
pub use container::{ConcurrentContainer, ConsumerHandle};
#[cfg(feature = "embedded")]
pub use embedded::{EmbeddedKafka, MockRequest};
pub use error::{Error, Problem, Result};
pub use error_handler::{DefaultErrorHandler, ErrorDecision, ErrorHandler, FailedBatch, FailedRecord};
pub use extract::{ConsumerRecord, FromBatch, FromRecord, Headers, Json, Key, Meta, OptionalFromRecord, Record, State};
pub use handler::{BatchInterceptor, BatchListenerFailed, ListenerError, ListenerFailure, RecordInterceptor};
pub use kafka_listener_macros::kafka_listener;
pub use observability::{ConsumerHealth, ConsumerState, Health, ListenerHealth};
pub use producer::{
    DefaultPartitioner, Delivery, KafkaTemplate, Partitioner, RecordMetadata, ReplyingTemplate, RoundRobinPartitioner,
    SendResults, UniformStickyPartitioner,
};
pub use registry::{shutdown_signal, Endpoint, ListenerRegistry, ListenerType, RunningListeners, ShutdownSignal};
pub use topic_partition::TopicPartition;

/// Everything a listener program needs, and the macro.
pub mod prelude {
    pub use crate::container::{ContainerEvent, SeekTo};
    pub use crate::producer::{
        Acks, Compression, DefaultPartitioner, KafkaTemplate, Partitioner, Payload, RecordMetadata, ReplyingTemplate,
        RoundRobinPartitioner, UniformStickyPartitioner,
    };
    pub use crate::support::NewTopic;
    #[cfg(feature = "embedded")]
    pub use crate::EmbeddedKafka;
    pub use crate::{
        kafka_listener, AckMode, Acknowledgment, BatchInterceptor, BatchListenerFailed, ConcurrentContainer,
        ConsumerHandle, ConsumerRecord, ContainerFactory, DefaultErrorHandler, Endpoint, ErrorDecision, ErrorHandler,
        FromBatch, FromRecord, GroupProtocol, Headers, Json, KafkaProperties, Key, ListenerError, ListenerRegistry,
        ListenerType, Meta, OptionalFromRecord, ProcessingOrder, Record, RecordInterceptor, RunningListeners,
        SecuritySettings, State, TopicPartition,
    };
    pub use crate::{shutdown_signal, Delivery, SendResults};
}

/// What `#[kafka_listener]` expands to refers to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::config::{AckMode, ProcessingOrder};
    pub use crate::error_handler::RetryTopics;
    pub use crate::extract::{FromBatch, FromRecord, ListenerContext, Record, Requirements};
    pub use crate::handler::{drive, BatchOutcome, IntoListenerResult, Job, ListenerFailure, RecordOutcome};
    pub use crate::registry::annotation::{AnnotatedInvoke, AnnotatedListener};
    pub use crate::registry::Endpoint;
    pub use crate::ConsumerHandle;
    pub use crate::TopicPartition;
    pub use inventory;

    /// How one parameter of a record listener is built and what it needs. The macro names each
    /// parameter type once through this, so that a type that is no extractor gives one error.
    pub struct RecordParam<T> {
        /// Builds the argument.
        pub convert: fn(&Record<'_>, &ListenerContext<'_>) -> Result<T, crate::extract::ConversionError>,
        /// Declares what it needs.
        pub requirements: fn(&mut Requirements),
    }

    /// The [`RecordParam`] of `T`.
    #[inline]
    pub fn record_param<T: FromRecord>() -> RecordParam<T> {
        RecordParam { convert: T::from_record, requirements: T::requirements }
    }

    /// How one parameter of a batch listener is built and what it needs.
    pub struct BatchParam<T> {
        /// Builds the argument.
        pub convert: fn(&[Record<'_>], &ListenerContext<'_>) -> crate::extract::BatchConversion<T>,
        /// Declares what it needs.
        pub requirements: fn(&mut Requirements),
    }

    /// The [`BatchParam`] of `T`.
    #[inline]
    pub fn batch_param<T: FromBatch>() -> BatchParam<T> {
        BatchParam { convert: T::from_batch, requirements: T::requirements }
    }

    /// A record conversion failure as a listener failure.
    #[inline]
    pub fn conversion(error: crate::extract::ConversionError) -> ListenerFailure {
        ListenerFailure::Conversion(error)
    }

    /// A batch conversion failure as a listener failure at its index.
    #[inline]
    pub fn batch_conversion(
        (index, error): (usize, crate::extract::ConversionError),
    ) -> (Option<usize>, ListenerFailure) {
        (Some(index), ListenerFailure::Conversion(error))
    }

    /// How a handler's return type becomes an outcome, and whether it replies. The macro names the
    /// return type once through this, so that an unsupported one gives one error.
    pub struct Output<R> {
        /// A record handler's outcome.
        pub record: fn(R) -> RecordOutcome,
        /// A batch handler's outcome.
        pub batch: fn(R) -> BatchOutcome,
        /// Whether `R` is a reply.
        pub replies: bool,
    }

    /// The [`Output`] of `R`.
    #[inline]
    pub fn output<R: IntoListenerResult>() -> Output<R> {
        Output {
            record: |result| result.into_listener_result().map_err(ListenerFailure::Handler),
            batch: |result| result.into_listener_result().map_err(|e| (None, ListenerFailure::Handler(e))),
            replies: R::REPLIES,
        }
    }
}
