use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::Metadata;

use super::annotation::annotated;
use super::endpoint::Endpoint;
use super::placeholder::resolve;
use super::running::RunningListeners;
use crate::config::{validate_property, ContainerFactory};
use crate::container::{ConcurrentContainer, ContainerPlan, Invoker};
use crate::error::{Error, Problem, Result};
use crate::extract::StateMap;

/// All listeners of a program, their factories and state; [`start`](Self::start) validates them
/// together and starts their containers (Spring's `KafkaListenerEndpointRegistry`).
#[must_use]
pub struct ListenerRegistry {
    endpoints: Vec<Endpoint>,
    default_factory: Option<ContainerFactory>,
    factories: BTreeMap<String, ContainerFactory>,
    states: StateMap,
    only: Option<Vec<String>>,
}

impl std::fmt::Debug for ListenerRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerRegistry")
            .field("endpoints", &self.endpoints)
            .field("default_factory", &self.default_factory)
            .field("factories", &self.factories)
            .field("only", &self.only)
            .finish_non_exhaustive()
    }
}

/// An endpoint with its placeholders resolved and its settings checked.
struct Resolved {
    endpoint: Endpoint,
    id: String,
    topics: Vec<String>,
    pattern: Option<String>,
    group: Option<String>,
    factory_name: Option<String>,
    concurrency: Option<usize>,
    auto_startup: bool,
    client_id_prefix: Option<String>,
    properties: Vec<(String, String)>,
}

impl ListenerRegistry {
    /// Every `#[kafka_listener]` function linked into this binary.
    pub fn from_annotations() -> Self {
        let mut registry = Self::empty();
        registry.endpoints.extend(annotated().map(Endpoint::from_annotation));
        registry.endpoints.sort_by(|a, b| a.id().cmp(b.id()));
        registry
    }

    /// No listeners yet; add them with [`register`](Self::register).
    pub fn empty() -> Self {
        ListenerRegistry {
            endpoints: Vec::new(),
            default_factory: None,
            factories: BTreeMap::new(),
            states: StateMap::default(),
            only: None,
        }
    }

    /// The factory of listeners that name none.
    pub fn with_default_factory(mut self, factory: ContainerFactory) -> Self {
        self.default_factory = Some(factory);
        self
    }

    /// A factory listeners name with `container_factory = "name"`.
    pub fn with_factory(mut self, name: impl Into<String>, factory: ContainerFactory) -> Self {
        self.factories.insert(name.into(), factory);
        self
    }

