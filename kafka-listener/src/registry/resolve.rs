//! An endpoint's settings with their placeholders resolved and checked, and the plan of its
//! containers.

use std::sync::Arc;

use kafka_listener_rules::{parse_auto_startup, parse_concurrency};

use super::endpoint::Endpoint;
use super::placeholder::resolve;
use super::{AssignedPartition, StartPosition};
use crate::config::{check_owned_property, container_properties, is_secret, validate_property, ContainerFactory};
use crate::container::{ContainerPlan, Invoker, Replay, ReplyPlan};
use crate::error::Problem;
use crate::error_handler::RetryTopics;
use crate::extract::StateMap;
use crate::producer::KafkaTemplate;

/// An endpoint with its placeholders resolved and its settings checked: the endpoint as written
/// (its callbacks, handler, and the settings that take no placeholders), and the resolved values
/// of the others.
pub(crate) struct Resolved {
    pub(crate) endpoint: Endpoint,
    pub(crate) id: String,
    pub(crate) topics: Vec<String>,
    pub(crate) pattern: Option<String>,
    /// Explicit partitions (`topic_partitions`, or all partitions of a replay), resolved and parsed.
    pub(crate) assignment: Vec<AssignedPartition>,
    pub(crate) group: Option<String>,
    pub(crate) factory_name: Option<String>,
    pub(crate) concurrency: Option<usize>,
    pub(crate) auto_startup: bool,
    pub(crate) client_id_prefix: Option<String>,
    pub(crate) properties: Vec<(String, String)>,
    pub(crate) reply_to: Option<String>,
}

impl Resolved {
    /// The listener's consumer configuration on `factory` (the factory's properties, the
    /// listener's, and the container's own), and its group.
    pub(crate) fn client_config(&self, factory: &ContainerFactory) -> (rdkafka::config::ClientConfig, String) {
        let settings = &factory.settings;
        let group = self
            .group
            .clone()
            .or_else(|| settings.properties.get("group.id").map(str::to_string))
            .unwrap_or_else(|| self.id.clone());
        let mut client_config = settings.properties.to_client_config();
        for (key, value) in &self.properties {
            client_config.set(key, value);
        }
        container_properties(&mut client_config, &group);
        (client_config, group)
    }

    /// The plan of this listener's containers on `factory`, and its concurrency.
    pub(crate) fn plan(
        &self,
        factory: &ContainerFactory,
        states: &Arc<StateMap>,
        runtime: &tokio::runtime::Handle,
        template: Option<&KafkaTemplate>,
    ) -> Option<(ContainerPlan, usize)> {
        let settings = factory.settings.clone();
        let ack_mode = self.endpoint.ack_mode.unwrap_or(settings.ack_mode);
        let order = self.endpoint.processing_order.unwrap_or(settings.processing_order);
        let max_concurrency = self.endpoint.max_concurrency.unwrap_or(settings.max_concurrency);
        let mut concurrency = self.concurrency.unwrap_or(settings.concurrency);
        if !self.assignment.is_empty() {
            // Each consumer needs a partition of its own.
            concurrency = concurrency.min(self.assignment.len());
        }
        let (client_config, group) = self.client_config(factory);
        let client_id = self
            .client_id_prefix
            .clone()
            .or_else(|| settings.properties.get("client.id").map(str::to_string))
            .unwrap_or_else(|| self.id.clone());
        let subscription = match &self.pattern {
            Some(pattern) if pattern.starts_with('^') => vec![pattern.clone()],
            Some(pattern) => vec![format!("^{pattern}")],
            None => self.topics.clone(),
        };
        let invoker = self.endpoint.invoker.clone()?;
        tracing::info!(listener = %self.id, topics = ?subscription, group, ?ack_mode, concurrency, batch = matches!(invoker, Invoker::Batch(_)), "listener registered");
        let error_handler = self.endpoint.error_handler.clone().unwrap_or_else(|| settings.error_handler.clone());
        let plan = ContainerPlan {
            error_handler,
            listener_id: Arc::from(self.id.as_str()),
            group: Arc::from(group.as_str()),
            subscription,
            client_config,
            client_id,
            settings,
            ack_mode,
            invoker,
            acknowledging: self.endpoint.requirements.acknowledging,
            order,
            max_concurrency,
            consumer_aware: self.endpoint.requirements.consumer_aware,
            states: states.clone(),
            runtime: runtime.clone(),
            reply: template
                .filter(|_| self.endpoint.requirements.replies)
                .map(|template| ReplyPlan { template: template.clone(), topic: self.reply_to.clone() }),
            retry_topic: false,
            assignment: self.assignment.clone(),
            on_assigned: self.endpoint.on_partitions_assigned.clone(),
            replay: self.endpoint.replay.map(|(from, to)| Arc::new(Replay::new(from, to, concurrency))),
            filter: self.endpoint.filter.clone().or_else(|| factory.settings.record_filter.clone()),
        };
        Some((plan, concurrency))
    }

