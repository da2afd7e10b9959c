//! Containers: the consumers and poll loops that run listeners.

mod commit_policy;
mod concurrent;
mod contain;
mod context;
mod events;
mod handle;
mod listener_container;
mod missing_topics;
mod replay;
mod shared;

pub use concurrent::ConcurrentContainer;
pub use events::{ContainerEvent, EventListener};
pub use handle::ConsumerHandle;
pub(crate) use listener_container::{ContainerPlan, Invoker, ReplyPlan};
pub(crate) use replay::Replay;
pub use replay::ReplayReport;
pub(crate) use shared::ContainerShared;
pub use shared::SeekTo;
