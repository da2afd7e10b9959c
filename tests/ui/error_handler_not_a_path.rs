#![allow(unused)]
use kafka_listener::prelude::*;

#[kafka_listener(topic = "orders", error_handler = "handlers::dead_letters")]
async fn on_order(payload: String) {}

fn main() {}
