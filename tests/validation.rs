//! `start()` validates everything before any consumer starts and reports every problem at once;
//! factories reject invalid settings; secrets never show.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use kafka_listener::prelude::*;
use kafka_listener::Error;

#[derive(Clone)]
struct Missing;

fn noop(id: &str, topic: &str) -> Endpoint {
    Endpoint::new(id).topic(topic).handler(|_: String| async {})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_reports_every_problem_at_once() {
    let kafka = embedded(&[("exists", 1)]);
    let strict = factory(&kafka, AckMode::Batch).to_builder().missing_topics_fatal(true).build().unwrap();
    let result = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .with_factory("strict", strict)
        .register(noop("dup", "exists"))
        .register(noop("dup", "exists"))
        .register(noop("no-factory", "exists").container_factory("nope"))
        .register(
            Endpoint::new("acking").topic("exists").handler(|ack: Acknowledgment| async move { ack.acknowledge() }),
        )
        .register(Endpoint::new("stateful").topic("exists").handler(|_: State<Missing>| async {}))
        .register(noop("placeholder", "${KL_TEST_SURELY_UNSET_VARIABLE}"))
        .register(noop("missing-topic", "does-not-exist").container_factory("strict"))
        .register(Endpoint::new("no-topic").handler(|_: String| async {}))
        .register(noop("bad-property", "exists").property("no.such.property", "1"))
        .start()
        .await;
    let Err(error) = result else { panic!("start should fail") };
    let text = error.to_string();
    let problems = error.problems();
    let about = |listener: &str| -> Vec<String> {
        problems.iter().filter(|p| p.listener.as_deref() == Some(listener)).map(|p| p.message.clone()).collect()
    };
    assert!(about("dup")[0].contains("2 listeners have this id"), "{text}");
    assert!(
        about("no-factory")[0].contains("container_factory `nope`") && about("no-factory")[0].contains("`strict`"),
        "{text}"
    );
    let acking = &about("acking")[0];
    assert!(
        acking.contains("Acknowledgment") && acking.contains("Batch") && acking.contains("AckMode::Manual"),
        "{text}"
    );
    assert!(about("stateful")[0].contains("State<") && about("stateful")[0].contains("with_state"), "{text}");
    assert!(about("placeholder")[0].contains("KL_TEST_SURELY_UNSET_VARIABLE"), "{text}");
    assert!(about("missing-topic")[0].contains("`does-not-exist` does not exist"), "{text}");
    assert!(about("no-topic")[0].contains("names no topic"), "{text}");
    assert!(about("bad-property")[0].contains("no.such.property"), "{text}");
    assert_eq!(problems.len(), 8, "{text}");
    assert!(text.starts_with("the listeners cannot start (8 problems)"), "{text}");
}

/// start() against an unreachable broker answers with the error once the factory's startup timeout
/// runs out, not later: of two starts begun together, the one with the shorter timeout answers
/// first, though it was begun second; each error names the address and its own timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_is_reported_within_the_startup_timeout() {
    init_tracing();
    let start = |id: &'static str, timeout: Duration, answered: Arc<Mutex<Vec<&'static str>>>| {
        let factory =
            ContainerFactory::builder().bootstrap_servers("127.0.0.1:1").startup_timeout(timeout).build().unwrap();
        tokio::spawn(async move {
            let result = ListenerRegistry::empty().with_default_factory(factory).register(noop(id, "t")).start().await;
            answered.lock().unwrap().push(id);
            match result {
                Err(Error::Validation(problems)) => problems,
                Err(other) => panic!("{id}: expected a validation error, got {other}"),
                Ok(_) => panic!("{id}: started against an unreachable broker"),
            }
        })
    };
    let answered = Arc::new(Mutex::new(Vec::new()));
    let patient = start("patient", Duration::from_secs(5), answered.clone());
    let quick = start("quick", Duration::from_secs(1), answered.clone());
    // A deadline on the answers, so that a start() that waits on for the broker fails here.
    let (patient, quick) = tokio::time::timeout(Duration::from_secs(60), async { (patient.await, quick.await) })
        .await
        .expect("start() answers once its startup timeout has run out");
    let (patient, quick) = (patient.expect("patient start"), quick.expect("quick start"));
    assert_eq!(*answered.lock().unwrap(), ["quick", "patient"], "the shorter startup timeout answers first");
    for (problems, within) in [(quick, "within 1s"), (patient, "within 5s")] {
        assert_eq!(problems.len(), 1, "{problems:?}");
        let expected = format!("cannot reach the broker at `127.0.0.1:1` {within}");
        assert!(problems[0].message.contains(&expected), "{problems:?}");
    }
}

/// Set in the child process that runs an environment-dependent test.
const CHILD: &str = "KL_VALIDATION_TEST_CHILD";

/// Runs the test `name` of this binary alone in a child process, with `CHILD` and the variables
/// `set` set and `unset` removed, and asserts that it passed. Setting variables in this process
/// would race with the `getenv` calls of librdkafka threads of the tests running beside it.
async fn in_child_process(name: &'static str, set: &'static [(&str, &str)], unset: &'static [&str]) {
    let output = tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(std::env::current_exe().expect("the test binary"));
        command.args([name, "--exact", "--test-threads=1"]).env(CHILD, "1").envs(set.iter().copied());
        for variable in unset {
            command.env_remove(variable);
        }
        command.output().expect("run the test binary")
    })
    .await
    .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{name} failed in its child process:\n{stdout}\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholders_resolve_from_the_environment_or_their_default() {
    if std::env::var_os(CHILD).is_none() {
        let name = "placeholders_resolve_from_the_environment_or_their_default";
        return in_child_process(name, &[("KL_TEST_GROUP", "ph-group")], &["KL_TEST_UNSET_TOPIC"]).await;
    }
    let kafka = embedded(&[("ph-topic", 1)]);
    produce(&kafka, "ph-topic", &numbered(1));
    let probe = Probe::open();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .register(probe.endpoint("ph", "${KL_TEST_UNSET_TOPIC:ph-topic}", "${KL_TEST_GROUP}"))
        .start()
        .await
        .unwrap();
    wait_committed(&kafka.bootstrap_servers(), "ph-group", "ph-topic", [(0, 1)].into()).await;
    running.shutdown().await.unwrap();
    assert_eq!(probe.count(), 1);
}

