//! KafkaTemplate and the partitioners: Java-compatible keys (checked against kafka-python),
//! records landing where each strategy says (read back by a listener), and typed errors.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use kafka_listener::embedded::RDKafkaApiKey;
use kafka_listener::prelude::*;
use kafka_listener::producer::java_partition;
use kafka_listener::Error;

/// (key, partition for 3, 7 and 12 partitions), from tests/data/murmur2_partitions.tsv.
fn java_table() -> Vec<(Vec<u8>, [i32; 3])> {
    let text = include_str!("data/murmur2_partitions.tsv");
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let hex = fields[0];
            let key = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
            (key, [fields[1].parse().unwrap(), fields[2].parse().unwrap(), fields[3].parse().unwrap()])
        })
        .collect()
}

#[test]
fn default_partitioner_matches_the_java_client_for_every_key_in_the_table() {
    let table = java_table();
    assert!(table.len() >= 50);
    assert!(table.iter().any(|(k, _)| k.is_empty()) && table.iter().any(|(k, _)| k.len() > 200));
    for (key, expected) in &table {
        for (count, want) in [3, 7, 12].into_iter().zip(expected) {
            assert_eq!(java_partition(key, count), *want, "key {key:?}, {count} partitions");
            assert_eq!(DefaultPartitioner.partition("t", Some(key), None, count), *want);
        }
    }
}

