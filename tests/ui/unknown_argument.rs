#![allow(unused)]
use kafka_listener::prelude::*;

// Every problem of the attribute is reported at once.
#[kafka_listener(topic = "orders", grup = "billing", concurrency = 0)]
async fn on_order(payload: String) {}

fn main() {}
