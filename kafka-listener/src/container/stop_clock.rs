//! When the container stops: the shutdown deadline, started when a stop is first seen.

use std::time::{Duration, Instant};

use super::shared::ContainerShared;

/// When the container stops: the shutdown deadline once a stop is asked for, and whether the
/// error handler stopped it.
pub(crate) struct StopClock {
    timeout: Duration,
    deadline: Option<Instant>,
    /// The error handler stopped the container: nothing more is handled.
    pub(crate) halted: bool,
}

impl StopClock {
    pub(crate) fn new(timeout: Duration) -> Self {
        StopClock { timeout, deadline: None, halted: false }
    }

    /// Whether a stop was asked for; starts the shutdown timeout the first time it is seen.
    pub(crate) fn stopping(&mut self, shared: &ContainerShared) -> bool {
        let stop = shared.control().stop_requested();
        if stop && self.deadline.is_none() {
            self.deadline = Some(Instant::now() + self.timeout);
        }
        stop
    }

    /// Whether the shutdown timeout has passed.
    pub(crate) fn past_deadline(&mut self, shared: &ContainerShared) -> bool {
        self.stopping(shared) && self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The shutdown deadline, once stopping.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The deadline for waiting on acknowledgments at the end: the shutdown deadline, or a
    /// shutdown timeout from now.
    pub(crate) fn ack_deadline(&self) -> Instant {
        self.deadline.unwrap_or_else(|| Instant::now() + self.timeout)
    }
}
