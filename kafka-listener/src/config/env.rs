//! `KAFKA_*` environment variables as [`KafkaProperties`] (Spring Boot's relaxed binding of
//! `SPRING_KAFKA_*`): `__` nests, `_` within a name is `-`, case does not matter.

use serde_json::{Map, Value};

use super::KafkaProperties;
use crate::error::{Error, Result};

/// The top-level keys that hold a value.
const VALUES: [&str; 2] = ["bootstrap-servers", "client-id"];
/// The top-level keys that hold sections.
const SECTIONS: [&str; 6] = ["security", "properties", "consumer", "producer", "listener", "listeners"];

impl KafkaProperties {
    /// Reads the `KAFKA_*` environment variables: `__` separates nested keys, `_` within a key
    /// is `-`, case is ignored (`KAFKA_BOOTSTRAP_SERVERS`, `KAFKA_CONSUMER__GROUP_ID`,
    /// `KAFKA_LISTENER__ACK_MODE`, `KAFKA_LISTENERS__AUDIT__CONCURRENCY`). Under a
    /// `properties` key the rest of the name is a librdkafka property, `_` read as `.`
    /// (`KAFKA_CONSUMER__PROPERTIES__FETCH_MAX_BYTES` sets `fetch.max.bytes`).
    ///
    /// Variables that do not start with one of the tree's top-level keys are left alone
    /// (`KAFKA_HOME`, `KAFKA_OPTS`), as are sections set as one value (a broker's
    /// `KAFKA_LISTENERS=PLAINTEXT://...`); one that looks like a missed `__`
    /// (`KAFKA_CONSUMER_GROUP_ID`) is logged at WARN.
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable and its key path: an unknown key within a section
    /// (listing the valid ones), or a value its setting cannot take (a duration without unit,
    /// a concurrency of 0, ...).
    pub fn from_env() -> Result<KafkaProperties> {
        Self::from_env_vars("KAFKA_", std::env::vars())
    }

    /// [`from_env`](Self::from_env) from the given variables with the given prefix (e.g.
    /// `"APP_KAFKA_"`), for tests and services that keep their own namespace.
    ///
    /// ```
    /// use kafka_listener::prelude::*;
    ///
    /// let props = KafkaProperties::from_env_vars(
    ///     "KAFKA_",
    ///     [("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"), ("KAFKA_LISTENERS__AUDIT__CONCURRENCY", "2")],
    /// )?;
    /// assert_eq!(props.listeners["audit"].concurrency, Some(2));
    /// # Ok::<(), kafka_listener::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_env_vars<K, V>(prefix: &str, vars: impl IntoIterator<Item = (K, V)>) -> Result<KafkaProperties>
    where
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut tree = Map::new();
        // Key path → variable, to name the variable in an error.
        let mut origins: Vec<(String, String)> = Vec::new();
        for (name, value) in vars {
            let name = name.as_ref();
            let Some(rest) = strip_prefix_ignore_case(name, prefix) else { continue };
            let Some(path) = env_path(rest) else {
                if let Some(meant) = missed_separator(rest) {
                    tracing::warn!(
                        variable = name,
                        "ignored: nested keys are separated by `__`; did you mean {prefix}{meant}?"
                    );
                }
                continue;
            };
            insert(&mut tree, &path, value.into());
            origins.push((path, name.to_string()));
        }
        let value = Value::Object(tree);
        serde_path_to_error::deserialize::<_, KafkaProperties>(value).map_err(|error| {
            let path = error.path().to_string();
            let variable = origins
                .iter()
                .filter(|(p, _)| p.starts_with(&path) || path.starts_with(p.as_str()))
                .map(|(_, v)| v.as_str())
                .next();
            let setting = match variable {
                Some(variable) => format!("{variable} ({path})"),
                None => path,
            };
            Error::config(setting, error.into_inner().to_string())
        })
    }

    /// The key path of an environment variable's name without its prefix (`CONSUMER__GROUP_ID`
    /// → `consumer.group-id`), or `None` when it is not one of these properties. With figment,
    /// layer the variables over a file:
    ///
    /// ```
    /// use figment::providers::{Env, Format, Toml};
    /// use kafka_listener::prelude::*;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let props: KafkaProperties = figment::Figment::new()
    ///     .merge(Toml::string("bootstrap-servers = \"localhost:9092\""))
    ///     .merge(Env::prefixed("KAFKA_").filter_map(|key| KafkaProperties::env_key(key.as_str()).map(Into::into)))
    ///     .extract()?;
    /// assert_eq!(KafkaProperties::env_key("LISTENERS__AUDIT__CONCURRENCY").as_deref(), Some("listeners.audit.concurrency"));
    /// # Ok(()) }
    /// ```
    ///
    /// A name that looks like a missed `__` (`CONSUMER_GROUP_ID`) is logged at WARN, as
    /// [`from_env`](Self::from_env) does.
    pub fn env_key(name: &str) -> Option<String> {
        let path = env_path(name);
        if path.is_none() {
            if let Some(meant) = missed_separator(name) {
                tracing::warn!(variable = name, "ignored: nested keys are separated by `__`; did you mean {meant}?");
            }
        }
        path
    }
}

