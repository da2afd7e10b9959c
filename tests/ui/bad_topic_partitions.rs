#![allow(unused)]
use kafka_listener::prelude::*;

#[kafka_listener(topic_partitions = [("orders", [0, -1], "middle"), ("audit", 2)], auto_offset_reset = "newest")]
async fn on_order(payload: String) {}

fn main() {}
