//! Per-listener settings from configuration (`listeners.<id>` of `KafkaProperties`), applied to
//! the endpoints before they are resolved: the most specific setting, over the attribute or
//! `Endpoint` and the factory.

use std::collections::BTreeMap;

use super::endpoint::Endpoint;
use super::placeholder::resolve;
use crate::config::{check_owned_property, validate_property, ListenerOverride};
use crate::error::Problem;

/// Applies each override to the endpoint with its id (exactly, else ignoring case, `-` and `_`,
/// as environment variables cannot spell every id), and reports every override that names no
/// endpoint or holds a value the endpoint cannot take, by its key path.
pub(crate) fn apply(
    endpoints: &mut [Endpoint],
    overrides: &BTreeMap<String, ListenerOverride>,
    problems: &mut Vec<Problem>,
) {
    // The ids with their placeholders resolved where they can be (else as written).
    let ids: Vec<String> = endpoints.iter().map(|e| resolve(e.id()).unwrap_or_else(|_| e.id().to_string())).collect();
    for (id, settings) in overrides {
        let path = format!("listeners.{id}");
        let Some(index) = find(&ids, id, &path, problems) else { continue };
        let mut problem = |key: &str, message: String| {
            problems.push(Problem { listener: Some(ids[index].clone()), message: format!("`{path}.{key}`: {message}") })
        };
        let endpoint = &mut endpoints[index];
        let o = settings.clone();
        if let Some(concurrency) = o.concurrency {
            endpoint.concurrency = Some(concurrency.to_string());
        }
        if let Some(group) = o.group {
            endpoint.group = Some(group);
        }
        if let Some(topics) = o.topics {
            if topics.is_empty() {
                problem("topics", "lists no topic; name at least one, or remove the key".into());
            } else if !endpoint.topic_partitions.is_empty() || endpoint.replay.is_some() {
                problem("topics", "the listener is given explicit partitions (topic_partitions or a replay), which a subscription cannot replace; remove the key".into());
            } else {
                endpoint.topics = topics;
                endpoint.topic_pattern = None;
            }
        }
        if let Some(auto_startup) = o.auto_startup {
            endpoint.auto_startup = Some(auto_startup.to_string());
        }
        if let Some(mode) = o.ack_mode {
            if endpoint.requirements.acknowledging && !mode.is_manual() {
                problem("ack-mode", format!("the listener takes an Acknowledgment, which needs ack mode manual or manual-immediate, not {mode}"));
            } else {
                endpoint.ack_mode = Some(mode);
            }
        }
        if let Some(order) = o.processing_order {
            endpoint.processing_order = Some(order);
        }
        if let Some(records) = o.max_concurrency {
            endpoint.max_concurrency = Some(records);
        }
        if let Some(prefix) = o.client_id_prefix {
            endpoint.client_id_prefix = Some(prefix);
        }
        for (key, value) in o.properties.iter() {
            match check_owned_property(key, value).and_then(|()| validate_property(key, value)) {
                // After the listener's own: a later property wins.
                Ok(()) => endpoint.properties.push(format!("{key}={value}")),
                Err(crate::Error::Config { reason, .. }) => problem(&format!("properties.{key}"), reason),
                Err(error) => problem(&format!("properties.{key}"), error.to_string()),
            }
        }
    }
}

/// The index of the endpoint `id` names, or a problem.
fn find(ids: &[String], id: &str, path: &str, problems: &mut Vec<Problem>) -> Option<usize> {
    if let Some(index) = ids.iter().position(|known| known == id) {
        return Some(index);
    }
    let relaxed = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    let close: Vec<usize> = (0..ids.len()).filter(|&i| relaxed(&ids[i]) == relaxed(id)).collect();
    match close.as_slice() {
        [index] => Some(*index),
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
            let names: Vec<String> = several.iter().map(|&i| format!("`{}`", ids[i])).collect();
            problems.push(Problem {
                listener: None,
                message: format!("`{path}`: the id `{id}` matches the listeners {} alike (case, `-` and `_` ignored); write the exact id", names.join(" and ")),
            });
            None
        }
    }
}
