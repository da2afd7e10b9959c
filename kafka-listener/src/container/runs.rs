//! A poll's records by partition: where each partition's run of them starts and ends.

use crate::extract::Record;
use crate::TopicPartition;

/// The first offset of each partition among these records.
pub(crate) fn firsts<'r>(records: &'r [Record<'_>]) -> Vec<(&'r str, i32, i64)> {
    let mut firsts: Vec<(&str, i32, i64)> = Vec::new();
    for r in records {
        if !firsts.iter().any(|(t, p, _)| *t == r.topic() && *p == r.partition()) {
            firsts.push((r.topic(), r.partition(), r.offset()));
        }
    }
    firsts
}

/// The partitions of these records, each once, with the offset of its last record.
pub(crate) fn lasts(records: &[Record<'_>]) -> Vec<(TopicPartition, i64)> {
    let mut partitions: Vec<(TopicPartition, i64)> = Vec::new();
    for r in records {
        match partitions.iter_mut().find(|(tp, _)| tp.is(r.topic(), r.partition())) {
            Some(entry) => entry.1 = entry.1.max(r.offset()),
            None => partitions.push((TopicPartition::new(r.topic(), r.partition()), r.offset())),
        }
    }
    partitions
}
