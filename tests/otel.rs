//! OpenTelemetry context across Kafka (cargo feature `opentelemetry`): a send from inside a span
//! carries W3C `traceparent`, the listener's `process` span continues that trace, and its reply
//! (and a dead-letter forward) continue it again. Spans are read from the OpenTelemetry SDK's
//! in-memory exporter, behind `tracing-opentelemetry`.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use kafka_listener::error_handler::DeadLetterRecoverer;
use kafka_listener::prelude::*;
use opentelemetry::trace::{SpanId, SpanKind, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// Installs a subscriber exporting every span to memory, once for the binary.
fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let tracer = provider.tracer("kafka-listener-tests");
        let subscriber = tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
        tracing::subscriber::set_global_default(subscriber).expect("the first subscriber");
        exporter
    })
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

/// Waits for an exported span that `matches`.
async fn span_where(what: &str, matches: impl Fn(&SpanData) -> bool) -> SpanData {
    let mut found = None;
    wait_until(what, Duration::from_secs(30), || {
        found = exporter().get_finished_spans().unwrap().into_iter().find(|s| matches(s));
        found.is_some()
    })
    .await;
    found.unwrap()
}

fn is(span: &SpanData, name: &str, attribute_key: &str, value: &str) -> bool {
    span.name == name && attribute(span, attribute_key).as_deref() == Some(value)
}

/// `00-<trace id>-<span id>-<flags>`.
fn traceparent(trace: TraceId, span: SpanId) -> String {
    format!("00-{trace}-{span}-01")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_goes_from_the_send_through_the_listener_to_its_reply() {
    exporter();
    let kafka = embedded(&[("otel-requests", 1), ("otel-replies", 1)]);
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let endpoint = Endpoint::new("otel-echo")
        .topic("otel-requests")
        .group("otel-echo")
        .reply_to("otel-replies")
        .handler(|text: String| async move { text.to_uppercase() });
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Record))
        .with_template(template.clone())
        .register(endpoint)
        .start()
        .await
        .unwrap();

    let checkout = tracing::info_span!("checkout");
    async { template.send("otel-requests", "hello").await.unwrap() }.instrument(checkout).await;
    let replies = dead_letters(&kafka, "otel-replies", 1).await;
    running.shutdown().await.unwrap();

    let root = span_where("the checkout span", |s| s.name == "checkout").await;
    let trace = root.span_context.trace_id();
    let send =
        span_where("the request's send span", |s| is(s, "send", "messaging.destination.name", "otel-requests")).await;
    assert_eq!(send.span_context.trace_id(), trace, "the send continues the caller's trace");
    assert_eq!(send.parent_span_id, root.span_context.span_id());
    assert_eq!(send.span_kind, SpanKind::Producer);
    assert_eq!(attribute(&send, "messaging.kafka.offset").as_deref(), Some("0"));

    let process =
        span_where("the listener's process span", |s| is(s, "process", "kafka_listener.id", "otel-echo")).await;
    assert_eq!(process.span_context.trace_id(), trace, "the listener's span continues the producer's trace");
    assert_eq!(process.parent_span_id, send.span_context.span_id(), "its parent is the send, across Kafka");
    assert!(process.parent_span_is_remote);
    assert_eq!(process.span_kind, SpanKind::Consumer);
    assert_eq!(attribute(&process, "messaging.system").as_deref(), Some("kafka"));

    let reply =
        span_where("the reply's send span", |s| is(s, "send", "messaging.destination.name", "otel-replies")).await;
    assert_eq!(reply.span_context.trace_id(), trace, "the reply continues the trace");
    assert_eq!(reply.parent_span_id, process.span_context.span_id(), "sent inside the process span");

    // On the wire: the reply record carries the reply send's context.
    let header = replies[0].headers.get_str("traceparent").expect("the reply's traceparent header");
    assert_eq!(header, traceparent(trace, reply.span_context.span_id()));
    assert_eq!(replies[0].payload_str(), Some("HELLO"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_forward_continues_the_failed_records_trace() {
    exporter();
    let kafka = embedded(&[("otel-payments", 1), ("otel-payments-dlt", 1)]);
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let handler = DefaultErrorHandler::new().max_retries(0).recoverer(DeadLetterRecoverer::new(template.clone()));
    let endpoint = Endpoint::new("otel-payments")
        .topic("otel-payments")
        .group("otel-payments")
        .error_handler(handler)
        .handler(|_: String| async { Err::<(), _>(ListenerError::msg("declined")) });
    let running = start_listeners(factory(&kafka, AckMode::Record), [endpoint]).await;
    let pay = tracing::info_span!("pay");
    async { template.send("otel-payments", "card").await.unwrap() }.instrument(pay).await;
    let letters = dead_letters(&kafka, "otel-payments-dlt", 1).await;
    running.shutdown().await.unwrap();

    let root = span_where("the pay span", |s| s.name == "pay").await;
    let trace = root.span_context.trace_id();
    let process =
        span_where("the failed delivery's span", |s| is(s, "process", "kafka_listener.id", "otel-payments")).await;
    assert_eq!(process.span_context.trace_id(), trace);
    assert_eq!(attribute(&process, "error.type").as_deref(), Some("handler"));
    assert_eq!(process.status, opentelemetry::trace::Status::error(""));
    let forward =
        span_where("the dead-letter send", |s| is(s, "send", "messaging.destination.name", "otel-payments-dlt")).await;
    assert_eq!(forward.span_context.trace_id(), trace);
    assert_eq!(forward.parent_span_id, process.span_context.span_id());
    // The forward replaced the failed record's traceparent (the producer's) with its own.
    let headers: Vec<_> = letters[0].headers.iter().filter(|(name, _)| name == "traceparent").collect();
    assert_eq!(headers.len(), 1, "one traceparent header");
    assert_eq!(
        letters[0].headers.get_str("traceparent"),
        Some(traceparent(trace, forward.span_context.span_id()).as_str())
    );
}
