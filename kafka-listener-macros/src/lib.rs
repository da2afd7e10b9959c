//! The `#[kafka_listener]` attribute of [kafka-listener](https://docs.rs/kafka-listener).
//!
//! Use it through `kafka_listener::kafka_listener` (or the prelude); this crate is an
//! implementation detail. The generated code names the runtime only through
//! `::kafka_listener::__private`, so users depend on `kafka-listener` alone.

mod args;
mod expand;

use proc_macro::TokenStream;

/// Registers a function as a Kafka listener (Spring's `@KafkaListener`).
///
/// ```ignore
/// #[kafka_listener(topic = "orders", group = "billing")]
/// async fn on_order(order: Json<Order>) -> Result<(), ListenerError> { Ok(()) }
/// ```
///
/// Arguments: `topic`, `topics = [..]`, `topic_pattern`, `group`, `id`, `container_factory`,
/// `concurrency`, `auto_startup`, `batch`, `client_id_prefix`, `properties = ["key=value", ..]`,
/// `ack_mode`, `reply_to` (where returned values are published), `error_handler = path` (a
/// `fn() -> impl ErrorHandler` for this listener), `retry(attempts = 4, backoff = "1s",
/// multiplier = 2.0, max_backoff = "30s")` (retry topics), `topic_partitions = [("orders", [0, 1],
/// "beginning"), ..]` (explicit partitions with start positions), `auto_offset_reset` (`"earliest"`,
/// `"latest"`, `"error"`) and `on_partitions_assigned = path` (a `fn(&[TopicPartition],
/// &ConsumerHandle)`). String values accept `${ENV}` and `${ENV:default}` placeholders, resolved
/// at start, except `ack_mode` and the durations of `retry(...)`, which are checked at compile time.
/// Parameters are extractors (`FromRecord`, or `FromBatch` with `batch = true`); the listener
/// type (simple, acknowledging, consumer-aware) follows from them. The function stays callable.
#[proc_macro_attribute]
pub fn kafka_listener(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(attr.into(), item.into()).into()
}
