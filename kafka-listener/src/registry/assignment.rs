//! Explicit partitions (`topic_partitions`): partitions assigned to a listener without group
//! rebalancing (the consumer's `assign()`), each from a start position.

pub use kafka_listener_rules::StartPosition;

/// One partition of an explicit assignment, with where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AssignedPartition {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) start: StartPosition,
}