#[test]
fn factory_build_rejects_invalid_settings_naming_them() {
    let base = || ContainerFactory::builder().bootstrap_servers("localhost:9092");
    let setting = |r: kafka_listener::Result<ContainerFactory>| match r {
        Err(Error::Config { setting, reason }) => (setting, reason),
        other => panic!("expected a config error, got {other:?}"),
    };
    assert_eq!(setting(ContainerFactory::builder().build()).0, "bootstrap_servers");
    assert_eq!(setting(base().concurrency(0).build()).0, "concurrency");
    assert_eq!(setting(base().ack_mode(AckMode::Count).ack_count(0).build()).0, "ack_count");
    assert_eq!(setting(base().ack_mode(AckMode::Time).ack_time(Duration::ZERO).build()).0, "ack_time");
    assert_eq!(setting(base().max_poll_records(0).build()).0, "max_poll_records");
    let (key, reason) = setting(base().set("enable.auto.commit", "true").build());
    assert_eq!(key, "enable.auto.commit");
    assert!(reason.contains("container owns commits"), "{reason}");
    let (key, reason) = setting(base().set("fetch.wait.max.mss", "5").build());
    assert_eq!(key, "fetch.wait.max.mss");
    assert!(reason.contains("No such configuration property"), "{reason}");
    let (key, _) = setting(base().set("session.timeout.ms", "soon").build());
    assert_eq!(key, "session.timeout.ms");
    // Ack mode Count with a count is fine, and to_builder derives.
    let f = base().ack_mode(AckMode::Count).ack_count(10).build().unwrap();
    assert_eq!(f.to_builder().ack_mode(AckMode::Manual).build().unwrap().ack_mode(), AckMode::Manual);
}

#[test]
fn secrets_never_show() {
    let factory = ContainerFactory::builder()
        .bootstrap_servers("localhost:9092")
        .set("security.protocol", "sasl_plaintext")
        .set("sasl.mechanisms", "PLAIN")
        .set("sasl.username", "svc")
        .set("sasl.password", "hunter2-secret")
        .build()
        .unwrap();
    let debug = format!("{factory:?} {:?}", factory.to_builder());
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("<redacted>") && debug.contains("svc"), "{debug}");
    assert_eq!(factory.property("sasl.password"), None);
    let admin = kafka_listener::support::Admin::new("localhost:9092").set("sasl.password", "hunter2-secret");
    assert!(!format!("{admin:?}").contains("hunter2"));
    // A rejected secret value is not echoed in the error.
    let error = ContainerFactory::builder()
        .bootstrap_servers("localhost:9092")
        .set("ssl.key.password", "hunter2-secret")
        .set("sasl.oauthbearer.client.secret", "hunter2-secret")
        .build()
        .err()
        .map(|e| format!("{e} {e:?}"))
        .unwrap_or_default();
    assert!(!error.contains("hunter2"), "{error}");
}

/// Issue 10, scenario 8: properties librdkafka refuses only together are found before `start()`
/// answers, as the container would create its consumers, and reported as what they are (not as
/// an unreachable broker).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_consumer_properties_are_start_errors_naming_listener_and_properties() {
    let kafka = embedded(&[("conflicts", 1)]);
    // (a) On the factory: build() refuses it, naming a property and the cause.
    let refused = ContainerFactory::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .set("group.protocol", "consumer")
        .set("session.timeout.ms", "3000")
        .set("heartbeat.interval.ms", "300")
        .build();
    match refused {
        Err(Error::Config { setting, reason }) => {
            assert_eq!(setting, "session.timeout.ms", "{reason}");
            assert!(reason.contains("group.protocol=consumer"), "{reason}");
            assert!(!reason.contains("reach"), "not reported as a broker problem: {reason}");
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }

    // (b) The factory's classic settings with a listener's `group.protocol=consumer`, and (c) a
    // listener's `receive.message.max.bytes` not 512 above its `fetch.max.bytes`: start() fails,
    // naming the listener and the properties, and starts nothing.
    let result = ListenerRegistry::empty()
        .with_default_factory(factory(&kafka, AckMode::Batch))
        .register(noop("new-protocol", "conflicts").property("group.protocol", "consumer"))
        .register(
            noop("fetch-sizes", "conflicts")
                .property("receive.message.max.bytes", "1000000")
                .property("fetch.max.bytes", "500000"),
        )
        .register(noop("fine", "conflicts"))
        .start()
        .await;
    let Err(error) = result else { panic!("start should fail") };
    let text = error.to_string();
    let about = |listener: &str| -> String {
        error.problems().iter().filter(|p| p.listener.as_deref() == Some(listener)).map(|p| p.message.clone()).collect()
    };
    let protocol = about("new-protocol");
    assert!(protocol.contains("group.protocol") && protocol.contains("session.timeout.ms"), "{text}");
    let sizes = about("fetch-sizes");
    assert!(sizes.contains("receive.message.max.bytes") && sizes.contains("fetch.max.bytes"), "{text}");
    assert!(about("fine").is_empty(), "{text}");
    assert!(!text.contains("reach the broker"), "{text}");
}
