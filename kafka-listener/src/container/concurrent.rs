use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::consumer::Consumer;

use std::collections::BTreeMap;
use std::time::Duration;

use super::control::SeekTo;
use super::handle::ConsumerHandle;
use super::listener_container::ListenerContainer;
use super::plan::ContainerPlan;
use super::replay::ReplayReport;
use super::shared::{lock, ListenerState};
use super::siblings::Siblings;
use crate::error::{Error, Result};
use crate::observability::{ConsumerHealth, ListenerHealth};
use crate::topic_partition::of_list;
use crate::TopicPartition;

/// The containers of one listener: `concurrency` consumers in the listener's group, each a
/// `ListenerContainer` with its own poll loop; the group coordinator spreads the partitions over
/// them (Spring's `ConcurrentMessageListenerContainer`).
pub struct ConcurrentContainer {
    plan: Arc<ContainerPlan>,
    concurrency: usize,
    children: Mutex<Vec<ListenerContainer>>,
    siblings: Mutex<Arc<Siblings>>,
    /// What outlives a stop: the pause request and offsets handed between consumers.
    state: ListenerState,
    /// The containers of the listener's retry topics: started, stopped, paused and resumed with it.
    stages: Vec<Arc<ConcurrentContainer>>,
    /// Whether it starts with the registry (counts for readiness).
    auto_startup: AtomicBool,
    /// The application stopped it (counts for neither liveness nor readiness until it starts).
    stopped_on_request: AtomicBool,
}

impl fmt::Debug for ConcurrentContainer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrentContainer")
            .field("id", &self.id())
            .field("concurrency", &self.concurrency)
            .field("running", &self.is_running())
            .finish()
    }
}

impl ConcurrentContainer {
    pub(crate) fn new(plan: ContainerPlan, concurrency: usize) -> Self {
        ConcurrentContainer {
            plan: Arc::new(plan),
            concurrency,
            children: Mutex::new(Vec::new()),
            siblings: Mutex::new(Arc::new(Siblings::new(concurrency))),
            state: ListenerState::default(),
            stages: Vec::new(),
            auto_startup: AtomicBool::new(true),
            stopped_on_request: AtomicBool::new(false),
        }
    }

    /// The containers of the listener's retry topics, which follow this one's lifecycle.
    pub(crate) fn with_stages(mut self, stages: Vec<Arc<ConcurrentContainer>>) -> Self {
        self.stages = stages;
        self
    }

    /// The ids of the containers of the listener's retry topics (`<id>-retry-<n>`), which start,
    /// stop, pause and resume with it.
    pub fn retry_stages(&self) -> Vec<&str> {
        self.stages.iter().map(|s| s.id()).collect()
    }

    /// The listener id.
    pub fn id(&self) -> &str {
        &self.plan.listener_id
    }

    /// How many consumers it runs.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Starts the consumers, unless they run already, and those of the listener's retry topics.
    /// A pause requested before (even before the first start) holds: the partitions they get
    /// stay paused until [`resume`](Self::resume).
    ///
    /// # Errors
    /// When a container thread cannot be spawned; [`Error::StillStopping`] while its consumers
    /// are still stopping (after a stop, or after the error handler stopped them): start it
    /// again once [`is_running`](Self::is_running) is false.
    pub fn start(&self) -> Result<()> {
        self.stopped_on_request.store(false, Ordering::Release);
        self.start_own()?;
        self.stages.iter().try_for_each(|stage| stage.start())
    }

    fn start_own(&self) -> Result<()> {
        let mut children = lock(&self.children);
        let running: Vec<&ListenerContainer> = children.iter().filter(|c| c.is_running()).collect();
        if !running.is_empty() {
            // Running: nothing to do. Still stopping (a stop in progress, or the error handler
            // stopped it and its consumers are committing and closing): starting now would do
            // nothing, silently.
            if running.iter().all(|c| c.shared.control().stop_requested()) {
                return Err(Error::StillStopping { listener: self.id().to_string() });
            }
            return Ok(());
        }
        children.clear();
        let siblings = Arc::new(Siblings::new(self.concurrency));
        *lock(&self.siblings) = siblings.clone();
        for index in 0..self.concurrency {
            let child = ListenerContainer::spawn(self.plan.clone(), index, siblings.clone(), &self.state)?;
            children.push(child);
        }
        super::lag::watch(&self.plan.runtime, children.iter().map(|c| c.shared.clone()).collect());
        if children.first().is_some_and(|c| c.shared.has_events()) {
            self.watch_polls(children.iter().map(|c| c.shared.clone()).collect());
        }
        Ok(())
    }

