//! `KafkaProperties`: a TOML file (figment), a YAML file (config-rs) and an environment map each
//! make the factory, the template and the listeners they describe — read back through the
//! accessors and seen in behaviour (the group a listener commits in, its consumers, its ack
//! mode's commits); the errors of bad configuration; precedence; secrets.

mod common;

use std::time::Duration;

use common::*;
use figment::providers::{Env, Format, Toml, Yaml};
use kafka_listener::prelude::*;
use kafka_listener::Error;

const WAIT: Duration = Duration::from_secs(30);

fn from_toml(text: &str) -> Result<KafkaProperties, Box<figment::Error>> {
    figment::Figment::new().merge(Toml::string(text)).extract().map_err(Box::new)
}

/// A listener on `topic` without a group of its own (the properties' group applies).
fn listener(probe: &Probe, id: &str, topic: &str) -> Endpoint {
    let probe = probe.clone();
    Endpoint::new(id).topic(topic).handler(move |record: ConsumerRecord| {
        let probe = probe.clone();
        async move { probe.handle(record).await }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toml_file_makes_the_factory_the_template_and_the_listeners() {
    let kafka = embedded(&[("cfg", 2), ("cfg-out", 1)]);
    let bootstrap = kafka.bootstrap_servers();
    let props = from_toml(&format!(
        r#"
        bootstrap-servers = "{bootstrap}"
        client-id = "billing-app"

        [consumer]
        group-id = "billing"
        auto-offset-reset = "earliest"
        # The mock cluster waits a session for late members: keep it short.
        session-timeout = "3s"
        heartbeat-interval = "300ms"
        max-poll-records = 7
        properties = {{ "fetch.wait.max.ms" = 50 }}

        [producer]
        client-id = "billing-producer"
        acks = "all"
        compression = "lz4"
        linger = "2ms"
        default-topic = "cfg-out"

        [listener]
        ack-mode = "record"
        concurrency = 2
        poll-timeout = "250ms"
        shutdown-timeout = "3s"

        [listeners.audit]
        group = "audit-team"
        concurrency = 1
        ack-mode = "batch"
        "#
    ))
    .unwrap();

    let factory = ContainerFactory::from_properties(&props).unwrap().build().unwrap();
    assert_eq!(factory.concurrency(), 2);
    assert_eq!(factory.ack_mode(), AckMode::Record);
    assert_eq!(factory.max_poll_records(), 7);
    assert_eq!(factory.poll_timeout(), Duration::from_millis(250));
    assert_eq!(factory.shutdown_timeout(), Duration::from_secs(3));
    assert_eq!(factory.bootstrap_servers(), Some(bootstrap.as_str()));
    assert_eq!(factory.property("group.id"), Some("billing"));
    assert_eq!(factory.property("client.id"), Some("billing-app"));
    assert_eq!(factory.property("fetch.wait.max.ms"), Some("50"));
    assert_eq!(factory.property("session.timeout.ms"), Some("3000"));
    assert_eq!(factory.property("auto.offset.reset"), Some("earliest"));

    let template = KafkaTemplate::from_properties(&props).unwrap().build().unwrap();
    assert_eq!(template.property("acks"), Some("all"));
    assert_eq!(template.property("compression.type"), Some("lz4"));
    assert_eq!(template.property("linger.ms"), Some("2"));
    assert_eq!(template.property("client.id"), Some("billing-producer"));
    assert_eq!(template.default_topic(), Some("cfg-out"));
    let sent = template.send_default("hello").await.unwrap();
    assert_eq!((sent.topic(), sent.offset()), ("cfg-out", 0));

    // Behaviour: the group, the consumers and the ack mode come from the file.
    let (billing, audit) = (Probe::gated(), Probe::open());
    let running = ListenerRegistry::empty()
        .with_properties(props)
        .register(listener(&billing, "billing-listener", "cfg"))
        .register(listener(&audit, "audit", "cfg"))
        .start()
        .await
        .unwrap();
    let container = running.container("billing-listener").unwrap();
    assert_eq!(container.concurrency(), 2, "listener.concurrency");
    assert_eq!(running.container("audit").unwrap().concurrency(), 1, "listeners.audit.concurrency");
    wait_until("one partition per consumer", WAIT, || {
        container.consumer_assignments().iter().all(|a| a.len() == 1) && container.assignment().len() == 2
    })
    .await;
    produce(
        &kafka,
        "cfg",
        &[(0, "k", "a0".into()), (0, "k", "a1".into()), (1, "k", "b0".into()), (1, "k", "b1".into())],
    );
    // Ack mode record: offset 0 of each partition is committed while offset 1 is in its handler
    // (a batch would commit nothing until both were handled).
    billing.release_through(0);
    wait_committed(&bootstrap, "billing", "cfg", [(0, 1), (1, 1)].into()).await;
    billing.release_all();
    wait_committed(&bootstrap, "billing", "cfg", [(0, 2), (1, 2)].into()).await;
    wait_committed(&bootstrap, "audit-team", "cfg", [(0, 2), (1, 2)].into()).await;
    running.shutdown().await.unwrap();
    assert_eq!(billing.count(), 4);
    assert_eq!(audit.count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yaml_file_read_with_config_rs_configures_the_group_and_a_count_ack_mode() {
    let kafka = embedded(&[("yaml", 1)]);
    let bootstrap = kafka.bootstrap_servers();
    let yaml = format!(
        "bootstrap-servers:\n  - {bootstrap}\nconsumer:\n  group-id: from-yaml\n  properties:\n    fetch:\n      wait.max.ms: 20\nlistener:\n  ack-mode: COUNT\n  ack-count: 3\n  ack-time: 1h\n  concurrency: 1\nproducer:\n  acks: 1\n  idempotence: false\n  compression-type: gzip\n  send-timeout: 7s\n"
    );
    let props: KafkaProperties = config::Config::builder()
        .add_source(config::File::from_str(&yaml, config::FileFormat::Yaml))
        .build()
        .and_then(|c| c.try_deserialize())
        .unwrap();
    let factory = ContainerFactory::from_properties(&props).unwrap().build().unwrap();
    assert_eq!((factory.ack_mode(), factory.ack_count()), (AckMode::Count, 3));
    assert_eq!(factory.ack_time(), Duration::from_secs(3600));
    assert_eq!(factory.property("group.id"), Some("from-yaml"));
    assert_eq!(factory.property("fetch.wait.max.ms"), Some("20"), "nested YAML keys are joined with dots");
    assert_eq!(factory.concurrency(), 1);
    let template = KafkaTemplate::from_properties(&props).unwrap().build().unwrap();
    assert_eq!(template.property("acks"), Some("1"));
    assert_eq!(template.property("enable.idempotence"), Some("false"));
    assert_eq!(template.property("compression.type"), Some("gzip"), "Spring's key compression-type");
    assert_eq!(template.send_timeout(), Duration::from_secs(7));

    let probe = Probe::open();
    let running =
        ListenerRegistry::empty().with_properties(props).register(listener(&probe, "y", "yaml")).start().await.unwrap();
    produce(&kafka, "yaml", &numbered(5));
    wait_until("5 handled", WAIT, || probe.count() == 5).await;
    // Count 3: the first three are committed, the other two wait for the count (or the stop).
    wait_committed(&bootstrap, "from-yaml", "yaml", [(0, 3)].into()).await;
    assert_committed_stays(
        "2 of 3 counted",
        &bootstrap,
        "from-yaml",
        "yaml",
        [(0, 3)].into(),
        Duration::from_millis(500),
    )
    .await;
    running.shutdown().await.unwrap();
    assert_eq!(committed(&bootstrap, "from-yaml", "yaml").await, [(0, 5)].into(), "committed at the stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_map_configures_the_factory_and_a_listener_override() {
    let kafka = embedded(&[("env", 2)]);
    let bootstrap = kafka.bootstrap_servers();
    let props = KafkaProperties::from_env_vars(
        "KAFKA_",
        [
            ("KAFKA_BOOTSTRAP_SERVERS", bootstrap.as_str()),
            ("KAFKA_CONSUMER__GROUP_ID", "env-group"),
            ("KAFKA_CONSUMER__SESSION_TIMEOUT", "3s"),
            ("KAFKA_CONSUMER__HEARTBEAT_INTERVAL", "300ms"),
            ("KAFKA_CONSUMER__PROPERTIES__FETCH_WAIT_MAX_MS", "20"),
            ("KAFKA_LISTENER__ACK_MODE", "record"),
            ("KAFKA_LISTENER__POLL_TIMEOUT", "200ms"),
            // The listener id `env-audit`, as a variable name spells it.
            ("KAFKA_LISTENERS__ENV_AUDIT__CONCURRENCY", "2"),
            ("KAFKA_PRODUCER__LINGER", "20ms"),
            ("KAFKA_PRODUCER__PROPERTIES__BATCH_NUM_MESSAGES", "500"),
            ("KAFKA_HOME", "/opt/kafka"),
            ("PATH", "/usr/bin"),
        ],
    )
    .unwrap();
    assert_eq!(props.listeners["env-audit"].concurrency, Some(2));
    let factory = ContainerFactory::from_properties(&props).unwrap().build().unwrap();
    assert_eq!(factory.ack_mode(), AckMode::Record);
    assert_eq!(factory.concurrency(), 1);
    assert_eq!(factory.poll_timeout(), Duration::from_millis(200));
    assert_eq!(factory.property("fetch.wait.max.ms"), Some("20"));
    let template = KafkaTemplate::from_properties(&props).unwrap().build().unwrap();
    assert_eq!(template.property("linger.ms"), Some("20"));
    assert_eq!(template.property("batch.num.messages"), Some("500"));

    let probe = Probe::gated();
    let running = ListenerRegistry::empty()
        .with_properties(props)
        .register(listener(&probe, "env_audit", "env"))
        .start()
        .await
        .unwrap();
    let container = running.container("env_audit").unwrap();
    assert_eq!(container.concurrency(), 2, "the override matched `env_audit` (case, - and _ alike)");
    wait_until("both consumers own a partition", WAIT, || {
        container.consumer_assignments().iter().filter(|a| a.len() == 1).count() == 2
    })
    .await;
    produce(&kafka, "env", &[(0, "k", "a0".into()), (0, "k", "a1".into()), (1, "k", "b0".into())]);
    probe.release_through(0);
    wait_committed(&bootstrap, "env-group", "env", [(0, 1), (1, 1)].into()).await;
    probe.release_all();
    wait_committed(&bootstrap, "env-group", "env", [(0, 2), (1, 1)].into()).await;
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precedence_properties_then_code_then_the_listener_then_its_override() {
    let kafka = embedded(&[("prec", 4)]);
    let bootstrap = kafka.bootstrap_servers();
    let props = from_toml(&format!(
        r#"
        bootstrap-servers = "{bootstrap}"
        [consumer]
        group-id = "props-group"
        session-timeout = "3s"
        heartbeat-interval = "300ms"
        [listener]
        concurrency = 1
        ack-mode = "batch"
        [listeners.c]
        concurrency = 4
        group = "c-override"
        "#
    ))
    .unwrap();
    // Code over the file: concurrency 2, record ack mode.
    let factory =
        ContainerFactory::from_properties(&props).unwrap().concurrency(2).ack_mode(AckMode::Record).build().unwrap();
    assert_eq!((factory.concurrency(), factory.ack_mode()), (2, AckMode::Record));
    let (a, b, c) = (Probe::open(), Probe::open(), Probe::open());
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .with_properties(props)
        // The factory's concurrency and the properties' group.
        .register(listener(&a, "a", "prec"))
        // Its own concurrency and group (a placeholder, resolved at start) over the factory's.
        .register(listener(&b, "b", "prec").concurrency(3).group("${CONFIGURATION_TEST_UNSET_GROUP:b-group}"))
        // Its override over its own settings.
        .register(listener(&c, "c", "prec").concurrency(3).group("c-group"))
        .start()
        .await
        .unwrap();
    let concurrency = |id: &str| running.container(id).unwrap().concurrency();
    assert_eq!((concurrency("a"), concurrency("b"), concurrency("c")), (2, 3, 4));
    produce(&kafka, "prec", &(0..4).map(|p| (p, "k", format!("r{p}"))).collect::<Vec<_>>());
    let all: std::collections::BTreeMap<i32, i64> = (0..4).map(|p| (p, 1)).collect();
    wait_committed(&bootstrap, "props-group", "prec", all.clone()).await;
    wait_committed(&bootstrap, "b-group", "prec", all.clone()).await;
    wait_committed(&bootstrap, "c-override", "prec", all).await;
    assert!(committed(&bootstrap, "c-group", "prec").await.is_empty(), "the listener's own group was overridden");
    running.shutdown().await.unwrap();
    assert_eq!((a.count(), b.count(), c.count()), (4, 4, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_change_a_listeners_topics_and_auto_startup() {
    let kafka = embedded(&[("written", 1), ("configured", 1)]);
    let bootstrap = kafka.bootstrap_servers();
    let props = from_toml(&format!(
        r#"
        bootstrap-servers = "{bootstrap}"
        [listeners.mover]
        topics = ["configured"]
        [listeners.sleeper]
        auto-startup = false
        "#
    ))
    .unwrap();
    let (mover, sleeper) = (Probe::open(), Probe::open());
    let running = ListenerRegistry::empty()
        .with_properties(props)
        .register(listener(&mover, "mover", "written").group("mover"))
        .register(listener(&sleeper, "sleeper", "written").group("sleeper"))
        .start()
        .await
        .unwrap();
    produce(&kafka, "written", &numbered(2));
    produce(&kafka, "configured", &numbered(3));
    wait_until("the mover handled the configured topic", WAIT, || mover.count() == 3).await;
    assert!(mover.seen().iter().all(|r| r.topic == "configured"), "only the configured topic");
    let sleeper_container = running.container("sleeper").unwrap();
    assert!(!sleeper_container.is_running(), "auto-startup = false");
    assert_eq!(sleeper.count(), 0);
    running.start("sleeper").unwrap();
    wait_until("the sleeper, started, handled its topic", WAIT, || sleeper.count() == 2).await;
    wait_committed(&bootstrap, "mover", "configured", [(0, 3)].into()).await;
    running.shutdown().await.unwrap();
    assert!(committed(&bootstrap, "mover", "written").await.is_empty(), "the written topic was replaced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_for_unknown_listeners_or_with_values_a_listener_cannot_take_fail_the_start() {
    let kafka = embedded(&[("bad", 1)]);
    let props = from_toml(&format!(
        r#"
        bootstrap-servers = "{}"
        [listener]
        ack-mode = "manual"
        [listeners.audti]
        concurrency = 2
        [listeners.manual]
        ack-mode = "record"
        [listeners.manual.properties]
        "fetch.max.bytez" = 1
        "#,
        kafka.bootstrap_servers()
    ))
    .unwrap();
    let manual =
        Endpoint::new("manual").topic("bad").handler(|_record: ConsumerRecord, ack: Acknowledgment| async move {
            ack.acknowledge();
        });
    let probe = Probe::open();
    let error = ListenerRegistry::empty()
        .with_properties(props)
        .register(listener(&probe, "audit", "bad"))
        .register(manual)
        .start()
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::Validation(ref problems) if problems.len() == 3), "{text}");
    assert!(text.contains("`listeners.audti`: no listener has id `audti` (the ids are: `audit`, `manual`)"), "{text}");
    assert!(text.contains("`listeners.manual.ack-mode`") && text.contains("Acknowledgment"), "{text}");
    assert!(
        text.contains("`listeners.manual.properties.fetch.max.bytez`")
            && text.contains("No such configuration property"),
        "{text}"
    );
    assert_eq!(probe.count(), 0, "nothing started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_that_cannot_make_the_default_factory_are_one_problem_not_several() {
    let props = from_toml("bootstrap-servers = \"localhost:1\"\n[consumer]\ngroup-protocol = \"consumer\"\nsession-timeout = \"6s\"\nheartbeat-interval = \"1s\"").unwrap();
    let probe = Probe::open();
    let error = ListenerRegistry::empty()
        .with_properties(props)
        .register(listener(&probe, "a", "t"))
        .register(listener(&probe, "b", "t"))
        .with_topic(NewTopic::new("t", 1))
        .start()
        .await
        .unwrap_err();
    let Error::Validation(problems) = &error else { panic!("{error}") };
    assert_eq!(problems.len(), 1, "{error}");
    let text = error.to_string();
    assert!(
        text.contains("`consumer.session-timeout`") && text.contains("`consumer.heartbeat-interval`"),
        "both named: {text}"
    );
    assert!(!text.contains("with_default_factory"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn override_values_are_taken_as_written_and_an_empty_group_is_refused() {
    let kafka = embedded(&[("literal", 1)]);
    let props = from_toml(&format!(
        r#"
        bootstrap-servers = "{}"
        [listeners.literal]
        group = "team-${{CONFIGURATION_TEST_UNSET}}"
        [listeners.empty]
        group = " "
        "#,
        kafka.bootstrap_servers()
    ))
    .unwrap();
    let probe = Probe::open();
    let error = ListenerRegistry::empty()
        .with_properties(props.clone())
        .register(listener(&probe, "literal", "literal"))
        .register(listener(&probe, "empty", "literal"))
        .start()
        .await
        .unwrap_err();
    let Error::Validation(problems) = &error else { panic!("{error}") };
    assert_eq!(problems.len(), 1, "only the empty group: {error}");
    assert!(error.to_string().contains("`listeners.empty.group`: is empty"), "{error}");

    let mut props = props;
    props.listeners.remove("empty");
    let running = ListenerRegistry::empty()
        .with_properties(props)
        .register(listener(&probe, "literal", "literal"))
        .start()
        .await
        .unwrap();
    produce(&kafka, "literal", &numbered(1));
    wait_committed(&kafka.bootstrap_servers(), "team-${CONFIGURATION_TEST_UNSET}", "literal", [(0, 1)].into()).await;
    running.shutdown().await.unwrap();
}

#[test]
fn bad_configuration_is_an_error_naming_the_key() {
    // An unknown key names itself and the valid ones.
    let error = from_toml("[consumer]\ngroupid = \"x\"").unwrap_err().to_string();
    assert!(error.contains("unknown field: found `groupid`") || error.contains("unknown field `groupid`"), "{error}");
    assert!(error.contains("group-id") && error.contains("auto-offset-reset"), "{error}");
    let error =
        KafkaProperties::from_env_vars("KAFKA_", [("KAFKA_LISTENER__CONCURENCY", "2")]).unwrap_err().to_string();
    assert!(error.contains("KAFKA_LISTENER__CONCURENCY (listener.concurency)"), "{error}");
    assert!(error.contains("unknown field `concurency`") && error.contains("`concurrency`"), "{error}");

    // A duration without its unit, or none at all.
    let error = from_toml("[listener]\npoll-timeout = 1500").unwrap_err().to_string();
    assert!(error.contains("listener.poll-timeout") && error.contains("has no unit"), "{error}");
    let error = from_toml("[listener]\nack-time = \"fast\"").unwrap_err().to_string();
    assert!(error.contains("ack-time") && error.contains("not a duration"), "{error}");

    // A value its setting cannot take, by its key path.
    let error = from_toml("[listeners.audit]\nconcurrency = 0").unwrap_err().to_string();
    assert!(error.contains("listeners.audit.concurrency") && error.contains("at least 1"), "{error}");
    let error =
        KafkaProperties::from_env_vars("KAFKA_", [("KAFKA_LISTENERS__AUDIT__CONCURRENCY", "many")]).unwrap_err();
    assert!(
        matches!(&error, Error::Config { setting, .. } if setting == "KAFKA_LISTENERS__AUDIT__CONCURRENCY (listeners.audit.concurrency)"),
        "{error}"
    );
    let error = from_toml("[listener]\nack-mode = \"sometimes\"").unwrap_err().to_string();
    assert!(error.contains("listener.ack-mode") && error.contains("sometimes"), "{error}");

    let props = from_toml("bootstrap-servers = \"localhost:9092\"\n[listener]\npoll-timeout = \"0ms\"").unwrap();
    let error = ContainerFactory::from_properties(&props).unwrap_err();
    assert!(matches!(&error, Error::Config { setting, .. } if setting == "listener.poll-timeout"), "{error}");

    let props = KafkaProperties::from_env_vars(
        "KAFKA_",
        [("KAFKA_BOOTSTRAP_SERVERS", "b:9092"), ("KAFKA_CONSUMER__GROUP_ID", "")],
    )
    .unwrap();
    let error = ContainerFactory::from_properties(&props).unwrap_err();
    assert!(matches!(&error, Error::Config { setting, .. } if setting == "consumer.group-id"), "{error}");
    assert!(error.to_string().contains("is empty"), "{error}");

    // librdkafka properties are checked by from_properties, by key path.
    let props =
        from_toml("bootstrap-servers = \"localhost:9092\"\n[consumer.properties]\n\"fetch.max.bytez\" = 1").unwrap();
    let error = ContainerFactory::from_properties(&props).unwrap_err();
    assert!(
        matches!(&error, Error::Config { setting, .. } if setting == "consumer.properties.fetch.max.bytez"),
        "{error}"
    );
    let props =
        from_toml("bootstrap-servers = \"localhost:9092\"\n[consumer.properties]\n\"enable.auto.commit\" = true")
            .unwrap();
    let error = ContainerFactory::from_properties(&props).unwrap_err();
    assert!(
        matches!(&error, Error::Config { setting, .. } if setting == "consumer.properties.enable.auto.commit"),
        "{error}"
    );
    let props =
        from_toml("bootstrap-servers = \"localhost:9092\"\n[producer.properties]\n\"linger.ms\" = \"soon\"").unwrap();
    let error = KafkaTemplate::from_properties(&props).err().unwrap();
    assert!(matches!(&error, Error::Config { setting, .. } if setting == "producer.properties.linger.ms"), "{error}");
}

#[test]
fn settings_the_consumer_group_protocol_forbids_are_a_build_error_naming_them() {
    let props = from_toml(
        "bootstrap-servers = \"localhost:9092\"\n[consumer]\ngroup-protocol = \"consumer\"\nsession-timeout = \"10s\"",
    )
    .unwrap();
    let error = ContainerFactory::from_properties(&props).unwrap_err();
    let text = error.to_string();
    assert!(matches!(&error, Error::Config { setting, .. } if setting == "consumer.session-timeout"), "{text}");
    assert!(text.contains("group.consumer.session.timeout.ms"), "{text}");

    let props = from_toml(
        "bootstrap-servers = \"localhost:9092\"\n[consumer]\ngroup-protocol = \"consumer\"\n[properties]\n\"partition.assignment.strategy\" = \"range\"",
    )
    .unwrap();
    let error = ContainerFactory::from_properties(&props).unwrap_err();
    assert!(
        matches!(&error, Error::Config { setting, .. } if setting == "properties.partition.assignment.strategy"),
        "{error}"
    );
    assert!(error.to_string().contains("group.remote.assignor"), "{error}");

    let error = ContainerFactory::builder()
        .bootstrap_servers("localhost:9092")
        .group_protocol(GroupProtocol::Consumer)
        .set("heartbeat.interval.ms", "300")
        .build()
        .unwrap_err();
    assert!(matches!(&error, Error::Config { setting, .. } if setting == "heartbeat.interval.ms"), "{error}");

    let fine = ContainerFactory::builder()
        .bootstrap_servers("localhost:9092")
        .group_protocol(GroupProtocol::Consumer)
        .set("group.remote.assignor", "uniform")
        .build()
        .unwrap();
    assert_eq!(fine.group_protocol(), GroupProtocol::Consumer);
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let props = from_toml(
        r#"
        bootstrap-servers = ["b1:9093", "b2:9093"]
        [security.sasl]
        mechanism = "scram-sha-512"
        username = "svc"
        password = "hunter2-sasl"
        [security.ssl]
        ca-location = "/etc/ca.pem"
        key-password = "hunter2-key"
        [properties]
        "sasl.oauthbearer.client.secret" = "hunter2-oauth"
        "sasl.oauthbearer.assertion.private.key.passphrase" = "hunter2-passphrase"
        [listeners.audit.properties]
        "ssl.key.password" = "hunter2-listener"
        "#,
    )
    .unwrap();
    assert_eq!(props.bootstrap_servers, Some(vec!["b1:9093".to_string(), "b2:9093".to_string()]));
    let shown = format!("{props:?} {props:#?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("<redacted>") && shown.contains("svc"), "{shown}");
    // The factory builder holds them as librdkafka properties: not shown either (it needs the
    // crate's `ssl` feature to build with SSL, so only the builder is looked at here).
    let builder = ContainerFactory::from_properties(&props);
    let shown = format!("{builder:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let template = KafkaTemplate::from_properties(&props);
    let shown = format!("{template:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    // SASL without SSL: sasl_plaintext; the password goes to the client but is never given back.
    let props = from_toml(
        "bootstrap-servers = \"b1:9093\"\n[security.sasl]\nmechanism = \"PLAIN\"\nusername = \"svc\"\npassword = \"hunter2\"",
    )
    .unwrap();
    let factory = ContainerFactory::from_properties(&props).unwrap().build().unwrap();
    assert_eq!(factory.property("security.protocol"), Some("sasl_plaintext"));
    assert_eq!((factory.property("sasl.mechanisms"), factory.property("sasl.username")), (Some("PLAIN"), Some("svc")));
    assert_eq!(factory.property("sasl.password"), None);
    assert!(!format!("{factory:?}").contains("hunter2"));
    // A numeric password is a password, not a type error quoting it.
    let props = from_toml("[security.sasl]\nmechanism = \"PLAIN\"\nusername = \"svc\"\npassword = 1234567").unwrap();
    assert_eq!(props.security.sasl.as_ref().map(|s| s.password.expose()), Some("1234567"));
    assert!(!format!("{props:?}").contains("1234567"));
    // An error about a secret does not quote it.
    let error =
        KafkaProperties::from_env_vars("KAFKA_", [("KAFKA_SECURITY__SASL__PASSWORD", "hunter2-env")]).unwrap_err();
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[test]
#[allow(clippy::result_large_err)] // figment's Jail's closure returns figment's error
fn figment_layers_the_environment_over_a_file() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("kafka.yaml", "bootstrap-servers: localhost:9092\nlistener:\n  concurrency: 2\n")?;
        jail.set_env("KAFKA_LISTENER__CONCURRENCY", "5");
        jail.set_env("KAFKA_CONSUMER__PROPERTIES__FETCH_WAIT_MAX_MS", "30");
        jail.set_env("KAFKA_HOME", "/opt/kafka");
        // figment parses values: a quoted one stays text (007 alone would be the number 7).
        jail.set_env("KAFKA_CONSUMER__GROUP_ID", "\"007\"");
        let props: KafkaProperties = figment::Figment::new()
            .merge(Yaml::file("kafka.yaml"))
            .merge(Env::prefixed("KAFKA_").filter_map(|key| KafkaProperties::env_key(key.as_str()).map(Into::into)))
            .extract()?;
        assert_eq!(props.listener.concurrency, Some(5));
        assert_eq!(props.consumer.properties.get("fetch.wait.max.ms"), Some("30"));
        assert_eq!(props.consumer.group_id.as_deref(), Some("007"));
        Ok(())
    });
}
