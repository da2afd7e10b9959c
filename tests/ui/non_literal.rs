#![allow(unused)]
use kafka_listener::prelude::*;

const TOPIC: &str = "orders";

#[kafka_listener(topic = TOPIC, batch = "yes")]
async fn on_order(payload: String) {}

fn main() {}
