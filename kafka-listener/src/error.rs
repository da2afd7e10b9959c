//! The crate's error type.

use std::fmt;

/// A `Result` whose error is the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong outside a handler: configuration, validation, the broker.
///
/// Each variant names the listener, topic or setting at fault and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A container factory or endpoint setting is invalid.
    #[error("invalid setting `{setting}`: {reason}")]
    Config {
        /// The setting at fault (a builder method or a librdkafka property name).
        setting: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// `ListenerRegistry::start` found problems; nothing was started.
    #[error("{}", ValidationDisplay(.0))]
    Validation(Vec<Problem>),
    /// The broker could not be reached or answered with an error.
    #[error("{context}: {source}")]
    Kafka {
        /// What the framework was doing.
        context: String,
        /// The client's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A recoverer of your own could not deal with a failed record (it is delivered again).
    #[error("recovery failed: {0}")]
    Recovery(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A listener did not stop within the shutdown timeout.
    #[error("listener `{listener}` did not stop within {timeout:?}; its in-flight work was not committed")]
    ShutdownTimeout {
        /// The listener id.
        listener: String,
        /// The factory's `shutdown_timeout`.
        timeout: std::time::Duration,
    },
    /// A consumer operation named a partition no consumer of the listener owns.
    #[error("listener `{listener}` owns no partition {topic}-{partition} now; see its assignment()")]
    NotAssigned {
        /// The listener id.
        listener: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// A wait of the test utilities (`kafka_listener::test`) ran out of time.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// What was awaited, and what was seen last.
        what: String,
        /// How long it was awaited.
        waited: std::time::Duration,
    },
    /// A `ConsumerHandle` (or a `ConcurrentContainer` operation on one partition) was used while
    /// the consumer it belongs to is stopped: its consumer has left the group and is closed.
    /// Handles do not survive a stop, even when the listener is started again: take a new one
    /// from `RunningListeners::container(id)` then `ConcurrentContainer::consumers()`, or the one
    /// a handler is given.
    #[error("consumer {consumer} of listener `{listener}` is stopped and its handles with it (handles do not survive a stop); take a new handle from RunningListeners::container(\"{listener}\") and its consumers(), or the one a handler is given, once the listener runs (RunningListeners::start)")]
    ContainerStopped {
        /// The listener id.
        listener: String,
        /// The consumer's index in its listener's container (0 when the whole listener is
        /// stopped).
        consumer: usize,
    },
    /// `start` was called on a listener whose consumers are still stopping (a stop in progress,
    /// or the error handler stopped them and they are committing and closing).
    #[error("listener `{listener}` is still stopping (its consumers finish, commit and leave the group); start it again once ConcurrentContainer::is_running() is false")]
    StillStopping {
        /// The listener id.
        listener: String,
    },
    /// The operating system refused a thread the framework needs (a consumer's poll thread, a
    /// reply consumer's thread): usually a process or memory limit.
    #[error("cannot start the thread `{thread}` for {what}: {source}; check the process's thread and memory limits (ulimit -u, container limits)")]
    ThreadSpawn {
        /// The thread's name, e.g. `kafka-listener-orders-0` (listener `orders`, consumer 0).
        thread: String,
        /// What the thread is for, naming the listener or topic.
        what: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// No listener with this id is registered.
    #[error("no listener with id `{0}`; ids are listed by `ListenerRegistry::endpoints()` and `RunningListeners::containers()` (a listener without `id = \"...\"` has its function's path as id)")]
    UnknownListener(String),
    /// A record was sent to a topic the broker does not have (and does not create).
    #[error("topic `{topic}` does not exist; create it (or enable auto-creation on the broker)")]
    UnknownTopic {
        /// The topic.
        topic: String,
    },
    /// A record is larger than the broker or the producer accepts.
    #[error("a record of {bytes} bytes to `{topic}` is too large; raise message.max.bytes (producer and broker) or send less")]
    MessageTooLarge {
        /// The topic.
        topic: String,
        /// The key and value size.
        bytes: usize,
    },
    /// A record was not delivered within the send timeout.
    #[error("a record to `{topic}` was not delivered within {timeout:?}; is the broker reachable?")]
    SendTimeout {
        /// The topic.
        topic: String,
        /// The template's send timeout.
        timeout: std::time::Duration,
    },
    /// A record's key or value could not be serialized.
    #[error("cannot serialize the {part} of a record to `{topic}`: {source}")]
    Serialization {
        /// The topic.
        topic: String,
        /// `key` or `value`.
        part: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `send_default` on a template built without `default_topic`.
    #[error("send_default needs a default topic: call .default_topic(\"...\") on the template builder")]
    NoDefaultTopic,
    /// A listener returned a reply, but neither its `reply_to` nor the request's `kafka_replyTopic`
    /// header says where to send it.
    #[error("listener `{listener}` returned a reply but has no destination: set reply_to = \"topic\", or send requests with a kafka_replyTopic header")]
    NoReplyDestination {
        /// The listener id.
        listener: String,
    },
    /// No reply came for a request within the timeout.
    #[error("no reply to the request sent to `{topic}` within {timeout:?}")]
    ReplyTimeout {
        /// The request topic.
        topic: String,
        /// The timeout.
        timeout: std::time::Duration,
    },
    /// A transaction's work failed; the transaction was aborted.
    #[error("the transaction was aborted: {source}")]
    TransactionAborted {
        /// Why the work failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Waiting for a signal failed.
    #[error("could not install the signal handler: {0}")]
    Signal(#[source] std::io::Error),
}

impl Error {
    /// A short, low-cardinality name of the kind of error, for OpenTelemetry's `error.type`
    /// (span field and metric label): `config`, `validation`, `kafka`, `recovery`,
    /// `shutdown_timeout`, `not_assigned`, `timeout`, `container_stopped`, `still_stopping`,
    /// `thread_spawn`,
    /// `unknown_listener`, `unknown_topic`, `message_too_large`, `send_timeout`,
    /// `serialization`, `no_default_topic`, `no_reply_destination`, `reply_timeout`,
    /// `transaction_aborted`, `signal`.
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Config { .. } => "config",
            Error::Validation(_) => "validation",
            Error::Kafka { .. } => "kafka",
            Error::Recovery(_) => "recovery",
            Error::ShutdownTimeout { .. } => "shutdown_timeout",
            Error::NotAssigned { .. } => "not_assigned",
            Error::Timeout { .. } => "timeout",
            Error::ContainerStopped { .. } => "container_stopped",
            Error::StillStopping { .. } => "still_stopping",
            Error::ThreadSpawn { .. } => "thread_spawn",
            Error::UnknownListener(_) => "unknown_listener",
            Error::UnknownTopic { .. } => "unknown_topic",
            Error::MessageTooLarge { .. } => "message_too_large",
            Error::SendTimeout { .. } => "send_timeout",
            Error::Serialization { .. } => "serialization",
            Error::NoDefaultTopic => "no_default_topic",
            Error::NoReplyDestination { .. } => "no_reply_destination",
            Error::ReplyTimeout { .. } => "reply_timeout",
            Error::TransactionAborted { .. } => "transaction_aborted",
            Error::Signal(_) => "signal",
        }
    }

    pub(crate) fn kafka(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        Error::Kafka { context: context.into(), source }
    }

    pub(crate) fn config(setting: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config { setting: setting.into(), reason: reason.into() }
    }

    /// The problems of a [`Error::Validation`], empty for other variants.
    pub fn problems(&self) -> &[Problem] {
        match self {
            Error::Validation(problems) => problems,
            _ => &[],
        }
    }
}

/// One problem found by `ListenerRegistry::start` before any consumer started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The listener at fault, if the problem belongs to one.
    pub listener: Option<String>,
    /// What is wrong, and what to change.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.listener {
            Some(listener) => write!(f, "listener `{listener}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

struct ValidationDisplay<'a>(&'a [Problem]);

impl fmt::Display for ValidationDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the listeners cannot start ({} problem{}):",
            self.0.len(),
            if self.0.len() == 1 { "" } else { "s" }
        )?;
        for problem in self.0 {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}
