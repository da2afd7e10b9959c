//! `examples/observability.rs` as its users run it: a child process serving Prometheus metrics
//! and health probes over HTTP, read here as a scraper and a probe would.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

/// GET `path` from `address`: the status code and the body (HTTP/1.1, `Connection: close`).
fn get(address: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// The samples of a Prometheus metric (`name` or `name_total`), as (labels, value).
fn samples(exposition: &str, name: &str) -> Vec<(String, f64)> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, labels) = series.split_once('{').unwrap_or((series, ""));
            if metric != name && metric != format!("{name}_total") {
                return None;
            }
            Some((labels.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Kills the child when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_serves_prometheus_metrics_and_health_probes() {
    let mut child = Child(
        Command::new(example("observability"))
            .env("PORT", "0")
            .env("RECORDS", "500")
            .env_remove("KAFKA_BOOTSTRAP_SERVERS")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (address_tx, address) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut address_tx = Some(address_tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let (Some(address), Some(tx)) = (line.strip_prefix("LISTENING http://"), address_tx.take()) {
                let _ = tx.send(address.to_string());
            }
        }
    });
    let address = tokio::time::timeout(Duration::from_secs(60), address).await.expect("the server's address").unwrap();

    // Every record produced is counted as consumed, and the lag of each partition reaches 0.
    let metrics = || get(&address, "/metrics").map(|(_, body)| body).unwrap_or_default();
    wait_until("500 records consumed", Duration::from_secs(60), || {
        samples(&metrics(), "messaging_client_consumed_messages").iter().map(|(_, v)| v).sum::<f64>() == 500.0
    })
    .await;
    wait_until("lag 0 on every partition", Duration::from_secs(30), || {
        let lag = samples(&metrics(), "kafka_listener_consumer_lag");
        lag.len() == 3 && lag.iter().all(|(_, v)| *v == 0.0)
    })
    .await;
    let exposition = metrics();
    let sent: f64 = samples(&exposition, "messaging_client_sent_messages").iter().map(|(_, v)| v).sum();
    assert_eq!(sent, 500.0, "{exposition}");
    let processed = samples(&exposition, "messaging_process_duration_count");
    assert_eq!(processed.iter().map(|(_, v)| v).sum::<f64>(), 500.0, "{exposition}");
    assert!(processed.iter().all(|(labels, _)| labels.contains(r#"kafka_listener_id="payments""#)));
    assert!(exposition.contains("# HELP messaging_client_consumed_messages"), "described: {exposition}");

    let (status, body) = get(&address, "/health/readiness").unwrap();
    assert_eq!(status, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "UP");
    assert_eq!(health["details"]["listeners"][0]["id"], "payments");
    assert_eq!(health["details"]["listeners"][0]["consumers"][0]["state"], "running");
    let (status, body) = get(&address, "/health/liveness").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""status":"UP""#), "{body}");

    // SIGTERM: a clean stop.
    let pid = child.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || child.0.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
}
