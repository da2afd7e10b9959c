#![allow(unused)]
use kafka_listener::prelude::*;

#[kafka_listener(topic = "orders", ack_mode = "batch")]
async fn on_order(payload: String, ack: Acknowledgment) {}

#[kafka_listener(topic = "orders", ack_mode = "sometimes")]
async fn on_refund(payload: String) {}

fn main() {}
