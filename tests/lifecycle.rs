//! A listener's lifecycle holds as one unit: start, stop, pause and resume by id include its
//! retry topics' containers; a stop interrupts waits at once and calls no handler after it; a
//! pause holds whether the listener was running, stopped or never started (issue 10, scenario 9).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use kafka_listener::error_handler::{FixedBackOff, RetryTopics};
use kafka_listener::prelude::*;

type Log = Arc<Mutex<Vec<(String, String, u32)>>>;

/// (a) A listener with retry topics and `auto_startup = false`, started by id: the record
/// forwarded to `-retry-0` is delivered there again. Stopped by id: its retry stages stop too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_stop_by_id_include_the_retry_stages() {
    let kafka = embedded(&[("staged", 1), ("staged-retry-0", 1), ("staged-retry-1", 1), ("staged-dlt", 1)]);
    produce(&kafka, "staged", &[(0, "k", "fail-once".to_string()), (0, "k", "ok".to_string())]);
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let log: Log = Arc::default();
    let sink = log.clone();
    let endpoint = Endpoint::new("staged")
        .topic("staged")
        .group("staged")
        .auto_startup(false)
        .retry_topics(RetryTopics::new().attempts(3).backoff(Duration::from_millis(500)))
        .handler(move |text: String, meta: Meta| {
            sink.lock().unwrap().push((text.clone(), meta.topic.clone(), meta.delivery_attempt()));
            let result = if text == "fail-once" && meta.delivery_attempt() == 1 {
                Err(ListenerError::msg("once"))
            } else {
                Ok(())
            };
            std::future::ready(result)
        });
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .with_template(template)
        .register(endpoint)
        .start()
        .await
        .unwrap();
    let staged = running.container("staged").unwrap();
    assert_eq!(staged.retry_stages(), ["staged-retry-0", "staged-retry-1"]);
    for id in ["staged", "staged-retry-0", "staged-retry-1"] {
        assert!(!running.container(id).unwrap().is_running(), "{id} waits for start");
    }
    running.start("staged").unwrap();
    for id in ["staged", "staged-retry-0", "staged-retry-1"] {
        assert!(running.container(id).unwrap().is_running(), "{id} started with the listener");
    }
    wait_until("the retry on staged-retry-0", Duration::from_secs(20), || {
        log.lock().unwrap().iter().any(|(t, topic, a)| t == "fail-once" && topic == "staged-retry-0" && *a == 2)
    })
    .await;
    let bootstrap = kafka.bootstrap_servers();
    wait_committed(&bootstrap, "staged-retry-0", "staged-retry-0", [(0, 1)].into()).await;

    running.pause("staged").unwrap();
    for id in ["staged", "staged-retry-0", "staged-retry-1"] {
        assert!(running.container(id).unwrap().is_pause_requested(), "{id} paused with the listener");
    }
    running.resume("staged").unwrap();
    for id in ["staged", "staged-retry-0", "staged-retry-1"] {
        assert!(!running.container(id).unwrap().is_pause_requested(), "{id} resumed with the listener");
    }
    running.stop("staged").await.unwrap();
    for id in ["staged", "staged-retry-0", "staged-retry-1"] {
        assert!(!running.container(id).unwrap().is_running(), "{id} stopped with the listener");
    }
    running.shutdown().await.unwrap();
}

/// (b) r0..r4, the handler fails r2, `FixedBackOff` 20 s x 3: a stop 1 s into the first back-off
/// ends the wait at once (it waited out `shutdown_timeout` before, and then called the handler
/// again), calls no handler after it, and leaves r2 uncommitted for the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_interrupts_a_back_off_and_calls_no_handler_after_it() {
    let kafka = embedded(&[("stop-in-back-off", 1)]);
    produce(&kafka, "stop-in-back-off", &numbered(5));
    let calls: Arc<Mutex<Vec<(i64, Instant)>>> = Arc::default();
    let sink = calls.clone();
    let endpoint = Endpoint::new("stop-in-back-off")
        .topic("stop-in-back-off")
        .group("stop-in-back-off")
        .error_handler(
            DefaultErrorHandler::new().backoff(FixedBackOff { interval: Duration::from_secs(20), max_retries: 3 }),
        )
        .blocking_handler(move |meta: Meta| {
            sink.lock().unwrap().push((meta.offset, Instant::now()));
            if meta.offset == 2 {
                Err(ListenerError::msg("r2 fails"))
            } else {
                Ok(())
            }
        });
    let running = start_listeners(factory(&kafka, AckMode::Record), [endpoint]).await;
    wait_until("r2 failed", Duration::from_secs(20), || calls.lock().unwrap().iter().any(|(o, _)| *o == 2)).await;
    let bootstrap = kafka.bootstrap_servers();
    // Seek-to-current: r0 and r1 are committed before the back-off.
    wait_committed(&bootstrap, "stop-in-back-off", "stop-in-back-off", [(0, 2)].into()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let requested = Instant::now();
    // The back-off has 19 s to go and the shutdown timeout is 10 s: the stop must not wait for either.
    tokio::time::timeout(Duration::from_secs(8), running.stop("stop-in-back-off"))
        .await
        .expect("the stop ended the back-off")
        .unwrap();
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.iter().map(|(o, _)| *o).collect::<Vec<_>>(), [0, 1, 2], "no handler call after the stop");
    assert!(calls.iter().all(|(_, at)| *at < requested));
    assert_eq!(
        committed(&bootstrap, "stop-in-back-off", "stop-in-back-off").await,
        [(0, 2)].into(),
        "r2 stays uncommitted"
    );
    running.shutdown().await.unwrap();
}

/// (c) A pause holds whether the listener was never started, running or stopped: records are
/// handled only after `resume()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_holds_across_start_and_stop() {
    let kafka = embedded(&[("held", 1)]);
    let bootstrap = kafka.bootstrap_servers();
    let probe = Probe::open();
    let running =
        start_listeners(factory(&kafka, AckMode::Batch), [probe.endpoint("held", "held", "held").auto_startup(false)])
            .await;
    let held = running.container("held").unwrap();

    // Paused before it ever started.
    running.pause("held").unwrap();
    produce(&kafka, "held", &numbered(5));
    running.start("held").unwrap();
    assert!(held.is_pause_requested());
    wait_until("paused once assigned", Duration::from_secs(20), || held.is_paused()).await;
    assert_stays("nothing handled while paused", Duration::from_millis(1500), || async { probe.count() == 0 }).await;
    running.resume("held").unwrap();
    wait_until("all 5 handled after the resume", Duration::from_secs(20), || probe.count() == 5).await;
    wait_committed(&bootstrap, "held", "held", [(0, 5)].into()).await;

    // Paused while running, then stopped and started again.
    held.pause();
    wait_until("paused", Duration::from_secs(20), || held.is_paused()).await;
    running.stop("held").await.unwrap();
    produce(&kafka, "held", &numbered(3));
    running.start("held").unwrap();
    wait_until("paused again once assigned", Duration::from_secs(20), || held.is_paused()).await;
    assert_stays("nothing handled while paused", Duration::from_millis(1500), || async { probe.count() == 5 }).await;
    held.resume();
    wait_until("the 3 new records handled", Duration::from_secs(20), || probe.count() == 8).await;
    running.shutdown().await.unwrap();
}
