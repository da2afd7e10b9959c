//! Commits and the consumer, from any thread: the poll loop, acknowledgments
//! (`ManualImmediate`), the rebalance callback and consumer handles all commit through
//! `ContainerShared::commit`, ordered under the offset tracker's lock.

use std::any::Any;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::TopicPartitionList;

use super::context::KafkaConsumer;
use super::events::ContainerEvent;
use super::shared::ContainerShared;
use crate::ack::Selection;
use crate::topic_partition::describe_offsets as describe;

impl ContainerShared {
    /// Keeps the poll thread's consumer for commits and handles from other threads.
    pub(crate) fn attach(&self, consumer: &Arc<KafkaConsumer>) {
        let erased: Arc<dyn Any + Send + Sync> = consumer.clone();
        let weak: Weak<dyn Any + Send + Sync> = Arc::downgrade(&erased);
        self.attach_erased(weak);
    }

    /// The consumer, unless it is closing or gone.
    pub(crate) fn consumer(&self) -> Option<Arc<KafkaConsumer>> {
        self.consumer_erased()?.downcast::<KafkaConsumer>().ok()
    }

    /// Closes the consumer on this (its poll) thread: no one else may take it from now on, and
    /// those who hold it (a metadata refresh, a `ConsumerHandle` call) are waited for (5 s at
    /// most), so that the consumer has left its group and its client is gone when the container
    /// says it stopped.
    pub(crate) fn close(&self, consumer: Arc<KafkaConsumer>) {
        self.mark_closing();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Arc::strong_count(&consumer) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if Arc::strong_count(&consumer) > 1 {
            tracing::debug!(listener = %self.listener_id, "the consumer is still in use; it closes when its last user is done");
        }
        drop(consumer);
    }

    /// Commits the selected offsets. The commit call is made under the tracker's lock so that
    /// commits from several threads reach the broker in offset order.
    ///
    /// An asynchronous commit leaves the offsets *unconfirmed* until its outcome is polled
    /// (`ContainerContext::commit_callback`); the poll loop confirms what stays unconfirmed with a
    /// synchronous commit when idle (a broker rejects commits while a rebalance is in progress). A
    /// failed synchronous commit returns its error and the offsets are sent again by the next
    /// commit.
    pub(crate) fn commit(
        &self,
        consumer: &KafkaConsumer,
        sync: bool,
        selection: Selection<'_>,
    ) -> Result<(), rdkafka::error::KafkaError> {
        let mut offsets = self.offsets();
        let Some(tpl) = offsets.take_commits(selection) else { return Ok(()) };
        let asynchronous = !(sync || self.sync_commits());
        let result = if asynchronous { commit_async(consumer, &tpl) } else { consumer.commit(&tpl, CommitMode::Sync) };
        if result.is_ok() && !asynchronous {
            offsets.confirmed(&tpl);
        }
        // An asynchronous commit that was sent counts when its outcome comes back
        // (`ContainerContext::commit_callback`).
        if !asynchronous || result.is_err() {
            self.meters.committed(result.is_ok());
        }
        // The subscriber may use the container (and its tracker): not under the lock.
        drop(offsets);
        if let Err(error) = &result {
            self.emit(|listener, consumer| ContainerEvent::CommitFailed {
                listener,
                consumer,
                error: format!("{error} (offsets {})", describe(&tpl)),
            });
        }
        tracing::trace!(listener = %self.listener_id, offsets = %describe(&tpl), asynchronous, ok = result.is_ok(), "commit");
        result
    }

    /// [`commit`](Self::commit), logging a failure.
    pub(crate) fn commit_logged(&self, consumer: &KafkaConsumer, sync: bool, selection: Selection<'_>) {
        if let Err(error) = self.commit(consumer, sync, selection) {
            tracing::warn!(listener = %self.listener_id, %error, "commit failed; it will be sent again");
        }
    }

    /// A commit from an acknowledgment (`ManualImmediate`), from any thread.
    pub(crate) fn commit_now(&self) {
        if let Some(consumer) = self.consumer() {
            self.commit_logged(&consumer, false, Selection::Advanced);
        }
    }
}

/// Sends an asynchronous commit whose outcome comes back to the consumer's queue, where polling
/// hands it to `ContainerContext::commit_callback`.
///
/// rust-rdkafka's `commit(.., Async)` reports nothing back, and librdkafka retries a failed
/// commit request on its own — possibly after a newer commit landed, putting an older offset
/// back (seen with coordinator errors under load). Knowing each commit's outcome, in the order
/// they finish, lets the tracker see such a regression and commit the newer offset again.
fn commit_async(consumer: &KafkaConsumer, tpl: &TopicPartitionList) -> rdkafka::error::KafkaResult<()> {
    use rdkafka::bindings as rd;
    let client = consumer.client().native_ptr();
    // SAFETY: `client` is the live consumer; the consumer queue reference is released after the
    // call, which copies the offsets; the result is enqueued on that queue (polled by the
    // consumer, which owns it) as an offset-commit event.
    let err = unsafe {
        let queue = rd::rd_kafka_queue_get_consumer(client);
        let err = rd::rd_kafka_commit_queue(client, tpl.ptr(), queue, None, std::ptr::null_mut());
        if !queue.is_null() {
            rd::rd_kafka_queue_destroy(queue);
        }
        err
    };
    if err == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        Ok(())
    } else {
        Err(rdkafka::error::KafkaError::ConsumerCommit(err.into()))
    }
}
