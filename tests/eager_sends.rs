//! Sends are queued when they are sent, not when their future is first polled: a record reaches
//! the broker while its delivery is still unawaited; records keep the order of their sends through
//! every path (queued at once, waiting for a partition count, waiting for room in a full queue);
//! `send_all` reports one outcome per record; a dropped delivery is still delivered and told to
//! the producer listener.

mod common;

use std::time::Duration;

use common::*;
use kafka_listener::prelude::*;
use kafka_listener::{test, Error};

fn template(kafka: &EmbeddedKafka) -> kafka_listener::producer::KafkaTemplateBuilder {
    KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).set("linger.ms", "5")
}

/// The payloads of `topic` in partition then offset order.
async fn payloads(kafka: &EmbeddedKafka, topic: &str, count: usize) -> Vec<String> {
    test::records(&kafka.bootstrap_servers(), topic, count, Duration::from_secs(20))
        .await
        .unwrap()
        .iter()
        .map(|r| String::from_utf8(r.payload.clone().unwrap().to_vec()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_record_reaches_the_broker_before_its_delivery_is_awaited() {
    let kafka = embedded(&[("eager", 1)]);
    let template = template(&kafka).build().unwrap();
    let delivery = template.send("eager", "first").key("k").queue();
    // Nothing polls `delivery`: a lazy send would never reach the broker.
    assert_eq!(payloads(&kafka, "eager", 1).await, ["first"]);
    let stored = delivery.await.unwrap();
    assert_eq!((stored.topic(), stored.partition(), stored.offset()), ("eager", 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_queued_in_a_loop_keep_their_order_and_each_delivery_says_where() {
    let kafka = embedded(&[("ordered", 1)]);
    let template = template(&kafka).build().unwrap();
    let deliveries: Vec<_> = (0..2_000).map(|i| template.send("ordered", format!("{i}")).queue()).collect();
    for (i, delivery) in deliveries.into_iter().enumerate() {
        assert_eq!(delivery.await.unwrap().offset(), i as i64);
    }
    let expected: Vec<String> = (0..2_000).map(|i| i.to_string()).collect();
    assert_eq!(payloads(&kafka, "ordered", 2_000).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_waiting_for_a_partition_count_keep_their_order_with_those_sent_after_them() {
    let kafka = embedded(&[("counted", 3)]);
    // The partitioner needs the topic's partition count, unknown until the broker says: the first
    // records wait in the template, and later ones (count known by then or not) queue behind them.
    let template = template(&kafka).partitioner(DefaultPartitioner).build().unwrap();
    let mut deliveries = Vec::new();
    for i in 0..300 {
        deliveries.push(template.send("counted", format!("{i}")).key("one-key").queue());
        if i == 150 {
            // Some sends after the count is known.
            assert_eq!(template.partition_count("counted").await.unwrap(), 3);
        }
    }
    let mut offsets = Vec::new();
    for delivery in deliveries {
        let stored = delivery.await.unwrap();
        assert_eq!(stored.partition(), DefaultPartitioner.partition("counted", Some(b"one-key"), None, 3));
        offsets.push(stored.offset());
    }
    assert_eq!(offsets, (0..300).collect::<Vec<i64>>(), "one key, one partition, in the order sent");
    let expected: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    assert_eq!(payloads(&kafka, "counted", 300).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_sent_while_the_queue_is_full_wait_in_order() {
    let kafka = embedded(&[("full", 1)]);
    // Room for 10 records in librdkafka's queue: most of the 500 wait in the template.
    let template = template(&kafka).set("queue.buffering.max.messages", "10").build().unwrap();
    let deliveries: Vec<_> = (0..500).map(|i| template.send("full", format!("{i}")).queue()).collect();
    let mut offsets = Vec::new();
    for delivery in deliveries {
        offsets.push(delivery.await.unwrap().offset());
    }
    assert_eq!(offsets, (0..500).collect::<Vec<i64>>());
    let expected: Vec<String> = (0..500).map(|i| i.to_string()).collect();
    assert_eq!(payloads(&kafka, "full", 500).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_all_gives_one_outcome_per_record_and_a_failure_does_not_stop_the_others() {
    let kafka = embedded(&[("batch", 2)]);
    let template = template(&kafka).set("message.max.bytes", "2000").build().unwrap();
    let big = "x".repeat(5_000);
    let payloads_sent: Vec<String> =
        (0..50).map(|i| if i == 20 { big.clone() } else { format!("record {i}") }).collect();
    let sent = template
        .send_all(
            payloads_sent.iter().enumerate().map(|(i, p)| template.send("batch", p.as_str()).partition(i as i32 % 2)),
        )
        .await;
    assert_eq!(sent.outcomes().len(), 50);
    assert!(!sent.is_ok());
    let failures: Vec<(usize, String)> = sent.failures().map(|(i, e)| (i, e.to_string())).collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, 20);
    assert!(matches!(sent.outcomes()[20], Err(Error::MessageTooLarge { .. })), "{:?}", sent.outcomes()[20]);
    for (i, outcome) in sent.outcomes().iter().enumerate().filter(|(i, _)| *i != 20) {
        assert_eq!(outcome.as_ref().unwrap().partition(), i as i32 % 2);
    }
    match sent.into_result() {
        Err(Error::MessageTooLarge { topic, bytes }) => assert_eq!((topic.as_str(), bytes), ("batch", 5_000)),
        other => panic!("the first failure: {other:?}"),
    }
    assert_eq!(payloads(&kafka, "batch", 49).await.len(), 49);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_delivery_is_still_delivered_and_told_to_the_producer_listener() {
    let kafka = embedded(&[("forgotten", 1)]);
    let outcomes = ProducerOutcomes::default();
    let template =
        template(&kafka).producer_listener(outcomes.clone()).set("message.max.bytes", "2000").build().unwrap();
    for i in 0..3 {
        drop(template.send("forgotten", format!("fire and forget {i}")).queue());
    }
    // A failure of a dropped delivery reaches the listener too.
    drop(template.send("forgotten", vec![0u8; 5_000]).queue());
    wait_until("every outcome told", Duration::from_secs(20), || outcomes.outcomes().len() == 4).await;
    let mut told = outcomes.outcomes();
    told.sort();
    // Sorted, the failure comes first ("error" < "ok").
    assert!(told[0].starts_with("error forgotten: a record of 5000 bytes"), "{told:?}");
    assert_eq!(told[1..], ["ok forgotten-0@0", "ok forgotten-0@1", "ok forgotten-0@2"]);
    assert_eq!(payloads(&kafka, "forgotten", 3).await, ["fire and forget 0", "fire and forget 1", "fire and forget 2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_that_does_not_serialize_fails_its_delivery_with_the_reason() {
    #[derive(serde::Serialize)]
    struct Bad(std::collections::HashMap<(u8, u8), u8>);
    let kafka = embedded(&[("serial", 1)]);
    let template = template(&kafka).build().unwrap();
    let bad = Bad([((1, 2), 3)].into());
    let error = template.send("serial", Json(&bad)).queue().await.unwrap_err();
    assert!(matches!(&error, Error::Serialization { topic, part: "value", .. } if topic == "serial"), "{error}");
}
