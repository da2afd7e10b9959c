#![allow(unused)]
use kafka_listener::prelude::*;

// Orders are read as `ProcessingOrder::from_str` reads them: "Key" is "key".
#[kafka_listener(topic = "orders", processing_order = "Key", max_concurrency = 1000)]
async fn on_order(payload: String) {}

#[kafka_listener(topic = "orders", processing_order = "keyed")]
async fn on_refund(payload: String) {}

#[kafka_listener(topic = "orders", processing_order = ProcessingOrder::Key)]
async fn on_return(payload: String) {}

#[kafka_listener(topic = "orders", processing_order = "unordered", batch = true)]
async fn on_batch(payloads: Vec<String>) {}

#[kafka_listener(topic = "orders", processing_order = "key", max_concurrency = 0)]
async fn on_audit(payload: String) {}

#[kafka_listener(topic = "orders", max_concurrency = "1000")]
async fn on_payment(payload: String) {}

fn main() {}