    /// Application state handlers take as `State<S>` (one value per type).
    pub fn with_state<S: Clone + Send + Sync + 'static>(mut self, state: S) -> Self {
        self.states.insert(state);
        self
    }

    /// Starts only the listeners with these ids (the others linked in are ignored).
    pub fn only<I: IntoIterator<Item = S>, S: Into<String>>(mut self, ids: I) -> Self {
        self.only = Some(ids.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a listener built in code.
    pub fn register(mut self, endpoint: Endpoint) -> Self {
        self.endpoints.push(endpoint);
        self
    }

    /// The listeners known so far (before `only` is applied).
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// Validates every listener, then starts their containers.
    ///
    /// Nothing starts unless everything is valid; all problems are reported at once: unknown
    /// factory, duplicate id, an acknowledging listener on a non-manual factory, missing state, an
    /// unresolved placeholder, an invalid property, an unreachable broker, a missing topic with
    /// `missing_topics_fatal`.
    ///
    /// # Errors
    /// [`Error::Validation`] listing every problem.
    pub async fn start(self) -> Result<RunningListeners> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::config("runtime", "ListenerRegistry::start must run on a tokio runtime (e.g. in #[tokio::main])")
        })?;
        let mut problems = Vec::new();

        let mut resolved: Vec<Resolved> = Vec::new();
        for endpoint in &self.endpoints {
            let raw_id = endpoint.id().to_string();
            if let Some(only) = &self.only {
                let id = resolve(&raw_id).unwrap_or_else(|_| raw_id.clone());
                if !only.contains(&id) {
                    continue;
                }
            }
            match resolve_endpoint(endpoint) {
                Ok(r) => resolved.push(r),
                Err(mut found) => problems.append(&mut found),
            }
        }
        if let Some(only) = &self.only {
            for id in only {
                if !self.endpoints.iter().any(|e| resolve(e.id()).unwrap_or_else(|_| e.id().to_string()) == *id) {
                    problems.push(Problem {
                        listener: None,
                        message: format!("only(): no listener has id `{id}`; the ids are: {}", self.known_ids()),
                    });
                }
            }
        }

        let mut seen: HashMap<&str, usize> = HashMap::new();
        for r in &resolved {
            *seen.entry(r.id.as_str()).or_default() += 1;
        }
        let mut duplicates: Vec<_> = seen.into_iter().filter(|(_, n)| *n > 1).collect();
        duplicates.sort();
        for (id, count) in duplicates {
            let sources: Vec<_> =
                resolved.iter().filter(|r| r.id == id).filter_map(|r| r.endpoint.source.clone()).collect();
            problems.push(Problem {
                listener: Some(id.to_string()),
                message: format!(
                    "{count} listeners have this id{}; give each a unique `id = \"...\"`",
                    if sources.is_empty() { String::new() } else { format!(" ({})", sources.join(", ")) }
                ),
            });
        }

        let mut planned: Vec<(Resolved, ContainerFactory, String)> = Vec::new();
        for r in resolved {
            let (factory, factory_label) = match &r.factory_name {
                Some(name) => match self.factories.get(name) {
                    Some(f) => (f.clone(), format!("`{name}`")),
                    None => {
                        problems.push(Problem {
                            listener: Some(r.id.clone()),
                            message: format!(
                                "names container_factory `{name}`, but no factory has that name (known: {}); register it with .with_factory(\"{name}\", factory)",
                                self.known_factories()
                            ),
                        });
                        continue;
                    }
                },
                None => match &self.default_factory {
                    Some(f) => (f.clone(), "the default factory".to_string()),
                    None => {
                        problems.push(Problem {
                            listener: Some(r.id.clone()),
                            message: "names no container_factory and the registry has no default factory; call .with_default_factory(factory)".to_string(),
                        });
                        continue;
                    }
                },
            };
            let ack_mode = r.endpoint.ack_mode.unwrap_or(factory.ack_mode());
            if r.endpoint.requirements.acknowledging && !ack_mode.is_manual() {
                problems.push(Problem {
                    listener: Some(r.id.clone()),
                    message: format!(
                        "takes an Acknowledgment, but {factory_label} has ack mode {ack_mode:?}; acknowledging listeners need AckMode::Manual or AckMode::ManualImmediate: set .ack_mode(AckMode::Manual) on the factory, or name a manual factory with container_factory = \"...\""
                    ),
                });
            }
            for (type_id, name) in &r.endpoint.requirements.states {
                if !self.states.contains(*type_id) {
                    problems.push(Problem {
                        listener: Some(r.id.clone()),
                        message: format!("takes State<{name}>, but no state of that type was given; call .with_state(value) on the registry"),
                    });
                }
            }
            planned.push((r, factory, factory_label));
        }

        // The broker and the topics, once per factory.
        let mut metadata: HashMap<usize, std::result::Result<Arc<Metadata>, String>> = HashMap::new();
        for (r, factory, factory_label) in &planned {
            let key = Arc::as_ptr(&factory.settings) as usize;
            if let Entry::Vacant(slot) = metadata.entry(key) {
                let found = fetch_metadata(factory.clone()).await;
                if let Err(message) = &found {
                    problems.push(Problem { listener: None, message: format!("{message} (used by {factory_label})") });
                }
                slot.insert(found);
            }
            let Some(Ok(metadata)) = metadata.get(&key) else { continue };
            let mut partitions = 0usize;
            for topic in &r.topics {
                match metadata.topics().iter().find(|t| t.name() == topic && t.error().is_none()) {
                    Some(t) => partitions += t.partitions().len(),
                    None if factory.settings.missing_topics_fatal => problems.push(Problem {
                        listener: Some(r.id.clone()),
                        message: format!(
                            "topic `{topic}` does not exist and {factory_label} sets missing_topics_fatal; create the topic, or unset missing_topics_fatal to wait for it"
                        ),
                    }),
                    None => tracing::warn!(listener = %r.id, topic, "topic does not exist (yet); the listener waits for it"),
                }
            }
            let concurrency = r.concurrency.unwrap_or(factory.concurrency());
            if r.pattern.is_none() && partitions > 0 && concurrency > partitions {
                tracing::warn!(listener = %r.id, concurrency, partitions,
                    "concurrency is above the partition count: {} consumer(s) will stay idle", concurrency - partitions);
            }
        }

        if !problems.is_empty() {
            return Err(Error::Validation(problems));
        }

        let states = Arc::new(self.states);
        let mut containers = Vec::new();
        for (r, factory, _) in planned {
            let settings = factory.settings.clone();
            let ack_mode = r.endpoint.ack_mode.unwrap_or(settings.ack_mode);
            let concurrency = r.concurrency.unwrap_or(settings.concurrency);
            let group = r
                .group
                .clone()
                .or_else(|| settings.properties.get("group.id").map(str::to_string))
                .unwrap_or_else(|| r.id.clone());
            let mut client_config = settings.properties.to_client_config();
            for (key, value) in &r.properties {
                client_config.set(key, value);
            }
            client_config
                .set("group.id", &group)
                .set("enable.auto.commit", "false")
                .set("enable.auto.offset.store", "false")
                .set("enable.partition.eof", "false");
            let client_id = r
                .client_id_prefix
                .clone()
                .or_else(|| settings.properties.get("client.id").map(str::to_string))
                .unwrap_or_else(|| r.id.clone());
            let subscription = match &r.pattern {
                Some(pattern) if pattern.starts_with('^') => vec![pattern.clone()],
                Some(pattern) => vec![format!("^{pattern}")],
                None => r.topics.clone(),
            };
            let Some(invoker) = r.endpoint.invoker.clone() else { continue };
            tracing::info!(listener = %r.id, topics = ?subscription, group, ?ack_mode, concurrency, batch = matches!(invoker, Invoker::Batch(_)), "listener registered");
            let plan = ContainerPlan {
                listener_id: Arc::from(r.id.as_str()),
                subscription,
                client_config,
                client_id,
                settings,
                ack_mode,
                invoker,
                acknowledging: r.endpoint.requirements.acknowledging,
                states: states.clone(),
                runtime: runtime.clone(),
            };
            let container = Arc::new(ConcurrentContainer::new(plan, concurrency));
            if r.auto_startup {
                container.start()?;
            }
            containers.push(container);
        }
        Ok(RunningListeners { containers })
    }

    fn known_ids(&self) -> String {
        let ids: Vec<_> = self.endpoints.iter().map(|e| format!("`{}`", e.id())).collect();
        if ids.is_empty() {
            "none".to_string()
        } else {
            ids.join(", ")
        }
    }

    fn known_factories(&self) -> String {
        let names: Vec<_> = self.factories.keys().map(|n| format!("`{n}`")).collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    }
}

