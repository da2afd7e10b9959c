use std::collections::HashMap;
use std::fmt;
use std::future::IntoFuture;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::oneshot;

use super::{headers, KafkaTemplate, Payload};
use crate::error::{Error, Result};
use crate::extract::{ConsumerRecord, Record};

type Pending = Mutex<HashMap<Vec<u8>, oneshot::Sender<ConsumerRecord>>>;

/// What the reply consumer's thread shares with the template.
struct Replies {
    pending: Pending,
    stop: AtomicBool,
}

impl Replies {
    fn pending(&self) -> MutexGuard<'_, HashMap<Vec<u8>, oneshot::Sender<ConsumerRecord>>> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Stops the reply consumer (and waits for it to close) when the last clone of the template is
/// dropped.
struct StopOnDrop(Arc<Replies>, Mutex<Option<std::thread::JoinHandle<()>>>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Release);
        let thread = self.1.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// Request/reply over Kafka (Spring's `ReplyingKafkaTemplate`): `request` sends a record with a
/// correlation id and a reply-topic header and awaits the matching reply. Header names are
/// Spring's, so it can call Spring `@SendTo` listeners, and Spring can call replying listeners.
/// All requests share one reply consumer; cheap to clone.
#[derive(Clone)]
pub struct ReplyingTemplate {
    template: KafkaTemplate,
    reply_topic: Arc<str>,
    timeout: Duration,
    replies: Arc<Replies>,
    _stop: Arc<StopOnDrop>,
}

impl fmt::Debug for ReplyingTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyingTemplate")
            .field("reply_topic", &self.reply_topic)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ReplyingTemplate {
    /// Requests through `template`, with replies read from every partition of `reply_topic`
    /// (which must exist). The reply consumer starts at the topic's end before this returns.
    ///
    /// # Errors
    /// When the reply topic cannot be read.
    pub fn new(template: KafkaTemplate, reply_topic: &str) -> Result<ReplyingTemplate> {
        let mut config = ClientConfig::new();
        // Connection and security settings only: the rest are producer properties.
        for (key, value) in template.inner.properties.iter() {
            if key == "bootstrap.servers"
                || key.starts_with("security.")
                || key.starts_with("sasl.")
                || key.starts_with("ssl.")
            {
                config.set(key, value);
            }
        }
        // librdkafka's assign needs a group id; this consumer never joins or commits.
        let group = format!("replies-{reply_topic}-{}", hex(&correlation_id()));
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.queue.backoff.ms", "10");
        let consumer: BaseConsumer = config.create().map_err(|e| Error::kafka("creating the reply consumer", e))?;
        let timeout = Duration::from_secs(10);
        let metadata = consumer
            .fetch_metadata(Some(reply_topic), timeout)
            .map_err(|e| Error::kafka(format!("reading the metadata of reply topic `{reply_topic}`"), e))?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .find(|t| t.name() == reply_topic && t.error().is_none())
            .map(|t| t.partitions().iter().map(|p| p.id()).collect())
            .unwrap_or_default();
        if partitions.is_empty() {
            return Err(Error::UnknownTopic { topic: reply_topic.to_string() });
        }
        // Start at the current end, read now: a reply cannot come before its request.
        let mut tpl = TopicPartitionList::new();
        for partition in partitions {
            let (_, high) = consumer
                .fetch_watermarks(reply_topic, partition, timeout)
                .map_err(|e| Error::kafka(format!("reading the end of `{reply_topic}`-{partition}"), e))?;
            tpl.add_partition_offset(reply_topic, partition, Offset::Offset(high))
                .map_err(|e| Error::kafka("assigning the reply topic", e))?;
        }
        consumer.assign(&tpl).map_err(|e| Error::kafka("assigning the reply topic", e))?;
        let replies = Arc::new(Replies { pending: Mutex::default(), stop: AtomicBool::new(false) });
        let thread_replies = replies.clone();
        let name = format!("kafka-replies-{reply_topic}");
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || read_replies(&consumer, &thread_replies))
            .map_err(|source| Error::ThreadSpawn {
                thread: name,
                what: format!("the reply consumer of `{reply_topic}`"),
                source,
            })?;
        Ok(ReplyingTemplate {
            template,
            reply_topic: Arc::from(reply_topic),
            timeout: Duration::from_secs(30),
            _stop: Arc::new(StopOnDrop(replies.clone(), Mutex::new(Some(thread)))),
            replies,
        })
    }

    /// How long a request waits for its reply (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends `payload` to `topic` and waits for the reply.
    ///
    /// # Errors
    /// [`Error::ReplyTimeout`] when no reply comes in time; the send's errors.
    pub async fn request<P: Payload + Send>(&self, topic: &str, payload: P) -> Result<ConsumerRecord> {
        let correlation = correlation_id();
        let (tx, rx) = oneshot::channel();
        self.replies.pending().insert(correlation.to_vec(), tx);
        let sent = self
            .template
            .send(topic, payload)
            .header(headers::CORRELATION_ID, correlation)
            .header(headers::REPLY_TOPIC, self.reply_topic.as_bytes())
            .into_future()
            .await;
        if let Err(error) = sent {
            self.replies.pending().remove(&correlation[..]);
            return Err(error);
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            _ => {
                self.replies.pending().remove(&correlation[..]);
                Err(Error::ReplyTimeout { topic: topic.to_string(), timeout: self.timeout })
            }
        }
    }
}

fn read_replies(consumer: &BaseConsumer, replies: &Replies) {
    while !replies.stop.load(Ordering::Acquire) {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else { continue };
        let record = Record::new(message);
        let Some(Some(correlation)) = record.header(headers::CORRELATION_ID) else {
            tracing::debug!(topic = record.topic(), offset = record.offset(), "reply without a correlation id dropped");
            continue;
        };
        match replies.pending().remove(correlation) {
            Some(waiting) => {
                let _ = waiting.send(record.to_owned());
            }
            None => tracing::debug!(topic = record.topic(), offset = record.offset(), "late or unknown reply dropped"),
        }
    }
}

/// 16 bytes unique to this process's requests (Spring sends a UUID's 16 bytes).
fn correlation_id() -> [u8; 16] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
            ^ u64::from(std::process::id()).rotate_left(32)
    });
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&START.to_be_bytes());
    id[8..].copy_from_slice(&COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    id
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
