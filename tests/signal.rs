//! `shutdown_on_signal`: SIGTERM stops the listeners, commits what was processed, and the
//! program exits normally. The test runs itself as a child process and signals it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use kafka_listener::prelude::*;

const CHILD: &str = "KAFKA_LISTENER_SIGNAL_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_the_listeners_down_and_commits() {
    if let Ok(bootstrap) = std::env::var(CHILD) {
        return child(&bootstrap).await;
    }
    let kafka = embedded(&[("signal", 1)]);
    produce(&kafka, "signal", &numbered(5));
    let mut child = Command::new(std::env::current_exe().unwrap())
        // The child gives up by itself after a minute without a signal.
        .args(["--exact", "sigterm_shuts_the_listeners_down_and_commits", "--nocapture", "--test-threads=1"])
        .env(CHILD, kafka.bootstrap_servers())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    // Reads the child's output to its end (closing the pipe early would fail the child).
    std::thread::spawn(move || {
        let mut ready_tx = Some(ready_tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("HANDLED 5") {
                if let Some(tx) = ready_tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), ready).await.unwrap().expect("the child handled 5 records");
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "the child exits normally after SIGTERM: {status:?}");
    assert_eq!(committed(&kafka.bootstrap_servers(), "signal", "signal").await, [(0, 5)].into());
}

/// In the child: handle the records (committing only on shutdown: AckMode::Count with a large
/// count), say so once the signal handler is installed, and wait for the signal.
async fn child(bootstrap: &str) {
    let probe = Probe::open();
    let factory = ContainerFactory::builder()
        .bootstrap_servers(bootstrap)
        .ack_mode(AckMode::Count)
        .ack_count(1_000)
        .build()
        .unwrap();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(probe.endpoint("signal", "signal", "signal"))
        .start()
        .await
        .unwrap();
    wait_until("5 records", Duration::from_secs(20), || probe.count() == 5).await;
    let shutdown = running.shutdown_on_signal();
    tokio::pin!(shutdown);
    // Polled once first, the future installs its signal handlers; then the parent may signal.
    tokio::select! {
        biased;
        result = &mut shutdown => panic!("shut down before any signal: {result:?}"),
        () = std::future::ready(()) => println!("HANDLED 5"),
    }
    // Never outlive a parent that failed to signal.
    tokio::time::timeout(Duration::from_secs(60), shutdown).await.expect("no signal within a minute").unwrap();
}
