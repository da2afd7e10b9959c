//! Offsets completed above a partition's committed offset, carried in the commit's metadata, so
//! that the partition's next consumer (after a crash or a rebalance) skips them instead of handling
//! them again: Confluent Parallel Consumer's "offset map". Key-ordered and unordered processing
//! complete records above the slowest one before it; the committed offset (the contiguous prefix,
//! `OffsetTracker`) cannot pass that record, this map says what is done above it.
//!
//! The metadata is `kl1:` and URL-safe base64 (no padding) of one format byte and a body:
//! - `r`, run lengths: LEB128 varints of alternating runs, not completed then completed, from the
//!   committed offset on (the committed offset is the first record not completed, so the first run
//!   is at least 1 long);
//! - `b`, a bitmap: one bit per offset from the committed offset + 1 on, lowest bit first.
//!
//! `encode` writes the shorter. It must fit the broker's `offset.metadata.max.bytes` (4,096 bytes
//! by default, Kafka's broker configuration): when it does not, `encode` returns `None` and the
//! commit goes without it (the records above the committed offset are then handled again after a
//! restart, as without the map).

use std::ops::Range;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// The broker's default `offset.metadata.max.bytes`: the longest metadata a commit may carry.
pub(crate) const MAX_METADATA_BYTES: usize = 4096;

const PREFIX: &str = "kl1:";
const RUNS: u8 = b'r';
const BITMAP: u8 = b'b';

/// Why a commit's metadata could not be read as an offset map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OffsetMapError {
    /// Not written by kafka-listener (another client's metadata, or none).
    #[error("the commit's metadata is not a kafka-listener offset map (it does not start with `kl1:`)")]
    Foreign,
    /// Written by kafka-listener, but unreadable.
    #[error("the offset map in the commit's metadata is damaged: {0}")]
    Damaged(&'static str),
}

/// The offsets completed above a committed offset, as ranges `start..end` in offset order,
/// neither empty nor touching one another.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct CompletedAbove {
    committed: i64,
    ranges: Vec<Range<i64>>,
}

impl CompletedAbove {
    /// The completed offsets above `committed`, given in ascending order; offsets at or below
    /// `committed` are ignored (they are committed already).
    #[cfg(test)]
    pub(crate) fn from_offsets(committed: i64, offsets: impl IntoIterator<Item = i64>) -> Self {
        Self::from_ranges(committed, offsets.into_iter().map(|o| o..o + 1))
    }

    /// The completed ranges above `committed`, given in ascending order of their starts; what is
    /// at or below `committed` is ignored, and touching or overlapping ranges are merged.
    pub(crate) fn from_ranges(committed: i64, given: impl IntoIterator<Item = Range<i64>>) -> Self {
        let mut ranges: Vec<Range<i64>> = Vec::new();
        for r in given {
            let r = r.start.max(committed + 1)..r.end;
            if r.is_empty() {
                continue;
            }
            match ranges.last_mut() {
                Some(last) if last.end >= r.start => last.end = last.end.max(r.end),
                _ => ranges.push(r),
            }
        }
        CompletedAbove { committed, ranges }
    }

    /// The completed ranges, in offset order.
    pub(crate) fn ranges(&self) -> &[Range<i64>] {
        &self.ranges
    }

    /// The committed offset the map starts from.
    pub(crate) fn committed(&self) -> i64 {
        self.committed
    }

    /// Whether the record at `offset` was completed.
    pub(crate) fn contains(&self, offset: i64) -> bool {
        let i = self.ranges.partition_point(|r| r.end <= offset);
        self.ranges.get(i).is_some_and(|r| r.contains(&offset))
    }

    /// How many offsets were completed above the committed one.
    pub(crate) fn count(&self) -> i64 {
        self.ranges.iter().map(|r| r.end - r.start).sum()
    }

    /// Whether nothing above the committed offset was completed.
    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The commit metadata, the shorter of the two formats; `None` when nothing is completed
    /// above the committed offset, or when the map does not fit in `MAX_METADATA_BYTES`.
    pub(crate) fn encode(&self) -> Option<String> {
        if self.ranges.is_empty() {
            return None;
        }
        let runs = self.runs();
        let bitmap = self.bitmap(runs.len());
        let body = match bitmap {
            Some(bitmap) if bitmap.len() < runs.len() => bitmap,
            _ => runs,
        };
        let text = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(body));
        (text.len() <= MAX_METADATA_BYTES).then_some(text)
    }

    /// `r` and the alternating run lengths.
    fn runs(&self) -> Vec<u8> {
        let mut body = vec![RUNS];
        let mut at = self.committed;
        for r in &self.ranges {
            put_varint(&mut body, (r.start - at) as u64);
            put_varint(&mut body, (r.end - r.start) as u64);
            at = r.end;
        }
        body
    }

    /// `b` and the bitmap, unless it would be longer than `limit` bytes.
    fn bitmap(&self, limit: usize) -> Option<Vec<u8>> {
        let last = self.ranges.last()?.end - 1;
        let bits = usize::try_from(last - self.committed).ok()?;
        if bits.div_ceil(8) + 1 >= limit {
            return None;
        }
        let mut body = vec![0u8; bits.div_ceil(8) + 1];
        body[0] = BITMAP;
        for r in &self.ranges {
            for offset in r.clone() {
                let bit = (offset - self.committed - 1) as usize;
                body[1 + bit / 8] |= 1 << (bit % 8);
            }
        }
        Some(body)
    }

    /// Reads the metadata of a commit of `committed`.
    pub(crate) fn decode(committed: i64, metadata: &[u8]) -> Result<Self, OffsetMapError> {
        let encoded = metadata.strip_prefix(PREFIX.as_bytes()).ok_or(OffsetMapError::Foreign)?;
        let body = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| OffsetMapError::Damaged("not base64"))?;
        let (&format, body) = body.split_first().ok_or(OffsetMapError::Damaged("empty"))?;
        let mut map = CompletedAbove { committed, ranges: Vec::new() };
        match format {
            RUNS => {
                let mut at = committed;
                let mut input = body;
                while !input.is_empty() {
                    let gap = take_varint(&mut input)?;
                    let done = take_varint(&mut input)?;
                    // The first run starts after the committed offset (not completed), and runs
                    // never touch: a zero is not something `encode` writes.
                    if gap == 0 || done == 0 {
                        return Err(OffsetMapError::Damaged("an empty run"));
                    }
                    let start = advance(at, gap)?;
                    let end = advance(start, done)?;
                    map.ranges.push(start..end);
                    at = end;
                }
            }
            BITMAP => {
                for (byte, &bits) in body.iter().enumerate() {
                    for bit in 0..8 {
                        if bits & (1 << bit) != 0 {
                            let offset = advance(committed, (byte * 8 + bit) as u64 + 1)?;
                            match map.ranges.last_mut() {
                                Some(last) if last.end == offset => last.end += 1,
                                _ => map.ranges.push(offset..offset + 1),
                            }
                        }
                    }
                }
            }
            _ => return Err(OffsetMapError::Damaged("an unknown format")),
        }
        Ok(map)
    }
}

