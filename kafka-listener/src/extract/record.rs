use std::borrow::Cow;

use bytes::Bytes;
use rdkafka::message::{BorrowedMessage, Message};

use super::{ConversionError, FromRecord, ListenerContext};

/// A record as the consumer delivered it, borrowed: what extractors read from.
///
/// It lives only while the listener is invoked; [`Record::to_owned`] copies it. An interceptor may
/// change it ([`with_payload`](Self::with_payload), ...), which makes it an owned copy.
///
/// Header names and values are bytes to Kafka: they are read as bytes, never assumed to be UTF-8
/// ([`header`](Self::header) compares names byte for byte, [`raw_headers`](Self::raw_headers)
/// gives every name as it is).
pub struct Record<'a> {
    message: Delivered<'a>,
}

enum Delivered<'a> {
    Borrowed(BorrowedMessage<'a>),
    Owned(Box<OwnedRecord>),
}

/// A record copied out of the consumer (changed by an interceptor, or kept for a retry).
struct OwnedRecord {
    topic: String,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Calls `f` with each header of a consumed message, in order: name and value (`None`: null) as
/// bytes. Stops when `f` returns false.
///
/// rust-rdkafka 0.39's header accessors assume UTF-8 names and panic on others; librdkafka's own
/// accessors are used instead (names end at their first NUL byte, as librdkafka stores them).
fn each_header<'m>(message: &'m BorrowedMessage<'_>, mut f: impl FnMut(&'m [u8], Option<&'m [u8]>) -> bool) {
    use rdkafka::bindings as rd;
    let mut headers: *mut rd::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `message.ptr()` is a live consumed message; librdkafka parses its headers on the
    // first call and keeps them with the message, so the pointers below live as long as it.
    let err = unsafe { rd::rd_kafka_message_headers(message.ptr(), &mut headers) };
    if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || headers.is_null() {
        return;
    }
    // SAFETY: `headers` is the message's header list (checked non-null above).
    let count = unsafe { rd::rd_kafka_header_cnt(headers) };
    for idx in 0..count {
        let mut name: *const std::os::raw::c_char = std::ptr::null();
        let mut value: *const std::os::raw::c_void = std::ptr::null();
        let mut size: usize = 0;
        // SAFETY: `idx` < count; the out-pointers are valid for writes.
        let err = unsafe { rd::rd_kafka_header_get_all(headers, idx, &mut name, &mut value, &mut size) };
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            continue;
        }
        // SAFETY: librdkafka stores header names NUL-terminated and values with their size; both
        // live as long as the message (borrowed for 'm).
        let (name, value) = unsafe {
            let name: &'m [u8] = std::ffi::CStr::from_ptr(name).to_bytes();
            let value: Option<&'m [u8]> =
                (!value.is_null()).then(|| std::slice::from_raw_parts(value.cast::<u8>(), size));
            (name, value)
        };
        if !f(name, value) {
            return;
        }
    }
}

impl<'a> Record<'a> {
    pub(crate) fn new(message: BorrowedMessage<'a>) -> Self {
        Record { message: Delivered::Borrowed(message) }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        match &self.message {
            Delivered::Borrowed(m) => m.topic(),
            Delivered::Owned(r) => &r.topic,
        }
    }

    /// Whether the record is of the topic named `name`: compares librdkafka's C string in place,
    /// without [`topic`](Self::topic)'s conversion (length and UTF-8 check), for the lookups the
    /// container makes per record.
    #[inline]
    pub(crate) fn topic_is(&self, name: &str) -> bool {
        match &self.message {
            Delivered::Borrowed(m) => {
                // SAFETY: a consumed message's `rkt` is its topic, kept alive by the message;
                // `rd_kafka_topic_name` returns its NUL-terminated name. Bytes are read only up
                // to the first difference, and a NUL differs from every byte of `name` (a topic
                // name has no NUL; one that had would not match), so no read passes the NUL.
                unsafe {
                    let c = rdkafka::bindings::rd_kafka_topic_name((*m.ptr()).rkt).cast::<u8>();
                    for (i, &b) in name.as_bytes().iter().enumerate() {
                        if b == 0 || *c.add(i) != b {
                            return false;
                        }
                    }
                    *c.add(name.len()) == 0
                }
            }
            Delivered::Owned(r) => r.topic == name,
        }
    }

