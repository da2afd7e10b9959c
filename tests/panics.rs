//! A panic in code the container calls — an assignment callback, a record filter, a record
//! interceptor, a recoverer, the factory's event listener — is contained: it is logged and told
//! as a `Panicked` event, the record concerned gets a defined fate, and the container goes on
//! (issue 10, scenario 5; each ended the consumer thread at the panic).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use kafka_listener::container::ContainerEvent;
use kafka_listener::error_handler::Recoverer;
use kafka_listener::handler::RecordInterceptor;
use kafka_listener::prelude::*;
use kafka_listener::{FailedRecord, Record};

/// Panics the first time it is called.
#[derive(Clone, Default)]
struct Once(Arc<AtomicBool>);

impl Once {
    fn maybe_panic(&self, what: &str) {
        if !self.0.swap(true, Ordering::SeqCst) {
            panic!("{what} panics once");
        }
    }
}

struct PanickingInterceptor(Once);

/// Upper-cases every value; panics the first time it sees record 1.
impl RecordInterceptor for PanickingInterceptor {
    fn intercept<'r>(&self, record: Record<'r>, _listener_id: &str) -> Option<Record<'r>> {
        if record.offset() == 1 {
            self.0.maybe_panic("the interceptor");
        }
        let upper = record.payload().map(<[u8]>::to_ascii_uppercase);
        Some(record.with_payload(upper))
    }
}

struct PanickingRecoverer(Once);

impl Recoverer for PanickingRecoverer {
    fn recover(&self, _failed: &FailedRecord<'_>) -> Result<(), kafka_listener::Error> {
        self.0.maybe_panic("the recoverer");
        Ok(())
    }
}

/// (topic, offset, value) of each delivery.
type Seen = Arc<Mutex<Vec<(String, i64, String)>>>;

/// A listener on its own topic that records what it saw; `fails` makes it fail on record 1.
fn listener(id: &str, seen: &Seen, fails: bool) -> Endpoint {
    let sink = seen.clone();
    Endpoint::new(id).topic(id).group(id).blocking_handler(move |meta: Meta, value: String| {
        sink.lock().unwrap().push((meta.topic.clone(), meta.offset, value));
        if fails && meta.offset == 1 && meta.delivery_attempt() == 1 {
            return Err(ListenerError::msg("failing record 1 once"));
        }
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_in_callbacks_are_contained_and_the_records_handled() {
    let topics = ["panic-assigned", "panic-filter", "panic-interceptor", "panic-recoverer", "panic-events"];
    let kafka = embedded(&topics.map(|t| (t, 1)));
    for topic in topics {
        produce(&kafka, topic, &numbered(3));
    }
    let bootstrap = kafka.bootstrap_servers();
    let events: Arc<Mutex<Vec<ContainerEvent>>> = Arc::default();
    let sink = events.clone();
    let base = factory(&kafka, AckMode::Record)
        .to_builder()
        .event_listener(move |event| sink.lock().unwrap().push(event.clone()))
        .build()
        .unwrap();
    let seen: Seen = Arc::default();

    let assigned = Once::default();
    let on_assigned = listener("panic-assigned", &seen, false)
        .on_partitions_assigned(move |_partitions, _consumer| assigned.maybe_panic("the assignment callback"));
    let filtered = Once::default();
    // Panics the first time it sees record 1, and discards it.
    let filter = listener("panic-filter", &seen, false).filter(move |record| {
        if record.offset() == 1 {
            filtered.maybe_panic("the filter");
            return false;
        }
        true
    });
    let interceptor = listener("panic-interceptor", &seen, false).container_factory("intercepting");
    let recoverer = listener("panic-recoverer", &seen, true)
        .error_handler(DefaultErrorHandler::new().max_retries(0).recoverer(PanickingRecoverer(Once::default())));
    let on_event = Once::default();
    let event_listener = listener("panic-events", &seen, false).container_factory("events");

    let running = ListenerRegistry::empty()
        .with_default_factory(base.clone())
        .with_factory(
            "intercepting",
            base.to_builder().record_interceptor(PanickingInterceptor(Once::default())).build().unwrap(),
        )
        .with_factory(
            "events",
            base.to_builder().event_listener(move |_| on_event.maybe_panic("the event listener")).build().unwrap(),
        )
        .register(on_assigned)
        .register(filter)
        .register(interceptor)
        .register(recoverer)
        .register(event_listener)
        .start()
        .await
        .unwrap();
    for topic in topics {
        wait_committed(&bootstrap, topic, topic, [(0, 3)].into()).await;
        assert!(running.container(topic).unwrap().is_running(), "{topic}: the container runs on");
    }
    running.shutdown().await.unwrap();

    let seen = seen.lock().unwrap().clone();
    let of = |topic: &str| seen.iter().filter(|(t, ..)| t == topic).map(|(_, o, _)| *o).collect::<Vec<_>>();
    assert_eq!(of("panic-assigned"), [0, 1, 2]);
    // The record the filter or interceptor panicked on went to the error handler (a failed
    // attempt); its retry ran them again: the filter discarded it, the interceptor changed it.
    assert_eq!(of("panic-filter"), [0, 2]);
    let values: Vec<&str> =
        seen.iter().filter(|(t, ..)| t == "panic-interceptor").map(|(_, _, v)| v.as_str()).collect();
    assert_eq!(values, ["V0", "V1", "V2"]);
    // Record 1 fails once, the recoverer panics: the record is delivered again (never skipped
    // unrecovered), and handled.
    assert_eq!(of("panic-recoverer"), [0, 1, 1, 2]);
    assert_eq!(of("panic-events"), [0, 1, 2]);

    let events = events.lock().unwrap().clone();
    let panicked = |listener: &str, during: &str| {
        events.iter().any(|e| {
            matches!(e, ContainerEvent::Panicked { listener: l, during: d, stopped: false, .. } if l == listener && d.contains(during))
        })
    };
    assert!(panicked("panic-assigned", "on_partitions_assigned"), "{events:#?}");
    assert!(panicked("panic-filter", "record filter"), "{events:#?}");
    assert!(panicked("panic-interceptor", "record interceptor"), "{events:#?}");
    assert!(panicked("panic-recoverer", "error handler"), "{events:#?}");
    assert!(!events.iter().any(|e| matches!(e, ContainerEvent::Panicked { stopped: true, .. })), "{events:#?}");
}
