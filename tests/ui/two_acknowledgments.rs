#![allow(unused)]
use kafka_listener::prelude::*;

#[kafka_listener(topic = "orders", container_factory = "manual")]
async fn on_order(first: Acknowledgment, payload: String, second: Acknowledgment) {}

fn main() {}
