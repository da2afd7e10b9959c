//! Checks across listeners and against the cluster, made by `ListenerRegistry::start` before any
//! consumer starts.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::Metadata;

use super::resolve::Resolved;
use crate::config::ContainerFactory;
use crate::error::Problem;
use crate::error_handler::RetryTopics;
use crate::support::Admin;

/// A listener bound to its factory (`label` names the factory in messages).
pub(crate) struct Bound {
    pub(crate) resolved: Resolved,
    pub(crate) factory: ContainerFactory,
    pub(crate) label: String,
    /// The listener's retry-topic policy (its own, else its factory's).
    pub(crate) retry: Option<Arc<RetryTopics>>,
}

/// Listeners that share an id.
pub(crate) fn duplicate_ids(resolved: &[Resolved], problems: &mut Vec<Problem>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for r in resolved {
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
}

/// Reaches each factory's cluster once, checks the listeners' topics there (a missing topic is a
/// problem with `missing_topics_fatal`, else a warning) and warns of idle consumers.
pub(crate) async fn check_cluster(bound: &[Bound], problems: &mut Vec<Problem>) {
    let mut metadata: HashMap<usize, std::result::Result<Arc<Metadata>, String>> = HashMap::new();
    for b in bound {
        let Bound { resolved: r, factory, label: factory_label, .. } = b;
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
        for a in &r.assignment {
            match metadata.topics().iter().find(|t| t.name() == a.topic && t.error().is_none()) {
                Some(t) if !t.partitions().iter().any(|p| p.id() == a.partition) => problems.push(Problem {
                    listener: Some(r.id.clone()),
                    message: format!(
                        "topic_partitions: topic `{}` has no partition {} (it has {}); fix the partition list",
                        a.topic,
                        a.partition,
                        t.partitions().len()
                    ),
                }),
                Some(_) => {}
                None if factory.settings.missing_topics_fatal => problems.push(Problem {
                    listener: Some(r.id.clone()),
                    message: format!(
                        "topic `{}` does not exist and {factory_label} sets missing_topics_fatal; create the topic",
                        a.topic
                    ),
                }),
                None => {
                    tracing::warn!(listener = %r.id, topic = %a.topic, "topic does not exist (yet); the listener waits for it")
                }
            }
        }
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
        if let Some(policy) = b.retry.as_deref() {
            retry_topics(b, policy, metadata, problems).await;
        }
        let concurrency = r.concurrency.unwrap_or(factory.concurrency());
        if r.pattern.is_none() && partitions > 0 && concurrency > partitions {
            tracing::warn!(listener = %r.id, concurrency, partitions,
                "concurrency is above the partition count: {} consumer(s) will stay idle", concurrency - partitions);
        }
    }
}

/// Checks that the retry and dead-letter topics of a listener exist, creating the missing ones
/// when the policy says so (with the listener topic's partition count unless it gives one).
async fn retry_topics(b: &Bound, policy: &RetryTopics, metadata: &Metadata, problems: &mut Vec<Problem>) {
    let partitions_of = |name: &str| {
        metadata.topics().iter().find(|t| t.name() == name && t.error().is_none()).map(|t| t.partitions().len())
    };
    for topic in &b.resolved.topics {
        let partitions =
            policy.topic_partitions().or_else(|| partitions_of(topic).and_then(|n| i32::try_from(n).ok())).unwrap_or(1);
        let mut needed = policy.retry_topics(topic);
        needed.push(policy.dlt_topic(topic));
        let missing: Vec<&str> = needed.iter().map(String::as_str).filter(|n| partitions_of(n).is_none()).collect();
        if missing.is_empty() {
            continue;
        }
        let listed = missing.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let mut problem = |message: String| problems.push(Problem { listener: Some(b.resolved.id.clone()), message });
        if !policy.creates_topics() {
            problem(format!("retry topic(s) {listed} do not exist; create them ({partitions} partitions), or let the listener create them (RetryTopics::auto_create(true))"));
            continue;
        }
        let admin = Admin::with_properties(b.factory.settings.properties.clone());
        match admin.create_topics(missing.iter().map(|n| (*n, partitions))).await {
            Ok(()) => tracing::info!(listener = %b.resolved.id, topics = %listed, partitions, "retry topics created"),
            Err(error) => problem(format!(
                "retry topic(s) {listed} do not exist and could not be created ({error}); create them with {partitions} partitions"
            )),
        }
    }
}

/// What librdkafka reported while the metadata check ran (errors and warnings): the reason a
/// broker could not be reached (e.g. a failed SASL handshake) is there, not in the timeout.
#[derive(Default)]
struct CheckContext {
    reported: std::sync::Mutex<Vec<String>>,
}

impl CheckContext {
    fn report(&self, line: String) {
        // The same failure arrives as a log line ("[thrd:...]: ...") and as an error, and again
        // with a count of suppressed repeats: keep one of each.
        let line = match line.strip_prefix("[thrd:").and_then(|rest| rest.split_once("]: ")) {
            Some((_, message)) => message.to_string(),
            None => line,
        };
        let line = match line.rfind(", ").filter(|_| line.contains("identical error(s) suppressed")) {
            Some(at) => format!("{})", &line[..at]),
            None => line,
        };
        let mut reported = self.reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !reported.contains(&line) && reported.len() < 8 {
            reported.push(line);
        }
    }
}

impl rdkafka::ClientContext for CheckContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        tracing::debug!(target: "librdkafka", fac, "{message}");
        use rdkafka::config::RDKafkaLogLevel as Level;
        if matches!(level, Level::Emerg | Level::Alert | Level::Critical | Level::Error | Level::Warning) {
            self.report(message.to_string());
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.report(if reason.is_empty() { error.to_string() } else { reason.to_string() });
    }
}

