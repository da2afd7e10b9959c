//! Partition strategies, Java-compatible.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

/// Chooses the partition of a record that names none. An explicit partition always wins.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a partitioner",
    note = "implement `kafka_listener::producer::Partitioner` (partition(topic, key, value, partition_count))"
)]
pub trait Partitioner: Send + Sync + 'static {
    /// The partition, in `0..partition_count`, for a record with this key and value.
    fn partition(&self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>, partition_count: i32) -> i32;
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), as the Java client and
/// kafka-python compute it.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java client's default partitioner gives a key: `murmur2(key) & 0x7fffffff`
/// modulo the partition count.
pub fn java_partition(key: &[u8], partition_count: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partition_count.max(1)
}

/// A small xorshift generator: sticky partitions are picked at random, as the Java client does.
fn random(state: &AtomicU64) -> u64 {
    let mut x = state.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x2545_f491_4f6c_dd1d)
            | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.store(x, Ordering::Relaxed);
    x
}

/// The Java client's batch size: a sticky partition changes after this many bytes.
const STICKY_BATCH_BYTES: usize = 16 * 1024;

/// The sticky partition of each topic (KIP-480): records go to one partition until a batch's worth
/// of bytes went there, then to another chosen at random. Shared by the process, per topic.
fn sticky_partition(topic: &str, value: Option<&[u8]>, partition_count: i32) -> i32 {
    static CURRENT: LazyLock<Mutex<HashMap<String, (i32, usize)>>> = LazyLock::new(Mutex::default);
    static SEED: AtomicU64 = AtomicU64::new(0);
    let size = value.map_or(0, <[u8]>::len).max(1);
    let count = partition_count.max(1);
    let pick = |previous: Option<i32>| -> i32 {
        let mut p = (random(&SEED) % count as u64) as i32;
        if count > 1 && Some(p) == previous {
            p = (p + 1) % count;
        }
        p
    };
    let mut current = CURRENT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let entry = current.entry(topic.to_string()).or_insert_with(|| (pick(None), 0));
    if entry.0 >= count || entry.1 >= STICKY_BATCH_BYTES {
        *entry = (pick(Some(entry.0)), 0);
    }
    entry.1 += size;
    entry.0
}

/// The Java client's default: keyed records by `murmur2(key)` (the same partition as with the Java
/// client and kafka-python); records without a key on a sticky partition that changes after a
/// batch's worth of bytes (16 KiB, KIP-480).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPartitioner;

impl Partitioner for DefaultPartitioner {
    fn partition(&self, topic: &str, key: Option<&[u8]>, value: Option<&[u8]>, partition_count: i32) -> i32 {
        match key {
            Some(key) => java_partition(key, partition_count),
            None => sticky_partition(topic, value, partition_count),
        }
    }
}

/// Every record to the next partition in turn, keys ignored (Java's `RoundRobinPartitioner`); the
/// turn is kept per topic for the whole process.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinPartitioner;

impl Partitioner for RoundRobinPartitioner {
    fn partition(&self, topic: &str, _key: Option<&[u8]>, _value: Option<&[u8]>, partition_count: i32) -> i32 {
        static NEXT: LazyLock<Mutex<HashMap<String, u32>>> = LazyLock::new(Mutex::default);
        let mut next = NEXT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let counter = next.entry(topic.to_string()).or_insert(0);
        let partition = (*counter % partition_count.max(1) as u32) as i32;
        *counter = counter.wrapping_add(1);
        partition
    }
}

/// Every record on a sticky partition, keys ignored (Java's `UniformStickyPartitioner`).
#[derive(Debug, Clone, Copy, Default)]
pub struct UniformStickyPartitioner;

impl Partitioner for UniformStickyPartitioner {
    fn partition(&self, topic: &str, _key: Option<&[u8]>, value: Option<&[u8]>, partition_count: i32) -> i32 {
        sticky_partition(topic, value, partition_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_reference_values() {
        // From Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            (b"abc", 479470107),
        ];
        for (data, expected) in cases {
            assert_eq!(murmur2(data), expected, "{}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn sticky_partitions_stay_within_range_and_change_after_a_batch() {
        let p = UniformStickyPartitioner;
        let first = p.partition("sticky-test", None, Some(&[0; 100]), 5);
        assert!((0..5).contains(&first));
        assert_eq!(p.partition("sticky-test", None, Some(&[0; 100]), 5), first);
        let after = p.partition("sticky-test", None, Some(&[0; STICKY_BATCH_BYTES]), 5);
        let moved = p.partition("sticky-test", None, Some(&[0; 10]), 5);
        assert_eq!(after, first, "the record that fills the batch still goes to the sticky partition");
        assert_ne!(moved, first, "the next batch goes elsewhere");
    }

    #[test]
    fn round_robin_cycles_per_topic() {
        let p = RoundRobinPartitioner;
        let seen: Vec<i32> = (0..6).map(|_| p.partition("rr-test", Some(b"k"), None, 3)).collect();
        assert_eq!(seen, [0, 1, 2, 0, 1, 2]);
    }
}
