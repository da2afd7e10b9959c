//! How [kafka-listener](https://docs.rs/kafka-listener) reads the text of a listener's settings:
//! start positions, ack modes, durations, concurrency and `auto_startup`.
//!
//! Each rule has one parser here, used by both sides: the `#[kafka_listener]` attribute checks a
//! literal value at compile time, so that what `ListenerRegistry::start` would refuse does not
//! compile, and the runtime checks at start what only then is known: values built in code and
//! values with `${ENV}` / `${ENV:default}` placeholders (see [`has_placeholder`]).
//!
//! Use these through `kafka_listener`, which re-exports [`AckMode`], [`ProcessingOrder`] and [`StartPosition`]; this
//! crate is an implementation detail of it.

mod ack_mode;
mod duration;
mod processing_order;
mod settings;
mod start_position;

pub use ack_mode::{AckMode, UnknownAckMode};
pub use duration::parse_duration;
pub use processing_order::{ProcessingOrder, UnknownProcessingOrder};
pub use settings::{has_placeholder, parse_auto_startup, parse_concurrency};
pub use start_position::StartPosition;
