//! Picking up subscribed topics created after the listener started.
//!
//! librdkafka learns of new topics from its periodic metadata refresh
//! (`topic.metadata.refresh.interval.ms`, 5 minutes by default): a listener that started before
//! its topic existed waited that long on a real broker. While a subscribed topic is missing (or
//! a pattern matches none), this watcher asks for the cluster's metadata every few seconds; a
//! full metadata answer makes librdkafka re-check the subscription and rejoin the group with the
//! new topic. Once nothing is missing it stops, and the configured interval applies again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::metadata::Metadata;

use super::shared::ContainerShared;

/// How often metadata is refreshed while a topic is missing, during the first minute.
const FAST: Duration = Duration::from_secs(1);
/// ... and after it (a topic that does not come soon may never come).
const SLOW: Duration = Duration::from_secs(10);
const FAST_FOR: Duration = Duration::from_secs(60);
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// What a subscription waits for.
enum Wanted {
    Topic(String),
    Pattern(regex::Regex),
}

impl Wanted {
    fn present(&self, metadata: &Metadata) -> bool {
        let mut topics = metadata.topics().iter().filter(|t| t.error().is_none() && !t.partitions().is_empty());
        match self {
            Wanted::Topic(name) => topics.any(|t| t.name() == name),
            Wanted::Pattern(pattern) => topics.any(|t| pattern.is_match(t.name())),
        }
    }
}

/// Starts watching a consumer's subscription for missing topics (a task on `runtime`; it ends
/// when nothing is missing or the consumer stops).
pub(crate) fn watch(shared: Arc<ContainerShared>, subscription: &[String], runtime: &tokio::runtime::Handle) {
    let mut wanted = Vec::new();
    for entry in subscription {
        if entry.starts_with('^') {
            match regex::Regex::new(entry) {
                Ok(pattern) => wanted.push(Wanted::Pattern(pattern)),
                // librdkafka's regex dialect differs here: leave it to librdkafka's own refresh.
                Err(error) => tracing::debug!(listener = &*shared.listener_id, pattern = entry, %error,
                    "cannot watch this pattern for new topics"),
            }
        } else {
            wanted.push(Wanted::Topic(entry.clone()));
        }
    }
    if wanted.is_empty() {
        return;
    }
    runtime.spawn(async move {
        let started = Instant::now();
        loop {
            let interval = if started.elapsed() < FAST_FOR { FAST } else { SLOW };
            tokio::time::sleep(interval).await;
            if shared.stats().is_finished() || shared.control().stop_requested() {
                return;
            }
            let Some(consumer) = shared.consumer() else { return };
            // All topics: only a full answer makes librdkafka re-check the group's subscription.
            let found = tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, METADATA_TIMEOUT)).await;
            let Ok(Ok(metadata)) = found else { continue };
            let missing: Vec<String> = wanted
                .iter()
                .filter(|w| !w.present(&metadata))
                .map(|w| match w {
                    Wanted::Topic(name) => name.clone(),
                    Wanted::Pattern(pattern) => pattern.as_str().to_string(),
                })
                .collect();
            if missing.is_empty() {
                tracing::debug!(
                    listener = &*shared.listener_id,
                    "every subscribed topic exists; metadata refreshes as configured from now on"
                );
                return;
            }
            tracing::trace!(listener = &*shared.listener_id, ?missing, "subscribed topics still missing");
        }
    });
}
