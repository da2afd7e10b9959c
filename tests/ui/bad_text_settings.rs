#![allow(unused)]
use kafka_listener::prelude::*;

// Settings given as text are read by the rules `start()` reads them with, unless they hold a
// placeholder.
#[kafka_listener(topic = "orders", concurrency = "three", auto_startup = "yes")]
async fn on_order(payload: String) {}

#[kafka_listener(topic = "refunds", concurrency = "${REFUND_CONSUMERS:3}", auto_startup = "${REFUNDS_ON:true}")]
async fn on_refund(payload: String) {}

fn main() {}
