//! `shutdown_on_signal` and `shutdown_signal()`: SIGTERM stops the listeners, commits what was
//! processed, and the program exits normally. The tests run themselves as child processes and
//! signal them.

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
    signal_the_child("sigterm_shuts_the_listeners_down_and_commits").await;
}

/// The same with the program's own work selected against `shutdown_signal()`, then `shutdown`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_signal_ends_the_programs_own_work_too() {
    if let Ok(bootstrap) = std::env::var(CHILD) {
        return child_with_own_work(&bootstrap).await;
    }
    signal_the_child("shutdown_signal_ends_the_programs_own_work_too").await;
}

/// The handlers are installed when the future is made: a signal that comes before it is awaited
/// is not missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_signal_catches_a_signal_sent_before_it_is_awaited() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let signal = kafka_listener::shutdown_signal();
    let pid = std::process::id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let name = tokio::time::timeout(Duration::from_secs(10), signal).await.expect("the signal").unwrap();
    assert_eq!(name, "SIGTERM");
}

async fn signal_the_child(test: &str) {
    let kafka = embedded(&[("signal", 1)]);
    produce(&kafka, "signal", &numbered(5));
    let mut child = Command::new(std::env::current_exe().unwrap())
        // The child gives up by itself after a minute without a signal.
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
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

/// In a child: the listener, once it handled the 5 records (committing only on shutdown:
/// AckMode::Count with a large count).
async fn child_listener(bootstrap: &str) -> RunningListeners {
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
    running
}

/// In the child: say so once the signal handler is installed, and wait for the signal.
async fn child(bootstrap: &str) {
    let shutdown = child_listener(bootstrap).await.shutdown_on_signal();
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

/// In the child: as [`child`], but the program selects on `shutdown_signal()` and work of its own
/// (that never ends here), then shuts the listeners down itself.
async fn child_with_own_work(bootstrap: &str) {
    let running = child_listener(bootstrap).await;
    // Made now, it has its handlers installed before the parent is told to signal.
    let signal = kafka_listener::shutdown_signal();
    println!("HANDLED 5");
    let own_work = std::future::pending::<()>();
    tokio::select! {
        name = signal => assert_eq!(name.unwrap(), "SIGTERM"),
        () = own_work => unreachable!(),
        () = tokio::time::sleep(Duration::from_secs(60)) => panic!("no signal within a minute"),
    }
    running.shutdown().await.unwrap();
}
