use std::time::{Duration, Instant};

use crate::config::{AckMode, FactorySettings};

/// With `AckMode::Record` and asynchronous commits, the least time between two commits: a
/// handler slower than this gets a commit after every record; fast ones get a commit for the
/// newest record every millisecond instead of a flood of commit requests. A commit held back
/// is sent when the spacing has passed, even if the next handler is still running; while it is
/// scheduled, the records handled meanwhile wait for it (it commits them too), without reading
/// the clock.
pub(crate) const RECORD_COMMIT_SPACING: Duration = Duration::from_millis(1);

/// What the poll loop does about committing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// Commit now.
    Now,
    /// Commit in `RECORD_COMMIT_SPACING` (a commit was sent just now).
    Soon,
    /// Not due.
    No,
}

/// Decides, by ack mode, when the poll loop commits.
#[derive(Debug)]
pub(crate) struct CommitPolicy {
    mode: AckMode,
    ack_count: u64,
    ack_time: Duration,
    record_spacing: Duration,
    since_commit: u64,
    last_commit: Instant,
}

impl CommitPolicy {
    pub(crate) fn new(mode: AckMode, settings: &FactorySettings) -> Self {
        CommitPolicy {
            mode,
            ack_count: settings.ack_count,
            ack_time: settings.ack_time,
            record_spacing: if settings.sync_commits { Duration::ZERO } else { RECORD_COMMIT_SPACING },
            since_commit: 0,
            last_commit: Instant::now(),
        }
    }

    fn time_due(&self) -> bool {
        self.last_commit.elapsed() >= self.ack_time
    }

    /// `scheduled`: a held-back commit is scheduled (it carries every record handled until it
    /// is sent). Scheduling one counts as a commit at the time it is due, so the record after
    /// it is held back again rather than committed right behind it.
    fn record(&mut self, scheduled: bool) -> Commit {
        if scheduled {
            Commit::No
        } else if self.last_commit.elapsed() >= self.record_spacing {
            Commit::Now
        } else {
            self.last_commit = Instant::now() + self.record_spacing;
            Commit::Soon
        }
    }

    fn now_if(due: bool) -> Commit {
        if due {
            Commit::Now
        } else {
            Commit::No
        }
    }

    /// `handled` records were handled (one record, or a batch listener's batch); `scheduled`:
    /// a held-back record commit is scheduled (`Soon`) and not sent yet.
    #[inline]
    pub(crate) fn handled(&mut self, handled: u64, scheduled: bool) -> Commit {
        self.since_commit += handled;
        match self.mode {
            AckMode::Record => self.record(scheduled),
            AckMode::Count => Self::now_if(self.since_commit >= self.ack_count),
            AckMode::Time => Self::now_if(self.time_due()),
            AckMode::CountTime => Self::now_if(self.since_commit >= self.ack_count || self.time_due()),
            AckMode::Batch | AckMode::Manual | AckMode::ManualImmediate => Commit::No,
        }
    }

    /// All records of one poll were handled (`scheduled` as for `handled`).
    pub(crate) fn poll_done(&mut self, scheduled: bool) -> Commit {
        match self.mode {
            AckMode::Record => self.record(scheduled),
            AckMode::Batch | AckMode::Manual | AckMode::ManualImmediate => Commit::Now,
            AckMode::Time | AckMode::CountTime => Self::now_if(self.time_due()),
            AckMode::Count => Commit::No,
        }
    }

    /// A poll returned nothing: deferred record commits, acknowledgments from spawned tasks and
    /// time-based commits are due.
    pub(crate) fn idle(&self) -> bool {
        match self.mode {
            AckMode::Record | AckMode::Manual | AckMode::ManualImmediate => true,
            AckMode::Time | AckMode::CountTime => self.time_due(),
            AckMode::Batch | AckMode::Count => false,
        }
    }

    pub(crate) fn committed(&mut self) {
        self.since_commit = 0;
        self.last_commit = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: AckMode, sync_commits: bool) -> CommitPolicy {
        let settings = FactorySettings { sync_commits, ..FactorySettings::default() };
        CommitPolicy::new(mode, &settings)
    }

    #[test]
    fn record_mode_commits_a_slow_handlers_every_record() {
        let mut p = policy(AckMode::Record, false);
        p.last_commit = Instant::now() - RECORD_COMMIT_SPACING * 2;
        assert_eq!(p.handled(1, false), Commit::Now);
        p.committed();
        p.last_commit = Instant::now() - RECORD_COMMIT_SPACING * 2;
        assert_eq!(p.handled(1, false), Commit::Now);
    }

    #[test]
    fn record_mode_holds_a_fast_handlers_commits_back_once_per_spacing() {
        let mut p = policy(AckMode::Record, false);
        // A spacing no machine's pauses reach, so that the test does not depend on timing.
        p.record_spacing = Duration::from_secs(600);
        p.committed();
        // Right after a commit: held back, one scheduled commit for the records that follow.
        assert_eq!(p.handled(1, false), Commit::Soon);
        assert_eq!(p.handled(1, true), Commit::No);
        assert_eq!(p.poll_done(true), Commit::No);
        // The scheduled commit was sent: the next record is held back again, not committed
        // right behind it (scheduling counted as a commit when it is due).
        assert_eq!(p.handled(1, false), Commit::Soon);
    }

    #[test]
    fn record_mode_with_sync_commits_commits_every_record() {
        let mut p = policy(AckMode::Record, true);
        for _ in 0..3 {
            assert_eq!(p.handled(1, false), Commit::Now);
            p.committed();
        }
    }

    #[test]
    fn batch_mode_commits_when_the_poll_is_done() {
        let mut p = policy(AckMode::Batch, false);
        assert_eq!(p.handled(1, false), Commit::No);
        assert_eq!(p.poll_done(false), Commit::Now);
        assert!(!p.idle());
    }

    #[test]
    fn count_mode_commits_every_ack_count_records() {
        let settings = FactorySettings { ack_count: 3, ..FactorySettings::default() };
        let mut p = CommitPolicy::new(AckMode::Count, &settings);
        assert_eq!(p.handled(2, false), Commit::No);
        assert_eq!(p.handled(1, false), Commit::Now);
        p.committed();
        assert_eq!(p.handled(1, false), Commit::No);
        assert_eq!(p.poll_done(false), Commit::No);
    }
}
