//! Support for tests, examples and operations: reading offsets, creating topics, finding offsets
//! for times.

mod admin;
mod time_index;

pub use admin::Admin;
pub(crate) use time_index::{offset_for_time, offsets_for_times};
