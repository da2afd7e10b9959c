//! A queued record's delivery: the future `KafkaTemplate` sends return, and the template's backlog
//! that keeps records in order when they cannot be queued in librdkafka at once.
//!
//! A record is queued in librdkafka when it is sent (as the Java client's `send()` appends it to
//! its accumulator), not when its future is first polled; the future only reports the broker's
//! answer. Two things can keep a record from being queued at once: the template's partitioner
//! needs the topic's partition count and it is not known yet, or librdkafka's queue is full
//! (`queue.buffering.max.messages`). Such a record goes to the template's backlog, served in order
//! by one task, and every record sent after it waits behind it, so that records keep the order of
//! their sends (Kafka's per-partition ordering of one producer).

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use tokio::sync::{mpsc, oneshot};

use super::template::{RecordMetadata, TemplateInner};
use super::ProducerListener;
use crate::error::{Error, Result};
use crate::observability::spans;

/// A serialized record ready to queue: borrowed from the sender where it can be queued at once,
/// owned (`'static`) when it waits in the backlog.
pub(crate) struct Prepared<'a> {
    pub(crate) topic: Cow<'a, str>,
    pub(crate) key: Option<Cow<'a, [u8]>>,
    pub(crate) value: Option<Cow<'a, [u8]>>,
    pub(crate) partition: Option<i32>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) headers: Option<OwnedHeaders>,
}

impl Prepared<'_> {
    /// Key and value bytes, for the too-large error.
    fn size(&self) -> usize {
        self.key.as_ref().map_or(0, |k| k.len()) + self.value.as_ref().map_or(0, |v| v.len())
    }

    /// The partition `partitioner` picks for this record among `count`.
    fn pick(&self, partitioner: &dyn super::Partitioner, count: i32) -> i32 {
        partitioner.partition(&self.topic, self.key.as_deref(), self.value.as_deref(), count)
    }

    /// The record, owned: copied only when it must wait in the backlog.
    fn into_owned(self) -> Prepared<'static> {
        Prepared {
            topic: Cow::Owned(self.topic.into_owned()),
            key: self.key.map(|k| Cow::Owned(k.into_owned())),
            value: self.value.map(|v| Cow::Owned(v.into_owned())),
            partition: self.partition,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }

    fn record(&self, partition: Option<i32>) -> FutureRecord<'_, [u8], [u8]> {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic);
        if let Some(value) = self.value.as_deref() {
            record = record.payload(value);
        }
        if let Some(key) = self.key.as_deref() {
            record = record.key(key);
        }
        if let Some(partition) = partition.or(self.partition) {
            record = record.partition(partition);
        }
        if let Some(timestamp) = self.timestamp {
            record = record.timestamp(timestamp);
        }
        if let Some(headers) = &self.headers {
            record = record.headers(headers.clone());
        }
        record
    }
}

/// A record waiting in the backlog, and where its queued delivery goes.
pub(crate) struct Backlogged {
    prepared: Prepared<'static>,
    queued: oneshot::Sender<Result<(DeliveryFuture, usize)>>,
}

/// Why a record could not be queued at once.
enum NotNow<'a> {
    /// It waits in the backlog (full queue, unknown partition count, or records before it).
    Backlog(Prepared<'a>),
    /// It cannot be sent at all.
    Failed(Error),
}

impl TemplateInner {
    /// Queues `prepared` in librdkafka now if nothing sent before it waits in the backlog and its
    /// partition is known without asking the broker.
    fn queue_now<'a>(&self, prepared: Prepared<'a>) -> std::result::Result<(DeliveryFuture, usize), NotNow<'a>> {
        if self.backlog_len.load(Ordering::Acquire) > 0 {
            return Err(NotNow::Backlog(prepared));
        }
        let partition = match self.partition_now(&prepared) {
            Ok(partition) => partition,
            Err(()) => return Err(NotNow::Backlog(prepared)),
        };
        let size = prepared.size();
        match self.producer.send_result(prepared.record(partition)) {
            Ok(delivery) => Ok((delivery, size)),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => Err(NotNow::Backlog(prepared)),
            Err((error, _)) => Err(NotNow::Failed(self.send_error(&prepared.topic, size, error))),
        }
    }

    /// The partition the partitioner picks, when its partition count is cached; `Err` when the
    /// count must be read from the broker first. `Ok(None)`: librdkafka's partitioner decides.
    fn partition_now(&self, prepared: &Prepared<'_>) -> std::result::Result<Option<i32>, ()> {
        match (prepared.partition, &self.partitioner) {
            (Some(partition), _) => Ok(Some(partition)),
            (None, None) => Ok(None),
            (None, Some(partitioner)) => {
                let count = self.cached_partition_count(&prepared.topic).ok_or(())?;
                Ok(Some(prepared.pick(&**partitioner, count)))
            }
        }
    }

    /// Hands `prepared` to the backlog task (started with the first record that needs it).
    fn backlog(
        self: &Arc<Self>,
        prepared: Prepared<'static>,
    ) -> Result<oneshot::Receiver<Result<(DeliveryFuture, usize)>>> {
        let sender = match self.backlog.get() {
            Some(sender) => sender.clone(),
            None => {
                let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
                    Error::config("runtime", "KafkaTemplate sends must run on a tokio runtime (e.g. in #[tokio::main])")
                })?;
                let sender = self.backlog.get_or_init(|| {
                    let (sender, receiver) = mpsc::unbounded_channel();
                    runtime.spawn(serve_backlog(Arc::downgrade(self), receiver));
                    sender
                });
                sender.clone()
            }
        };
        let (queued, receiver) = oneshot::channel();
        self.backlog_len.fetch_add(1, Ordering::AcqRel);
        if sender.send(Backlogged { prepared, queued }).is_err() {
            self.backlog_len.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::config("producer", "the template's backlog has stopped; the runtime is shutting down"));
        }
        Ok(receiver)
    }
}