/// `at + by`, if it is an offset.
fn advance(at: i64, by: u64) -> Result<i64, OffsetMapError> {
    i64::try_from(by).ok().and_then(|by| at.checked_add(by)).ok_or(OffsetMapError::Damaged("offsets past i64"))
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn take_varint(input: &mut &[u8]) -> Result<u64, OffsetMapError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first().ok_or(OffsetMapError::Damaged("a number cut short"))?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(OffsetMapError::Damaged("a number longer than 64 bits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(map: &CompletedAbove) -> CompletedAbove {
        let text = map.encode().expect("fits");
        assert!(text.starts_with(PREFIX) && text.is_ascii(), "{text}");
        CompletedAbove::decode(map.committed(), text.as_bytes()).expect("reads back")
    }

    #[test]
    fn completed_offsets_above_the_committed_one_read_back() {
        let map = CompletedAbove::from_offsets(100, [98, 100, 102, 103, 104, 110, 250]);
        assert_eq!(map.ranges, vec![102..105, 110..111, 250..251], "at or below 100 is committed already");
        assert_eq!(map.count(), 5);
        let back = round_trip(&map);
        assert_eq!(back, map);
        for offset in 95..260 {
            assert_eq!(back.contains(offset), [102, 103, 104, 110, 250].contains(&offset), "offset {offset}");
        }
    }

    #[test]
    fn the_shorter_format_is_written() {
        // Long runs: run lengths (a few bytes) beat a bitmap of 1,000,000 bits.
        let runs = CompletedAbove::from_offsets(0, 5..1_000_000);
        let text = runs.encode().unwrap();
        assert!(text.len() < 20, "{text}");
        assert_eq!(round_trip(&runs), runs);
        // Every other offset: a bitmap (a bit each) beats run lengths (two bytes each).
        let scattered = CompletedAbove::from_offsets(0, (1..8_000).step_by(2));
        let text = scattered.encode().unwrap();
        assert!(text.len() < 1_400, "{} bytes", text.len());
        assert_eq!(round_trip(&scattered), scattered);
    }

    #[test]
    fn a_map_too_long_for_the_broker_is_not_written() {
        // 40,000 scattered offsets: 10,000 bytes of bitmap, 80,000 of run lengths.
        let map = CompletedAbove::from_offsets(0, (1..80_000).step_by(2));
        assert_eq!(map.encode(), None);
        assert_eq!(CompletedAbove::from_offsets(7, []).encode(), None, "nothing above the committed offset");
    }

    #[test]
    fn metadata_of_others_or_damaged_is_refused_with_the_reason() {
        assert_eq!(CompletedAbove::decode(0, b""), Err(OffsetMapError::Foreign));
        assert_eq!(CompletedAbove::decode(0, b"{\"app\":1}"), Err(OffsetMapError::Foreign));
        assert_eq!(CompletedAbove::decode(0, b"kl1:***"), Err(OffsetMapError::Damaged("not base64")));
        let cut = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode([RUNS, 0x85]));
        assert_eq!(CompletedAbove::decode(0, cut.as_bytes()), Err(OffsetMapError::Damaged("a number cut short")));
        let unknown = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode([b'z', 1]));
        assert_eq!(CompletedAbove::decode(0, unknown.as_bytes()), Err(OffsetMapError::Damaged("an unknown format")));
        let huge = format!(
            "{PREFIX}{}",
            URL_SAFE_NO_PAD.encode([RUNS, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1])
        );
        assert_eq!(CompletedAbove::decode(5, huge.as_bytes()), Err(OffsetMapError::Damaged("offsets past i64")));
        let empty_run = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode([RUNS, 0, 3]));
        assert_eq!(CompletedAbove::decode(0, empty_run.as_bytes()), Err(OffsetMapError::Damaged("an empty run")));
    }
}
