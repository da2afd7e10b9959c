//! Replies from listeners (`reply_to` or the request's `kafka_replyTopic`) and `ReplyingTemplate`,
//! with Spring's header names on the wire.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::future::join_all;
use kafka_listener::prelude::*;
use kafka_listener::producer::headers;
use kafka_listener::Error;

#[derive(serde::Deserialize)]
struct Quote {
    item: String,
    quantity: u32,
}

#[derive(serde::Serialize)]
struct Priced {
    item: String,
    total_cents: u32,
}

/// Replies to a fixed topic.
#[kafka_listener(id = "pricing", topic = "price-requests", group = "pricing", reply_to = "price-replies")]
async fn price(quote: Json<Quote>) -> Json<Priced> {
    Json(Priced { item: quote.item.clone(), total_cents: quote.quantity * 250 })
}

/// Replies where the request says (kafka_replyTopic), like a Spring `@SendTo` without a topic.
#[kafka_listener(id = "shout", topic = "shout-requests", group = "shout")]
fn shout(text: String) -> Result<String, ListenerError> {
    if text.is_empty() {
        return Err(ListenerError::msg("nothing to shout"));
    }
    Ok(text.to_uppercase())
}

fn template(kafka: &EmbeddedKafka) -> KafkaTemplate {
    KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap()
}

async fn start(kafka: &EmbeddedKafka, ids: &[&str]) -> RunningListeners {
    ListenerRegistry::from_annotations()
        .only(ids.iter().copied())
        .with_default_factory(factory(kafka, AckMode::Batch))
        .with_template(template(kafka))
        .start()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replying_template_calls_listeners_concurrently() {
    let kafka = embedded(&[("shout-requests", 2), ("shout-replies", 2), ("price-requests", 1), ("price-replies", 1)]);
    let running = start(&kafka, &["shout", "pricing"]).await;
    let client = ReplyingTemplate::new(template(&kafka), "shout-replies").unwrap();
    let words: Vec<String> = (0..40).map(|i| format!("word-{i}")).collect();
    let replies = join_all(words.iter().map(|w| client.request("shout-requests", w.as_str()))).await;
    for (word, reply) in words.iter().zip(replies) {
        assert_eq!(reply.unwrap().payload_str(), Some(word.to_uppercase().as_str()), "each reply matches its request");
    }
    let priced = ReplyingTemplate::new(template(&kafka), "price-replies").unwrap();
    let reply = priced.request("price-requests", r#"{"item":"tea","quantity":3}"#).await.unwrap();
    assert_eq!(reply.topic, "price-replies", "reply_to wins");
    assert_eq!(reply.payload_str(), Some(r#"{"item":"tea","total_cents":750}"#));
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_nobody_answers_times_out() {
    let kafka = embedded(&[("void", 1), ("void-replies", 1)]);
    let client =
        ReplyingTemplate::new(template(&kafka), "void-replies").unwrap().with_timeout(Duration::from_millis(800));
    let error = client.request("void", "anyone?").await.unwrap_err();
    assert!(matches!(&error, Error::ReplyTimeout { topic, .. } if topic == "void"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wire_format_is_springs() {
    let kafka = embedded(&[("shout-requests", 1), ("wire-replies", 1), ("spring-requests", 1), ("spring-replies", 1)]);
    let running = start(&kafka, &["shout"]).await;

    // A Spring ReplyingKafkaTemplate's request: correlation id bytes and the reply topic, by name.
    let correlation = [7u8; 16];
    template(&kafka)
        .send("shout-requests", "hello")
        .header(headers::CORRELATION_ID, correlation)
        .header(headers::REPLY_TOPIC, "wire-replies")
        .header(headers::REPLY_PARTITION, 0i32.to_be_bytes())
        .await
        .unwrap();
    let (reader, landed) = collect(&kafka, "wire-replies").await;
    wait_until("the reply", Duration::from_secs(20), || landed.lock().unwrap().len() == 1).await;
    let reply = landed.lock().unwrap()[0].clone();
    assert_eq!(reply.payload_str(), Some("HELLO"));
    assert_eq!(reply.headers.get(headers::CORRELATION_ID), Some(&correlation[..]), "correlation id copied");
    reader.shutdown().await.unwrap();

    // A Spring @SendTo listener, as Spring answers: the reply goes to kafka_replyTopic with the
    // request's kafka_correlationId. Our ReplyingTemplate calls it.
    let spring = template(&kafka);
    let answering = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .register(Endpoint::new("spring").topic("spring-requests").group("spring").handler(
            move |request: ConsumerRecord| {
                let spring = spring.clone();
                async move {
                    let topic = request.headers.get_str(headers::REPLY_TOPIC).unwrap().to_string();
                    let correlation = request.headers.get(headers::CORRELATION_ID).unwrap().to_vec();
                    let answer = format!("spring got {}", request.payload_str().unwrap());
                    spring.send(&topic, answer).header(headers::CORRELATION_ID, correlation).await.unwrap();
                }
            },
        ))
        .start()
        .await
        .unwrap();
    let client = ReplyingTemplate::new(template(&kafka), "spring-replies").unwrap();
    let reply = client.request("spring-requests", "ping").await.unwrap();
    assert_eq!(reply.payload_str(), Some("spring got ping"));
    answering.shutdown().await.unwrap();
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replying_listener_needs_a_template_and_a_destination() {
    let kafka = embedded(&[("shout-requests", 1), ("lost", 1)]);
    let result = ListenerRegistry::from_annotations()
        .only(["shout"])
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .start()
        .await;
    let error = result.unwrap_err();
    assert!(
        error.to_string().contains("returns a value to publish as a reply")
            && error.to_string().contains("with_template"),
        "{error}"
    );

    // A request without kafka_replyTopic to a listener without reply_to: not retried, skipped.
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    struct Recording(Arc<Mutex<Vec<String>>>);
    impl ErrorHandler for Recording {
        fn handle_record(&self, failed: &kafka_listener::FailedRecord<'_>) -> ErrorDecision {
            self.0.lock().unwrap().push(failed.failure.to_string());
            DefaultErrorHandler::default().handle_record(failed)
        }
    }
    let factory = factory(&kafka, AckMode::Batch).to_builder().error_handler(Recording(seen)).build().unwrap();
    let running = ListenerRegistry::from_annotations()
        .only(["shout"])
        .with_default_factory(factory)
        .with_template(template(&kafka))
        .start()
        .await
        .unwrap();
    template(&kafka).send("shout-requests", "no destination").await.unwrap();
    wait_committed(&kafka.bootstrap_servers(), "shout", "shout-requests", [(0, 1)].into()).await;
    running.shutdown().await.unwrap();
    let errors = errors.lock().unwrap().clone();
    assert_eq!(errors.len(), 1, "not retried: {errors:?}");
    assert!(errors[0].contains("has no destination"), "{errors:?}");
}