    /// The plans of the containers of this listener's retry topics (`<id>-retry-<n>` in group
    /// `<group>-retry-<n>`, or one `-retry` stage with a single topic), from the main plan.
    pub(crate) fn retry_plans(&self, main: &ContainerPlan, policy: &RetryTopics) -> Vec<ContainerPlan> {
        let stages: Vec<(String, Vec<String>)> = if policy.is_single_topic() {
            vec![("-retry".to_string(), self.topics.iter().flat_map(|t| policy.retry_topics(t)).collect())]
        } else {
            (0..policy.retries() as usize)
                .map(|i| {
                    (format!("-retry-{i}"), self.topics.iter().map(|t| policy.retry_topics(t)[i].clone()).collect())
                })
                .collect()
        };
        stages
            .into_iter()
            .map(|(suffix, subscription)| {
                let group = format!("{}{suffix}", main.group);
                let mut client_config = main.client_config.clone();
                client_config.set("group.id", &group);
                // Everything else as the main listener's: a new setting reaches retry stages
                // without being named here.
                ContainerPlan {
                    listener_id: Arc::from(format!("{}{suffix}", main.listener_id).as_str()),
                    group: Arc::from(group.as_str()),
                    subscription,
                    client_config,
                    client_id: format!("{}{suffix}", main.client_id),
                    retry_topic: true,
                    // A retry topic's record waits until it is due, its partition paused: in
                    // order, as Spring's retry containers.
                    order: crate::config::ProcessingOrder::Partition,
                    assignment: Vec::new(),
                    on_assigned: None,
                    replay: None,
                    ..main.clone()
                }
            })
            .collect()
    }
}

/// The problems found while resolving one endpoint, about its id.
struct Checker {
    id: String,
    problems: Vec<Problem>,
}

impl Checker {
    fn problem(&mut self, message: String) {
        self.problems.push(Problem { listener: Some(self.id.clone()), message });
    }

    /// `value` with its placeholders resolved, or a problem naming the setting.
    fn resolve(&mut self, name: &str, value: &str) -> Option<String> {
        resolve(value).map_err(|var| self.problem(unset(name, value, &var))).ok()
    }

    /// `value` resolved and read with `parse`, or a problem.
    fn parse<T>(&mut self, name: &str, value: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        let text = self.resolve(name, value)?;
        parse(&text).map_err(|message| self.problem(message)).ok()
    }
}

/// The message about a placeholder whose variable is unset and has no default.
fn unset(name: &str, value: &str, var: &str) -> String {
    format!("`{name} = \"{value}\"`: environment variable `{var}` is not set and has no default; set it, or write ${{{var}:default}}")
}

