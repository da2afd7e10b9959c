//! Per-listener settings from configuration (`listeners.<id>` of `KafkaProperties`), applied to
//! the resolved listeners: the most specific setting, over the attribute or `Endpoint` and the
//! factory. Their values are taken as written (the configuration loader does its own
//! interpolation): a password holding `${` stays what it is.

use std::collections::BTreeMap;

use super::resolve::Resolved;
use crate::config::{check_owned_property, validate_property, ListenerOverride};
use crate::error::Problem;

/// The overrides to apply, checked against every listener id known to the registry (also those
/// `only` leaves out): an override whose id no listener has is a problem naming its key path.
pub(crate) struct Overrides {
    /// The override of each listener id it names (exact, else ignoring case, `-` and `_`).
    by_id: BTreeMap<String, (String, ListenerOverride)>,
}

impl Overrides {
    pub(crate) fn new(
        overrides: BTreeMap<String, ListenerOverride>,
        ids: &[String],
        problems: &mut Vec<Problem>,
    ) -> Overrides {
        let mut by_id = BTreeMap::new();
        for (id, settings) in overrides {
            let path = format!("listeners.{id}");
            if let Some(known) = find(ids, &id, &path, problems) {
                by_id.insert(known, (path, settings));
            }
        }
        Overrides { by_id }
    }

    /// Applies the override of `r`'s listener, if any, reporting values it cannot take.
    pub(crate) fn apply(&self, r: &mut Resolved, problems: &mut Vec<Problem>) {
        let Some((path, o)) = self.by_id.get(&r.id) else { return };
        let mut problem = |key: &str, message: String| {
            problems.push(Problem { listener: Some(r.id.clone()), message: format!("`{path}.{key}`: {message}") })
        };
        if let Some(concurrency) = o.concurrency {
            r.concurrency = Some(concurrency);
        }
        if let Some(group) = &o.group {
            if group.trim().is_empty() {
                problem("group", "is empty; name the consumer group, or remove the key".into());
            } else {
                r.group = Some(group.clone());
            }
        }
        if let Some(topics) = &o.topics {
            if topics.is_empty() || topics.iter().any(|t| t.trim().is_empty()) {
                problem("topics", "lists no topic, or an empty name; name the topics, or remove the key".into());
            } else if !r.assignment.is_empty() || r.endpoint.replay.is_some() {
                problem("topics", "the listener is given explicit partitions (topic_partitions or a replay), which a subscription cannot replace; remove the key".into());
            } else {
                r.topics = topics.clone();
                r.pattern = None;
            }
        }
        if let Some(auto_startup) = o.auto_startup {
            r.auto_startup = auto_startup;
        }
        if let Some(mode) = o.ack_mode {
            if r.endpoint.requirements.acknowledging && !mode.is_manual() {
                problem("ack-mode", format!("the listener takes an Acknowledgment, which needs ack mode manual or manual-immediate, not {mode}"));
            } else {
                r.endpoint.ack_mode = Some(mode);
            }
        }
        if let Some(order) = o.processing_order {
            r.endpoint.processing_order = Some(order);
        }
        if let Some(records) = o.max_concurrency {
            r.endpoint.max_concurrency = Some(records);
        }
        if let Some(prefix) = &o.client_id_prefix {
            r.client_id_prefix = Some(prefix.clone());
        }
        for (key, value) in o.properties.iter() {
            let key_path = format!("properties.{key}");
            if key == "group.id" {
                problem(
                    &key_path,
                    "the container sets the group from the listener's `group`; set that key instead".into(),
                );
                continue;
            }
            match check_owned_property(key, value).and_then(|()| validate_property(key, value)) {
                // After the listener's own: a later property wins.
                Ok(()) => {
                    r.properties.retain(|(k, _)| k != key);
                    r.properties.push((key.to_string(), value.to_string()));
                }
                // Both checks answer `Config`, a secret's value redacted already.
                Err(crate::Error::Config { reason, .. }) => problem(&key_path, reason),
                Err(error) => problem(&key_path, error.to_string()),
            }
        }
    }
}

/// The listener id `id` names, or a problem.
fn find(ids: &[String], id: &str, path: &str, problems: &mut Vec<Problem>) -> Option<String> {
    if ids.iter().any(|known| known == id) {
        return Some(id.to_string());
    }
    let relaxed = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    let close: Vec<&String> = ids.iter().filter(|known| relaxed(known) == relaxed(id)).collect();
    match close.as_slice() {
        [known] => Some((*known).clone()),
        [] => {
            let known = if ids.is_empty() {
                "none".to_string()
            } else {
                ids.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(", ")
            };
            problems.push(Problem {
                listener: None,
                message: format!(
                    "`{path}`: no listener has id `{id}` (the ids are: {known}); correct the id or remove the override"
                ),
            });
            None
        }
        several => {
            let names: Vec<String> = several.iter().map(|i| format!("`{i}`")).collect();
            problems.push(Problem {
                listener: None,
                message: format!("`{path}`: the id `{id}` matches the listeners {} alike (case, `-` and `_` ignored); write the exact id", names.join(" and ")),
            });
            None
        }
    }
}
