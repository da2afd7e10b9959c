#![allow(unused)]
use kafka_listener::prelude::*;

// Ack modes are read as `AckMode::from_str` reads them: "ManualImmediate" and "manual-immediate"
// are "manual_immediate".
#[kafka_listener(topic = "orders", ack_mode = "ManualImmediate")]
async fn on_order(payload: String, ack: Acknowledgment) {}

#[kafka_listener(topic = "orders", ack_mode = "manaul")]
async fn on_refund(payload: String) {}

fn main() {}
