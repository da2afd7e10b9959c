#![allow(unused)]
use kafka_listener::prelude::*;

// Spring's camelCase names, and a retry setting outside retry(...), say what to write.
#[kafka_listener(topic = "orders", groupId = "billing", containerFactory = "manual", max_backoff = "30s")]
async fn on_order(payload: String) {}

// An ack mode is a string, not a path.
#[kafka_listener(topic = "orders", ack_mode = AckMode::Manual)]
async fn on_refund(payload: String) {}

fn main() {}
