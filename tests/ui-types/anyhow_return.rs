#![allow(unused)]
use kafka_listener::prelude::*;

#[kafka_listener(topic = "orders")]
async fn on_order(payload: String) -> anyhow::Result<()> {
    Ok(())
}

fn main() {}
