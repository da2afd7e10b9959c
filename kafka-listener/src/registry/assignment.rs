//! Explicit partitions (`topic_partitions`): partitions assigned to a listener without group
//! rebalancing (the consumer's `assign()`), each from a start position.

use std::fmt;
use std::str::FromStr;
use std::time::UNIX_EPOCH;

/// Where an explicitly assigned partition starts (Spring's `@TopicPartition` with
/// `@PartitionOffset`). Written as text in `topic_partitions`: `"committed"` (the default: the
/// group's committed offset, else `auto_offset_reset`), `"beginning"`, `"end"`, `"offset:42"`,
/// `"end-10"` (10 records before the end) or `"time:2026-11-01T00:00:00Z"` (RFC 3339, or
/// milliseconds since the epoch: `"time:1793491200000"`).
///
/// ```
/// use kafka_listener::registry::StartPosition;
///
/// assert_eq!("offset:42".parse(), Ok(StartPosition::Offset(42)));
/// assert_eq!("end-10".parse(), Ok(StartPosition::FromEnd(10)));
/// assert_eq!("time:2026-11-01T00:00:00Z".parse(), Ok(StartPosition::Timestamp(1_793_491_200_000)));
/// assert!("middle".parse::<StartPosition>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartPosition {
    /// The group's committed offset; without one, `auto_offset_reset` decides.
    #[default]
    Committed,
    /// The first record kept.
    Beginning,
    /// Only records produced from now on.
    End,
    /// This offset.
    Offset(i64),
    /// This many records before the end.
    FromEnd(i64),
    /// The first record at or after this time (ms since the epoch).
    Timestamp(i64),
}

impl FromStr for StartPosition {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let invalid = || {
            format!(
                "`{text}` is not a start position; write \"committed\", \"beginning\", \"end\", \"offset:42\", \"end-10\" or \"time:2026-11-01T00:00:00Z\""
            )
        };
        let number = |n: &str| n.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(invalid);
        match text {
            "" | "committed" => Ok(StartPosition::Committed),
            "beginning" | "earliest" => Ok(StartPosition::Beginning),
            "end" | "latest" => Ok(StartPosition::End),
            _ => {
                if let Some(n) = text.strip_prefix("offset:") {
                    number(n).map(StartPosition::Offset)
                } else if let Some(n) = text.strip_prefix("end-") {
                    number(n).map(StartPosition::FromEnd)
                } else if let Some(time) = text.strip_prefix("time:") {
                    if let Ok(ms) = time.trim().parse::<i64>() {
                        return Ok(StartPosition::Timestamp(ms));
                    }
                    let at = humantime::parse_rfc3339_weak(time.trim()).map_err(|e| format!("{}: {e}", invalid()))?;
                    let ms = at.duration_since(UNIX_EPOCH).map_err(|_| invalid())?.as_millis();
                    i64::try_from(ms).map(StartPosition::Timestamp).map_err(|_| invalid())
                } else {
                    Err(invalid())
                }
            }
        }
    }
}

impl fmt::Display for StartPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartPosition::Committed => f.write_str("committed"),
            StartPosition::Beginning => f.write_str("beginning"),
            StartPosition::End => f.write_str("end"),
            StartPosition::Offset(n) => write!(f, "offset:{n}"),
            StartPosition::FromEnd(n) => write!(f, "end-{n}"),
            StartPosition::Timestamp(ms) => write!(f, "time:{ms}"),
        }
    }
}

/// One partition of an explicit assignment, with where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AssignedPartition {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) start: StartPosition,
}
