//! The listeners' health: each consumer's state, and Spring Boot actuator's liveness and
//! readiness split over them.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::container::lock;
use crate::TopicPartition;

/// What one consumer of a listener is doing now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConsumerState {
    /// Created and joining its group, not polling yet.
    Starting,
    /// Polling.
    Running,
    /// Polling with every partition paused (`ConcurrentContainer::pause`).
    Paused,
    /// Has not polled for `since_last_poll_ms`, at least the factory's `non_responsive_after`
    /// (a handler stuck or slow; Spring's `NonResponsiveConsumerEvent`).
    NonResponsive {
        /// Since its last poll, in ms.
        since_last_poll_ms: u64,
    },
    /// Stopped (by a stop or shutdown, or never started).
    Stopped,
    /// Its thread ended without being asked to: the consumer could not be created or started,
    /// the error handler stopped it, or an internal panic.
    Failed {
        /// Why, as the log said it.
        reason: String,
    },
}

/// One consumer's health.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ConsumerHealth {
    /// The consumer's index in its listener's container.
    pub index: usize,
    /// Its state.
    #[serde(flatten)]
    pub state: ConsumerState,
    /// The partitions it owns now, sorted.
    pub assignment: Vec<TopicPartition>,
    /// How long no broker has been reachable, in ms (`None`: reachable, as far as the client
    /// knows: librdkafka's broker states, refreshed every `statistics.interval.ms`, and its
    /// "all brokers down" error).
    pub brokers_unreachable_ms: Option<u64>,
}

impl ConsumerHealth {
    /// Whether it polls (running or paused).
    pub fn is_polling(&self) -> bool {
        matches!(self.state, ConsumerState::Running | ConsumerState::Paused)
    }
}

/// One listener's health.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ListenerHealth {
    /// The listener id.
    pub id: String,
    /// Whether it starts with the registry (`auto_startup`): only those count for readiness.
    pub auto_startup: bool,
    /// Whether the application stopped it (`RunningListeners::stop`): then it counts for neither
    /// liveness nor readiness.
    pub stopped_on_request: bool,
    /// Its consumers (none before the first start).
    pub consumers: Vec<ConsumerHealth>,
    /// Readiness gives up after no broker was reachable this long (the factory's
    /// `broker_outage_threshold`), in ms.
    pub broker_outage_threshold_ms: u64,
    /// Whether it is live (see [`Health::is_live`]).
    pub live: bool,
    /// Whether it is ready (see [`Health::is_ready`]).
    pub ready: bool,
}

impl ListenerHealth {
    pub(crate) fn judge(mut self) -> Self {
        let dead = self
            .consumers
            .iter()
            .any(|c| matches!(c.state, ConsumerState::Failed { .. } | ConsumerState::NonResponsive { .. }));
        self.live = self.stopped_on_request || !dead;
        let threshold = self.broker_outage_threshold_ms;
        self.ready = self.stopped_on_request
            || !self.auto_startup
            || (!self.consumers.is_empty()
                && self.consumers.iter().all(ConsumerHealth::is_polling)
                && self.consumers.iter().any(|c| !c.assignment.is_empty())
                && self.consumers.iter().all(|c| c.brokers_unreachable_ms.is_none_or(|ms| ms < threshold)));
        self
    }
}

/// The health of every listener (`RunningListeners::health`), with Spring Boot actuator's
/// split: liveness (restart me) and readiness (I do my work now).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Health {
    /// Each listener's, in registration order.
    pub listeners: Vec<ListenerHealth>,
    /// [`is_live`](Self::is_live).
    pub live: bool,
    /// [`is_ready`](Self::is_ready).
    pub ready: bool,
}

impl Health {
    pub(crate) fn of(listeners: Vec<ListenerHealth>) -> Self {
        let live = listeners.iter().all(|l| l.live);
        let ready = listeners.iter().all(|l| l.ready);
        Health { listeners, live, ready }
    }

    /// Liveness: no consumer's thread ended without being asked to ([`ConsumerState::Failed`])
    /// and none has gone without polling for the factory's `non_responsive_after`
    /// ([`ConsumerState::NonResponsive`]). Listeners the application stopped do not count. A
    /// probe failing this means: restart the process.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Readiness: every listener that starts with the registry (and was not stopped on request)
    /// runs, all its consumers poll, together they own at least one partition, and none has gone
    /// without a reachable broker for the factory's `broker_outage_threshold`. Turns false during
    /// a long broker outage and true again when the brokers are back.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The listener with this id.
    pub fn listener(&self, id: &str) -> Option<&ListenerHealth> {
        self.listeners.iter().find(|l| l.id == id)
    }
}

/// A consumer's phase, as its thread reports it.
const STARTING: u8 = 0;
const POLLING: u8 = 1;
const ENDED: u8 = 2;

/// What a consumer's thread and its rdkafka context report for its health.
#[derive(Debug, Default)]
pub(crate) struct HealthState {
    phase: AtomicU8,
    failure: Mutex<Option<String>>,
    /// Since when no broker is reachable.
    brokers_down_since: Mutex<Option<Instant>>,
}

impl HealthState {
    pub(crate) fn polling(&self) {
        self.phase.store(POLLING, Ordering::Release);
    }

    pub(crate) fn ended(&self) {
        self.phase.store(ENDED, Ordering::Release);
    }

