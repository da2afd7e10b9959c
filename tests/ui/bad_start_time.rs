#![allow(unused)]
use kafka_listener::prelude::*;

// A start position `start()` would refuse does not compile; one with a placeholder is read at start.
#[kafka_listener(topic_partitions = [
    ("orders", [0], "time:garbage"),
    ("audit", [1], "time:2026-11-31T00:00:00Z"),
    ("refunds", [2], "${REFUNDS_START:time:2026-11-01T00:00:00Z}"),
])]
async fn on_order(payload: String) {}

fn main() {}