/// Queues the backlog's records in librdkafka one after the other, in the order they were sent.
/// Ends when the template is dropped.
async fn serve_backlog(template: Weak<TemplateInner>, mut backlog: mpsc::UnboundedReceiver<Backlogged>) {
    while let Some(Backlogged { prepared, queued }) = backlog.recv().await {
        let Some(inner) = template.upgrade() else { return };
        let result = queue_waiting(&inner, &prepared).await;
        // Counted down only once queued, so that no send overtakes a record of the backlog.
        inner.backlog_len.fetch_sub(1, Ordering::AcqRel);
        // The sender's future may have been dropped: the record is queued all the same.
        let _ = queued.send(result);
    }
}

/// Queues one backlogged record: reads the partition count if needed, then waits for room in
/// librdkafka's queue (up to the send timeout).
async fn queue_waiting(inner: &Arc<TemplateInner>, prepared: &Prepared<'_>) -> Result<(DeliveryFuture, usize)> {
    let partition = match (prepared.partition, &inner.partitioner) {
        (None, Some(partitioner)) => Some(prepared.pick(&**partitioner, inner.partition_count(&prepared.topic).await?)),
        _ => prepared.partition,
    };
    let size = prepared.size();
    let deadline = Instant::now() + inner.send_timeout;
    let mut wait = Duration::from_micros(500);
    loop {
        match inner.producer.send_result(prepared.record(partition)) {
            Ok(delivery) => return Ok((delivery, size)),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) if Instant::now() < deadline => {
                // librdkafka frees room as deliveries are acknowledged; there is no event for it.
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(20));
            }
            Err((error, _)) => return Err(inner.send_error(&prepared.topic, size, error)),
        }
    }
}

/// The broker's answer to one sent record: `.await` it for the [`RecordMetadata`] (where the
/// broker stored the record) or the error that kept it from being stored.
///
/// The record is queued when it is sent (`.await` on a [`SendRecord`](super::SendRecord),
/// [`SendRecord::queue`](super::SendRecord::queue), or
/// [`KafkaTemplate::send_all`](super::KafkaTemplate::send_all)); this future does not send
/// anything itself. Dropping it does not cancel the record: it is delivered all the same, and its
/// outcome still reaches the template's [`ProducerListener`] (failures are logged at WARN when the
/// template has none, as Spring's `LoggingProducerListener` does).
#[must_use = "the record is queued; await the delivery to learn whether the broker stored it"]
pub struct Delivery {
    state: Option<State>,
    topic: String,
    template: Arc<TemplateInner>,
    /// The send's span, closed when the broker answered.
    span: tracing::Span,
}

enum State {
    /// Waiting in the template's backlog.
    Backlogged(oneshot::Receiver<Result<(DeliveryFuture, usize)>>),
    /// Queued in librdkafka, waiting for the broker; the key and value bytes (for errors).
    Queued(DeliveryFuture, usize),
    /// Could not be sent.
    Failed(Error),
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            Some(State::Backlogged(_)) => "backlogged",
            Some(State::Queued(..)) => "queued",
            Some(State::Failed(_)) => "failed",
            None => "done",
        };
        f.debug_struct("Delivery").field("topic", &self.topic).field("state", &state).finish()
    }
}

impl Delivery {
    /// Queues `prepared` (or backlogs it), as the template's sends do.
    pub(crate) fn queue(template: &Arc<TemplateInner>, prepared: Prepared<'_>, span: tracing::Span) -> Delivery {
        let topic = prepared.topic.to_string();
        let state = match template.queue_now(prepared) {
            Ok((delivery, size)) => State::Queued(delivery, size),
            Err(NotNow::Failed(error)) => State::Failed(error),
            Err(NotNow::Backlog(prepared)) => match template.backlog(prepared.into_owned()) {
                Ok(receiver) => State::Backlogged(receiver),
                Err(error) => State::Failed(error),
            },
        };
        Delivery { state: Some(state), topic, template: template.clone(), span }
    }

