//! Non-blocking retries through retry topics: the failed record moves on to `<topic>-retry-<n>`
//! and is handled there once due, the main topic keeps flowing, and after the last attempt the
//! record is in `<topic>-dlt`.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use kafka_listener::error_handler::{dlt_headers, retry_headers, RetryTopics};
use kafka_listener::prelude::*;

/// (payload, topic, delivery attempt, when) of every delivery.
type Log = Mutex<Vec<(String, String, u32, Instant)>>;

static ORDERS: Log = Mutex::new(Vec::new());

#[kafka_listener(
    id = "retry-orders",
    topic = "retry-orders",
    group = "retry-orders",
    retry(attempts = 3, backoff = "1500ms", multiplier = 2.0, max_backoff = "10s")
)]
fn retry_orders(text: String, meta: Meta) -> Result<(), ListenerError> {
    ORDERS.lock().unwrap().push((text.clone(), meta.topic.clone(), meta.delivery_attempt(), Instant::now()));
    match text.as_str() {
        "fail-always" => Err(ListenerError::msg("always failing")),
        "fail-once" if meta.delivery_attempt() == 1 => Err(ListenerError::msg("failing once")),
        _ => Ok(()),
    }
}

fn deliveries(log: &Log, payload: &str) -> Vec<(String, u32, Instant)> {
    log.lock().unwrap().iter().filter(|(p, ..)| p == payload).map(|(_, t, a, at)| (t.clone(), *a, *at)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_record_moves_through_the_retry_topics_to_the_dlt_while_the_topic_flows() {
    let kafka = embedded(&[
        ("retry-orders", 1),
        ("retry-orders-retry-0", 1),
        ("retry-orders-retry-1", 1),
        ("retry-orders-dlt", 1),
    ]);
    produce(&kafka, "retry-orders", &["fail-always", "ok-1", "fail-once", "ok-2"].map(|p| (0, "k", p.to_string())));
    // A max.poll.interval.ms shorter than the back-offs: the waits pause partitions, they do not
    // stop polling.
    let factory = impatient_factory(&kafka).build().unwrap();
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let running = ListenerRegistry::from_annotations()
        .only(["retry-orders"])
        .with_default_factory(factory)
        .with_template(template)
        .start()
        .await
        .unwrap();
    let letters = dead_letters(&kafka, "retry-orders-dlt", 1).await;
    let bootstrap = kafka.bootstrap_servers();
    wait_committed(&bootstrap, "retry-orders", "retry-orders", [(0, 4)].into()).await;
    wait_committed(&bootstrap, "retry-orders-retry-0", "retry-orders-retry-0", [(0, 2)].into()).await;
    wait_committed(&bootstrap, "retry-orders-retry-1", "retry-orders-retry-1", [(0, 1)].into()).await;
    for id in ["retry-orders", "retry-orders-retry-0", "retry-orders-retry-1"] {
        assert_eq!(running.container(id).expect(id).revocations(), 0, "{id}: no rebalance during the waits");
    }
    running.shutdown().await.unwrap();

    let always = deliveries(&ORDERS, "fail-always");
    let route: Vec<(&str, u32)> = always.iter().map(|(t, a, _)| (t.as_str(), *a)).collect();
    assert_eq!(route, [("retry-orders", 1), ("retry-orders-retry-0", 2), ("retry-orders-retry-1", 3)]);
    assert!(always[1].2 - always[0].2 >= Duration::from_millis(1400), "first retry after ~1.5 s");
    assert!(always[2].2 - always[1].2 >= Duration::from_millis(2900), "second retry after ~3 s (x2)");
    let once = deliveries(&ORDERS, "fail-once");
    let route: Vec<(&str, u32)> = once.iter().map(|(t, a, _)| (t.as_str(), *a)).collect();
    assert_eq!(route, [("retry-orders", 1), ("retry-orders-retry-0", 2)]);
    for ok in ["ok-1", "ok-2"] {
        let seen = deliveries(&ORDERS, ok);
        assert_eq!(seen.len(), 1, "{ok} handled once");
        assert!(seen[0].2 < always[1].2, "{ok} handled before the failed record's retry: the topic keeps flowing");
    }

    let letter = &letters[0];
    assert_eq!(letter.payload_str(), Some("fail-always"));
    assert_eq!(letter.headers.get_str(dlt_headers::ORIGINAL_TOPIC), Some("retry-orders"), "the first topic");
    assert_eq!(letter.headers.get(dlt_headers::ORIGINAL_OFFSET), Some(&0i64.to_be_bytes()[..]));
    assert!(letter.headers.get_str(dlt_headers::EXCEPTION_MESSAGE).unwrap().contains("always failing"));
    assert!(letter.headers.get(retry_headers::BACKOFF_TIMESTAMP).is_none(), "no retry state in the dead letter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_factory_policy_with_one_retry_topic_and_fatal_errors_straight_to_the_dlt() {
    let kafka = embedded(&[("single", 2), ("single-retry", 2), ("single-dlt", 2)]);
    produce(&kafka, "single", &[(1, "k", "fatal".into()), (1, "k", "flaky".into()), (1, "k", "ok".into())]);
    let factory = factory(&kafka, AckMode::Batch)
        .to_builder()
        .retry_topics(RetryTopics::new().attempts(4).backoff(Duration::from_millis(200)).single_topic(true))
        .build()
        .unwrap();
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let log: &'static Log = Box::leak(Box::default());
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .with_template(template)
        .register(Endpoint::new("single").topic("single").group("single").handler(move |text: String, meta: Meta| {
            log.lock().unwrap().push((text.clone(), meta.topic.clone(), meta.delivery_attempt(), Instant::now()));
            let result = match text.as_str() {
                "fatal" => Err(ListenerError::fatal(ListenerError::msg("cannot ever work"))),
                "flaky" if meta.delivery_attempt() < 3 => Err(ListenerError::msg("not yet")),
                _ => Ok(()),
            };
            std::future::ready(result)
        }))
        .start()
        .await
        .unwrap();
    let letters = dead_letters(&kafka, "single-dlt", 1).await;
    wait_until("flaky handled on its third attempt", Duration::from_secs(20), || {
        deliveries(log, "flaky").iter().any(|(_, a, _)| *a == 3)
    })
    .await;
    wait_committed(&kafka.bootstrap_servers(), "single-retry", "single-retry", [(1, 2)].into()).await;
    running.shutdown().await.unwrap();
    assert_eq!(letters[0].payload_str(), Some("fatal"));
    assert_eq!(letters[0].partition, 1, "the same partition");
    assert_eq!(deliveries(log, "fatal").len(), 1, "a fatal error is not retried");
    let flaky: Vec<(String, u32)> = deliveries(log, "flaky").into_iter().map(|(t, a, _)| (t, a)).collect();
    assert_eq!(
        flaky,
        [("single".into(), 1), ("single-retry".into(), 2), ("single-retry".into(), 3)],
        "both retries through the one retry topic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_topic_mistakes_are_start_errors() {
    let kafka = embedded(&[("misused", 1)]);
    let policy = RetryTopics::new().auto_create(false);
    let endpoint = |id: &str| Endpoint::new(id).topic("misused").group(id).retry_topics(policy.clone());
    let error = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .register(endpoint("no-template").handler(|_: String| std::future::ready(())))
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("no-template") && error.contains("with_template"), "{error}");
    assert!(
        error.contains("`misused-retry-0`, `misused-retry-1`, `misused-dlt` do not exist"),
        "names the missing topics: {error}"
    );

    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let error = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .with_template(template)
        .register(endpoint("batched").batch_handler(|_: Vec<String>| std::future::ready(())))
        .register(
            endpoint("doubled")
                .retry_topics(RetryTopics::new().attempts(3).multiplier(2.0).single_topic(true).auto_create(false))
                .handler(|_: String| std::future::ready(())),
        )
        .start()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("batched") && error.contains("record by record"), "{error}");
    assert!(error.contains("doubled") && error.contains("single_topic needs a fixed back-off"), "{error}");
}
