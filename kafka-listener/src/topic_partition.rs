//! `TopicPartition`: a partition of a topic, Kafka's (and Spring's) name for the pair.

use std::fmt;

/// One partition of a topic (Kafka's `org.apache.kafka.common.TopicPartition`, which Spring Kafka
/// uses throughout): what a consumer is assigned, pauses, seeks and commits.
///
/// Ordered by topic, then partition; displayed as Kafka logs it, `topic-partition`. The tuple
/// forms users already write convert into it, and it compares equal to them (both ways), so
/// `handle.pause(&[("orders", 0)])` and `assert_eq!(assignment, [("orders".to_string(), 0)])`
/// keep working. Code that took pairs apart writes `TopicPartition { topic, partition }` in its
/// patterns, looks maps up with `&TopicPartition::new("orders", 0)`, and asks
/// `partitions.iter().any(|tp| tp.is("orders", 0))` where it used `contains`:
///
/// ```
/// use kafka_listener::TopicPartition;
///
/// let tp = TopicPartition::new("orders", 3);
/// assert_eq!(tp.to_string(), "orders-3");
/// assert_eq!(tp, ("orders", 3));
/// assert_eq!(TopicPartition::from(("orders", 3)), tp);
/// assert!(TopicPartition::new("orders", 3) < TopicPartition::new("orders", 10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct TopicPartition {
    /// The topic's name.
    pub topic: String,
    /// The partition's number (0-based).
    pub partition: i32,
}

impl TopicPartition {
    /// The partition `partition` of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }

    /// Whether this is the partition `partition` of `topic` (compares without allocating).
    pub fn is(&self, topic: &str, partition: i32) -> bool {
        self.partition == partition && self.topic == topic
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

impl From<(&str, i32)> for TopicPartition {
    fn from((topic, partition): (&str, i32)) -> Self {
        TopicPartition::new(topic, partition)
    }
}

impl From<&(&str, i32)> for TopicPartition {
    fn from((topic, partition): &(&str, i32)) -> Self {
        TopicPartition::new(*topic, *partition)
    }
}

impl From<(String, i32)> for TopicPartition {
    fn from((topic, partition): (String, i32)) -> Self {
        TopicPartition { topic, partition }
    }
}

impl From<&(String, i32)> for TopicPartition {
    fn from((topic, partition): &(String, i32)) -> Self {
        TopicPartition::new(topic.as_str(), *partition)
    }
}

impl From<&TopicPartition> for TopicPartition {
    fn from(tp: &TopicPartition) -> Self {
        tp.clone()
    }
}

impl From<TopicPartition> for (String, i32) {
    fn from(tp: TopicPartition) -> Self {
        (tp.topic, tp.partition)
    }
}

impl PartialEq<(&str, i32)> for TopicPartition {
    fn eq(&self, (topic, partition): &(&str, i32)) -> bool {
        self.is(topic, *partition)
    }
}

impl PartialEq<(String, i32)> for TopicPartition {
    fn eq(&self, (topic, partition): &(String, i32)) -> bool {
        self.is(topic, *partition)
    }
}

impl PartialEq<TopicPartition> for (&str, i32) {
    fn eq(&self, tp: &TopicPartition) -> bool {
        tp == self
    }
}

impl PartialEq<TopicPartition> for (String, i32) {
    fn eq(&self, tp: &TopicPartition) -> bool {
        tp == self
    }
}

/// `topic-partition, ...` for log lines.
pub(crate) fn join<'a>(partitions: impl IntoIterator<Item = &'a TopicPartition>) -> String {
    partitions.into_iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// `topic-partition@offset, ...` for log lines.
pub(crate) fn describe_offsets(tpl: &rdkafka::TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| match e.offset() {
            rdkafka::Offset::Offset(o) => format!("{}-{}@{}", e.topic(), e.partition(), o),
            other => format!("{}-{}@{:?}", e.topic(), e.partition(), other),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The partitions of a list, sorted.
pub(crate) fn of_list(tpl: &rdkafka::TopicPartitionList) -> Vec<TopicPartition> {
    let mut partitions: Vec<_> = tpl.elements().iter().map(|e| TopicPartition::new(e.topic(), e.partition())).collect();
    partitions.sort();
    partitions
}

/// A list of these partitions (offsets unset).
pub(crate) fn to_list<'a>(partitions: impl IntoIterator<Item = &'a TopicPartition>) -> rdkafka::TopicPartitionList {
    let mut tpl = rdkafka::TopicPartitionList::new();
    for tp in partitions {
        tpl.add_partition(&tp.topic, tp.partition);
    }
    tpl
}

/// Each element of a list: topic, partition, offset (negative: a logical one) and metadata as
/// bytes. rust-rdkafka's `metadata()` assumes UTF-8 and panics on other bytes; another client's
/// metadata may be anything, so it is read from librdkafka's list as it is.
pub(crate) fn raw_metadata(tpl: &rdkafka::TopicPartitionList) -> Vec<(String, i32, i64, Vec<u8>)> {
    let list = tpl.ptr();
    // SAFETY: `list` is the live native list `tpl` owns (borrowed for this call); `cnt` elements
    // are initialized, each with a NUL-terminated topic and `metadata_size` bytes of metadata
    // (or a null pointer).
    unsafe {
        let count = usize::try_from((*list).cnt).unwrap_or(0);
        if count == 0 || (*list).elems.is_null() {
            return Vec::new();
        }
        std::slice::from_raw_parts((*list).elems, count)
            .iter()
            .map(|e| {
                let topic = std::ffi::CStr::from_ptr(e.topic).to_string_lossy().into_owned();
                let metadata = if e.metadata.is_null() || e.metadata_size == 0 {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(e.metadata.cast::<u8>(), e.metadata_size).to_vec()
                };
                (topic, e.partition, e.offset, metadata)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::TopicPartition;

    #[test]
    fn tuple_forms_convert_and_compare() {
        let tp = TopicPartition::new("t", 1);
        assert_eq!(TopicPartition::from(("t".to_string(), 1)), tp);
        assert_eq!(TopicPartition::from(&("t", 1)), tp);
        assert_eq!(vec![tp.clone()], vec![("t".to_string(), 1)]);
        assert_ne!(tp, ("t", 2));
        assert_eq!([("t", 1)], [TopicPartition::new("t", 1)]);
        assert!(("t".to_string(), 1) == tp);
        assert_eq!(<(String, i32)>::from(tp), ("t".to_string(), 1));
    }

    #[test]
    fn lists_round_trip_sorted() {
        let partitions = [TopicPartition::new("b", 0), TopicPartition::new("a", 2), TopicPartition::new("a", 1)];
        let listed = super::of_list(&super::to_list(&partitions));
        assert_eq!(listed, [("a", 1), ("a", 2), ("b", 0)]);
        assert_eq!(super::join(&listed), "a-1, a-2, b-0");
    }
}
