#![allow(unused)]
use kafka_listener::prelude::*;

#[kafka_listener(group = "billing")]
async fn on_order(payload: String) {}

fn main() {}