/// Resolves the placeholders of an endpoint's settings and checks them (the values without
/// placeholders that `#[kafka_listener]` takes were checked when it compiled, by the same rules).
pub(crate) fn resolve_endpoint(e: Endpoint) -> std::result::Result<Resolved, Vec<Problem>> {
    let (id, unresolved_id) = match resolve(&e.id) {
        Ok(id) => (id, None),
        Err(var) => (e.id.clone(), Some(unset("id", &e.id, &var))),
    };
    let mut check = Checker { id, problems: Vec::new() };
    if let Some(message) = unresolved_id {
        check.problem(message);
    }
    let topics: Vec<String> = e.topics.iter().filter_map(|t| check.resolve("topics", t)).collect();
    let pattern = e.topic_pattern.as_deref().and_then(|p| check.resolve("topic_pattern", p));
    let group = e.group.as_deref().and_then(|g| check.resolve("group", g));
    let factory_name = e.container_factory.as_deref().and_then(|f| check.resolve("container_factory", f));
    let concurrency = e.concurrency.as_deref().and_then(|c| check.parse("concurrency", c, parse_concurrency));
    let auto_startup =
        e.auto_startup.as_deref().and_then(|a| check.parse("auto_startup", a, parse_auto_startup)).unwrap_or(true);
    let client_id_prefix = e.client_id_prefix.as_deref().and_then(|c| check.resolve("client_id_prefix", c));
    let reply_to = e.reply_to.as_deref().and_then(|r| check.resolve("reply_to", r));

    if e.invoker.is_none() {
        check.problem("has no handler; call .handler(...), .blocking_handler(...) or .batch_handler(...)".into());
    }
    let ways = [!e.topics.is_empty(), e.topic_pattern.is_some(), !e.topic_partitions.is_empty()];
    match ways.iter().filter(|w| **w).count() {
        0 => check.problem("names no topic; give `topic`, `topics`, `topic_pattern` or `topic_partitions`".into()),
        1 => {}
        _ => {
            check.problem("gives more than one of topics, topic_pattern and topic_partitions; give one of them".into())
        }
    }
    let mut assignment: Vec<AssignedPartition> = Vec::new();
    for (topic, partitions, start) in &e.topic_partitions {
        let Some(topic) = check.resolve("topic_partitions", topic) else { continue };
        let Some(start) = check.parse("topic_partitions", start, |text| {
            text.parse::<StartPosition>().map_err(|message| format!("topic_partitions of `{topic}`: {message}"))
        }) else {
            continue;
        };
        if partitions.is_empty() {
            check.problem(format!("topic_partitions of `{topic}` lists no partition"));
        }
        for &partition in partitions {
            if partition < 0 {
                check.problem(format!("topic_partitions of `{topic}`: partition {partition} is negative"));
            } else if assignment.iter().any(|a| a.topic == topic && a.partition == partition) {
                check.problem(format!("topic_partitions: {topic}-{partition} is listed twice"));
            } else {
                assignment.push(AssignedPartition { topic: topic.clone(), partition, start });
            }
        }
    }
    if group.as_deref().is_some_and(|g| g.trim().is_empty()) {
        check.problem(
            "has an empty group; name the consumer group, or leave `group` out (the listener id is the group then)"
                .into(),
        );
    }
    if topics.iter().any(|t| t.trim().is_empty()) {
        check.problem("has an empty topic name".into());
    }
    let mut properties = Vec::new();
    for text in &e.properties {
        let Some(text) = check.resolve("properties", text) else { continue };
        match text.split_once('=') {
            Some((key, value)) => {
                let (key, value) = (key.trim(), value.trim());
                if let Err(error) = check_owned_property(key, value).and_then(|()| validate_property(key, value)) {
                    check.problem(format!("properties: {error}"));
                } else {
                    properties.push((key.to_string(), value.to_string()));
                }
            }
            None => check.problem(format!(
                "properties: `{}` is not `key=value`",
                if is_secret(&text) { "<redacted>" } else { &text }
            )),
        }
    }
    if let Some((from, to)) = e.replay {
        if e.topics.is_empty() {
            check.problem("a replay takes named topics (all their partitions are replayed), not a topic_pattern or topic_partitions".into());
        }
        if to <= from {
            check.problem(format!("the replay window ends ({to} ms) before it starts ({from} ms)"));
        }
        if e.retry_topics.is_some() {
            check.problem("a replay does not use retry topics (it commits nothing); drop retry_topics".into());
        }
    }
    if e.reply_to.is_some() && e.invoker.is_some() && !e.requirements.replies {
        check.problem("declares reply_to but its handler returns nothing to reply with; return the reply value".into());
    }
    if let Some(mode) = e.ack_mode {
        if e.requirements.acknowledging && !mode.is_manual() {
            check.problem(format!(
                "takes an Acknowledgment but declares ack_mode {mode}; use manual or manual_immediate"
            ));
        }
    }
    let Checker { id, problems } = check;
    if problems.is_empty() {
        Ok(Resolved {
            endpoint: e,
            id,
            topics,
            pattern,
            assignment,
            group,
            factory_name,
            concurrency,
            auto_startup,
            client_id_prefix,
            properties,
            reply_to,
        })
    } else {
        Err(problems)
    }
}
