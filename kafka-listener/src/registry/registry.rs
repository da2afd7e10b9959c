use std::collections::BTreeMap;
use std::sync::Arc;

use super::annotation::annotated;
use super::endpoint::Endpoint;
use super::overrides::Overrides;
use super::placeholder::resolve;
use super::resolve::{resolve_endpoint, Resolved};
use super::running::RunningListeners;
use super::validate::{check_cluster, duplicate_ids, Bound};
use crate::config::{check_consumer_config, ContainerFactory, GroupProtocol, KafkaProperties};
use crate::container::{ConcurrentContainer, Invoker};
use crate::error::{Error, Problem, Result};
use crate::error_handler::RetryForwarder;
use crate::extract::StateMap;
use crate::producer::KafkaTemplate;
use crate::registry::{AssignedPartition, StartPosition};
use crate::support::{Admin, NewTopic};

/// All listeners of a program, their factories and state; [`start`](Self::start) validates them
/// together and starts their containers (Spring's `KafkaListenerEndpointRegistry`).
#[must_use]
pub struct ListenerRegistry {
    endpoints: Vec<Endpoint>,
    default_factory: Option<ContainerFactory>,
    factories: BTreeMap<String, ContainerFactory>,
    states: StateMap,
    only: Option<Vec<String>>,
    template: Option<KafkaTemplate>,
    topics: Vec<NewTopic>,
    properties: Option<KafkaProperties>,
    /// The properties could not make the default factory (reported once, as such).
    default_factory_failed: bool,
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

impl ListenerRegistry {
    /// Every `#[kafka_listener]` function linked into this binary.
    pub fn from_annotations() -> Self {
        let mut registry = Self::empty();
        registry.endpoints.extend(annotated());
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
            template: None,
            topics: Vec::new(),
            properties: None,
            default_factory_failed: false,
        }
    }

    /// The factory of listeners that name none.
    pub fn with_default_factory(mut self, factory: ContainerFactory) -> Self {
        self.default_factory = Some(factory);
        self
    }

    /// Configuration from files and the environment ([`KafkaProperties`]): at
    /// [`start`](Self::start), the default factory is made from it
    /// ([`ContainerFactory::from_properties`]) unless [`with_default_factory`](Self::with_default_factory)
    /// gave one, the template likewise ([`KafkaTemplate::from_properties`]) when a listener needs
    /// one (replies, retry topics) and none was given, and its `listeners.<id>` overrides are
    /// applied to the listeners with those ids.
    ///
    /// Precedence, most specific wins: the factory's settings from `props` < builder calls on a
    /// factory in code < a listener's attribute or [`Endpoint`] setting < `listeners.<id>`.
    ///
    /// ```no_run
    /// # use kafka_listener::prelude::*;
    /// # async fn run() -> Result<(), kafka_listener::Error> {
    /// let running = ListenerRegistry::from_annotations()
    ///     .with_properties(KafkaProperties::from_env()?)
    ///     .start()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// `start()` reports (with the other problems) an override whose id no listener has, or a
    /// value the listener cannot take, by its key path (`listeners.audit.concurrency`), and a
    /// factory or template the properties cannot make.
    pub fn with_properties(mut self, props: KafkaProperties) -> Self {
        self.properties = Some(props);
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

    /// The template replies are published with (listeners that return a value).
    pub fn with_template(mut self, template: KafkaTemplate) -> Self {
        self.template = Some(template);
        self
    }

    /// Declares a topic (Spring's `NewTopic` bean): [`start`](Self::start) creates it before
    /// any listener starts when the cluster does not have it, on the default factory's cluster
    /// (its bootstrap servers and security settings), real or embedded. A topic that exists is
    /// left as it is; a partition count other than the declared one is logged at WARN.
    ///
    /// ```no_run
    /// # use kafka_listener::prelude::*;
    /// # fn run(factory: ContainerFactory) {
    /// let registry = ListenerRegistry::from_annotations()
    ///     .with_default_factory(factory)
    ///     .with_topic(NewTopic::new("orders", 3))
    ///     .with_topic(NewTopic::new("orders-dlt", 3).config("retention.ms", "1209600000"));
    /// # }
    /// ```
    pub fn with_topic(mut self, topic: NewTopic) -> Self {
        self.topics.push(topic);
        self
    }

    /// Declares topics, as [`with_topic`](Self::with_topic) does for each.
    pub fn with_topics(mut self, topics: impl IntoIterator<Item = NewTopic>) -> Self {
        self.topics.extend(topics);
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
    /// Declared topics ([`with_topic`](Self::with_topic)) are created first. Nothing starts
    /// unless everything is valid; all problems are reported at once: unknown factory, duplicate
    /// id, an acknowledging listener on a non-manual factory, missing state, an unresolved
    /// placeholder, an invalid property, an unreachable broker, a missing topic with
    /// `missing_topics_fatal`, a declared topic the broker refused.
    ///
    /// # Errors
    /// [`Error::Validation`] listing every problem.
    pub async fn start(mut self) -> Result<RunningListeners> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::config("runtime", "ListenerRegistry::start must run on a tokio runtime (e.g. in #[tokio::main])")
        })?;
        let mut problems = Vec::new();