impl rdkafka::consumer::ConsumerContext for CheckContext {}

/// The cluster's metadata through a short-lived consumer, or why the broker cannot be reached
/// (with what librdkafka reported meanwhile).
async fn fetch_metadata(factory: ContainerFactory) -> std::result::Result<Arc<Metadata>, String> {
    let settings = factory.settings.clone();
    let bootstrap = settings.properties.get("bootstrap.servers").unwrap_or_default().to_string();
    let timeout: Duration = settings.startup_timeout;
    let task = tokio::task::spawn_blocking(move || {
        let mut config = settings.properties.to_client_config();
        // No group: this consumer only reads metadata.
        config.remove("group.id");
        let consumer: BaseConsumer<CheckContext> =
            config.create_with_context(CheckContext::default()).map_err(|e| Err(e.to_string()))?;
        consumer.fetch_metadata(None, timeout).map(Arc::new).map_err(|e| {
            // Serve the client's queue once: its errors and logs arrive there.
            let _ = consumer.poll(Duration::from_millis(100));
            let reported =
                consumer.context().reported.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
            Ok((e.to_string(), reported))
        })
    });
    match task.await {
        Ok(Ok(metadata)) => Ok(metadata),
        // Not a broker problem: the client itself was refused.
        Ok(Err(Err(error))) => Err(format!(
            "the factory's configuration is refused by librdkafka: {}; change the properties it names",
            crate::config::redacted_error(&factory.settings.properties, &error)
        )),
        Ok(Err(Ok((error, reported)))) => {
            let reported: Vec<String> =
                reported.iter().map(|line| crate::config::redacted_error(&factory.settings.properties, line)).collect();
            let security = reported.iter().any(|l| {
                let l = l.to_ascii_lowercase();
                l.contains("sasl")
                    || l.contains("ssl")
                    || l.contains("authentication")
                    || l.contains("security.protocol")
            });
            let hint = if security {
                "check the security settings (security.protocol, sasl.*, ssl.*) against the broker's listener"
            } else {
                "check bootstrap_servers and that the broker is running"
            };
            let said = if reported.is_empty() {
                String::new()
            } else {
                format!(" (librdkafka reported: {})", reported.join("; "))
            };
            Err(format!("cannot reach the broker at `{bootstrap}` within {timeout:?}: {error}{said}; {hint}"))
        }
        Err(join) => Err(format!("checking the broker at `{bootstrap}` failed: {join}")),
    }
}
