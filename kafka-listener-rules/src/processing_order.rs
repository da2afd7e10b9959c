//! Processing orders and their names.

use std::fmt;
use std::str::FromStr;

/// In which order, and how concurrently, a container hands one partition's records to a record
/// listener.
///
/// Parsed from its [name](ProcessingOrder::name), case-insensitively (`"key"`, `"Unordered"`):
///
/// ```
/// # use kafka_listener_rules::ProcessingOrder;
/// assert_eq!("key".parse(), Ok(ProcessingOrder::Key));
/// assert_eq!("Unordered".parse(), Ok(ProcessingOrder::Unordered));
/// assert!("random".parse::<ProcessingOrder>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProcessingOrder {
    /// One record at a time per partition, in offset order, on the consumer's thread (Kafka's
    /// own guarantee, and Spring Kafka's only mode). The default.
    #[default]
    Partition,
    /// Records with the same key (byte-equal) one at a time in offset order; records of
    /// different keys concurrently, as tasks (Confluent Parallel Consumer's `KEY` ordering).
    /// Records without a key form one ordered lane per partition.
    Key,
    /// Any record of a partition may run concurrently with the others, as tasks (Parallel
    /// Consumer's `UNORDERED`).
    Unordered,
}

impl ProcessingOrder {
    /// The lowercase name used in attributes and messages.
    pub fn name(self) -> &'static str {
        match self {
            ProcessingOrder::Partition => "partition",
            ProcessingOrder::Key => "key",
            ProcessingOrder::Unordered => "unordered",
        }
    }

    /// Whether records run concurrently as tasks (`Key`, `Unordered`).
    pub fn is_concurrent(self) -> bool {
        self != ProcessingOrder::Partition
    }

    /// Every processing order, in declaration order.
    pub const ALL: [ProcessingOrder; 3] =
        [ProcessingOrder::Partition, ProcessingOrder::Key, ProcessingOrder::Unordered];
}

impl fmt::Display for ProcessingOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing a [`ProcessingOrder`] from its name: the text that is none. Its message
/// lists the names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProcessingOrder(pub String);

impl fmt::Display for UnknownProcessingOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown processing order `{}`; expected one of: partition, key, unordered", self.0)
    }
}

impl std::error::Error for UnknownProcessingOrder {}

impl FromStr for ProcessingOrder {
    type Err = UnknownProcessingOrder;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normalized = s.trim().to_ascii_lowercase();
        ProcessingOrder::ALL
            .into_iter()
            .find(|order| order.name() == normalized)
            .ok_or_else(|| UnknownProcessingOrder(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_in_any_case_and_nothing_else() {
        for order in ProcessingOrder::ALL {
            assert_eq!(order.name().parse(), Ok(order));
            assert_eq!(format!(" {order:?} ").parse(), Ok(order));
        }
        let error = "keyed".parse::<ProcessingOrder>().unwrap_err();
        assert_eq!(error.to_string(), "unknown processing order `keyed`; expected one of: partition, key, unordered");
        assert_eq!(ProcessingOrder::default(), ProcessingOrder::Partition);
    }
}
