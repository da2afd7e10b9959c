//! Observability: a listener with Prometheus metrics and Kubernetes-style health probes.
//!
//! - `GET /metrics`: the Prometheus text format, from `metrics-exporter-prometheus` (the recorder
//!   is installed before the listeners start, as their metric handles are looked up then);
//! - `GET /health/liveness` and `GET /health/readiness`: 200 with `{"status":"UP",...}` or 503
//!   with `{"status":"DOWN",...}` and every listener's and consumer's state
//!   (`RunningListeners::health`, Spring Boot actuator's liveness/readiness split).
//!
//! Runs on the broker named by `KAFKA_BOOTSTRAP_SERVERS`, or else on one embedded in this
//! process, and serves HTTP on `127.0.0.1:$PORT` (default 8080; `PORT=0` picks a free port).
//! It sends `RECORDS` payments (default 1,000) to the topic `payments` (3 partitions), prints
//! `LISTENING http://<address>` once the server is up, and runs until SIGINT or SIGTERM.
//!
//! ```text
//! cargo run --example observability
//! curl -s localhost:8080/metrics | grep messaging_
//! curl -si localhost:8080/health/readiness
//! ```
//!
//! Logs go through `tracing` (`RUST_LOG=info` shows each record's `process` span around the
//! handler's log lines).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::State as AxumState;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json as AxumJson, Router};
use kafka_listener::observability::describe_metrics;
use kafka_listener::prelude::*;
use kafka_listener::support::NewTopic;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;

#[derive(Deserialize)]
struct Payment {
    id: u64,
    cents: u64,
}

#[kafka_listener(id = "payments", topic = "payments", group = "observability", concurrency = 2)]
async fn on_payment(payment: Json<Payment>) {
    tracing::debug!(id = payment.id, cents = payment.cents, "payment booked");
}

/// What the HTTP handlers reach.
#[derive(Clone)]
struct Probes {
    running: Arc<RunningListeners>,
    prometheus: PrometheusHandle,
}

async fn metrics(AxumState(probes): AxumState<Probes>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], probes.prometheus.render())
}

/// 200 `UP` or 503 `DOWN`, with the listeners' health as the body.
fn probe(up: bool, health: kafka_listener::Health) -> impl IntoResponse {
    let status = if up { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({ "status": if up { "UP" } else { "DOWN" }, "details": health });
    (status, AxumJson(body))
}

async fn liveness(AxumState(probes): AxumState<Probes>) -> impl IntoResponse {
    let health = probes.running.health();
    probe(health.is_live(), health)
}

async fn readiness(AxumState(probes): AxumState<Probes>) -> impl IntoResponse {
    let health = probes.running.health();
    probe(health.is_ready(), health)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    // Metrics first: containers look their metric handles up when they start.
    let prometheus = PrometheusBuilder::new().install_recorder().context("installing the Prometheus recorder")?;
    describe_metrics();

    let records: u64 =
        std::env::var("RECORDS").ok().map(|r| r.parse()).transpose().context("RECORDS")?.unwrap_or(1_000);
    let port: u16 = std::env::var("PORT").ok().map(|p| p.parse()).transpose().context("PORT")?.unwrap_or(8080);
    let (_embedded, bootstrap) = match std::env::var("KAFKA_BOOTSTRAP_SERVERS") {
        Ok(bootstrap) => (None, bootstrap),
        Err(_) => {
            let kafka = EmbeddedKafka::start(1)?;
            let bootstrap = kafka.bootstrap_servers();
            (Some(kafka), bootstrap)
        }
    };

    let factory = ContainerFactory::builder().bootstrap_servers(&bootstrap).build()?;
    let template = KafkaTemplate::builder().bootstrap_servers(&bootstrap).build()?;
    let running = ListenerRegistry::from_annotations()
        .with_topic(NewTopic::new("payments", 3))
        .with_default_factory(factory)
        .start()
        .await?;

    for id in 0..records {
        let payment = serde_json::json!({ "id": id, "cents": 100 + id % 900 });
        let key = format!("customer-{}", id % 10);
        // Awaited in batches below: sends are queued at once.
        drop(template.send("payments", Json(&payment)).key(key).queue());
    }
    template.flush().await?;

    let running = Arc::new(running);
    let probes = Probes { running: running.clone(), prometheus: prometheus.clone() };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health/liveness", get(liveness))
        .route("/health/readiness", get(readiness))
        .with_state(probes);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.context("binding the HTTP port")?;
    println!("LISTENING http://{}", listener.local_addr()?);

    // Histograms need upkeep now and then (the exporter's advice).
    let upkeep = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            prometheus.run_upkeep();
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = shutdown_signal().await;
        })
        .await?;
    upkeep.abort();
    let running = Arc::try_unwrap(running).map_err(|_| anyhow::anyhow!("the HTTP server still holds the listeners"))?;
    running.shutdown().await?;
    Ok(())
}
