//! Ack modes and their names.

use std::fmt;
use std::str::FromStr;

/// When the container commits offsets (Spring's `ContainerProperties.AckMode`).
///
/// A committed offset is always *last processed + 1* and never runs past an unprocessed record.
///
/// Parsed from its [name](AckMode::name), case-insensitively, with `-`, ` ` or nothing for `_`
/// (`"manual_immediate"`, `"manual-immediate"`, `"ManualImmediate"`):
///
/// ```
/// # use kafka_listener_rules::AckMode;
/// assert_eq!("manual_immediate".parse(), Ok(AckMode::ManualImmediate));
/// assert_eq!("CountTime".parse(), Ok(AckMode::CountTime));
/// assert!("sometimes".parse::<AckMode>().is_err());
/// ```
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

/// The error of parsing an [`AckMode`] from its name: the text that is none. Its message lists
/// the names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAckMode(pub String);

impl fmt::Display for UnknownAckMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown ack mode `{}`; expected one of: ", self.0)?;
        for (i, mode) in AckMode::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(mode.name())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownAckMode {}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_and_its_spellings_parse_and_nothing_else() {
        for mode in AckMode::ALL {
            assert_eq!(mode.name().parse(), Ok(mode));
            assert_eq!(mode.to_string().to_uppercase().parse(), Ok(mode));
            assert_eq!(format!(" {} ", mode.name().replace('_', "-")).parse(), Ok(mode));
            assert_eq!(format!("{mode:?}").parse(), Ok(mode), "the variant's name");
        }
        for bad in ["", "sometimes", "manual__immediate", "${ACK_MODE}", "auto"] {
            let error = bad.parse::<AckMode>().unwrap_err();
            assert_eq!(error, UnknownAckMode(bad.to_string()));
            assert_eq!(
                error.to_string(),
                format!("unknown ack mode `{bad}`; expected one of: record, batch, time, count, count_time, manual, manual_immediate")
            );
        }
    }
}
