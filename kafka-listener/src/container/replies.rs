//! Replies (Spring's `@SendTo`): a handler's return value published to the listener's
//! `reply_to`, else to the request's `kafka_replyTopic`, with its correlation id.

use std::future::IntoFuture;

use super::contain::contain;
use super::plan::ContainerPlan;
use crate::error::Error;
use crate::extract::Record;
use crate::handler::{drive, HandlerOutput, ListenerFailure};
use crate::producer::{headers, KafkaTemplate};

/// Publishes a handler's reply, if it returned one; a panic of the template's partitioner or
/// producer listener (user code) fails the record like a listener's.
#[inline]
pub(crate) fn reply(plan: &ContainerPlan, request: &Record<'_>, output: HandlerOutput) -> Result<(), ListenerFailure> {
    match output {
        HandlerOutput::Reply(_) => reply_now(plan, request, output),
        _ => Ok(()),
    }
}

fn reply_now(plan: &ContainerPlan, request: &Record<'_>, output: HandlerOutput) -> Result<(), ListenerFailure> {
    contain(|| drive(target(plan, request)?.publish(output))).unwrap_or_else(|panic| {
        Err(ListenerFailure::Panic(format!(
            "publishing the reply panicked (the template's partitioner or producer listener): {panic}"
        )))
    })
}

/// Where a request's reply goes, read from the request: what a task that runs the handler away
/// from the record needs to publish its reply.
pub(crate) struct ReplyTarget {
    template: KafkaTemplate,
    topic: String,
    partition: Option<i32>,
    correlation: Option<Vec<u8>>,
}

/// The listener's `reply_to`, else the request's `kafka_replyTopic` (and `kafka_replyPartition`),
/// with the request's `kafka_correlationId`.
pub(crate) fn target(plan: &ContainerPlan, request: &Record<'_>) -> Result<ReplyTarget, ListenerFailure> {
    let no_destination =
        || ListenerFailure::Reply(Box::new(Error::NoReplyDestination { listener: plan.listener_id.to_string() }));
    let Some(reply) = &plan.reply else { return Err(no_destination()) };
    let header_topic = request.header(headers::REPLY_TOPIC).flatten().and_then(|t| std::str::from_utf8(t).ok());
    let (topic, partition) = match (&reply.topic, header_topic) {
        (Some(topic), _) => (topic.clone(), None),
        (None, Some(topic)) => {
            let partition = request
                .header(headers::REPLY_PARTITION)
                .flatten()
                .and_then(|p| <[u8; 4]>::try_from(p).ok())
                .map(i32::from_be_bytes);
            (topic.to_string(), partition)
        }
        (None, None) => return Err(no_destination()),
    };
    let correlation = request.header(headers::CORRELATION_ID).flatten().map(<[u8]>::to_vec);
    Ok(ReplyTarget { template: reply.template.clone(), topic, partition, correlation })
}

impl ReplyTarget {
    /// Publishes the reply, if the handler returned one; resolves once it is acknowledged (before
    /// the request counts as handled).
    pub(crate) async fn publish(self, output: HandlerOutput) -> Result<(), ListenerFailure> {
        let HandlerOutput::Reply(value) = output else { return Ok(()) };
        let mut send = self.template.send(&self.topic, value);
        if let Some(correlation) = &self.correlation {
            send = send.header(headers::CORRELATION_ID, correlation.as_slice());
        }
        if let Some(partition) = self.partition {
            send = send.partition(partition);
        }
        send.into_future().await.map(|_| ()).map_err(|e| ListenerFailure::Reply(Box::new(e)))
    }
}