impl Default for ListenerRegistry {
    fn default() -> Self {
        Self::from_annotations()
    }
}

fn resolve_endpoint(e: &Endpoint) -> std::result::Result<Resolved, Vec<Problem>> {
    let raw_id = e.id().to_string();
    let mut problems = Vec::new();
    let mut field = |name: &str, value: &str, id: &str| -> Option<String> {
        match resolve(value) {
            Ok(v) => Some(v),
            Err(var) => {
                problems.push(Problem {
                    listener: Some(id.to_string()),
                    message: format!("`{name} = \"{value}\"`: environment variable `{var}` is not set and has no default; set it, or write ${{{var}:default}}"),
                });
                None
            }
        }
    };
    let id = field("id", &raw_id, &raw_id).unwrap_or_else(|| raw_id.clone());
    let topics: Vec<String> = e.topics.iter().filter_map(|t| field("topics", t, &id)).collect();
    let pattern = e.topic_pattern.as_deref().and_then(|p| field("topic_pattern", p, &id));
    let group = e.group.as_deref().and_then(|g| field("group", g, &id));
    let factory_name = e.container_factory.as_deref().and_then(|f| field("container_factory", f, &id));
    let concurrency_text = e.concurrency.as_deref().and_then(|c| field("concurrency", c, &id));
    let auto_startup_text = e.auto_startup.as_deref().and_then(|a| field("auto_startup", a, &id));
    let client_id_prefix = e.client_id_prefix.as_deref().and_then(|c| field("client_id_prefix", c, &id));
    let property_texts: Vec<String> = e.properties.iter().filter_map(|p| field("properties", p, &id)).collect();

    let mut problem = |message: String| problems.push(Problem { listener: Some(id.clone()), message });
    if e.invoker.is_none() {
        problem("has no handler; call .handler(...), .blocking_handler(...) or .batch_handler(...)".into());
    }
    if e.topics.is_empty() && e.topic_pattern.is_none() {
        problem("names no topic; give `topic`, `topics` or `topic_pattern`".into());
    }
    if !e.topics.is_empty() && e.topic_pattern.is_some() {
        problem("gives both topics and a topic_pattern; give one of them".into());
    }
    if topics.iter().any(|t| t.trim().is_empty()) {
        problem("has an empty topic name".into());
    }
    let concurrency = match concurrency_text.as_deref().map(str::parse::<usize>) {
        None => None,
        Some(Ok(0)) | Some(Err(_)) => {
            problem(format!(
                "concurrency `{}` is not a number of at least 1",
                concurrency_text.as_deref().unwrap_or_default()
            ));
            None
        }
        Some(Ok(n)) => Some(n),
    };
    let auto_startup = match auto_startup_text.as_deref().map(str::trim) {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            problem(format!("auto_startup `{other}` is neither true nor false"));
            true
        }
    };
    let mut properties = Vec::new();
    for text in &property_texts {
        match text.split_once('=') {
            Some((key, value)) => {
                let (key, value) = (key.trim(), value.trim());
                if let Err(error) =
                    crate::config::check_owned_property(key, value).and_then(|()| validate_property(key, value))
                {
                    problem(format!("properties: {error}"));
                } else {
                    properties.push((key.to_string(), value.to_string()));
                }
            }
            None => problem(format!(
                "properties: `{}` is not `key=value`",
                if crate::config::is_secret(text) { "<redacted>" } else { text }
            )),
        }
    }
    if let Some(mode) = e.ack_mode {
        if e.requirements.acknowledging && !mode.is_manual() {
            problem(format!("takes an Acknowledgment but declares ack_mode {mode}; use manual or manual_immediate"));
        }
    }
    if problems.is_empty() {
        Ok(Resolved {
            endpoint: e.clone(),
            id,
            topics,
            pattern,
            group,
            factory_name,
            concurrency,
            auto_startup,
            client_id_prefix,
            properties,
        })
    } else {
        Err(problems)
    }
}

/// The cluster's metadata through a short-lived consumer, or why the broker cannot be reached.
async fn fetch_metadata(factory: ContainerFactory) -> std::result::Result<Arc<Metadata>, String> {
    let settings = factory.settings.clone();
    let bootstrap = settings.properties.get("bootstrap.servers").unwrap_or_default().to_string();
    let timeout: Duration = settings.startup_timeout;
    let task = tokio::task::spawn_blocking(move || {
        let mut config = settings.properties.to_client_config();
        // No group: this consumer only reads metadata.
        config.remove("group.id");
        let consumer: BaseConsumer = config.create().map_err(|e| e.to_string())?;
        consumer.fetch_metadata(None, timeout).map(Arc::new).map_err(|e| e.to_string())
    });
    match task.await {
        Ok(Ok(metadata)) => Ok(metadata),
        Ok(Err(error)) => Err(format!(
            "cannot reach the broker at `{bootstrap}` within {timeout:?}: {error}; check bootstrap_servers and that the broker is running"
        )),
        Err(join) => Err(format!("checking the broker at `{bootstrap}` failed: {join}")),
    }
}