        let overrides = self.apply_properties(&mut problems).await;
        self.create_declared_topics(&mut problems).await;
        let mut resolved = self.resolve_selected(&mut problems);
        if let Some(overrides) = &overrides {
            for r in &mut resolved {
                overrides.apply(r, &mut problems);
            }
        }
        self.replay_partitions(&mut resolved, &mut problems).await;
        duplicate_ids(&resolved, &mut problems);
        let bound = self.bind(resolved, &mut problems);
        check_cluster(&bound, &mut problems).await;
        if !problems.is_empty() {
            return Err(Error::Validation(problems));
        }

        let states = Arc::new(self.states);
        let mut containers = Vec::new();
        for Bound { resolved, factory, retry, .. } in bound {
            let Some((mut plan, concurrency)) = resolved.plan(&factory, &states, &runtime, self.template.as_ref())
            else {
                continue;
            };
            let mut retry_plans = Vec::new();
            if let (Some(policy), Some(template)) = (retry, &self.template) {
                plan.error_handler = Arc::new(RetryForwarder { template: template.clone(), policy: policy.clone() });
                retry_plans = resolved.retry_plans(&plan, &policy);
            }
            // The retry topics' containers follow the listener's: started, stopped, paused and
            // resumed with it, by its id.
            let stages: Vec<Arc<ConcurrentContainer>> =
                retry_plans.into_iter().map(|plan| Arc::new(ConcurrentContainer::new(plan, concurrency))).collect();
            let container = Arc::new(ConcurrentContainer::new(plan, concurrency).with_stages(stages.clone()));
            container.set_auto_startup(resolved.auto_startup);
            if resolved.auto_startup {
                container.start()?;
            }
            containers.push(container);
            containers.extend(stages);
        }
        Ok(RunningListeners { containers })
    }

    /// Makes the default factory and the template from the properties where code gave none, and
    /// checks the per-listener overrides' ids (applied once the listeners are resolved).
    async fn apply_properties(&mut self, problems: &mut Vec<Problem>) -> Option<Overrides> {
        let props = self.properties.take()?;
        let mut problem = |what: &str, error: Error| {
            problems.push(Problem { listener: None, message: format!("KafkaProperties: {what}: {error}") })
        };
        if self.default_factory.is_none() {
            match ContainerFactory::from_properties(&props).and_then(|b| b.build()) {
                Ok(factory) => self.default_factory = Some(factory),
                Err(error) => {
                    // The listeners on the default factory are not told again that there is none.
                    self.default_factory_failed = true;
                    problem("the default factory cannot be made", error)
                }
            }
        }
        let needs_template = self.endpoints.iter().any(|e| e.requirements.replies || e.retry_topics.is_some())
            || self.factories.values().chain(&self.default_factory).any(|f| f.settings.retry_topics.is_some());
        if self.template.is_none() && needs_template {
            // A transactional template initializes its transactions with the broker: blocking.
            let made = match KafkaTemplate::from_properties(&props) {
                Ok(builder) => tokio::task::spawn_blocking(move || builder.build())
                    .await
                    .unwrap_or_else(|join| Err(Error::config("producer", join.to_string()))),
                Err(error) => Err(error),
            };
            match made {
                Ok(template) => self.template = Some(template),
                Err(error) => problem("the template cannot be made", error),
            }
        }
        let ids: Vec<String> = self.endpoints.iter().map(resolved_id).collect();
        Some(Overrides::new(props.listeners, &ids, problems))
    }

    /// Creates the declared topics the default factory's cluster does not have.
    async fn create_declared_topics(&self, problems: &mut Vec<Problem>) {
        if self.topics.is_empty() {
            return;
        }
        let names = self.topics.iter().map(|t| format!("`{}`", t.name())).collect::<Vec<_>>().join(", ");
        let Some(factory) = &self.default_factory else {
            if self.default_factory_failed {
                return;
            }
            problems.push(Problem {
                listener: None,
                message: format!(
                    "topics {names} are declared (with_topic) but there is no default factory to say on which cluster; add .with_default_factory(..)"
                ),
            });
            return;
        };
        let admin = Admin::with_properties(factory.settings.properties.clone());
        if let Err(error) = admin.create_topics(self.topics.clone()).await {
            problems.push(Problem {
                listener: None,
                message: format!(
                    "declared topic(s) {names} could not be created: {error}; change the declaration (with_topic), or create the topics on the broker yourself"
                ),
            });
        }
    }

    /// Gives each replay every partition of its topics, starting at its window's start.
    async fn replay_partitions(&self, resolved: &mut [Resolved], problems: &mut Vec<Problem>) {
        for r in resolved.iter_mut().filter(|r| r.endpoint.replay.is_some()) {
            let factory = match &r.factory_name {
                Some(name) => self.factories.get(name),
                None => self.default_factory.as_ref(),
            };
            let (Some(factory), Some((from, _))) = (factory, r.endpoint.replay) else { continue };
            let admin = Admin::with_properties(factory.settings.properties.clone());
            let topics = r.topics.clone();
            let found = tokio::task::spawn_blocking(move || {
                topics.iter().map(|t| admin.partitions(t).map(|ps| (t.clone(), ps))).collect::<Result<Vec<_>>>()
            })
            .await;
            match found {
                Ok(Ok(topics)) => {
                    r.assignment = topics
                        .into_iter()
                        .flat_map(|(topic, partitions)| {
                            partitions.into_iter().map(move |partition| AssignedPartition {
                                topic: topic.clone(),
                                partition,
                                start: StartPosition::Timestamp(from),
                            })
                        })
                        .collect();
                }
                Ok(Err(error)) => problems.push(Problem {
                    listener: Some(r.id.clone()),
                    message: format!("cannot read the partitions to replay: {error}"),
                }),
                Err(join) => problems.push(Problem {
                    listener: Some(r.id.clone()),
                    message: format!("cannot read the partitions to replay: {join}"),
                }),
            }
        }
    }

    /// Resolves the listeners `only` selects (all without it), taking them out of the registry.
    fn resolve_selected(&mut self, problems: &mut Vec<Problem>) -> Vec<Resolved> {
        if let Some(only) = &self.only {
            for id in only {
                if !self.endpoints.iter().any(|e| resolved_id(e) == *id) {
                    problems.push(Problem {
                        listener: None,
                        message: format!("only(): no listener has id `{id}`; the ids are: {}", self.known_ids()),
                    });
                }
            }
        }
        let mut resolved = Vec::new();
        for endpoint in std::mem::take(&mut self.endpoints) {
            if self.only.as_ref().is_some_and(|only| !only.contains(&resolved_id(&endpoint))) {
                continue;
            }
            match resolve_endpoint(endpoint) {
                Ok(r) => resolved.push(r),
                Err(mut found) => problems.append(&mut found),
            }
        }
        resolved
    }

    /// Binds each listener to its factory, and checks what depends on the factory: the ack mode
    /// of acknowledging listeners, and the state the listeners take.
    fn bind(&self, resolved: Vec<Resolved>, problems: &mut Vec<Problem>) -> Vec<Bound> {
        let mut bound = Vec::new();
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
                    None if self.default_factory_failed => continue,
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
            let order = r.endpoint.processing_order.unwrap_or(factory.processing_order());
            if order.is_concurrent() {
                if matches!(r.endpoint.invoker, Some(Invoker::Batch(_))) {
                    problems.push(Problem {
                        listener: Some(r.id.clone()),
                        message: format!("is a batch listener with processing order {order}: a batch is handed over whole, in partition order; use processing_order = \"partition\" (the default), or a record listener to handle records by key or unordered"),
                    });
                }
                if factory.settings.transactional.is_some() {
                    problems.push(Problem {
                        listener: Some(r.id.clone()),
                        message: format!("has processing order {order}, but {factory_label} is transactional: a transaction covers one record at a time in partition order; use processing_order = \"partition\" on a transactional factory"),
                    });
                }
            }
            if factory.settings.transactional.is_some() && r.endpoint.requirements.acknowledging {
                problems.push(Problem {
                    listener: Some(r.id.clone()),
                    message: format!("{factory_label} is transactional: each transaction commits the offsets, so a listener takes no Acknowledgment; remove it"),
                });
            }
            if r.endpoint.requirements.replies && self.template.is_none() {
                problems.push(Problem {
                    listener: Some(r.id.clone()),
                    message: "returns a value to publish as a reply, but the registry has no template; call .with_template(KafkaTemplate::builder()...build()?)".to_string(),
                });
            }
            let retry = r.endpoint.retry_topics.clone().or_else(|| factory.settings.retry_topics.clone());
            if let Some(policy) = &retry {
                let mut problem = |message: String| problems.push(Problem { listener: Some(r.id.clone()), message });
                if self.template.is_none() {
                    problem("uses retry topics, but the registry has no template to publish retries with; call .with_template(KafkaTemplate::builder()...build()?)".to_string());
                }
                if matches!(r.endpoint.invoker, Some(Invoker::Batch(_))) {
                    problem("is a batch listener: retry topics work record by record (as in Spring); use a record listener, or a DefaultErrorHandler with a DeadLetterRecoverer".to_string());
                }
                if r.topics.is_empty() {
                    problem("retry topics need named topics (not a topic_pattern or topic_partitions); name them with `topics`".to_string());
                }
                if let Some(message) = policy.problem() {
                    problem(message);
                }
            }
            // The whole consumer configuration, as the container will create it: some properties
            // conflict only together (the factory's with the listener's).
            let (config, _) = r.client_config(&factory);
            let mut properties = factory.settings.properties.clone();
            for (key, value) in &r.properties {
                properties.set(key.as_str(), value.as_str());
            }
            let protocol = GroupProtocol::of(properties.iter());
            if let Some(&(key, instead)) = protocol.forbidden(properties.iter()).first() {
                let (set_by, protocol_by) = (
                    if r.properties.iter().any(|(k, _)| k == key) {
                        "the listener's".to_string()
                    } else {
                        format!("{factory_label}'s")
                    },
                    if r.properties.iter().any(|(k, _)| k == "group.protocol") {
                        "the listener's".to_string()
                    } else {
                        format!("{factory_label}'s")
                    },
                );
                problems.push(Problem {
                    listener: Some(r.id.clone()),
                    message: format!(
                        "its consumer configuration sets `{key}` ({set_by} properties), which group.protocol=consumer (KIP-848; {protocol_by} properties) does not allow: {instead}; remove it, or use group.protocol=classic"
                    ),
                });
            } else if let Err(reason) = check_consumer_config(&config, &properties) {
                let listener_keys: Vec<&str> = r.properties.iter().map(|(k, _)| k.as_str()).collect();
                problems.push(Problem {
                    listener: Some(r.id.clone()),
                    message: format!(
                        "librdkafka refuses its consumer configuration ({factory_label}'s properties{}): {reason}; change or remove one of the properties named",
                        if listener_keys.is_empty() { String::new() } else { format!(" with the listener's {}", listener_keys.join(", ")) }
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
            bound.push(Bound { resolved: r, factory, label: factory_label, retry });
        }
        bound
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

/// A listener's id with its placeholders resolved where they can be (else as written).
fn resolved_id(endpoint: &Endpoint) -> String {
    resolve(endpoint.id()).unwrap_or_else(|_| endpoint.id().to_string())
}

impl Default for ListenerRegistry {
    fn default() -> Self {
        Self::from_annotations()
    }
}
