//! Spring's header names for request/reply, so that Spring applications and these listeners can
//! call each other.

/// Correlates a reply with its request (bytes, copied from the request to the reply).
pub const CORRELATION_ID: &str = "kafka_correlationId";
/// The topic a reply goes to (UTF-8).
pub const REPLY_TOPIC: &str = "kafka_replyTopic";
/// The partition a reply goes to (4-byte big-endian integer).
pub const REPLY_PARTITION: &str = "kafka_replyPartition";
