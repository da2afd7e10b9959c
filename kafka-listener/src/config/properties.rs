//! librdkafka properties: validation and redaction of secrets.

use std::collections::BTreeMap;
use std::fmt;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;

use crate::error::Error;

/// librdkafka properties by name. Its `Debug` never shows a secret's value.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Properties(pub(crate) BTreeMap<String, String>);

impl Properties {
    pub(crate) fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub(crate) fn to_client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in self.iter() {
            config.set(key, value);
        }
        config
    }
}

impl fmt::Debug for Properties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter().map(|(k, v)| (k, if is_secret(k) { "<redacted>" } else { v }))).finish()
    }
}

/// Whether a property holds a secret (passwords, private keys, OAuth secrets), never to be shown.
pub(crate) fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.contains("passphrase")
        || key.contains("private.key")
        || key == "ssl.key.pem"
        || key == "sasl.oauthbearer.config"
        || key == "sasl.jaas.config"
}

/// Checks one property against librdkafka without creating a client.
///
/// librdkafka's messages can quote the value; for a secret the message is replaced.
pub(crate) fn validate_property(key: &str, value: &str) -> Result<(), Error> {
    let mut config = ClientConfig::new();
    config.set(key, value);
    match config.create_native_config() {
        Ok(_) => Ok(()),
        Err(KafkaError::ClientConfig(_, description, _, _)) => {
            let reason = if is_secret(key) {
                // librdkafka's message may quote the value: never show it.
                let description = if value.is_empty() { description } else { description.replace(value, "<redacted>") };
                format!("{description}{}", super::feature_hint(&description).unwrap_or_default())
            } else if description.contains("No such configuration property") {
                format!("{description}; see librdkafka's CONFIGURATION.md for the property names")
            } else {
                format!("{description}{}", super::feature_hint(&description).unwrap_or_default())
            };
            Err(Error::config(key, reason))
        }
        Err(other) => Err(Error::config(key, redact(key, &other.to_string()))),
    }
}

fn redact(key: &str, message: &str) -> String {
    if is_secret(key) {
        "librdkafka rejected the value (not shown: it is a secret)".to_string()
    } else {
        message.to_string()
    }
}

/// `message` with the value of every secret property replaced (librdkafka's messages may quote them).
pub(crate) fn redacted_error(properties: &Properties, message: &str) -> String {
    properties
        .iter()
        .filter(|(key, value)| is_secret(key) && !value.is_empty())
        .fold(message.to_string(), |text, (_, value)| text.replace(value, "<redacted>"))
}

/// The properties a container sets on every consumer it creates (it owns commits and offset
/// storage; end-of-partition events are not used).
pub(crate) fn container_properties(config: &mut ClientConfig, group: &str) {
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
}

/// Checks a whole consumer configuration the way librdkafka does when a consumer is created:
/// some properties are refused only together (`group.protocol=consumer` with
/// `session.timeout.ms` or `heartbeat.interval.ms`, `receive.message.max.bytes` below
/// `fetch.max.bytes` + 512, `max.poll.interval.ms` below `session.timeout.ms`, ...). A client is
/// created without brokers or a group (so it connects nowhere) and dropped. Returns librdkafka's
/// reason, secrets redacted.
pub(crate) fn check_consumer_config(config: &ClientConfig, properties: &Properties) -> Result<(), String> {
    let mut probe = config.clone();
    probe.remove("bootstrap.servers");
    probe.remove("group.id");
    match probe.create::<rdkafka::consumer::BaseConsumer>() {
        Ok(_) => Ok(()),
        Err(KafkaError::ClientCreation(reason)) | Err(KafkaError::ClientConfig(_, reason, _, _)) => {
            Err(redacted_error(properties, &reason))
        }
        Err(other) => Err(redacted_error(properties, &other.to_string())),
    }
}

/// [`check_consumer_config`] of a container's consumer with these properties (its own
/// properties added, no group yet): librdkafka's reason when it would refuse them.
pub(crate) fn check_container_consumer(properties: &Properties) -> Result<(), String> {
    let mut config = properties.to_client_config();
    container_properties(&mut config, "kafka-listener-check");
    check_consumer_config(&config, properties)
}

/// The first property a librdkafka message names (in backticks), else `properties`.
pub(crate) fn named_property(reason: &str) -> String {
    reason
        .split('`')
        .nth(1)
        .map(|name| name.split('=').next().unwrap_or(name).to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "properties".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflict_names_the_first_property_librdkafka_names() {
        let reason = "`session.timeout.ms` is not supported for `group.protocol=consumer`. It is defined broker side";
        assert_eq!(named_property(reason), "session.timeout.ms");
        assert_eq!(named_property("`group.protocol=consumer` only"), "group.protocol");
        assert_eq!(named_property("no names here"), "properties");
    }

    #[test]
    fn conflicting_consumer_properties_are_refused_together() {
        let properties = Properties::default();
        let mut config = ClientConfig::new();
        config.set("group.protocol", "consumer").set("session.timeout.ms", "3000");
        let reason = check_consumer_config(&config, &properties).unwrap_err();
        assert!(reason.contains("session.timeout.ms"), "{reason}");
        let mut fine = ClientConfig::new();
        fine.set("session.timeout.ms", "3000").set("heartbeat.interval.ms", "300");
        assert_eq!(check_consumer_config(&fine, &properties), Ok(()));
    }
}
