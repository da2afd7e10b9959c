//! Kafka's nulls and raw bytes reach listeners as they are: tombstones, keyless records and
//! null-valued headers as `None`, header names and values that are not UTF-8 as bytes — and a
//! dead letter keeps them (issue 10, scenarios 4 and 5).

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::*;
use kafka_listener::error_handler::DeadLetterRecoverer;
use kafka_listener::prelude::*;

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct Profile {
    name: String,
}

fn profile(name: &str) -> Option<Profile> {
    Some(Profile { name: name.to_string() })
}

/// u1->{a}, u1->tombstone, u2->{b}, no key->{c}, u3->{d}.
async fn produce_profiles(template: &KafkaTemplate, topic: &str) {
    let value = |name: &str| Some(format!("{{\"name\":\"{name}\"}}"));
    let records: [(Option<&str>, Option<String>); 5] = [
        (Some("u1"), value("a")),
        (Some("u1"), None),
        (Some("u2"), value("b")),
        (None, value("c")),
        (Some("u3"), value("d")),
    ];
    for (key, value) in records {
        template.send(topic, value).key(key).partition(0).await.unwrap();
    }
}

static BOTH_OPTIONAL: Mutex<Vec<(Option<String>, Option<Profile>)>> = Mutex::new(Vec::new());

#[kafka_listener(id = "null-both", topic = "profiles", group = "null-both")]
fn both_optional(profile: Json<Option<Profile>>, key: Option<Key<String>>) {
    BOTH_OPTIONAL.lock().unwrap().push((key.map(|k| k.0), profile.0));
}

static KEY_REQUIRED: Mutex<Vec<(String, Option<Profile>)>> = Mutex::new(Vec::new());

#[kafka_listener(id = "null-key-required", topic = "profiles", group = "null-key-required")]
fn key_required(profile: Option<Json<Profile>>, key: Key<String>) {
    KEY_REQUIRED.lock().unwrap().push((key.0, profile.map(|p| p.0)));
}

static BATCH_JSON_OPTION: Mutex<Vec<Option<Profile>>> = Mutex::new(Vec::new());

#[kafka_listener(id = "null-batch-json-option", topic = "profiles", group = "null-batch-json-option", batch = true)]
fn batch_json_option(profiles: Vec<Json<Option<Profile>>>) {
    BATCH_JSON_OPTION.lock().unwrap().extend(profiles.into_iter().map(|p| p.0));
}

static BATCH_OPTION_JSON: Mutex<Vec<(Option<String>, Option<Profile>)>> = Mutex::new(Vec::new());

#[kafka_listener(id = "null-batch-option-json", topic = "profiles", group = "null-batch-option-json", batch = true)]
fn batch_option_json(profiles: Vec<Option<Json<Profile>>>, keys: Vec<Option<Key<String>>>) {
    BATCH_OPTION_JSON
        .lock()
        .unwrap()
        .extend(keys.into_iter().zip(profiles).map(|(k, p)| (k.map(|k| k.0), p.map(|p| p.0))));
}

/// Scenario 4: every listener sees the tombstone (as `None`) and the keyless record where its
/// parameters allow it; a required key still makes the keyless record a conversion error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_and_keyless_records_reach_optional_parameters() {
    let kafka = embedded(&[("profiles", 1)]);
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    produce_profiles(&template, "profiles").await;
    let ids = ["null-both", "null-key-required", "null-batch-json-option", "null-batch-option-json"];
    let running = ListenerRegistry::from_annotations()
        .only(ids)
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .start()
        .await
        .unwrap();
    let bootstrap = kafka.bootstrap_servers();
    for group in ids {
        wait_committed(&bootstrap, group, "profiles", [(0, 5)].into()).await;
    }
    running.shutdown().await.unwrap();

    let key = |k: &str| Some(k.to_string());
    // (key, value) of the five records, as Options.
    let all = [
        (key("u1"), profile("a")),
        (key("u1"), None),
        (key("u2"), profile("b")),
        (None, profile("c")),
        (key("u3"), profile("d")),
    ];
    assert_eq!(*BOTH_OPTIONAL.lock().unwrap(), all);
    let keyed: Vec<(String, Option<Profile>)> =
        all.iter().filter_map(|(k, p)| k.clone().map(|k| (k, p.clone()))).collect();
    assert_eq!(
        *KEY_REQUIRED.lock().unwrap(),
        keyed,
        "the keyless record is a conversion error for Key<String> (skipped by the error handler)"
    );
    let values: Vec<Option<Profile>> = all.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(*BATCH_JSON_OPTION.lock().unwrap(), values);
    assert_eq!(*BATCH_OPTION_JSON.lock().unwrap(), all);
}

