use std::any::TypeId;

use super::StateMap;
use crate::container::ContainerPort;

/// What a listener's invocation offers its extractors besides the record: the listener id, the
/// application state, and (internally) its container for acknowledgments and consumer handles.
pub struct ListenerContext<'a> {
    pub(crate) listener_id: &'a str,
    pub(crate) states: &'a StateMap,
    pub(crate) container: &'a ContainerPort,
    /// Which delivery this is (1, then 2, 3, ... on retries).
    pub(crate) attempt: u32,
    /// Whether `Headers` and `ConsumerRecord` carry the `kafka_deliveryAttempt` header.
    pub(crate) attempt_header: bool,
}

impl ListenerContext<'_> {
    /// The id of the listener being invoked.
    pub fn listener_id(&self) -> &str {
        self.listener_id
    }

    /// Which delivery of the record(s) this is: 1, then 2, 3, ... on retries.
    pub fn delivery_attempt(&self) -> u32 {
        self.attempt
    }

    /// The application state of type `T` given to `ListenerRegistry::with_state`.
    pub fn state<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.states.get::<T>()
    }
}

/// What a listener's parameters need from its container; `ListenerRegistry::start` checks them all
/// before any consumer starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    /// A parameter acknowledges records: the ack mode must be `Manual` or `ManualImmediate`.
    pub acknowledging: bool,
    /// A parameter uses the consumer (pause, resume, seek).
    pub consumer_aware: bool,
    /// The handler returns a value to publish as a reply.
    pub replies: bool,
    /// Application state types the parameters read: (type id, type name).
    pub states: Vec<(TypeId, &'static str)>,
}

impl Requirements {
    /// Declares that a parameter reads state of type `T`.
    pub fn state<T: 'static>(&mut self) {
        self.states.push((TypeId::of::<T>(), std::any::type_name::<T>()));
    }
}
