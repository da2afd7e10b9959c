//! The registry of listeners: annotated ones and ones built in code, validated and started together.

pub(crate) mod annotation;
mod assignment;
mod endpoint;
mod overrides;
mod placeholder;
#[allow(clippy::module_inception)]
mod registry;
mod resolve;
mod running;
mod signal;
mod validate;

pub(crate) use crate::container::AssignedPartition;
pub use assignment::StartPosition;
pub use endpoint::{Endpoint, ListenerType, OnPartitionsAssigned};
pub use registry::ListenerRegistry;
pub use running::RunningListeners;
pub use signal::{shutdown_signal, ShutdownSignal};
