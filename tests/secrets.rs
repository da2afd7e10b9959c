//! A marker password never appears in Debug output, in errors, or in logs (everything this test
//! binary logs, at TRACE level, librdkafka's messages included, with its `security` and `conf`
//! debug contexts on: the lines that show the SASL attempt and the configuration it was made with).

use std::time::Duration;

mod common;

use common::Logs;
use kafka_listener::prelude::*;
use kafka_listener::SaslMechanism;

const MARKER: &str = "hunter2-MARKER-5ecret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marker_password_never_shows() {
    let logs = Logs::default();
    tracing_subscriber::fmt().with_writer(logs.clone()).with_max_level(tracing::Level::TRACE).with_ansi(false).init();
    let kafka = EmbeddedKafka::start(1).unwrap();
    kafka.create_topic("secret", 1).unwrap();
    let mut shown = Vec::new();

    let factory = ContainerFactory::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .sasl(SaslMechanism::Plain, "svc", MARKER, false)
        .startup_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    shown.push(format!("{factory:?} {:?}", factory.to_builder()));
    let template = KafkaTemplate::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .sasl(SaslMechanism::Plain, "svc", MARKER, false)
        // librdkafka's debug contexts that log the SASL handshake and the client configuration:
        // the lines where a password would show if it leaked.
        .set("debug", "security,conf")
        .send_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    shown.push(format!("{template:?}"));
    // The template's producer connects at once: its SASL attempt with the configured mechanism,
    // and the configuration it was made with, reach the logs (through rdkafka's client context
    // into `tracing`). librdkafka redacts `sasl.username` as well, so the username shows nowhere.
    logs.wait_for_line("the SASL mechanism chosen", &["librdkafka", "SASL", "provider PLAIN", "mechanism PLAIN"]).await;
    logs.wait_for_line("the configured SASL mechanism", &["librdkafka", "CONF", "sasl.mechanisms = PLAIN"]).await;
    logs.wait_for_line("the configured username", &["librdkafka", "CONF", "sasl.username = "]).await;
    logs.wait_for_line("the configured password", &["librdkafka", "CONF", "sasl.password = "]).await;
    logs.wait_for_line(
        "the SASL authentication attempt",
        &["librdkafka", "sasl_plaintext://", "SASL authentication", "mechanism PLAIN"],
    )
    .await;
    // SSL settings need the `ssl` feature: a clear error, without the password.
    match ContainerFactory::builder().bootstrap_servers("x:1").ssl_client_key("c.pem", "k.pem", MARKER).build() {
        Ok(f) => shown.push(format!("{f:?}")),
        Err(error) => shown.push(format!("{error} {error:?}")),
    }
    match ContainerFactory::builder()
        .bootstrap_servers("x:1")
        .sasl(SaslMechanism::ScramSha256, "svc", MARKER, true)
        .build()
    {
        Ok(f) => shown.push(format!("{f:?}")),
        Err(error) => shown.push(format!("{error} {error:?}")),
    }
    if let Err(error) =
        KafkaTemplate::builder().bootstrap_servers("x:1").set("sasl.password", MARKER).set("acks", "sometimes").build()
    {
        shown.push(format!("{error} {error:?}"));
    }
    // Use them: the embedded broker does not speak SASL, so start() cannot reach it and the
    // record is not delivered; both errors are shown.
    let result = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(Endpoint::new("secret").topic("secret").handler(|_: String| async {}))
        .start()
        .await;
    let Err(error) = result else { panic!("start() succeeded against a broker that does not speak SASL") };
    // The broker is reachable; the handshake is what fails, and the error says so.
    let text = error.to_string();
    assert!(text.contains("check the security settings"), "the start error points at the security settings: {text}");
    shown.push(format!("{error} {error:?}"));
    let Err(error) = template.send("secret", "x").await else {
        panic!("a record was delivered to a broker that does not speak SASL")
    };
    shown.push(format!("{error} {error:?}"));

    let logs = logs.text();
    let leaking: Vec<&str> = logs.lines().filter(|line| line.contains(MARKER)).collect();
    assert!(leaking.is_empty(), "the password shows in {} log line(s):\n{}", leaking.len(), leaking.join("\n"));
    for text in &shown {
        assert!(!text.contains(MARKER), "the password shows in: {text}");
    }
    assert!(shown.iter().any(|s| s.contains("<redacted>")), "{shown:?}");
    let ssl = shown.iter().find(|s| s.contains("ssl.")).cloned().unwrap_or_default();
    assert!(
        ssl.contains("`ssl` cargo feature") || ssl.contains("ContainerFactory"),
        "SSL errors say what to enable: {ssl}"
    );
}
