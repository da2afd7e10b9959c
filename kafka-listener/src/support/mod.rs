//! Support for tests, examples and operations: reading offsets, creating topics.

mod admin;

pub use admin::Admin;
