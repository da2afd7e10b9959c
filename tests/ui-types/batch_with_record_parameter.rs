#![allow(unused)]
use kafka_listener::prelude::*;

#[derive(serde::Deserialize)]
struct Metric {
    value: f64,
}

#[kafka_listener(topic = "metrics", batch = true)]
async fn aggregate(metric: Json<Metric>, ack: Acknowledgment) {}

#[kafka_listener(topic = "metrics")]
async fn record_listener_with_a_vec(metrics: Vec<Json<Metric>>) {}

fn main() {}
