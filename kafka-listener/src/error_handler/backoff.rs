//! How long to wait before each retry, and when to stop retrying (Spring's `BackOff`).

use std::time::Duration;

/// The waits between deliveries of a failing record.
pub trait BackOff: Send + Sync + 'static {
    /// The wait before retry number `retry` (1 for the first retry), `elapsed` after the first
    /// failure; `None` when the retries are exhausted.
    fn next(&self, retry: u32, elapsed: Duration) -> Option<Duration>;
}

/// A fixed wait, a fixed number of times (Spring's default: no wait, 9 retries = 10 deliveries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedBackOff {
    /// The wait before each retry.
    pub interval: Duration,
    /// How many retries.
    pub max_retries: u32,
}

impl FixedBackOff {
    /// Retries without limit (Spring's `FixedBackOff.UNLIMITED_ATTEMPTS`).
    pub const UNLIMITED_RETRIES: u32 = u32::MAX;

    /// Retries for ever, waiting `interval` before each retry: for failures that pass (a
    /// database or service that is down), not for bad data.
    pub fn unlimited(interval: Duration) -> Self {
        FixedBackOff { interval, max_retries: Self::UNLIMITED_RETRIES }
    }
}

impl Default for FixedBackOff {
    fn default() -> Self {
        FixedBackOff { interval: Duration::ZERO, max_retries: 9 }
    }
}

impl BackOff for FixedBackOff {
    fn next(&self, retry: u32, _elapsed: Duration) -> Option<Duration> {
        (self.max_retries == Self::UNLIMITED_RETRIES || retry <= self.max_retries).then_some(self.interval)
    }
}

/// Waits growing by `multiplier` from `initial` up to `max_interval`, until `max_retries` retries
/// or `max_elapsed` time since the first failure, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialBackOff {
    /// The first wait.
    pub initial: Duration,
    /// The growth of each wait over the one before.
    pub multiplier: f64,
    /// The longest wait.
    pub max_interval: Duration,
    /// The most retries (`None`: no limit but `max_elapsed`).
    pub max_retries: Option<u32>,
    /// The longest time retrying (`None`: no limit but `max_retries`).
    pub max_elapsed: Option<Duration>,
}

impl Default for ExponentialBackOff {
    /// Spring's defaults: 2 s, doubling, up to 30 s, for at most 10 retries.
    fn default() -> Self {
        ExponentialBackOff {
            initial: Duration::from_secs(2),
            multiplier: 2.0,
            max_interval: Duration::from_secs(30),
            max_retries: Some(10),
            max_elapsed: None,
        }
    }
}

impl BackOff for ExponentialBackOff {
    fn next(&self, retry: u32, elapsed: Duration) -> Option<Duration> {
        if self.max_retries.is_some_and(|max| retry > max) || self.max_elapsed.is_some_and(|max| elapsed >= max) {
            return None;
        }
        let factor = self.multiplier.max(1.0).powi(retry.saturating_sub(1).min(1_000) as i32);
        let wait = self.initial.as_secs_f64() * factor;
        Some(Duration::from_secs_f64(wait.min(self.max_interval.as_secs_f64())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_back_off_counts_retries() {
        let b = FixedBackOff { interval: Duration::from_millis(5), max_retries: 2 };
        assert_eq!(b.next(1, Duration::ZERO), Some(Duration::from_millis(5)));
        assert_eq!(b.next(2, Duration::ZERO), Some(Duration::from_millis(5)));
        assert_eq!(b.next(3, Duration::ZERO), None);
    }

    #[test]
    fn exponential_back_off_grows_caps_and_stops() {
        let b = ExponentialBackOff {
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max_interval: Duration::from_millis(500),
            max_retries: Some(5),
            max_elapsed: Some(Duration::from_secs(60)),
        };
        let waits: Vec<_> = (1..=6).map(|r| b.next(r, Duration::ZERO).map(|d| d.as_millis())).collect();
        assert_eq!(waits, [Some(100), Some(200), Some(400), Some(500), Some(500), None]);
        assert_eq!(b.next(1, Duration::from_secs(60)), None, "max_elapsed");
    }
}
