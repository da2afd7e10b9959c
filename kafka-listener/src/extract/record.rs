use bytes::Bytes;
use rdkafka::message::{BorrowedMessage, Header, Headers as _, Message, OwnedHeaders, OwnedMessage};

use super::{ConversionError, FromRecord, ListenerContext};

/// A record as the consumer delivered it, borrowed: what extractors read from.
///
/// It lives only while the listener is invoked; [`Record::to_owned`] copies it. An interceptor may
/// change it ([`with_payload`](Self::with_payload), ...), which makes it an owned copy.
pub struct Record<'a> {
    message: Delivered<'a>,
}

/// The parts of a record an interceptor may change.
struct Parts {
    headers: Option<OwnedHeaders>,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
}

enum Delivered<'a> {
    Borrowed(BorrowedMessage<'a>),
    Owned(OwnedMessage),
}

/// Calls `$body` with `$m` bound to the message, whichever way it is held.
macro_rules! with_message {
    ($record:expr, $m:ident => $body:expr) => {
        match &$record.message {
            Delivered::Borrowed($m) => $body,
            Delivered::Owned($m) => $body,
        }
    };
}

impl<'a> Record<'a> {
    pub(crate) fn new(message: BorrowedMessage<'a>) -> Self {
        Record { message: Delivered::Borrowed(message) }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        with_message!(self, m => m.topic())
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        with_message!(self, m => m.partition())
    }

    /// The offset.
    pub fn offset(&self) -> i64 {
        with_message!(self, m => m.offset())
    }

    /// The timestamp in milliseconds since the epoch (create or log-append time), if any.
    pub fn timestamp(&self) -> Option<i64> {
        with_message!(self, m => m.timestamp().to_millis())
    }

    /// The key bytes, if the record has a key.
    pub fn key(&self) -> Option<&[u8]> {
        with_message!(self, m => m.key())
    }

    /// The value bytes; `None` for a tombstone.
    pub fn payload(&self) -> Option<&[u8]> {
        with_message!(self, m => m.payload())
    }

    /// The value of the last header called `name` (`Some(None)` for a header with a null value).
    pub fn header(&self, name: &str) -> Option<Option<&[u8]>> {
        with_message!(self, m => {
            let headers = m.headers()?;
            headers.iter().filter(|h| h.key == name).last().map(|h| h.value)
        })
    }

    /// All headers, copied.
    pub fn headers(&self) -> Headers {
        let entries = with_message!(self, m => m
            .headers()
            .map(|headers| headers.iter().map(|h| (h.key.to_string(), h.value.map(Bytes::copy_from_slice))).collect())
            .unwrap_or_default());
        Headers { entries }
    }

    /// The record with another value (for interceptors): an owned copy from then on.
    #[must_use]
    pub fn with_payload(self, payload: Option<Vec<u8>>) -> Record<'a> {
        self.rebuilt(|parts| parts.payload = payload)
    }

    /// The record with another key (for interceptors).
    #[must_use]
    pub fn with_key(self, key: Option<Vec<u8>>) -> Record<'a> {
        self.rebuilt(|parts| parts.key = key)
    }

    /// The record with a header added (for interceptors).
    #[must_use]
    pub fn with_header(self, name: &str, value: &[u8]) -> Record<'a> {
        self.rebuilt(|parts| {
            let headers = parts.headers.take().unwrap_or_else(|| OwnedHeaders::new_with_capacity(1));
            parts.headers = Some(headers.insert(Header { key: name, value: Some(value) }));
        })
    }

    /// An owned copy with its key, value or headers changed by `change`.
    fn rebuilt(self, change: impl FnOnce(&mut Parts)) -> Record<'a> {
        let mut owned = self.into_owned_message();
        let mut parts = Parts {
            headers: owned.detach_headers(),
            key: owned.key().map(<[u8]>::to_vec),
            payload: owned.payload().map(<[u8]>::to_vec),
        };
        change(&mut parts);
        let message = OwnedMessage::new(
            parts.payload,
            parts.key,
            owned.topic().to_string(),
            owned.timestamp(),
            owned.partition(),
            owned.offset(),
            parts.headers,
        );
        Record { message: Delivered::Owned(message) }
    }

    fn into_owned_message(self) -> OwnedMessage {
        match self.message {
            Delivered::Borrowed(m) => m.detach(),
            Delivered::Owned(m) => m,
        }
    }

    /// A copy of the whole record that outlives the invocation.
    pub fn to_owned(&self) -> ConsumerRecord {
        ConsumerRecord {
            topic: self.topic().to_string(),
            partition: self.partition(),
            offset: self.offset(),
            timestamp: self.timestamp(),
            key: self.key().map(Bytes::copy_from_slice),
            payload: self.payload().map(Bytes::copy_from_slice),
            headers: self.headers(),
        }
    }
}

impl std::fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("topic", &self.topic())
            .field("partition", &self.partition())
            .field("offset", &self.offset())
            .finish_non_exhaustive()
    }
}

/// A record's headers, in order; names may repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, Option<Bytes>)>,
}

impl Headers {
    /// The value of the last header called `name`; `None` if absent or null.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.entries.iter().rev().find(|(k, _)| k == name).and_then(|(_, v)| v.as_deref())
    }

    /// The value of the last header called `name` as UTF-8 text.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_deref()))
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Spring's header for the delivery attempt (`KafkaHeaders.DELIVERY_ATTEMPT`).
pub const DELIVERY_ATTEMPT_HEADER: &str = "kafka_deliveryAttempt";

impl Headers {
    /// The record's headers, with the delivery attempt when the factory asks for it.
    fn for_listener(record: &Record<'_>, cx: &ListenerContext<'_>) -> Self {
        let mut headers = record.headers();
        if cx.attempt_header {
            let attempt = i32::try_from(cx.attempt).unwrap_or(i32::MAX);
            headers
                .entries
                .push((DELIVERY_ATTEMPT_HEADER.to_string(), Some(Bytes::copy_from_slice(&attempt.to_be_bytes()))));
        }
        headers
    }
}

impl FromRecord for Headers {
    fn from_record(record: &Record<'_>, cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
        Ok(Headers::for_listener(record, cx))
    }
}

/// Everything about a record, owned: topic, partition, offset, timestamp, key, payload, headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// Milliseconds since the epoch, if the record has a timestamp.
    pub timestamp: Option<i64>,
    /// The key bytes.
    pub key: Option<Bytes>,
    /// The value bytes; `None` for a tombstone.
    pub payload: Option<Bytes>,
    /// The headers.
    pub headers: Headers,
}

impl ConsumerRecord {
    /// The payload as UTF-8 text, if it is.
    pub fn payload_str(&self) -> Option<&str> {
        self.payload.as_deref().and_then(|p| std::str::from_utf8(p).ok())
    }

    /// The key as UTF-8 text, if it is.
    pub fn key_str(&self) -> Option<&str> {
        self.key.as_deref().and_then(|k| std::str::from_utf8(k).ok())
    }
}

impl FromRecord for ConsumerRecord {
    fn from_record(record: &Record<'_>, cx: &ListenerContext<'_>) -> Result<Self, ConversionError> {
        let mut owned = record.to_owned();
        if cx.attempt_header {
            owned.headers = Headers::for_listener(record, cx);
        }
        Ok(owned)
    }
}
