//! OpenTelemetry context across Kafka (cargo feature `opentelemetry`), as Spring's observation
//! and the OpenTelemetry Kafka instrumentations do: sends inject the current context into the
//! record's headers (W3C Trace Context: `traceparent`, `tracestate`), and a `process` span takes
//! the context of the record it delivers as its parent.
//!
//! The propagator is the global one (`opentelemetry::global::set_text_map_propagator`) when the
//! application installed one, else W3C Trace Context (`TraceContextPropagator`).

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::extract::Record;

/// At most this many records of a batch are linked from its `process` span.
const BATCH_LINKS: usize = 128;

/// Calls `f` with the application's propagator, or W3C Trace Context when it installed none.
fn with_propagator<T>(mut f: impl FnMut(&dyn TextMapPropagator) -> T) -> T {
    // The default global propagator is a no-op with no fields.
    let installed = opentelemetry::global::get_text_map_propagator(|propagator| propagator.fields().next().is_some());
    if installed {
        opentelemetry::global::get_text_map_propagator(f)
    } else {
        f(&TraceContextPropagator::new())
    }
}

/// Headers of a record being read.
struct RecordHeaders<'r, 'a>(&'r Record<'a>);

impl Extractor for RecordHeaders<'_, '_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.header(key).flatten().and_then(|value| std::str::from_utf8(value).ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.raw_headers().into_iter().filter_map(|(name, _)| std::str::from_utf8(name).ok()).collect()
    }
}

/// The record's context (an invalid one when it carries none).
fn context_of(record: &Record<'_>) -> opentelemetry::Context {
    with_propagator(|propagator| propagator.extract(&RecordHeaders(record)))
}

/// Makes the record's context (from its headers) the span's parent, when it carries one.
pub(crate) fn adopt_parent(span: &Span, record: &Record<'_>) {
    let cx = context_of(record);
    if cx.span().span_context().is_valid() {
        // Fails only when the span is already started elsewhere: then it keeps its parent.
        let _ = span.set_parent(cx);
    }
}

/// Links a batch's span to the contexts its records carry (OpenTelemetry's advice for batch
/// receives: links, not one parent).
pub(crate) fn link_batch(span: &Span, records: &[Record<'_>]) {
    for record in records.iter().take(BATCH_LINKS) {
        let cx = context_of(record);
        let span_context = cx.span().span_context().clone();
        if span_context.is_valid() {
            span.add_link(span_context);
        }
    }
}

/// Headers a send adds, as (name, value).
#[derive(Default)]
struct Collected(Vec<(String, String)>);

impl Injector for Collected {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_string(), value));
    }
}

/// The headers that carry `span`'s context (none when it has no valid context, e.g. no
/// OpenTelemetry layer is installed).
pub(crate) fn headers_for(span: &Span) -> Vec<(String, String)> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut collected = Collected::default();
    with_propagator(|propagator| propagator.inject_context(&cx, &mut collected));
    collected.0
}
