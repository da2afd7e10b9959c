//! The consumer group protocol: Kafka's classic one, or KIP-848's.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// The consumer group protocol (librdkafka's `group.protocol`, GA since librdkafka 2.12 and
/// Kafka 4.0).
///
/// With [`Consumer`](Self::Consumer) (KIP-848) the broker computes assignments and hands
/// partitions over incrementally: a member joining or leaving moves only the partitions that
/// change owner, while the others keep being consumed. The broker owns the group's timing, so
/// the client settings of the classic protocol are refused (see
/// [`CLASSIC_ONLY`](Self::CLASSIC_ONLY)); the assignor is chosen with `group.remote.assignor`
/// (`uniform` or `range`) instead of `partition.assignment.strategy`. Brokers without KIP-848
/// (before Kafka 4.0, and Tansu 0.6) cannot serve it: the listener never gets partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupProtocol {
    /// The classic protocol (JoinGroup/SyncGroup, client-side assignors): librdkafka's default.
    #[default]
    Classic,
    /// KIP-848's protocol (ConsumerGroupHeartbeat, broker-side assignment).
    Consumer,
}

impl GroupProtocol {
    /// The consumer properties librdkafka refuses with `group.protocol=consumer` (the broker
    /// decides them: `group.consumer.session.timeout.ms`, `group.consumer.heartbeat.interval.ms`,
    /// `group.consumer.assignors`), each with what to do instead.
    pub const CLASSIC_ONLY: [(&'static str, &'static str); 4] = [
        ("session.timeout.ms", "the broker sets it (group.consumer.session.timeout.ms)"),
        ("heartbeat.interval.ms", "the broker sets it (group.consumer.heartbeat.interval.ms)"),
        ("partition.assignment.strategy", "choose the broker's assignor with group.remote.assignor (uniform or range)"),
        ("group.protocol.type", "it belongs to the classic protocol"),
    ];

    /// librdkafka's name (`classic`, `consumer`).
    pub fn name(self) -> &'static str {
        match self {
            GroupProtocol::Classic => "classic",
            GroupProtocol::Consumer => "consumer",
        }
    }

    /// The protocol a set of consumer properties selects (`group.protocol`, classic unless set).
    pub(crate) fn of<'a>(mut properties: impl Iterator<Item = (&'a str, &'a str)>) -> GroupProtocol {
        match properties.find(|(k, _)| *k == "group.protocol") {
            Some((_, v)) if v.trim().eq_ignore_ascii_case("consumer") => GroupProtocol::Consumer,
            _ => GroupProtocol::Classic,
        }
    }

    /// The protocol a client configuration selects.
    pub(crate) fn of_config(config: &rdkafka::config::ClientConfig) -> GroupProtocol {
        Self::of(config.get("group.protocol").map(|v| ("group.protocol", v)).into_iter())
    }

    /// Under [`Consumer`](Self::Consumer): the properties of
    /// [`CLASSIC_ONLY`](Self::CLASSIC_ONLY) that are set (in that order, librdkafka's), each with
    /// what to do instead; none under [`Classic`](Self::Classic).
    pub(crate) fn forbidden<'a>(
        self,
        properties: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Vec<(&'static str, &'static str)> {
        if self == GroupProtocol::Classic {
            return Vec::new();
        }
        let set: Vec<&str> = properties.map(|(k, _)| k).collect();
        Self::CLASSIC_ONLY.into_iter().filter(|(name, _)| set.contains(name)).collect()
    }

    /// [`forbidden`](Self::forbidden) as an error naming the property (with `label`, where it
    /// was set) and what to do.
    pub(crate) fn check<'a>(
        self,
        properties: impl Iterator<Item = (&'a str, &'a str)>,
        label: impl Fn(&str) -> String,
    ) -> Result<(), Error> {
        let forbidden = self.forbidden(properties);
        let Some((first, _)) = forbidden.first() else { return Ok(()) };
        let each: Vec<String> =
            forbidden.iter().map(|(key, instead)| format!("`{}` ({key}): {instead}", label(key))).collect();
        Err(Error::config(
            label(first),
            format!(
                "group.protocol=consumer (KIP-848) does not allow {}; remove {}, or use group.protocol=classic",
                each.join("; "),
                if forbidden.len() == 1 { "it" } else { "them" }
            ),
        ))
    }
}

impl fmt::Display for GroupProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GroupProtocol {
    type Err = String;

    /// `classic` or `consumer`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match super::values::relaxed(s).as_str() {
            "classic" => Ok(GroupProtocol::Classic),
            "consumer" => Ok(GroupProtocol::Consumer),
            _ => Err("the group protocol is `classic` or `consumer` (KIP-848)".to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumer_protocol_refuses_the_classic_settings_by_name() {
        let set = [("group.protocol", "consumer"), ("heartbeat.interval.ms", "300")];
        let protocol = GroupProtocol::of(set.iter().copied());
        assert_eq!(protocol, GroupProtocol::Consumer);
        let error = protocol.check(set.iter().copied(), |k| format!("consumer.properties.{k}")).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("consumer.properties.heartbeat.interval.ms"), "{text}");
        assert!(text.contains("group.consumer.heartbeat.interval.ms"), "{text}");
        assert!(GroupProtocol::Classic.check(set.iter().copied(), str::to_string).is_ok());
        assert_eq!("CONSUMER".parse(), Ok(GroupProtocol::Consumer));
        assert!("cooperative".parse::<GroupProtocol>().is_err());
    }
}
