#![allow(unused)]
use kafka_listener::prelude::*;

struct Order {
    id: u64,
}

#[kafka_listener(topic = "orders")]
async fn on_order(order: Order, meta: Meta) {}

fn main() {}