    /// The address of the record's librdkafka topic object (one per topic name in a client,
    /// alive while a record of it is), or 0 for a record copied out of the consumer: an
    /// identity of its topic that costs nothing to compare.
    #[inline]
    pub(crate) fn topic_object(&self) -> usize {
        match &self.message {
            // SAFETY: a live consumed message; only its topic pointer is read.
            Delivered::Borrowed(m) => unsafe { (*m.ptr()).rkt as usize },
            Delivered::Owned(_) => 0,
        }
    }

    /// Whether two records are of the same topic: the same librdkafka topic object (one per
    /// name in a client; both records keep theirs alive), else the same name.
    #[inline]
    pub(crate) fn same_topic(&self, other: &Record<'_>) -> bool {
        match (&self.message, &other.message) {
            (Delivered::Borrowed(a), Delivered::Borrowed(b))
                if std::ptr::eq(
                    // SAFETY: both are live consumed messages; only their topic pointers are read.
                    unsafe { (*a.ptr()).rkt },
                    unsafe { (*b.ptr()).rkt },
                ) =>
            {
                true
            }
            _ => self.topic_is(other.topic()),
        }
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        match &self.message {
            Delivered::Borrowed(m) => m.partition(),
            Delivered::Owned(r) => r.partition,
        }
    }

    /// The offset.
    pub fn offset(&self) -> i64 {
        match &self.message {
            Delivered::Borrowed(m) => m.offset(),
            Delivered::Owned(r) => r.offset,
        }
    }

    /// The timestamp in milliseconds since the epoch (create or log-append time), if any.
    pub fn timestamp(&self) -> Option<i64> {
        match &self.message {
            Delivered::Borrowed(m) => m.timestamp().to_millis(),
            Delivered::Owned(r) => r.timestamp,
        }
    }

    /// The key bytes; `None` for a record without a key (Kafka's null key).
    pub fn key(&self) -> Option<&[u8]> {
        match &self.message {
            Delivered::Borrowed(m) => m.key(),
            Delivered::Owned(r) => r.key.as_deref(),
        }
    }

    /// The value bytes; `None` for a tombstone (Kafka's null value).
    pub fn payload(&self) -> Option<&[u8]> {
        match &self.message {
            Delivered::Borrowed(m) => m.payload(),
            Delivered::Owned(r) => r.payload.as_deref(),
        }
    }