    /// The consumer stops for this reason (its thread ends without a stop request).
    pub(crate) fn failed(&self, reason: impl Into<String>) {
        let mut failure = lock(&self.failure);
        if failure.is_none() {
            *failure = Some(reason.into());
        }
    }

    /// Whether brokers are reachable for `listener`'s consumer (`false`: since now, unless known
    /// already).
    pub(crate) fn brokers_reachable(&self, reachable: bool, listener: &str) {
        let mut since = lock(&self.brokers_down_since);
        match (reachable, *since) {
            (true, Some(down_since)) => {
                tracing::info!(listener, unreachable_for = ?down_since.elapsed(), "a broker is reachable again");
                *since = None;
            }
            (false, None) => *since = Some(Instant::now()),
            _ => {}
        }
    }

    /// How long no broker has been reachable.
    pub(crate) fn brokers_unreachable_for(&self) -> Option<Duration> {
        lock(&self.brokers_down_since).map(|since| since.elapsed())
    }

    /// The state, given the thread's liveness and the consumer's pause and last poll.
    pub(crate) fn state(
        &self,
        paused: bool,
        since_last_poll: Duration,
        non_responsive_after: Duration,
    ) -> ConsumerState {
        if let Some(reason) = lock(&self.failure).clone() {
            return ConsumerState::Failed { reason };
        }
        match self.phase.load(Ordering::Acquire) {
            STARTING => ConsumerState::Starting,
            ENDED => ConsumerState::Stopped,
            _ if since_last_poll >= non_responsive_after => {
                ConsumerState::NonResponsive { since_last_poll_ms: since_last_poll.as_millis() as u64 }
            }
            _ if paused => ConsumerState::Paused,
            _ => ConsumerState::Running,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(state: ConsumerState, assigned: bool, unreachable_ms: Option<u64>) -> ConsumerHealth {
        ConsumerHealth {
            index: 0,
            state,
            assignment: if assigned { vec![TopicPartition::new("t", 0)] } else { Vec::new() },
            brokers_unreachable_ms: unreachable_ms,
        }
    }

    fn listener(consumers: Vec<ConsumerHealth>) -> ListenerHealth {
        ListenerHealth {
            id: "l".into(),
            auto_startup: true,
            stopped_on_request: false,
            consumers,
            broker_outage_threshold_ms: 1_000,
            live: false,
            ready: false,
        }
        .judge()
    }

    #[test]
    fn ready_needs_every_consumer_polling_one_with_partitions_and_brokers_within_the_threshold() {
        let running = |assigned| consumer(ConsumerState::Running, assigned, None);
        assert!(listener(vec![running(true), running(false)]).ready, "an idle extra consumer is fine");
        assert!(!listener(vec![running(false), running(false)]).ready, "nothing assigned yet");
        assert!(!listener(vec![running(true), consumer(ConsumerState::Starting, false, None)]).ready);
        assert!(!listener(Vec::new()).ready, "not started");
        assert!(listener(vec![consumer(ConsumerState::Paused, true, None)]).ready, "paused on purpose still polls");
        assert!(listener(vec![consumer(ConsumerState::Running, true, Some(999))]).ready, "a short outage");
        let outage = listener(vec![consumer(ConsumerState::Running, true, Some(1_000))]);
        assert!(!outage.ready && outage.live, "a long outage: not ready, still live");
    }

    #[test]
    fn live_unless_a_consumer_failed_or_stopped_polling() {
        assert!(listener(vec![consumer(ConsumerState::Stopped, false, None)]).live);
        let failed = ConsumerState::Failed { reason: "boom".into() };
        assert!(!listener(vec![consumer(failed, false, None)]).live);
        let stuck = ConsumerState::NonResponsive { since_last_poll_ms: 31_000 };
        assert!(!listener(vec![consumer(stuck, true, None)]).live);
        // Stopped on request, or not auto-started: neither counts.
        let mut stopped = listener(vec![consumer(ConsumerState::Failed { reason: "x".into() }, false, None)]);
        stopped.stopped_on_request = true;
        let stopped = stopped.judge();
        assert!(stopped.live && stopped.ready);
        let mut later = listener(Vec::new());
        later.auto_startup = false;
        assert!(later.judge().ready);
        let health =
            Health::of(vec![listener(vec![consumer(ConsumerState::Running, true, None)]), listener(Vec::new())]);
        assert!(health.is_live() && !health.is_ready());
    }

    #[test]
    fn state_follows_the_thread_and_the_last_poll() {
        let state = HealthState::default();
        let thirty = Duration::from_secs(30);
        assert_eq!(state.state(false, Duration::ZERO, thirty), ConsumerState::Starting);
        state.polling();
        assert_eq!(state.state(false, Duration::ZERO, thirty), ConsumerState::Running);
        assert_eq!(state.state(true, Duration::ZERO, thirty), ConsumerState::Paused);
        assert_eq!(state.state(false, thirty, thirty), ConsumerState::NonResponsive { since_last_poll_ms: 30_000 });
        state.brokers_reachable(false, "l");
        assert!(state.brokers_unreachable_for().is_some());
        state.brokers_reachable(true, "l");
        assert!(state.brokers_unreachable_for().is_none());
        state.ended();
        assert_eq!(state.state(false, Duration::ZERO, thirty), ConsumerState::Stopped);
        state.failed("first");
        state.failed("second");
        assert_eq!(state.state(false, Duration::ZERO, thirty), ConsumerState::Failed { reason: "first".into() });
    }
}
