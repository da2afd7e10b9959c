#![allow(unused)]
use kafka_listener::prelude::*;

struct Billing;

impl Billing {
    #[kafka_listener(topic = "orders")]
    fn on_order(&self, payload: String) {}
}

fn main() {}
