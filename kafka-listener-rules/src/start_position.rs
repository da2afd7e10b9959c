//! Where an explicitly assigned partition starts.

use std::fmt;
use std::str::FromStr;
use std::time::UNIX_EPOCH;

/// What to write instead of a start position that is none.
const START_POSITIONS: &str =
    "write \"committed\", \"beginning\", \"end\", \"offset:42\", \"end-10\" or \"time:2026-11-01T00:00:00Z\"";

/// Where an explicitly assigned partition starts (Spring's `@TopicPartition` with
/// `@PartitionOffset`). Written as text in `topic_partitions`: `"committed"` (the default, also
/// written `""`: the group's committed offset, else `auto_offset_reset`), `"beginning"` (or
/// `"earliest"`), `"end"` (or `"latest"`), `"offset:42"`, `"end-10"` (10 records before the end)
/// or `"time:2026-11-01T00:00:00Z"` (RFC 3339, or milliseconds since the epoch:
/// `"time:1793491200000"`).
///
/// ```
/// # use kafka_listener_rules::StartPosition;
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
    /// What is wrong with the text, and what to write instead.
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let invalid = || format!("`{text}` is not a start position; {START_POSITIONS}");
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
                    timestamp(time.trim()).map(StartPosition::Timestamp).map_err(|why| {
                        format!("`{text}` is not a start position: {why}; write a time in RFC 3339, e.g. \"time:2026-11-01T00:00:00Z\", or in milliseconds since the epoch, e.g. \"time:1793491200000\"")
                    })
                } else {
                    Err(invalid())
                }
            }
        }
    }
}

/// A time written in RFC 3339 or as milliseconds since the epoch, in milliseconds since the
/// epoch; or why it is none.
fn timestamp(time: &str) -> Result<i64, String> {
    if let Ok(ms) = time.parse::<i64>() {
        return if ms >= 0 { Ok(ms) } else { Err(format!("`{time}` is before the epoch")) };
    }
    let at = humantime::parse_rfc3339_weak(time).map_err(|e| format!("`{time}` is not a time ({e})"))?;
    let ms = at.duration_since(UNIX_EPOCH).map_err(|_| format!("`{time}` is before the epoch"))?.as_millis();
    i64::try_from(ms).map_err(|_| format!("`{time}` is too far in the future"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_and_display_as_written() {
        let cases = [
            ("", StartPosition::Committed),
            ("committed", StartPosition::Committed),
            (" beginning ", StartPosition::Beginning),
            ("earliest", StartPosition::Beginning),
            ("end", StartPosition::End),
            ("latest", StartPosition::End),
            ("offset:42", StartPosition::Offset(42)),
            ("offset: 0", StartPosition::Offset(0)),
            ("end-10", StartPosition::FromEnd(10)),
            ("time:1793491200000", StartPosition::Timestamp(1_793_491_200_000)),
            ("time:2026-11-01T00:00:00Z", StartPosition::Timestamp(1_793_491_200_000)),
            ("time: 2026-11-01T00:00:05.5Z", StartPosition::Timestamp(1_793_491_205_500)),
        ];
        for (text, position) in cases {
            assert_eq!(text.parse(), Ok(position), "{text:?}");
            assert_eq!(position.to_string().parse(), Ok(position), "{position} reads back");
        }
    }

    #[test]
    fn a_text_that_is_no_position_says_what_to_write() {
        for bad in ["middle", "offset:", "offset:-1", "offset:x", "end-", "end--3", "end+3", "${START}"] {
            let error = bad.parse::<StartPosition>().unwrap_err();
            assert!(error.starts_with(&format!("`{bad}` is not a start position; write \"committed\"")), "{error}");
        }
        for bad in ["time:", "time:garbage", "time:2026-13-01T00:00:00Z", "time:-5", "time:1969-12-31T00:00:00Z"] {
            let error = bad.parse::<StartPosition>().unwrap_err();
            assert!(error.starts_with(&format!("`{bad}` is not a start position: `")), "{error}");
            assert!(error.ends_with("e.g. \"time:2026-11-01T00:00:00Z\", or in milliseconds since the epoch, e.g. \"time:1793491200000\""), "{error}");
        }
    }
}
