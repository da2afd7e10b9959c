//! Acknowledgments and offset tracking.

mod acknowledgment;
// The offset map of key-ordered and unordered processing: what commits carry in their metadata.
mod offset_map;
mod offsets;

pub use acknowledgment::Acknowledgment;
pub(crate) use offset_map::{CompletedAbove, OffsetMapError};
pub(crate) use offsets::{DeliveryId, OffsetTracker, Queued, Selection, TopicName};