/// [`KafkaProperties::env_key`] without the warning.
fn env_path(name: &str) -> Option<String> {
    let segments: Vec<String> = name.split("__").map(|s| s.to_ascii_lowercase()).collect();
    let first = segments.first()?.replace('_', "-");
    let is_section = SECTIONS.contains(&first.as_str());
    if !(VALUES.contains(&first.as_str()) && segments.len() == 1 || is_section && segments.len() > 1) {
        return None;
    }
    // Where a `properties` map may be: at the top, in consumer / producer, in listeners.<id>.
    let properties_at = match first.as_str() {
        "properties" => Some(1),
        "consumer" | "producer" => Some(2),
        "listeners" => Some(3),
        _ => None,
    };
    let mut path = vec![first];
    for (depth, segment) in segments.iter().enumerate().skip(1) {
        if properties_at == Some(depth) && path.last().is_some_and(|p| p == "properties") {
            // A librdkafka property: its name's dots were written as `_` (or `__`).
            let property = segments[depth..].join(".").replace('_', ".");
            path.push(property.split('.').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("."));
            return Some(path.join("."));
        }
        path.push(segment.replace('_', "-"));
    }
    Some(path.join("."))
}

/// For a variable that is not one of the properties: the name it was likely meant to have, when
/// a single `_` stands where `__` nests a known key (`CONSUMER_GROUP_ID` for
/// `CONSUMER__GROUP_ID`). Others (`HOME`, a broker's `LISTENER_SECURITY_PROTOCOL_MAP`) give `None`.
fn missed_separator(rest: &str) -> Option<String> {
    let upper = rest.to_ascii_uppercase();
    SECTIONS.iter().find_map(|section| {
        let head = format!("{}_", section.to_ascii_uppercase());
        let tail = upper.strip_prefix(&head)?;
        let meant = format!("{}__{tail}", section.to_ascii_uppercase());
        let path = env_path(&meant)?;
        // Meant: the key exists (its value, empty here, may be wrong; its name is not).
        let mut tree = Map::new();
        insert(&mut tree, &path, String::new());
        match serde_json::from_value::<KafkaProperties>(Value::Object(tree)) {
            Err(error) if error.to_string().contains("unknown field") => None,
            _ => Some(meant),
        }
    })
}

fn strip_prefix_ignore_case<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let head = name.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &name[prefix.len()..]).filter(|rest| !rest.is_empty())
}

/// Puts `value` at a dotted key path; a librdkafka property (under `properties`) keeps its dots
/// because the property map joins nested keys with dots again.
fn insert(tree: &mut Map<String, Value>, path: &str, value: String) {
    let mut parts = path.split('.').peekable();
    let mut node = tree;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            node.insert(part.to_string(), Value::String(value));
            return;
        }
        let entry = node.entry(part.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        node = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_become_key_paths() {
        let key = env_path;
        assert_eq!(key("BOOTSTRAP_SERVERS").as_deref(), Some("bootstrap-servers"));
        assert_eq!(key("CONSUMER__GROUP_ID").as_deref(), Some("consumer.group-id"));
        assert_eq!(
            key("CONSUMER__PROPERTIES__FETCH_MAX_BYTES").as_deref(),
            Some("consumer.properties.fetch.max.bytes")
        );
        assert_eq!(key("PROPERTIES__SECURITY_PROTOCOL").as_deref(), Some("properties.security.protocol"));
        assert_eq!(
            key("LISTENERS__AUDIT_LOG__PROPERTIES__MAX_POLL_INTERVAL_MS").as_deref(),
            Some("listeners.audit-log.properties.max.poll.interval.ms")
        );
        assert_eq!(key("SECURITY__SASL__PASSWORD").as_deref(), Some("security.sasl.password"));
        for ignored in
            ["HOME", "OPTS", "LISTENERS", "CONSUMER_GROUP_ID", "LISTENER_REQUIRE_REAL_BROKER", "CLIENT_ID__X"]
        {
            assert_eq!(key(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn a_missed_double_underscore_is_noticed_and_other_variables_are_not() {
        assert_eq!(missed_separator("CONSUMER_GROUP_ID").as_deref(), Some("CONSUMER__GROUP_ID"));
        assert_eq!(missed_separator("LISTENER_CONCURRENCY").as_deref(), Some("LISTENER__CONCURRENCY"));
        for other in ["HOME", "LISTENER_SECURITY_PROTOCOL_MAP", "LISTENER_REQUIRE_REAL_BROKER", "HEAP_OPTS"] {
            assert_eq!(missed_separator(other), None, "{other}");
        }
    }

    #[test]
    fn an_error_names_the_variable_and_the_key_path() {
        let error = KafkaProperties::from_env_vars("KAFKA_", [("KAFKA_LISTENER__POLL_TIMEOUT", "1500")]).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("KAFKA_LISTENER__POLL_TIMEOUT (listener.poll-timeout)"), "{text}");
        assert!(text.contains("has no unit"), "{text}");
        let error = KafkaProperties::from_env_vars("KAFKA_", [("KAFKA_CONSUMER__GROUP", "x")]).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("unknown field `group`") && text.contains("`group-id`"), "{text}");
    }
}
