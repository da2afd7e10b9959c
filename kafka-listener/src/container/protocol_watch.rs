//! A broker without KIP-848's consumer group protocol: librdkafka says so only in a debug log
//! line ("marking the coordinator dead: ... ConsumerGroupHeartbeatRequest not supported by
//! broker"), then waits for partitions that never come, without an error. With
//! `group.protocol=consumer`, a subscribing consumer starts with librdkafka's `cgrp` debug
//! context on and its log level at DEBUG; this watch stops the consumer with an error saying
//! what to do when that line comes, and turns the log level back down at the first assignment
//! (the broker speaks the protocol), so that the debug lines cost nothing after start. The Java
//! client fails its poll with an `UnsupportedVersionException` there, which stops a Spring
//! container.

use std::sync::atomic::{AtomicBool, Ordering};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use super::shared::ContainerShared;
use crate::config::GroupProtocol;

/// librdkafka's verdict when the coordinator (connected, its API versions known) lacks the
/// ConsumerGroupHeartbeat API.
const UNSUPPORTED: &str = "ConsumerGroupHeartbeatRequest not supported by broker";

/// What the log says, and the health's failure reason.
pub(crate) const REASON: &str = "the broker does not support the consumer group protocol (KIP-848, the ConsumerGroupHeartbeat API of Kafka 4.0+): the listener would never get partitions; set group.protocol=classic (consumer.group-protocol in KafkaProperties, or ContainerFactoryBuilder::group_protocol(GroupProtocol::Classic)), or upgrade the broker";

/// Watches one consumer's librdkafka log for the broker's refusal of the consumer protocol.
#[derive(Default)]
pub(crate) struct ProtocolWatch {
    /// The log level to go back to once the protocol works; `None`: not watching.
    level: Option<RDKafkaLogLevel>,
    settled: AtomicBool,
}

impl ProtocolWatch {
    /// Under the consumer protocol, for a subscribing consumer: turns on the `cgrp` debug
    /// context and the DEBUG log level (rust-rdkafka passes librdkafka's lines on at the `log`
    /// crate's level, which without a `log` logger is errors only), and watches.
    pub(crate) fn arm(config: &mut ClientConfig) -> ProtocolWatch {
        if GroupProtocol::of_config(config) != GroupProtocol::Consumer {
            return ProtocolWatch::default();
        }
        let debug = config.get("debug").unwrap_or_default().to_string();
        let mut contexts: Vec<&str> = debug.split(',').map(str::trim).filter(|c| !c.is_empty()).collect();
        if !contexts.iter().any(|c| *c == "cgrp" || *c == "all") {
            contexts.push("cgrp");
            config.set("debug", contexts.join(","));
        }
        let level = config.log_level;
        config.set_log_level(RDKafkaLogLevel::Debug);
        ProtocolWatch { level: Some(level), settled: AtomicBool::new(false) }
    }

    /// Looks at one librdkafka debug line: on the refusal, stops the consumer with an error
    /// (atomics and the health's own lock only: this runs on the poll thread inside librdkafka).
    pub(crate) fn saw(&self, message: &str, shared: &ContainerShared) {
        if self.level.is_none() || !message.contains(UNSUPPORTED) || !message.contains("marking the coordinator") {
            return;
        }
        if !self.settled.swap(true, Ordering::AcqRel) {
            tracing::error!(listener = &*shared.listener_id, "{REASON}; the consumer stops");
            shared.health.failed(REASON);
            shared.control().request_stop();
        }
    }

    /// Partitions were assigned: the broker speaks the protocol; the log level goes back.
    pub(crate) fn assigned<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) {
        let Some(level) = self.level else { return };
        if !self.settled.swap(true, Ordering::AcqRel) {
            // SAFETY: the consumer's client pointer is valid while `consumer` is borrowed;
            // librdkafka reads the level atomically enough for a log filter.
            unsafe { rdkafka::bindings::rd_kafka_set_log_level(consumer.client().native_ptr(), level as i32) };
        }
    }
}
