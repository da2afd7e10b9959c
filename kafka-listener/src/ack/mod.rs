//! Acknowledgments and offset tracking.

mod acknowledgment;
// The offset map of key-ordered and unordered processing (issue 16): a pure unit, tested here;
// the dispatcher that runs a partition's records concurrently writes and reads it.
#[allow(dead_code)]
mod offset_map;
mod offsets;

pub use acknowledgment::Acknowledgment;
pub(crate) use offsets::{DeliveryId, OffsetTracker, Selection, TopicName};