/// A value that is present but not JSON for `T` is still a conversion error under `Option<Json<T>>`,
/// and a tombstone under `Json<T>` names the `Option` way out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_present_but_undecodable_value_is_still_a_conversion_error() {
    let kafka = embedded(&[("undecodable", 1), ("undecodable-dlt", 1)]);
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    template.send("undecodable", "not json").key("k").await.unwrap();
    template.send("undecodable", None::<String>).key("k").await.unwrap();
    template.send("undecodable", "{\"name\":\"ok\"}").key("k").await.unwrap();
    let seen: std::sync::Arc<Mutex<Vec<Option<Profile>>>> = Default::default();
    let sink = seen.clone();
    let lenient = Endpoint::new("undecodable")
        .topic("undecodable")
        .group("undecodable")
        .blocking_handler(move |profile: Option<Json<Profile>>| sink.lock().unwrap().push(profile.map(|p| p.0)));
    let strict = Endpoint::new("undecodable-strict")
        .topic("undecodable")
        .group("undecodable-strict")
        .error_handler(DefaultErrorHandler::new().recoverer(DeadLetterRecoverer::new(template.clone())))
        .blocking_handler(|_: Json<Profile>| {});
    let running = start_listeners(factory(&kafka, AckMode::Batch), [lenient, strict]).await;
    let letters = dead_letters(&kafka, "undecodable-dlt", 2).await;
    wait_committed(&kafka.bootstrap_servers(), "undecodable", "undecodable", [(0, 3)].into()).await;
    running.shutdown().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [None, profile("ok")], "the bad JSON went to the error handler");
    let reasons: Vec<String> = letters
        .iter()
        .map(|l| l.headers.get_str(kafka_listener::error_handler::dlt_headers::EXCEPTION_MESSAGE).unwrap().to_string())
        .collect();
    assert!(reasons[0].contains("expected ident") || reasons[0].contains("expected value"), "{reasons:?}");
    assert!(reasons[1].contains("tombstone") && reasons[1].contains("Option<"), "{reasons:?}");
    assert_eq!(letters[1].payload, None, "the tombstone stays a tombstone in the DLT");
}

/// Scenario 5, first half: a header named [ff fe 'k'] and a header value [c3 28]; a record
/// listener sees every record (rust-rdkafka 0.39's accessor panicked on the name), the name is
/// kept byte for byte, a null header value stays null, and the dead letter keeps all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_names_and_values_are_bytes_and_nulls_stay_null() {
    let kafka = embedded(&[("raw-headers", 1), ("raw-headers-dlt", 1)]);
    let template = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let odd_name: &[u8] = &[0xff, 0xfe, b'k'];
    let odd_value: &[u8] = &[0xc3, 0x28];
    template.send("raw-headers", "odd").raw_header(odd_name, Some(b"v")).await.unwrap();
    template.send("raw-headers", "after").await.unwrap();
    template.send("raw-headers", "valodd").header("h", odd_value).null_header("nothing").await.unwrap();

    let seen: std::sync::Arc<Mutex<Vec<ConsumerRecord>>> = Default::default();
    let sink = seen.clone();
    let reader = Endpoint::new("raw-headers")
        .topic("raw-headers")
        .group("raw-headers")
        .blocking_handler(move |record: ConsumerRecord| sink.lock().unwrap().push(record));
    let failing = Endpoint::new("raw-headers-dead")
        .topic("raw-headers")
        .group("raw-headers-dead")
        .error_handler(DefaultErrorHandler::new().max_retries(0).recoverer(DeadLetterRecoverer::new(template.clone())))
        .blocking_handler(|_: ConsumerRecord| Err::<(), _>(ListenerError::msg("to the DLT")));
    let running = start_listeners(factory(&kafka, AckMode::Batch), [reader, failing]).await;
    let letters = dead_letters(&kafka, "raw-headers-dlt", 3).await;
    wait_until("all three records", Duration::from_secs(20), || seen.lock().unwrap().len() == 3).await;
    running.shutdown().await.unwrap();

    let records = seen.lock().unwrap().clone();
    assert_eq!(records.iter().map(|r| r.payload_str().unwrap()).collect::<Vec<_>>(), ["odd", "after", "valodd"]);
    let odd: Vec<(&[u8], Option<&[u8]>)> = records[0].headers.iter_raw().collect();
    assert_eq!(odd, [(odd_name, Some(&b"v"[..]))]);
    assert_eq!(
        records[0].headers.iter().next().map(|(name, _)| name.into_owned()),
        Some("\u{fffd}\u{fffd}k".to_string())
    );
    assert_eq!(records[2].headers.get("h"), Some(odd_value));
    assert_eq!(records[2].headers.get_str("h"), None, "not UTF-8");
    assert_eq!(records[2].headers.value("nothing"), Some(None), "a null value, not an empty one");
    assert_eq!(records[2].headers.value("absent"), None);

    let originals: Vec<Vec<(Vec<u8>, Option<Vec<u8>>)>> = records
        .iter()
        .map(|r| r.headers.iter_raw().map(|(n, v)| (n.to_vec(), v.map(<[u8]>::to_vec))).collect())
        .collect();
    for (letter, original) in letters.iter().zip(&originals) {
        let kept: Vec<(Vec<u8>, Option<Vec<u8>>)> = letter
            .headers
            .iter_raw()
            .filter(|(n, _)| !n.starts_with(b"kafka_dlt-"))
            .map(|(n, v)| (n.to_vec(), v.map(<[u8]>::to_vec)))
            .collect();
        assert_eq!(&kept, original, "the dead letter of {:?} keeps its headers as they were", letter.payload_str());
    }
}