fn template(kafka: &EmbeddedKafka, partitioner: impl Partitioner) -> KafkaTemplate {
    KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).partitioner(partitioner).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_land_where_the_java_client_puts_them() {
    let kafka = embedded(&[("keyed", 7)]);
    let template = template(&kafka, DefaultPartitioner);
    let table = java_table();
    let mut stored = HashMap::new();
    for (key, _) in &table {
        let metadata = template.send("keyed", "v").key(key.clone()).await.unwrap();
        assert_eq!(metadata.topic(), "keyed");
        stored.insert(key.clone(), (metadata.partition(), metadata.offset()));
    }
    let (running, landed) = collect(&kafka, "keyed").await;
    wait_until("every record read back", Duration::from_secs(20), || landed.lock().unwrap().len() == table.len()).await;
    running.shutdown().await.unwrap();
    for record in landed.lock().unwrap().iter() {
        let key = record.key.as_deref().unwrap_or_default().to_vec();
        let expected = table.iter().find(|(k, _)| *k == key).unwrap().1[1];
        assert_eq!(record.partition, expected, "key {key:?}");
        assert_eq!(stored[&key], (record.partition, record.offset), "the metadata says where it is");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_sticky_custom_and_explicit_partitions() {
    let kafka = embedded(&[("rr", 7), ("sticky", 7), ("vip", 4)]);
    let rr = template(&kafka, RoundRobinPartitioner);
    for i in 0..14 {
        rr.send("rr", format!("r{i}")).key("same-key").await.unwrap();
    }
    let sticky = template(&kafka, UniformStickyPartitioner);
    let mut sticky_partitions = Vec::new();
    for i in 0..10 {
        sticky_partitions.push(sticky.send("sticky", format!("s{i}")).key(format!("k{i}")).await.unwrap().partition());
    }

    /// VIP customers on partition 0; everyone else spread over the others by the Java hash.
    struct Vip;
    impl Partitioner for Vip {
        fn partition(&self, _topic: &str, key: Option<&[u8]>, _value: Option<&[u8]>, count: i32) -> i32 {
            match key {
                Some(k) if k.starts_with(b"vip-") => 0,
                Some(k) => 1 + java_partition(k, count - 1),
                None => 1,
            }
        }
    }
    let vip = template(&kafka, Vip);
    for key in ["vip-1", "vip-2", "alice", "bob", "carol", "dave"] {
        vip.send("vip", key).key(key).await.unwrap();
    }
    let explicit = vip.send("vip", "explicit").key("vip-3").partition(3).await.unwrap();
    assert_eq!(explicit.partition(), 3, "an explicit partition wins over the partitioner");

    let (running, landed) = collect(&kafka, "rr").await;
    wait_until("14 round-robin records", Duration::from_secs(20), || landed.lock().unwrap().len() == 14).await;
    running.shutdown().await.unwrap();
    let mut per_partition: BTreeMap<i32, usize> = BTreeMap::new();
    for record in landed.lock().unwrap().iter() {
        *per_partition.entry(record.partition).or_default() += 1;
    }
    assert_eq!(per_partition, (0..7).map(|p| (p, 2)).collect(), "round robin ignores the key");
    assert!(sticky_partitions.windows(2).all(|w| w[0] == w[1]), "small records stick: {sticky_partitions:?}");

    let (running, landed) = collect(&kafka, "vip").await;
    wait_until("7 vip records", Duration::from_secs(20), || landed.lock().unwrap().len() == 7).await;
    running.shutdown().await.unwrap();
    for record in landed.lock().unwrap().iter() {
        let key = record.key_str().unwrap();
        let expected = match (record.payload_str(), key) {
            (Some("explicit"), _) => 3,
            (_, k) if k.starts_with("vip-") => 0,
            (_, k) => 1 + java_partition(k.as_bytes(), 3),
        };
        assert_eq!(record.partition, expected, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_timestamp_json_and_the_default_topic() {
    #[derive(serde::Serialize)]
    struct Order {
        id: u64,
    }
    let kafka = embedded(&[("orders", 1)]);
    let template =
        KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).default_topic("orders").build().unwrap();
    let clone = template.clone();
    let sent = clone
        .send_default(Json(&Order { id: 7 }))
        .key("c-1")
        .header("trace", "t-1")
        .header("trace", "t-2")
        .timestamp(1_700_000_000_000)
        .await
        .unwrap();
    assert_eq!((sent.topic(), sent.partition(), sent.offset()), ("orders", 0, 0));
    template.send("orders", Option::<&str>::None).key("c-1").await.unwrap();
    template.flush().await.unwrap();
    let (running, landed) = collect(&kafka, "orders").await;
    wait_until("2 records", Duration::from_secs(20), || landed.lock().unwrap().len() == 2).await;
    running.shutdown().await.unwrap();
    let records = landed.lock().unwrap().clone();
    assert_eq!(records[0].payload_str(), Some(r#"{"id":7}"#));
    assert_eq!(records[0].key_str(), Some("c-1"));
    assert_eq!(records[0].timestamp, Some(1_700_000_000_000));
    assert_eq!(records[0].headers.iter().map(|(_, v)| v.unwrap()).collect::<Vec<_>>(), [b"t-1", b"t-2"]);
    assert_eq!(records[1].payload, None, "None is a tombstone");
    template.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_errors_are_typed() {
    struct Unserializable;
    impl Payload for Unserializable {
        fn to_bytes(&self) -> Result<Option<std::borrow::Cow<'_, [u8]>>, Box<dyn std::error::Error + Send + Sync>> {
            Err("no schema for this value".into())
        }
    }
    let kafka = embedded(&[("errors", 1)]);
    let template = KafkaTemplate::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .set("message.max.bytes", "2000")
        .build()
        .unwrap();
    let error = template.send("errors", Unserializable).await.unwrap_err();
    assert!(matches!(&error, Error::Serialization { part: "value", .. }), "{error}");
    assert!(error.to_string().contains("no schema for this value"));
    let error = template.send("errors", vec![0u8; 5000]).await.unwrap_err();
    assert!(matches!(&error, Error::MessageTooLarge { bytes: 5000, .. }), "{error:?}");
    let error = template.send_default("x").await.unwrap_err();
    assert!(matches!(error, Error::NoDefaultTopic), "{error}");

    let nowhere = KafkaTemplate::builder()
        .bootstrap_servers("127.0.0.1:1")
        .send_timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    let error = nowhere.send("errors", "x").await.unwrap_err();
    assert!(matches!(&error, Error::SendTimeout { .. }), "{error:?}");

    let error = KafkaTemplate::builder().bootstrap_servers("x:1").set("no.such.thing", "1").build().unwrap_err();
    assert!(error.to_string().contains("no.such.thing"), "{error}");
    let error = KafkaTemplate::builder().build().unwrap_err();
    assert!(error.to_string().contains("bootstrap_servers"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_listener_hears_every_outcome() {
    let kafka = embedded(&[("heard", 1)]);
    let outcomes = ProducerOutcomes::default();
    let template = KafkaTemplate::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .producer_listener(outcomes.clone())
        .build()
        .unwrap();
    template.send("heard", "a").await.unwrap();
    let _ = template.send("heard", vec![0u8; 2_000_000]).await;
    let heard = outcomes.outcomes();
    assert_eq!(heard[0], "ok heard-0@0");
    assert!(heard[1].starts_with("error heard: a record of 2000000 bytes"), "{heard:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_or_abort_through_the_template() {
    let kafka = embedded(&[("ledger", 2)]);
    let template = KafkaTemplate::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .transactional_id("ledger-writer")
        .build()
        .unwrap();
    kafka.track_requests();
    template
        .transaction(|tx| async move {
            tx.send("ledger", "debit a").key("acct-1").await?;
            tx.send("ledger", "credit a").key("acct-2").await?;
            Ok::<_, ListenerError>(())
        })
        .await
        .unwrap();
    // The protocol of a transaction: its partitions added to the transaction, and the
    // transaction ended (EndTxn); a plain send has neither.
    assert!(kafka.request_count(RDKafkaApiKey::AddPartitionsToTxn) >= 1, "{:?}", kafka.requests());
    assert_eq!(kafka.request_count(RDKafkaApiKey::EndTxn), 1, "the transaction ended once");
    let error = template
        .transaction(|tx| async move {
            tx.send("ledger", "debit b").key("acct-1").await?;
            Err::<(), _>(ListenerError::msg("insufficient funds"))
        })
        .await
        .unwrap_err();
    assert!(matches!(&error, Error::TransactionAborted { .. }), "{error}");
    assert!(error.to_string().contains("insufficient funds"));
    assert_eq!(
        kafka.request_count(RDKafkaApiKey::EndTxn),
        2,
        "the failed transaction was ended (aborted), not left open"
    );
    let total = template
        .transaction(|tx| async move {
            tx.send("ledger", "debit c").key("acct-1").await?;
            Ok::<_, ListenerError>(3)
        })
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(kafka.request_count(RDKafkaApiKey::EndTxn), 3, "a new transaction after the abort");

    // librdkafka's mock cluster ignores EndTxn's commit-or-abort (no markers, aborted records
    // stay visible), so what read_committed consumers see is checked on the real broker
    // (tests/real_broker.rs: an aborted transaction's records are never read); here, every send
    // of the committed transactions was stored.
    let (running, landed) = collect(&kafka, "ledger").await;
    wait_until("the committed records", Duration::from_secs(20), || landed.lock().unwrap().len() >= 3).await;
    running.shutdown().await.unwrap();
    let payloads: Vec<String> = landed.lock().unwrap().iter().map(|r| r.payload_str().unwrap().to_string()).collect();
    for committed in ["debit a", "credit a", "debit c"] {
        assert!(payloads.iter().any(|p| p == committed), "{committed} in {payloads:?}");
    }

    let error = template.send("ledger", "outside").await.unwrap_err();
    assert!(error.to_string().contains("only inside a transaction"), "{error}");

    let plain = KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap();
    let error = plain.transaction(|_| async { Ok::<_, ListenerError>(()) }).await.unwrap_err();
    assert!(error.to_string().contains("transactional_id"), "{error}");
}

/// The requests of kinds `apis` the embedded brokers received since `track_requests`, as
/// (kind, count), for a failure message.
fn tally(kafka: &EmbeddedKafka, apis: &[RDKafkaApiKey]) -> Vec<(RDKafkaApiKey, usize)> {
    apis.iter().map(|api| (*api, kafka.request_count(*api))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_factory_commits_each_records_output_and_offset_together() {
    let kafka = embedded(&[("tx-in", 1), ("tx-out", 1)]);
    produce(&kafka, "tx-in", &[(0, "k", "a".into()), (0, "k", "fail-once".into()), (0, "k", "c".into())]);
    let template = KafkaTemplate::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .transactional_id("tx-container")
        .build()
        .unwrap();
    let factory =
        factory(&kafka, AckMode::Batch).to_builder().transactional_template(template.clone()).build().unwrap();
    // (payload, attempt outcome) of every handler call.
    let calls: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let log = calls.clone();
    kafka.track_requests();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .with_state(template.clone())
        .register(Endpoint::new("tx").topic("tx-in").group("tx").handler(
            move |text: String, out: State<KafkaTemplate>| {
                let log = log.clone();
                async move {
                    out.send("tx-out", text.to_uppercase()).await?;
                    let first = !log.lock().unwrap().iter().any(|(t, _)| *t == text);
                    let fails = text == "fail-once" && first;
                    log.lock().unwrap().push((text, !fails));
                    if fails {
                        return Err(ListenerError::msg("first attempt fails after sending"));
                    }
                    Ok::<(), ListenerError>(())
                }
            },
        ))
        .start()
        .await
        .unwrap();
    let kinds = [
        RDKafkaApiKey::AddOffsetsToTxn,
        RDKafkaApiKey::TxnOffsetCommit,
        RDKafkaApiKey::EndTxn,
        RDKafkaApiKey::OffsetCommit,
    ];
    // Four transactions: a, fail-once (aborted), fail-once again, c; the three that committed
    // carried their record's offset (TxnOffsetCommit), the aborted one none.
    wait_until("three transactions with offsets and four ended", Duration::from_secs(20), || {
        kafka.request_count(RDKafkaApiKey::TxnOffsetCommit) >= 3 && kafka.request_count(RDKafkaApiKey::EndTxn) >= 4
    })
    .await;
    running.shutdown().await.unwrap();
    assert_eq!(
        *calls.lock().unwrap(),
        [("a", true), ("fail-once", false), ("fail-once", true), ("c", true)].map(|(t, ok)| (t.to_string(), ok)),
        "each record handled once, the failed one again after its abort"
    );
    // librdkafka's mock cluster accepts TxnOffsetCommit without storing the offsets (the real
    // broker test reads them back): here, that the offsets went only through the transactions
    // (one TxnOffsetCommit per committed transaction) and never through the consumer's own
    // commit (OffsetCommit), not even at shutdown.
    assert_eq!(
        tally(&kafka, &kinds),
        [
            (RDKafkaApiKey::AddOffsetsToTxn, 3),
            (RDKafkaApiKey::TxnOffsetCommit, 3),
            (RDKafkaApiKey::EndTxn, 4),
            (RDKafkaApiKey::OffsetCommit, 0)
        ]
    );
    let (reader, landed) = collect(&kafka, "tx-out").await;
    wait_until("the outputs", Duration::from_secs(20), || landed.lock().unwrap().len() >= 4).await;
    reader.shutdown().await.unwrap();
    // The mock ignores aborts, so the aborted attempt's output is visible here (the real broker
    // test shows a read_committed reader never sees it).
    let outputs: Vec<String> = landed.lock().unwrap().iter().map(|r| r.payload_str().unwrap().to_string()).collect();
    assert_eq!(outputs, ["A", "FAIL-ONCE", "FAIL-ONCE", "C"]);

    let error = ContainerFactory::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .transactional_template(KafkaTemplate::builder().bootstrap_servers(kafka.bootstrap_servers()).build().unwrap())
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("transactional_id"), "{error}");
    let transactional =
        common::factory(&kafka, AckMode::Manual).to_builder().transactional_template(template).build().unwrap();
    let error = ListenerRegistry::empty()
        .with_default_factory(transactional)
        .register(
            Endpoint::new("acking").topic("tx-in").handler(|ack: Acknowledgment| async move { ack.acknowledge() }),
        )
        .start()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("takes no Acknowledgment"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_batch_listener_retries_its_batch_in_a_new_transaction() {
    let kafka = embedded(&[("txb-in", 1), ("txb-out", 1)]);
    produce(&kafka, "txb-in", &numbered(4));
    let template = KafkaTemplate::builder()
        .bootstrap_servers(kafka.bootstrap_servers())
        .transactional_id("txb-container")
        .build()
        .unwrap();
    let factory =
        factory(&kafka, AckMode::Batch).to_builder().transactional_template(template.clone()).build().unwrap();
    // The payloads of every batch call, and whether it succeeded.
    let batches: Arc<Mutex<Vec<(Vec<String>, bool)>>> = Arc::default();
    let log = batches.clone();
    kafka.track_requests();
    let running = ListenerRegistry::empty()
        .with_default_factory(factory)
        .with_state(template.clone())
        .register(Endpoint::new("txb").topic("txb-in").group("txb").batch_handler(
            move |texts: Vec<String>, out: State<KafkaTemplate>| {
                let log = log.clone();
                async move {
                    for text in &texts {
                        out.send("txb-out", text.to_uppercase()).await?;
                    }
                    let first = log.lock().unwrap().is_empty();
                    log.lock().unwrap().push((texts, !first));
                    if first {
                        return Err(ListenerError::msg("the first batch fails after sending"));
                    }
                    Ok::<(), ListenerError>(())
                }
            },
        ))
        .start()
        .await
        .unwrap();
    let succeeded = |batches: &[(Vec<String>, bool)]| -> Vec<String> {
        batches.iter().filter(|(_, ok)| *ok).flat_map(|(texts, _)| texts.clone()).collect()
    };
    wait_until("the four records handled in committed batches", Duration::from_secs(20), || {
        succeeded(&batches.lock().unwrap()).len() >= 4
    })
    .await;
    let calls = batches.lock().unwrap().len();
    wait_until("every batch transaction ended", Duration::from_secs(20), || {
        kafka.request_count(RDKafkaApiKey::EndTxn) >= calls
    })
    .await;
    running.shutdown().await.unwrap();
    let batches = batches.lock().unwrap().clone();
    assert_eq!(succeeded(&batches), ["v0", "v1", "v2", "v3"], "each record once in a committed batch: {batches:?}");
    assert!(!batches[0].1 && batches[1].0.first() == batches[0].0.first(), "the failed batch again: {batches:?}");
    // One transaction per batch call (the failed one aborted); each committed one carried its
    // batch's offsets; the consumer never committed on its own.
    let kinds = [RDKafkaApiKey::TxnOffsetCommit, RDKafkaApiKey::EndTxn, RDKafkaApiKey::OffsetCommit];
    assert_eq!(
        tally(&kafka, &kinds),
        [
            (RDKafkaApiKey::TxnOffsetCommit, batches.len() - 1),
            (RDKafkaApiKey::EndTxn, batches.len()),
            (RDKafkaApiKey::OffsetCommit, 0)
        ],
        "{batches:?}"
    );
    let (reader, landed) = collect(&kafka, "txb-out").await;
    let sent: usize = batches.iter().map(|(texts, _)| texts.len()).sum();
    wait_until("the outputs", Duration::from_secs(20), || landed.lock().unwrap().len() >= sent).await;
    reader.shutdown().await.unwrap();
    let outputs: Vec<String> = landed.lock().unwrap().iter().map(|r| r.payload_str().unwrap().to_string()).collect();
    let expected: Vec<String> = batches.iter().flat_map(|(texts, _)| texts.iter().map(|t| t.to_uppercase())).collect();
    assert_eq!(outputs, expected, "every attempt's outputs (the mock keeps aborted ones)");
}
