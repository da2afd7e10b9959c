#![allow(unused)]
use kafka_listener::prelude::*;

#[kafka_listener(topic = "orders", retry(attempts = 0, backoff = "1 fortnight", max_backoff = 30, jitter = true))]
async fn on_order(payload: String) {}

fn main() {}
