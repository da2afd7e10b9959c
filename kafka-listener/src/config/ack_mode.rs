use std::fmt;
use std::str::FromStr;

/// When the container commits offsets (Spring's `ContainerProperties.AckMode`).
///
/// A committed offset is always *last processed + 1* and never runs past an unprocessed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AckMode {
    /// Commit after each record's handler returns successfully. Commits are asynchronous and at most
    /// one is in flight; the next one carries the newest position (see `sync_commits`).
    Record,
    /// Commit after all records of one poll are handled (the default).
    #[default]
    Batch,
    /// Commit pending offsets when `ack_time` has elapsed since the last commit.
    Time,
    /// Commit when `ack_count` records have been handled since the last commit.
    Count,
    /// Whichever of `Count` and `Time` comes first.
    CountTime,
    /// The handler calls `Acknowledgment::acknowledge()`; acknowledgments are queued and committed
    /// like `Batch`.
    Manual,
    /// `Acknowledgment::acknowledge()` commits right away.
    ManualImmediate,
}

impl AckMode {
    /// Whether listeners acknowledge records themselves (`Manual`, `ManualImmediate`).
    pub fn is_manual(self) -> bool {
        matches!(self, AckMode::Manual | AckMode::ManualImmediate)
    }

    /// The snake_case name used in attributes and messages.
    pub fn name(self) -> &'static str {
        match self {
            AckMode::Record => "record",
            AckMode::Batch => "batch",
            AckMode::Time => "time",
            AckMode::Count => "count",
            AckMode::CountTime => "count_time",
            AckMode::Manual => "manual",
            AckMode::ManualImmediate => "manual_immediate",
        }
    }

    /// Every ack mode, in declaration order.
    pub const ALL: [AckMode; 7] = [
        AckMode::Record,
        AckMode::Batch,
        AckMode::Time,
        AckMode::Count,
        AckMode::CountTime,
        AckMode::Manual,
        AckMode::ManualImmediate,
    ];
}

impl fmt::Display for AckMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an [`AckMode`] from its name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ack mode `{0}`; expected one of: record, batch, time, count, count_time, manual, manual_immediate")]
pub struct UnknownAckMode(pub String);

impl FromStr for AckMode {
    type Err = UnknownAckMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normalized = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        AckMode::ALL
            .into_iter()
            .find(|mode| mode.name() == normalized || mode.name().replace('_', "") == normalized)
            .ok_or_else(|| UnknownAckMode(s.to_string()))
    }
}
