//! Support for tests, examples and operations: reading offsets, creating topics, finding offsets
//! for times.

mod admin;
mod new_topic;
mod time_index;

pub use admin::Admin;
pub use new_topic::NewTopic;
pub(crate) use time_index::{offset_for_time, offsets_for_times};
