//! Acknowledgments and offset tracking.

mod acknowledgment;
mod offsets;

pub use acknowledgment::Acknowledgment;
pub(crate) use offsets::{DeliveryId, OffsetTracker, Selection, TopicName};
