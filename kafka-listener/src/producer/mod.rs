//! Producing: `KafkaTemplate` (Spring's KafkaTemplate) and Java-compatible partitioners.

mod builder;
mod delivery;
pub mod headers;
mod partitioner;
mod payload;
mod replying;
mod template;

pub use builder::{Acks, Compression, KafkaTemplateBuilder};
pub use delivery::Delivery;
pub use partitioner::{
    java_partition, murmur2, DefaultPartitioner, Partitioner, RoundRobinPartitioner, UniformStickyPartitioner,
};
pub use payload::Payload;
pub use replying::ReplyingTemplate;
pub use template::{KafkaTemplate, NoKey, ProducerListener, RecordMetadata, SendRecord, SendResults};
