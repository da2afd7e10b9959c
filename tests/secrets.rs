//! A marker password never appears in Debug output, in errors, or in logs (everything this test
//! binary logs, at TRACE level, librdkafka's messages included).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_listener::prelude::*;
use kafka_listener::SaslMechanism;

const MARKER: &str = "hunter2-MARKER-5ecret";

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

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
        .send_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    shown.push(format!("{template:?}"));
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
    // Use them: the embedded broker does not speak SASL, so connections fail and are logged.
    let result = ListenerRegistry::empty()
        .with_default_factory(factory)
        .register(Endpoint::new("secret").topic("secret").handler(|_: String| async {}))
        .start()
        .await;
    match result {
        Ok(running) => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = running.shutdown().await;
        }
        Err(error) => shown.push(format!("{error} {error:?}")),
    }
    if let Err(error) = template.send("secret", "x").await {
        shown.push(format!("{error} {error:?}"));
    }

    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(logs.contains("librdkafka") || logs.contains("kafka_listener"), "the logs were captured");
    for text in shown.iter().chain(std::iter::once(&logs)) {
        assert!(!text.contains(MARKER), "the password shows in: {}", &text[..text.len().min(2000)]);
    }
    assert!(shown.iter().any(|s| s.contains("<redacted>")), "{shown:?}");
    let ssl = shown.iter().find(|s| s.contains("ssl.")).cloned().unwrap_or_default();
    assert!(
        ssl.contains("`ssl` cargo feature") || ssl.contains("ContainerFactory"),
        "SSL errors say what to enable: {ssl}"
    );
}
