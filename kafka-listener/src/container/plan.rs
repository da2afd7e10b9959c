//! What a container is given to run one consumer of a listener: the resolved listener
//! (`ContainerPlan`), how its records are handed over (`Invoker`) and where replies go.

use std::sync::Arc;

use rdkafka::config::ClientConfig;

use super::replay::Replay;
use crate::config::{AckMode, FactorySettings};
use crate::extract::StateMap;
use crate::handler::{BatchInvoker, RecordFilter, RecordInvoker, RecordStarter};
use crate::producer::KafkaTemplate;
use kafka_listener_rules::StartPosition;

use crate::{ConsumerHandle, TopicPartition};

/// A listener's callback on assigned partitions: the type of `registry::OnPartitionsAssigned`.
pub(crate) type OnAssigned = Arc<dyn Fn(&[TopicPartition], &ConsumerHandle) + Send + Sync>;

/// How a listener's records are handed to it.
#[derive(Clone)]
pub(crate) enum Invoker {
    /// On the consumer's thread, and started as a task (a concurrent processing order).
    Record(RecordInvoker, RecordStarter),
    Batch(BatchInvoker),
}

/// Everything a container needs to run one consumer of a listener.
#[derive(Clone)]
pub(crate) struct ContainerPlan {
    pub(crate) listener_id: Arc<str>,
    pub(crate) group: Arc<str>,
    pub(crate) subscription: Vec<String>,
    /// The consumer's properties, complete but for `client.id`.
    pub(crate) client_config: ClientConfig,
    pub(crate) client_id: String,
    pub(crate) settings: Arc<FactorySettings>,
    pub(crate) ack_mode: AckMode,
    pub(crate) invoker: Invoker,
    pub(crate) acknowledging: bool,
    /// In which order records are handed to the listener (`Key`, `Unordered`: as tasks).
    pub(crate) order: crate::config::ProcessingOrder,
    /// Records in flight at most, with a concurrent order.
    pub(crate) max_concurrency: usize,
    /// The listener takes the `ConsumerHandle` (it may commit from its handler).
    pub(crate) consumer_aware: bool,
    pub(crate) states: Arc<StateMap>,
    pub(crate) runtime: tokio::runtime::Handle,
    /// Where replies go, for listeners that return a value.
    pub(crate) reply: Option<ReplyPlan>,
    /// The listener's error handler, else its factory's.
    pub(crate) error_handler: Arc<dyn crate::ErrorHandler>,
    /// The container consumes retry topics: a record waits (its partition paused) until the time
    /// in its back-off header, and its delivery attempt continues from its attempts header.
    pub(crate) retry_topic: bool,
    /// Explicit partitions (assigned, not subscribed), shared out over the consumers.
    pub(crate) assignment: Vec<AssignedPartition>,
    /// The listener's callback on assigned partitions (`registry::OnPartitionsAssigned`).
    pub(crate) on_assigned: Option<OnAssigned>,
    /// A time-range replay: the explicit partitions start at its first time, and the consumers
    /// stop at its end time, committing nothing.
    pub(crate) replay: Option<Arc<Replay>>,
    /// The listener's record filter, else its factory's.
    pub(crate) filter: Option<RecordFilter>,
}

/// One partition of an explicit assignment, with where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AssignedPartition {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) start: StartPosition,
}

/// The template replies are published with, and the listener's `reply_to`.
#[derive(Clone)]
pub(crate) struct ReplyPlan {
    pub(crate) template: KafkaTemplate,
    pub(crate) topic: Option<String>,
}

impl ContainerPlan {
    /// Consumer `index`'s `client.id`: `<client_id>-<index>`.
    pub(crate) fn consumer_client_id(&self, index: usize) -> String {
        format!("{}-{index}", self.client_id)
    }

    /// Consumer `index`'s share of the listener's explicit partitions: every `total`-th from
    /// `index`.
    pub(crate) fn share(&self, index: usize, total: usize) -> impl Iterator<Item = &AssignedPartition> {
        self.assignment.iter().skip(index).step_by(total.max(1))
    }
}
