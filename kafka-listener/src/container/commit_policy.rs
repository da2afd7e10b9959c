use std::time::{Duration, Instant};

use crate::config::{AckMode, FactorySettings};

/// With `AckMode::Record` and asynchronous commits, the least time between two commits: a
/// handler slower than this gets a commit after every record; fast ones get a commit for the
/// newest record every millisecond instead of a flood of commit requests. A commit held back
/// is sent when the spacing has passed, even if the next handler is still running.
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

    fn record(&self) -> Commit {
        if self.last_commit.elapsed() >= self.record_spacing {
            Commit::Now
        } else {
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

    /// `handled` records were handled (one record, or a batch listener's batch).
    pub(crate) fn handled(&mut self, handled: u64) -> Commit {
        self.since_commit += handled;
        match self.mode {
            AckMode::Record => self.record(),
            AckMode::Count => Self::now_if(self.since_commit >= self.ack_count),
            AckMode::Time => Self::now_if(self.time_due()),
            AckMode::CountTime => Self::now_if(self.since_commit >= self.ack_count || self.time_due()),
            AckMode::Batch | AckMode::Manual | AckMode::ManualImmediate => Commit::No,
        }
    }

    /// All records of one poll were handled.
    pub(crate) fn poll_done(&self) -> Commit {
        match self.mode {
            AckMode::Record => self.record(),
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
