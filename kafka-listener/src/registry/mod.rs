//! The registry of listeners: annotated ones and ones built in code, validated and started together.

pub(crate) mod annotation;
mod endpoint;
mod placeholder;
#[allow(clippy::module_inception)]
mod registry;
mod resolve;
mod running;
mod validate;

pub use endpoint::{Endpoint, ListenerType};
pub use registry::ListenerRegistry;
pub use running::RunningListeners;