    /// Sends `NonResponsive` events for consumers that stop polling, until they all end.
    fn watch_polls(&self, consumers: Vec<Arc<super::shared::ContainerShared>>) {
        let threshold = self.plan.settings.non_responsive_after;
        let every = (threshold / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        self.plan.runtime.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if consumers.iter().all(|c| c.stats().is_finished()) {
                    return;
                }
                for c in consumers.iter().filter(|c| !c.stats().is_finished()) {
                    let since_last_poll = c.stats().since_last_poll();
                    if since_last_poll >= threshold && c.stats().mark_non_responsive() {
                        c.emit(|listener, consumer| super::events::ContainerEvent::NonResponsive {
                            listener,
                            consumer,
                            since_last_poll,
                        });
                    }
                }
            }
        });
    }

    /// Whether it starts with the registry (else readiness ignores it), with its retry stages.
    pub(crate) fn set_auto_startup(&self, auto_startup: bool) {
        self.auto_startup.store(auto_startup, Ordering::Release);
        self.stages.iter().for_each(|stage| stage.set_auto_startup(auto_startup));
    }

    fn mark_stopped_on_request(&self) {
        self.stopped_on_request.store(true, Ordering::Release);
        self.stages.iter().for_each(|stage| stage.mark_stopped_on_request());
    }

    /// Its health: each consumer's state and assignment, and whether the listener is live and
    /// ready (see [`Health`](crate::Health)).
    pub fn health(&self) -> ListenerHealth {
        let settings = &self.plan.settings;
        let consumers = lock(&self.children)
            .iter()
            .map(|c| {
                let shared = &c.shared;
                let state = shared.health.state(
                    shared.control().is_paused(),
                    shared.stats().since_last_poll(),
                    settings.non_responsive_after,
                );
                let assignment = shared
                    .consumer()
                    .filter(|_| c.is_running())
                    .and_then(|consumer| consumer.assignment().ok())
                    .map(|tpl| {
                        let mut owned = of_list(&tpl);
                        owned.sort();
                        owned
                    })
                    .unwrap_or_default();
                ConsumerHealth {
                    index: shared.index,
                    state,
                    assignment,
                    brokers_unreachable_ms: shared.health.brokers_unreachable_for().map(|d| d.as_millis() as u64),
                }
            })
            .collect();
        ListenerHealth {
            id: self.id().to_string(),
            auto_startup: self.auto_startup.load(Ordering::Acquire),
            stopped_on_request: self.stopped_on_request.load(Ordering::Acquire),
            consumers,
            broker_outage_threshold_ms: settings.broker_outage_threshold.as_millis() as u64,
            live: false,
            ready: false,
        }
        .judge()
    }

    /// Whether any of its consumers runs.
    pub fn is_running(&self) -> bool {
        lock(&self.children).iter().any(ListenerContainer::is_running)
    }

    /// Pauses every consumer's partitions (after the record in hand is handled), and those of
    /// the listener's retry topics; the consumers stay in the group. Partitions assigned later are
    /// paused too, and the pause holds across [`stop`](Self::stop) and [`start`](Self::start),
    /// and before the first start (Spring keeps a pause requested before start, too).
    pub fn pause(&self) {
        self.state.pause_requested.store(true, Ordering::Release);
        self.stages.iter().for_each(|stage| stage.pause());
    }

    /// Resumes what [`pause`](Self::pause) paused.
    pub fn resume(&self) {
        self.state.pause_requested.store(false, Ordering::Release);
        self.stages.iter().for_each(|stage| stage.resume());
    }

    /// Whether a pause was requested (and not resumed since).
    pub fn is_pause_requested(&self) -> bool {
        self.state.pause_requested.load(Ordering::Acquire)
    }

    /// Whether every running consumer has paused its partitions (Spring's `isContainerPaused`).
    pub fn is_paused(&self) -> bool {
        let children = lock(&self.children);
        let running: Vec<_> = children.iter().filter(|c| c.is_running()).collect();
        !running.is_empty() && running.iter().all(|c| c.shared.control().is_paused())
    }

    /// The partitions its consumers own now, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        let mut all: Vec<TopicPartition> = lock(&self.children)
            .iter()
            .filter_map(|c| c.shared.consumer())
            .filter_map(|consumer| consumer.assignment().ok())
            .flat_map(|tpl| of_list(&tpl))
            .collect();
        all.sort();
        all
    }

    /// The partitions of each of its consumers, in consumer order (an empty list for a consumer
    /// that owns none or is stopped).
    pub fn consumer_assignments(&self) -> Vec<Vec<TopicPartition>> {
        lock(&self.children)
            .iter()
            .map(|c| {
                c.shared
                    .consumer()
                    .and_then(|consumer| consumer.assignment().ok())
                    .map(|tpl| of_list(&tpl))
                    .unwrap_or_default()
            })
            .collect()
    }

    /// A handle on each running consumer, in consumer order.
    pub fn consumers(&self) -> Vec<ConsumerHandle> {
        lock(&self.children).iter().filter(|c| c.is_running()).map(|c| ConsumerHandle::new(c.shared.clone())).collect()
    }

    /// The handle of the consumer that owns this partition now.
    ///
    /// # Errors
    /// [`Error::ContainerStopped`] when the listener is stopped; [`Error::NotAssigned`] when none
    /// of its consumers owns it.
    pub fn consumer_for(&self, topic: &str, partition: i32) -> Result<ConsumerHandle> {
        if !self.is_running() {
            return Err(Error::ContainerStopped { listener: self.id().to_string(), consumer: 0 });
        }
        lock(&self.children)
            .iter()
            .find(|c| c.shared.offsets().owns(topic, partition))
            .map(|c| ConsumerHandle::new(c.shared.clone()))
            .ok_or_else(|| Error::NotAssigned { listener: self.id().to_string(), topic: topic.to_string(), partition })
    }

    /// Pauses one partition (through the consumer that owns it): it is not fetched until
    /// [`resume_partition`](Self::resume_partition); the consumer keeps polling and stays in its
    /// group.
    ///
    /// # Errors
    /// [`Error::NotAssigned`] when none of its consumers owns the partition.
    pub fn pause_partition(&self, topic: &str, partition: i32) -> Result<()> {
        self.consumer_for(topic, partition)?.pause(&[(topic, partition)])
    }

    /// Resumes a partition paused with [`pause_partition`](Self::pause_partition).
    ///
    /// # Errors
    /// [`Error::NotAssigned`] when none of its consumers owns the partition.
    pub fn resume_partition(&self, topic: &str, partition: i32) -> Result<()> {
        self.consumer_for(topic, partition)?.resume(&[(topic, partition)])
    }

    /// Moves a partition's position, from outside the listener (Spring's `ConsumerSeekAware`
    /// callbacks): applied by the consumer that owns it before its next poll, dropping the records
    /// of that partition it holds.
    ///
    /// # Errors
    /// [`Error::NotAssigned`] when none of its consumers owns the partition.
    pub fn seek(&self, topic: &str, partition: i32, to: SeekTo) -> Result<()> {
        self.consumer_for(topic, partition)?.seek_to(topic, partition, to);
        Ok(())
    }

    /// The committed offsets of every partition its consumers own (blocks up to `timeout` each).
    ///
    /// # Errors
    /// When the broker does not answer.
    pub fn committed(&self, timeout: Duration) -> Result<BTreeMap<TopicPartition, Option<i64>>> {
        self.merged(|c| c.committed(timeout))
    }

    /// The first kept offsets of every partition its consumers own.
    ///
    /// # Errors
    /// When the broker does not answer.
    pub fn beginning_offsets(&self, timeout: Duration) -> Result<BTreeMap<TopicPartition, i64>> {
        self.merged(|c| c.beginning_offsets(timeout))
    }

    /// The end offsets of every partition its consumers own.
    ///
    /// # Errors
    /// When the broker does not answer.
    pub fn end_offsets(&self, timeout: Duration) -> Result<BTreeMap<TopicPartition, i64>> {
        self.merged(|c| c.end_offsets(timeout))
    }

    /// The lag (end − committed) of every partition its consumers own.
    ///
    /// # Errors
    /// When the broker does not answer.
    pub fn lag(&self, timeout: Duration) -> Result<BTreeMap<TopicPartition, i64>> {
        self.merged(|c| c.lag(timeout))
    }

    fn merged<V>(
        &self,
        read: impl Fn(&ConsumerHandle) -> Result<BTreeMap<TopicPartition, V>>,
    ) -> Result<BTreeMap<TopicPartition, V>> {
        let mut all = BTreeMap::new();
        for consumer in self.consumers() {
            all.extend(read(&consumer)?);
        }
        Ok(all)
    }

    /// Resolves once a replay (`Endpoint::replay`) is over, with the records handled per
    /// partition; `complete` is false when it was stopped before the end of its window.
    ///
    /// # Errors
    /// [`Error::Config`] when the listener is not a replay.
    pub async fn replayed(&self) -> Result<ReplayReport> {
        match &self.plan.replay {
            Some(replay) => Ok(replay.wait().await),
            None => {
                Err(Error::config("replay", format!("listener `{}` is not a replay (Endpoint::replay)", self.id())))
            }
        }
    }

    /// How many times partitions were revoked from its consumers (rebalances) since start.
    pub fn revocations(&self) -> u64 {
        lock(&self.children).iter().map(|c| c.shared.revocations().generation()).sum()
    }

    /// How many records its listener has handled (or its error handler recovered) since start.
    pub fn records_handled(&self) -> u64 {
        lock(&self.children).iter().map(|c| c.shared.stats().handled_total()).sum()
    }

    pub(crate) fn request_stop(&self) {
        lock(&self.siblings).stopping.store(true, Ordering::Release);
        lock(&self.children).iter().for_each(ListenerContainer::request_stop);
        self.stages.iter().for_each(|stage| stage.request_stop());
    }

    /// Stops its consumers and those of the listener's retry topics: each finishes the records in
    /// hand (Spring's default; bounded by the factory's `shutdown_timeout`) — but a failed record
    /// is not retried: its back-off ends at once and it stays uncommitted, with the records behind
    /// it, for the next start — waits (up to `shutdown_timeout`) for records delivered but not yet
    /// acknowledged, commits what was processed and leaves the group.
    ///
    /// # Errors
    /// [`Error::ShutdownTimeout`] when a consumer did not stop in time.
    pub async fn stop(&self) -> Result<()> {
        self.mark_stopped_on_request();
        self.request_stop();
        let mut stopped: Vec<_> = lock(&self.children).iter().map(ListenerContainer::stopped).collect();
        for stage in &self.stages {
            stopped.extend(lock(&stage.children).iter().map(ListenerContainer::stopped));
        }
        // The loop's own deadline covers the handlers; the margin covers the commit phase after it
        // (at least FINAL_COMMIT_GRACE, 3 s), the wait for others holding the consumer (up to
        // 5 s) and leaving the group, with room for a broker that answers slowly.
        let timeout = self.plan.settings.shutdown_timeout + std::time::Duration::from_secs(15);
        for stopped in stopped {
            if tokio::time::timeout(timeout, stopped).await.is_err() {
                return Err(Error::ShutdownTimeout { listener: self.id().to_string(), timeout });
            }
        }
        let orphaned = self.state.handoff.pending();
        if !orphaned.is_empty() {
            let counts: Vec<(String, i32, String)> = orphaned
                .into_iter()
                .map(|(tp, next)| (tp.topic, tp.partition, format!("processed up to offset {next}")))
                .collect();
            tracing::warn!(listener = self.id(), uncommitted = %super::context::describe_counts(&counts),
                "stopped with processed offsets whose commit a rebalance rejected and no consumer of the listener took over: the group's next consumer handles those records again");
        }
        Ok(())
    }
}
