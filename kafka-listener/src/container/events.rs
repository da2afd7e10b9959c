//! What containers tell a subscriber (Spring's container events): started, stopped, partitions
//! assigned / revoked / lost, idle, non-responsive, commit failures.

use std::sync::Arc;
use std::time::Duration;

/// Something that happened to one of a listener's consumers (`consumer`: its index).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContainerEvent {
    /// The consumer started.
    Started {
        /// The listener id.
        listener: String,
        /// The consumer's index in the listener's container.
        consumer: usize,
    },
    /// The consumer stopped (after committing and leaving its group).
    Stopped {
        /// The listener id.
        listener: String,
        /// The consumer's index.
        consumer: usize,
    },
    /// Partitions were assigned to the consumer.
    PartitionsAssigned {
        /// The listener id.
        listener: String,
        /// The consumer's index.
        consumer: usize,
        /// The partitions, sorted.
        partitions: Vec<crate::TopicPartition>,
    },
    /// Partitions were taken from the consumer in a rebalance (what was processed was committed).
    PartitionsRevoked {
        /// The listener id.
        listener: String,
        /// The consumer's index.
        consumer: usize,
        /// The partitions, sorted.
        partitions: Vec<crate::TopicPartition>,
    },
    /// The consumer lost partitions without a chance to commit (its session expired).
    PartitionsLost {
        /// The listener id.
        listener: String,
        /// The consumer's index.
        consumer: usize,
        /// The partitions, sorted.
        partitions: Vec<crate::TopicPartition>,
    },
    /// No record reached the consumer for `idle_for` (every `idle_event_interval`).
    Idle {
        /// The listener id.
        listener: String,
        /// The consumer's index.
        consumer: usize,
        /// Since the last record (or the start).
        idle_for: Duration,
    },
    /// No record of this partition reached the consumer for `idle_for`.
    PartitionIdle {
        /// The listener id.
        listener: String,
        /// The consumer's index.
        consumer: usize,
        /// The partition (Spring's `ListenerContainerPartitionIdleEvent.getTopicPartition()`).
        topic_partition: crate::TopicPartition,
        /// Since the partition's last record (or its assignment).
        idle_for: Duration,
    },
    /// Code the container called panicked: a listener's assignment callback, filter, interceptor,
    /// error handler or recoverer, a reply's partitioner or producer listener (or, `stopped`, the
    /// container itself). The panic was contained: the record concerned went to the error handler,
    /// or the callback's effect was skipped, and the container went on — unless `stopped`. (A
    /// panic of the event listener itself is logged and its event dropped, not told to it.)
    Panicked {
        /// The listener id.
        listener: String,
        /// The consumer's index.
        consumer: usize,
        /// What panicked, e.g. "the record filter" or "the on_partitions_assigned callback".
        during: String,
        /// The panic's message.
        message: String,
        /// Whether the consumer stopped because of it.
        stopped: bool,
    },
    /// The consumer has not polled for `since_last_poll` (a handler is stuck or slow); said once
    /// until it polls again.
    NonResponsive {
        /// The listener id.
        listener: String,
        /// The consumer's index.
        consumer: usize,
        /// Since its last poll.
        since_last_poll: Duration,
    },
    /// A commit failed (synchronous, or an asynchronous one when its outcome is polled); the
    /// offsets are sent again.
    CommitFailed {
        /// The listener id.
        listener: String,
        /// The consumer's index.
        consumer: usize,
        /// The broker's or client's error.
        error: String,
    },
}

impl ContainerEvent {
    /// The listener the event is about.
    pub fn listener(&self) -> &str {
        match self {
            ContainerEvent::Started { listener, .. }
            | ContainerEvent::Stopped { listener, .. }
            | ContainerEvent::PartitionsAssigned { listener, .. }
            | ContainerEvent::PartitionsRevoked { listener, .. }
            | ContainerEvent::PartitionsLost { listener, .. }
            | ContainerEvent::Idle { listener, .. }
            | ContainerEvent::PartitionIdle { listener, .. }
            | ContainerEvent::NonResponsive { listener, .. }
            | ContainerEvent::Panicked { listener, .. }
            | ContainerEvent::CommitFailed { listener, .. } => listener,
        }
    }
}

/// Receives container events, on the thread where they happen (keep it quick; send them on to a
/// channel for slow work).
pub type EventListener = Arc<dyn Fn(&ContainerEvent) + Send + Sync>;
