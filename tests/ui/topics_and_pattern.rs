#![allow(unused)]
use kafka_listener::prelude::*;

#[kafka_listener(topics = ["orders", "refunds"], topic_pattern = "orders-.*")]
async fn on_order(payload: String) {}

fn main() {}
