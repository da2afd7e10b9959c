#![allow(unused)]
use kafka_listener::prelude::*;

#[kafka_listener(topic = "orders", retry(backoff = "5", max_backoff = "1 minute"))]
async fn on_order(payload: String) {}

#[kafka_listener(topic = "refunds", retry(backoff = "500ms", max_backoff = "1.5.0s"))]
async fn on_refund(payload: String) {}

fn main() {}
