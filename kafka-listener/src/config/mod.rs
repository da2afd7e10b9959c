//! Configuration: the container factory and the ack mode in code, and [`KafkaProperties`] from
//! files and the environment.

mod env;
mod factory;
mod from_properties;
mod group_protocol;
mod kafka_properties;
mod properties;
mod security;
mod values;

// Ack modes are read by the rules the `#[kafka_listener]` attribute shares.
pub(crate) use factory::{check_owned_property, FactorySettings};
pub use factory::{ContainerFactory, ContainerFactoryBuilder};
pub use group_protocol::GroupProtocol;
pub use kafka_listener_rules::{AckMode, ProcessingOrder, UnknownAckMode, UnknownProcessingOrder};
pub use kafka_properties::{
    AutoOffsetReset, ClientProperties, ConsumerProperties, IsolationLevel, KafkaProperties, ListenerOverride,
    ListenerProperties, ProducerProperties, SaslProperties, Secret, SecurityProperties, SecurityProtocol,
    SslProperties,
};
pub(crate) use properties::{
    check_consumer_config, check_container_consumer, container_properties, is_secret, named_property, redacted_error,
    validate_property, Properties,
};
pub(crate) use security::feature_hint;
pub use security::{SaslMechanism, SecuritySettings};
