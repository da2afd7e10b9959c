#![allow(unused)]
use kafka_listener::prelude::*;

// Meta is never null: Option<Meta> is not a parameter (Option<X> is for tombstones and keyless records).
#[kafka_listener(topic = "orders")]
async fn on_order(meta: Option<Meta>) {}

fn main() {}