    /// A record that could not be sent (e.g. its payload did not serialize).
    pub(crate) fn failed(template: &Arc<TemplateInner>, topic: &str, error: Error, span: tracing::Span) -> Delivery {
        Delivery { state: Some(State::Failed(error)), topic: topic.to_string(), template: template.clone(), span }
    }

    /// The topic the record was sent to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    fn poll_state(&mut self, cx: &mut Context<'_>) -> Poll<Result<RecordMetadata>> {
        loop {
            let Some(state) = self.state.as_mut() else {
                return Poll::Ready(Err(Error::config("producer", "a delivery was polled after it completed")));
            };
            match state {
                State::Backlogged(receiver) => {
                    let queued = ready!(Pin::new(receiver).poll(cx)).unwrap_or_else(|_| {
                        Err(Error::config("producer", "the template's backlog stopped before the record was queued"))
                    });
                    self.state = Some(match queued {
                        Ok((delivery, size)) => State::Queued(delivery, size),
                        Err(error) => State::Failed(error),
                    });
                }
                State::Queued(delivery, size) => {
                    let size = *size;
                    let outcome = ready!(Pin::new(delivery).poll(cx));
                    self.state = None;
                    return Poll::Ready(match outcome {
                        Ok(Ok(delivered)) => Ok(RecordMetadata {
                            // Moved: the delivery is done with it (a report reads the metadata's).
                            topic: std::mem::take(&mut self.topic),
                            partition: delivered.partition,
                            offset: delivered.offset,
                            timestamp: delivered.timestamp.to_millis(),
                        }),
                        Ok(Err((error, _))) => Err(self.template.send_error(&self.topic, size, error)),
                        Err(_canceled) => {
                            Err(Error::kafka(format!("sending to `{}`", self.topic), KafkaError::Canceled))
                        }
                    });
                }
                State::Failed(_) => {
                    if let Some(State::Failed(error)) = self.state.take() {
                        return Poll::Ready(Err(error));
                    }
                }
            }
        }
    }
}

impl Delivery {
    /// Records the outcome on the send's span and closes it.
    fn close_span(&mut self, outcome: &Result<RecordMetadata>) {
        let span = std::mem::replace(&mut self.span, tracing::Span::none());
        match outcome {
            Ok(metadata) => spans::sent(&span, metadata.partition(), metadata.offset()),
            Err(error) => spans::send_failed(&span, error),
        }
    }
}

/// Tells the template's producer listener of an outcome (or logs a failure when it has none and
/// nobody awaited the delivery), and counts it (`messaging.client.sent.messages`).
fn report(listener: Option<&Arc<dyn ProducerListener>>, topic: &str, outcome: &Result<RecordMetadata>, awaited: bool) {
    let topic = match outcome {
        Ok(metadata) => metadata.topic(),
        Err(_) => topic,
    };
    crate::observability::meter::sent(topic, outcome.as_ref().err().map(Error::error_type));
    match (listener, outcome) {
        (Some(listener), Ok(metadata)) => listener.on_success(metadata),
        (Some(listener), Err(error)) => listener.on_error(topic, error),
        (None, Err(error)) if !awaited => {
            tracing::warn!(topic, %error, "a record sent without awaiting its delivery was not stored")
        }
        (None, _) => {}
    }
}

impl Future for Delivery {
    type Output = Result<RecordMetadata>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outcome = ready!(self.poll_state(cx));
        report(self.template.listener.as_ref(), &self.topic, &outcome, true);
        self.close_span(&outcome);
        Poll::Ready(outcome)
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        // Unawaited: the record is on its way all the same; its outcome still goes to the
        // listener (or the log), as for Spring's fire-and-forget `send()`. The template's one
        // task for such deliveries waits for it (a task per record would cost more than the send).
        let Some(state) = self.state.take() else { return };
        let span = std::mem::replace(&mut self.span, tracing::Span::none());
        let rest = Delivery { state: Some(state), topic: self.topic.clone(), template: self.template.clone(), span };
        if let Err(mpsc::error::SendError(mut rest)) = self.template.orphans().send(rest) {
            // No runtime to wait on: a failure known now is still told.
            if let Some(State::Failed(error)) = rest.state.take() {
                let outcome = Err(error);
                report(rest.template.listener.as_ref(), &rest.topic, &outcome, false);
                rest.close_span(&outcome);
            }
        }
    }
}

impl TemplateInner {
    /// Where dropped deliveries go to be waited for: one task per template, started with the
    /// first (a closed sender outside a tokio runtime).
    fn orphans(&self) -> &mpsc::UnboundedSender<Delivery> {
        self.orphans.get_or_init(|| {
            let (sender, mut receiver) = mpsc::unbounded_channel::<Delivery>();
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        // In the order they were sent: about the order they complete in.
                        while let Some(mut delivery) = receiver.recv().await {
                            let outcome = std::future::poll_fn(|cx| delivery.poll_state(cx)).await;
                            report(delivery.template.listener.as_ref(), &delivery.topic, &outcome, false);
                        }
                    });
                }
                Err(_) => receiver.close(),
            }
            sender
        })
    }
}