    /// Calls `f` with each header in order (name and value as bytes; `None`: a null value) until
    /// it returns false.
    fn for_each_header<'s>(&'s self, mut f: impl FnMut(&'s [u8], Option<&'s [u8]>) -> bool) {
        match &self.message {
            Delivered::Borrowed(m) => each_header(m, f),
            Delivered::Owned(r) => {
                for (name, value) in &r.headers {
                    if !f(name, value.as_deref()) {
                        return;
                    }
                }
            }
        }
    }

    /// The value of the last header called `name` (`Some(None)` for a header with a null value),
    /// comparing names byte for byte.
    pub fn header(&self, name: &str) -> Option<Option<&[u8]>> {
        let mut found = None;
        self.for_each_header(|n, v| {
            if n == name.as_bytes() {
                found = Some(v);
            }
            true
        });
        found
    }

    /// Every header in order, names and values as bytes (`None`: a null value); names need not be
    /// UTF-8.
    pub fn raw_headers(&self) -> Vec<(&[u8], Option<&[u8]>)> {
        let mut all = Vec::new();
        self.for_each_header(|n, v| {
            all.push((n, v));
            true
        });
        all
    }

    /// All headers, copied.
    pub fn headers(&self) -> Headers {
        let mut entries = Vec::new();
        self.for_each_header(|n, v| {
            entries.push((Bytes::copy_from_slice(n), v.map(Bytes::copy_from_slice)));
            true
        });
        Headers { entries }
    }

    /// The record with another value (for interceptors): an owned copy from then on.
    #[must_use]
    pub fn with_payload(self, payload: Option<Vec<u8>>) -> Record<'a> {
        self.rebuilt(|r| r.payload = payload)
    }

    /// The record with another key (for interceptors).
    #[must_use]
    pub fn with_key(self, key: Option<Vec<u8>>) -> Record<'a> {
        self.rebuilt(|r| r.key = key)
    }

    /// The record with a header added (for interceptors).
    #[must_use]
    pub fn with_header(self, name: &str, value: &[u8]) -> Record<'a> {
        self.rebuilt(|r| r.headers.push((name.as_bytes().to_vec(), Some(value.to_vec()))))
    }

    /// An owned copy with its key, value or headers changed by `change`.
    fn rebuilt(self, change: impl FnOnce(&mut OwnedRecord)) -> Record<'a> {
        let mut owned = match self.message {
            Delivered::Owned(owned) => owned,
            Delivered::Borrowed(_) => self.copy(),
        };
        change(&mut owned);
        Record { message: Delivered::Owned(owned) }
    }

    fn copy(&self) -> Box<OwnedRecord> {
        let mut headers = Vec::new();
        self.for_each_header(|n, v| {
            headers.push((n.to_vec(), v.map(<[u8]>::to_vec)));
            true
        });
        Box::new(OwnedRecord {
            topic: self.topic().to_string(),
            partition: self.partition(),
            offset: self.offset(),
            timestamp: self.timestamp(),
            key: self.key().map(<[u8]>::to_vec),
            payload: self.payload().map(<[u8]>::to_vec),
            headers,
        })
    }

    /// A record made up for unit tests: no key, payload, timestamp or headers.
    #[cfg(test)]
    pub(crate) fn test_record(topic: &str, partition: i32, offset: i64) -> Record<'a> {
        Record {
            message: Delivered::Owned(Box::new(OwnedRecord {
                topic: topic.to_string(),
                partition,
                offset,
                timestamp: None,
                key: None,
                payload: None,
                headers: Vec::new(),
            })),
        }
    }

    /// An owned copy of the record, of any lifetime (kept by the container when code it calls
    /// may consume the record and panic).
    pub(crate) fn duplicate<'b>(&self) -> Record<'b> {
        Record { message: Delivered::Owned(self.copy()) }
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

/// A record's headers, in order; names may repeat. Names and values are bytes, as Kafka has them:
/// a value may be null (`None`), and a name need not be UTF-8 ([`iter_raw`](Self::iter_raw) gives
/// it as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(Bytes, Option<Bytes>)>,
}

impl Headers {
    /// The value of the last header called `name`; `None` if absent or null.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.value(name).flatten()
    }

    /// The last header called `name`: `None` if absent, `Some(None)` if its value is null.
    pub fn value(&self, name: &str) -> Option<Option<&[u8]>> {
        self.entries.iter().rev().find(|(k, _)| k.as_ref() == name.as_bytes()).map(|(_, v)| v.as_deref())
    }

    /// The value of the last header called `name` as UTF-8 text.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every header, in order: the name as text (a name that is not UTF-8 shows U+FFFD where
    /// its bytes are invalid; [`iter_raw`](Self::iter_raw) has the bytes) and the value
    /// (`None`: null).
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'_, str>, Option<&[u8]>)> {
        self.entries.iter().map(|(k, v)| (String::from_utf8_lossy(k), v.as_deref()))
    }

    /// Every header, in order, name and value as bytes (`None`: a null value).
    pub fn iter_raw(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v.as_deref()))
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
            headers.entries.push((
                Bytes::from_static(DELIVERY_ATTEMPT_HEADER.as_bytes()),
                Some(Bytes::copy_from_slice(&attempt.to_be_bytes())),
            ));
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
