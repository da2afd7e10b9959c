//! Configuration in code: the container factory and the ack mode.

mod factory;
mod properties;
mod security;

// Ack modes are read by the rules the `#[kafka_listener]` attribute shares.
pub(crate) use factory::{check_owned_property, FactorySettings};
pub use factory::{ContainerFactory, ContainerFactoryBuilder};
pub use kafka_listener_rules::{AckMode, ProcessingOrder, UnknownAckMode, UnknownProcessingOrder};
pub(crate) use properties::{
    check_consumer_config, container_properties, is_secret, named_property, redacted_error, validate_property,
    Properties,
};
pub(crate) use security::feature_hint;
pub use security::{SaslMechanism, SecuritySettings};
