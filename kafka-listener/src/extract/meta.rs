use bytes::Bytes;

use super::{ConversionError, FromRecord, ListenerContext, Record};

/// Where a record is: topic, partition, offset, timestamp, and its raw key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// Milliseconds since the epoch, if the record has a timestamp.
    pub timestamp: Option<i64>,
    /// The raw key, if any.
    pub key: Option<Bytes>,
    /// Which delivery of the record this is to the listener: 1, then 2, 3, ... on retries.
    pub delivery_attempt: u32,
}

impl Meta {
    /// Which delivery of the record this is to the listener: 1, then 2, 3, ... on retries.
    pub fn delivery_attempt(&self) -> u32 {
        self.delivery_attempt
    }
}

impl FromRecord for Meta {
    fn from_record(record: &Record<'_>, cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
        Ok(Meta {
            topic: record.topic().to_string(),
            partition: record.partition(),
            offset: record.offset(),
            timestamp: record.timestamp(),
            key: record.key().map(Bytes::copy_from_slice),
            delivery_attempt: cx.attempt,
        })
    }
}
