//! Explicit partitions (`topic_partitions`): partitions assigned to a listener without group
//! rebalancing (the consumer's `assign()`), each from a start position.

pub use kafka_listener_rules::StartPosition;
