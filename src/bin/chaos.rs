//! A seeded, randomized fault campaign with an invariant checker.
//!
//! ```text
//! cargo run --bin chaos -- --seed 1 --duration-s 60          # what .ci/run runs
//! cargo run --release --bin chaos -- --seed 7 --duration-s 600 --instances 3
//! ```
//!
//! The campaign (the driver, this process) starts an embedded broker in a process of its own and
//! several service instances (child processes, this same binary with `--role instance`) in the
//! same consumer groups. Each instance runs ten listeners, one per ack mode, listener kind and
//! processing order: Record mode with retries and a dead-letter recoverer (poison and flaky
//! records), a batch listener, Time, Count and CountTime, Manual acknowledged out of order from
//! spawned tasks, ManualImmediate with nacks, `ProcessingOrder::Key` (handlers as tasks waiting
//! 0-30 ms, records failing once and retried while their key waits) and `Unordered` (acknowledged
//! from the task, some nacked once). A producer writes numbered records with 20 keys to all ten
//! topics throughout. From the seed, the driver schedules faults at random times: SIGKILL of an
//! instance and its restart, instances joining and leaving (rebalances), seeks and pauses from
//! outside, broker request errors (fetch, commit, produce, join, heartbeat, sync), broker
//! outages (every kind of request timing out for a while), handlers slower than
//! `max.poll.interval.ms`; with `--broker-down`, also the broker taken down and up. (That one
//! is off by default: after some minutes of it, librdkafka 2.12.1's mock cluster aborts, an
//! assertion in `rd_kafka_mock_cgrp_classic_member_add`, seen in 4 of 6 runs of 10 minutes,
//! each right after the broker came back up; the campaign then stops, naming the cause.) Four of the groups rebalance
//! cooperatively (`cooperative-sticky`), six eagerly.
//!
//! Every process appends to one log (one `write` per line; see `kafka_listener_suite::chaos`),
//! the driver samples each group's committed offsets into it, and after the final graceful stop
//! the checker reads it: every record handled or dead-lettered, first deliveries in order per
//! partition (per key by key; none unordered), committed offsets never past unprocessed work, committed == end at the end,
//! duplicates only after a kill, revocation or seek. Each violation is printed on a line of its
//! own with the seed and the faults before it; the last line is
//! `chaos seed=<n> duration=<s> faults=<k> records=<r> duplicates=<d> violations=<v>`, and the
//! exit code is non-zero when there is a violation. `--role check --log FILE --seed N` checks
//! the log of an earlier campaign again. `--group-protocol consumer` runs every group under
//! KIP-848's consumer group protocol (the embedded broker's heartbeat 400 ms, session 4 s); the
//! request errors it injects for JoinGroup, Heartbeat and SyncGroup then hit nothing (the
//! mock's fault injection does not reach ConsumerGroupHeartbeat through rdkafka's API keys).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use kafka_listener::container::{ContainerEvent, SeekTo};
use kafka_listener::embedded::{RDKafkaApiKey, RDKafkaRespErr};
use kafka_listener::error_handler::{DeadLetterRecoverer, FixedBackOff, Recoverer};
use kafka_listener::prelude::*;
use kafka_listener::support::Admin;
use kafka_listener::{EmbeddedKafka, FailedRecord};
use kafka_listener_suite::chaos::{check, handled_prefixes, Event, GroupPartition, Order, Rng};

/// The listeners every instance runs: (id = group, ack mode, processing order). The topic is
/// `chaos-<id>`.
const LISTENERS: [(&str, AckMode, ProcessingOrder); 10] = [
    ("record", AckMode::Record, ProcessingOrder::Partition),
    ("batch", AckMode::Batch, ProcessingOrder::Partition),
    // A record listener on the factory's default ack mode: its records are marked processed
    // together at the end of each poll, or before a failure's retry.
    ("record-batch", AckMode::Batch, ProcessingOrder::Partition),
    ("time", AckMode::Time, ProcessingOrder::Partition),
    ("count", AckMode::Count, ProcessingOrder::Partition),
    ("count-time", AckMode::CountTime, ProcessingOrder::Partition),
    ("manual", AckMode::Manual, ProcessingOrder::Partition),
    ("manual-immediate", AckMode::ManualImmediate, ProcessingOrder::Partition),
    // Handlers as tasks: one key's records in order (some failing once), or any order
    // (acknowledged from the task, some nacked once).
    ("key", AckMode::Batch, ProcessingOrder::Key),
    ("unordered", AckMode::Manual, ProcessingOrder::Unordered),
];
const PARTITIONS: i32 = 3;
/// The dead-letter topic of the `record` listener.
const DLT: &str = "chaos-record-dlt";
/// Records per second the producer writes to each topic.
const RATE: u64 = 40;

fn topic(listener: &str) -> String {
    format!("chaos-{listener}")
}

/// The campaign's log: one `write` per line, appended.
#[derive(Clone)]
struct Log(Arc<File>);

impl Log {
    fn open(path: &Path) -> anyhow::Result<Log> {
        let file = OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("{path:?}"))?;
        Ok(Log(Arc::new(file)))
    }

    fn write(&self, event: &Event) {
        // One write_all of a short line on an O_APPEND file: one write(2), never interleaved.
        let _ = (&*self.0).write_all(event.line().as_bytes());
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    match value("--role").as_deref() {
        Some("broker") => broker(),
        Some("instance") => {
            let id: u32 = value("--id").context("--id")?.parse()?;
            let bootstrap = value("--bootstrap").context("--bootstrap")?;
            let log = PathBuf::from(value("--log").context("--log")?);
            instance(id, &bootstrap, &log)
        }
        Some("check") => {
            // Checks the log of an earlier campaign again (e.g. after changing the checker).
            let log = PathBuf::from(value("--log").context("--log")?);
            let seed: u64 = value("--seed").map(|s| s.parse()).transpose().context("--seed")?.unwrap_or(0);
            let lines: Vec<String> = BufReader::new(File::open(&log)?).lines().map_while(Result::ok).collect();
            let report = check(&lines, seed);
            for violation in &report.violations {
                println!("{violation}");
            }
            println!(
                "chaos seed={seed} faults={} records={} duplicates={} violations={} log={}",
                report.faults,
                report.records,
                report.duplicates,
                report.violations.len(),
                log.display()
            );
            if !report.violations.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
        Some(other) => bail!("unknown role `{other}` (broker, instance, check)"),
        None => {
            let seed: u64 = value("--seed").map(|s| s.parse()).transpose().context("--seed")?.unwrap_or(1);
            let duration = Duration::from_secs(
                value("--duration-s").map(|s| s.parse()).transpose().context("--duration-s")?.unwrap_or(60),
            );
            let instances: u32 = value("--instances").map(|s| s.parse()).transpose()?.unwrap_or(3);
            let broker_down = args.iter().any(|a| a == "--broker-down");
            // Every group under this protocol; the broker and instance processes inherit it.
            let protocol: GroupProtocol = value("--group-protocol")
                .map(|p| p.parse())
                .transpose()
                .map_err(anyhow::Error::msg)?
                .unwrap_or_default();
            // Set before any thread starts; children read it in `group_protocol()`.
            std::env::set_var(PROTOCOL_VAR, protocol.name());
            let log = value("--log")
                .map(PathBuf::from)
                .unwrap_or_else(|| std::env::temp_dir().join(format!("chaos-{seed}-{}.log", std::process::id())));
            driver(seed, duration, instances, broker_down, &log)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The broker: an embedded cluster in its own process, taking fault commands on stdin.

fn api(name: &str) -> Option<RDKafkaApiKey> {
    Some(match name {
        "Fetch" => RDKafkaApiKey::Fetch,
        "OffsetCommit" => RDKafkaApiKey::OffsetCommit,
        "Produce" => RDKafkaApiKey::Produce,
        "JoinGroup" => RDKafkaApiKey::JoinGroup,
        "Heartbeat" => RDKafkaApiKey::Heartbeat,
        "SyncGroup" => RDKafkaApiKey::SyncGroup,
        "OffsetFetch" => RDKafkaApiKey::OffsetFetch,
        _ => return None,
    })
}

fn error_code(name: &str) -> Option<RDKafkaRespErr> {
    use RDKafkaRespErr::*;
    Some(match name {
        "REQUEST_TIMED_OUT" => RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        "NOT_COORDINATOR" => RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
        "COORDINATOR_NOT_AVAILABLE" => RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        "COORDINATOR_LOAD_IN_PROGRESS" => RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
        "NOT_LEADER_FOR_PARTITION" => RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        "REBALANCE_IN_PROGRESS" => RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
        "TRANSPORT" => RD_KAFKA_RESP_ERR__TRANSPORT,
        _ => return None,
    })
}

/// The variable through which the driver gives its processes `--group-protocol`.
const PROTOCOL_VAR: &str = "CHAOS_GROUP_PROTOCOL";

/// The campaign's consumer group protocol (`--group-protocol classic|consumer`, classic unless
/// given).
fn group_protocol() -> GroupProtocol {
    std::env::var(PROTOCOL_VAR).ok().and_then(|p| p.parse().ok()).unwrap_or_default()
}

fn broker() -> anyhow::Result<()> {
    let kafka = EmbeddedKafka::start(1)?;
    kafka.set_initial_rebalance_delay(Duration::from_millis(300));
    // The consumer protocol's timing is the broker's: as short as the classic groups' below.
    kafka.set_consumer_group_heartbeat_interval(Duration::from_millis(400));
    kafka.set_consumer_group_session_timeout(Duration::from_secs(4));
    for (listener, ..) in LISTENERS {
        kafka.create_topic(&topic(listener), PARTITIONS)?;
    }
    kafka.create_topic(DLT, PARTITIONS)?;
    println!("{}", kafka.bootstrap_servers());
    std::io::stdout().flush()?;
    // Commands until stdin closes (the driver ended): `fail <api> <error> <count>`, `down`, `up`.
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let result = match words.as_slice() {
            ["fail", api_name, error, count] => match (api(api_name), error_code(error), count.parse::<usize>()) {
                (Some(api), Some(error), Ok(count)) => kafka.fail_requests(api, &vec![error; count]),
                _ => {
                    eprintln!("broker: bad command `{line}`");
                    Ok(())
                }
            },
            ["down"] => kafka.broker_down(-1),
            ["up"] => kafka.broker_up(-1),
            _ => {
                eprintln!("broker: unknown command `{line}`");
                Ok(())
            }
        };
        if let Err(error) = result {
            eprintln!("broker: `{line}` failed: {error}");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// An instance: the ten listeners, logging every delivery and acknowledgment.

/// A recoverer that logs what it dead-lettered, once the dead letter landed.
struct LoggedRecoverer {
    inner: DeadLetterRecoverer,
    log: Log,
    instance: u32,
}

impl Recoverer for LoggedRecoverer {
    fn recover(&self, failed: &FailedRecord<'_>) -> Result<(), kafka_listener::Error> {
        self.inner.recover(failed)?;
        let record = failed.record;
        let at = (failed.group.to_string(), record.topic().to_string(), record.partition());
        self.log.write(&Event::Recovered { instance: self.instance, at, offset: record.offset() });
        Ok(())
    }
}

/// The records (partition, offset) an instance's listener nacked already.
type Nacked = Arc<std::sync::Mutex<std::collections::HashSet<(i32, i64)>>>;

/// Nacks one record in 17 (by its sequence number) the first time this instance sees it (it is
/// delivered again after 50 ms); handles and acknowledges the rest.
fn nack_once_or_handle(nacked: &Nacked, seq: &str, meta: &Meta, ack: Acknowledgment, log: &Log, id: u32, group: &str) {
    let seq: u64 = seq.parse().unwrap_or(0);
    if seq.is_multiple_of(17)
        && nacked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert((meta.partition, meta.offset))
    {
        ack.nack(Duration::from_millis(50));
    } else {
        log.write(&Event::Handled { instance: id, at: gp(group, meta), offset: meta.offset });
        ack.acknowledge();
    }
}

fn gp(group: &str, meta: &Meta) -> GroupPartition {
    (group.to_string(), meta.topic.clone(), meta.partition)
}

fn instance(id: u32, bootstrap: &str, log_path: &Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run_instance(id, bootstrap, log_path))
}

async fn run_instance(id: u32, bootstrap: &str, log_path: &Path) -> anyhow::Result<()> {
    let log = Log::open(log_path)?;
    let template = KafkaTemplate::builder().bootstrap_servers(bootstrap).build()?;
    let events = log.clone();
    let protocol = group_protocol();
    let mut base = ContainerFactory::builder().bootstrap_servers(bootstrap).group_protocol(protocol);
    if protocol == GroupProtocol::Classic {
        base = base.set("session.timeout.ms", "4000").set("heartbeat.interval.ms", "400");
    }
    let base = base
        // A JoinGroup waits up to max.poll.interval.ms + 3 s on the client; librdkafka's mock
        // cluster (2.12.1) aborts (assertion `!member->resp`) when a member sends another while
        // one is held, so keep it well above the mock's longest rebalance.
        .set("max.poll.interval.ms", "20000")
        .ack_count(25)
        .ack_time(Duration::from_millis(400))
        .shutdown_timeout(Duration::from_secs(20))
        .event_listener(move |event| {
            let (listener, partitions) = match event {
                ContainerEvent::PartitionsRevoked { listener, partitions, .. }
                | ContainerEvent::PartitionsLost { listener, partitions, .. } => (listener, partitions),
                _ => return,
            };
            for tp in partitions {
                events.write(&Event::Revoked { instance: id, at: (listener.clone(), tp.topic.clone(), tp.partition) });
            }
        })
        .build()?;
    // A handler told to be slow sleeps this long once (ms).
    let slow = Arc::new(AtomicU64::new(0));
    let mut registry = ListenerRegistry::empty().with_default_factory(base.clone());
    for (listener, mode, order) in LISTENERS {
        let mut factory = base.to_builder().ack_mode(mode).processing_order(order).max_concurrency(8);
        // Half the groups rebalance cooperatively (incremental), half eagerly.
        // (Under the consumer protocol every group rebalances incrementally.)
        if protocol == GroupProtocol::Classic && matches!(listener, "batch" | "count" | "manual" | "unordered") {
            factory = factory.set("partition.assignment.strategy", "cooperative-sticky");
        }
        if listener == "record" {
            let recoverer =
                LoggedRecoverer { inner: DeadLetterRecoverer::new(template.clone()), log: log.clone(), instance: id };
            factory = factory.error_handler(
                DefaultErrorHandler::new()
                    .backoff(FixedBackOff { interval: Duration::from_millis(100), max_retries: 2 })
                    .recoverer(recoverer),
            );
        }
        if listener == "key" {
            factory = factory.error_handler(
                DefaultErrorHandler::new()
                    .backoff(FixedBackOff { interval: Duration::from_millis(100), max_retries: 2 }),
            );
        }
        registry = registry.with_factory(listener, factory.build()?);
        let endpoint = Endpoint::new(listener).topic(topic(listener)).group(listener).container_factory(listener);
        let (log, slow) = (log.clone(), slow.clone());
        let endpoint = match listener {
            "batch" => endpoint.batch_handler(move |metas: Vec<Meta>| {
                for meta in &metas {
                    log.write(&Event::Delivered {
                        instance: id,
                        at: gp("batch", meta),
                        offset: meta.offset,
                        attempt: meta.delivery_attempt(),
                        order: Order::Partition,
                    });
                }
                for meta in &metas {
                    log.write(&Event::Handled { instance: id, at: gp("batch", meta), offset: meta.offset });
                }
                std::future::ready(())
            }),
            "manual" => endpoint.handler(move |meta: Meta, ack: Acknowledgment| {
                let log = log.clone();
                log.write(&Event::Delivered {
                    instance: id,
                    at: gp("manual", &meta),
                    offset: meta.offset,
                    attempt: meta.delivery_attempt(),
                    order: Order::Partition,
                });
                // Acknowledged out of order, from a task of its own.
                // Up to 400 ms: wide windows in which later records are acknowledged first.
                let delay = Duration::from_millis((meta.offset as u64 * 7919 + meta.partition as u64 * 104_729) % 400);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    log.write(&Event::Handled { instance: id, at: gp("manual", &meta), offset: meta.offset });
                    ack.acknowledge();
                });
                std::future::ready(())
            }),
            "manual-immediate" => {
                // Each of these records is nacked once (by this instance) before it is handled.
                let nacked = Nacked::default();
                endpoint.handler(move |seq: String, meta: Meta, ack: Acknowledgment| {
                    log.write(&Event::Delivered {
                        instance: id,
                        at: gp("manual-immediate", &meta),
                        offset: meta.offset,
                        attempt: meta.delivery_attempt(),
                        order: Order::Partition,
                    });
                    nack_once_or_handle(&nacked, &seq, &meta, ack, &log, id, "manual-immediate");
                    std::future::ready(())
                })
            }
            "key" => endpoint.handler(move |seq: String, meta: Meta| {
                let (log, slow) = (log.clone(), slow.clone());
                async move {
                    let at = gp("key", &meta);
                    let key = meta.key.as_deref().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
                    log.write(&Event::Delivered {
                        instance: id,
                        at: at.clone(),
                        offset: meta.offset,
                        attempt: meta.delivery_attempt(),
                        order: Order::Key(key),
                    });
                    // 0-30 ms, so that keys overtake each other.
                    let pause = slow.swap(0, Ordering::AcqRel).max(meta.offset as u64 * 7919 % 31);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    let seq: u64 = seq.parse().unwrap_or(0);
                    if seq.is_multiple_of(13) && meta.delivery_attempt() == 1 {
                        // Retried after its back-off while the other keys go on.
                        return Err(ListenerError::msg(format!("record {seq} fails once")));
                    }
                    log.write(&Event::Handled { instance: id, at, offset: meta.offset });
                    Ok::<(), ListenerError>(())
                }
            }),
            "unordered" => {
                // Each of these records is nacked once (by this instance) before it is handled.
                let nacked = Nacked::default();
                endpoint.handler(move |seq: String, meta: Meta, ack: Acknowledgment| {
                    let (log, nacked) = (log.clone(), nacked.clone());
                    async move {
                        log.write(&Event::Delivered {
                            instance: id,
                            at: gp("unordered", &meta),
                            offset: meta.offset,
                            attempt: meta.delivery_attempt(),
                            order: Order::Unordered,
                        });
                        tokio::time::sleep(Duration::from_millis(meta.offset as u64 * 104_729 % 41)).await;
                        nack_once_or_handle(&nacked, &seq, &meta, ack, &log, id, "unordered");
                    }
                })
            }
            group => endpoint.handler(move |seq: String, meta: Meta| {
                let (log, slow) = (log.clone(), slow.clone());
                async move {
                    let at = gp(group, &meta);
                    log.write(&Event::Delivered {
                        instance: id,
                        at: at.clone(),
                        offset: meta.offset,
                        attempt: meta.delivery_attempt(),
                        order: Order::Partition,
                    });
                    let pause = slow.swap(0, Ordering::AcqRel);
                    if pause > 0 {
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                    let seq: u64 = seq.parse().unwrap_or(0);
                    if group == "record" && (seq % 101 == 7 || (seq.is_multiple_of(13) && meta.delivery_attempt() == 1))
                    {
                        return Err(ListenerError::msg(format!("record {seq} fails")));
                    }
                    if group == "record-batch" && seq.is_multiple_of(13) && meta.delivery_attempt() == 1 {
                        // Retried (the default error handler) after the records before it in the
                        // poll are marked processed.
                        return Err(ListenerError::msg(format!("record {seq} fails once")));
                    }
                    log.write(&Event::Handled { instance: id, at, offset: meta.offset });
                    Ok::<(), ListenerError>(())
                }
            }),
        };
        registry = registry.register(endpoint);
    }
    let running = registry.start().await?;
    // Commands on stdin until `stop` (or stdin closes): a graceful shutdown.
    let (commands, mut incoming) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if commands.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = incoming.recv().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["seek", listener, topic, partition, back] => {
                let (Ok(partition), Ok(back)) = (partition.parse::<i32>(), back.parse::<i64>()) else { continue };
                if let Some(container) = running.container(listener) {
                    if container.assignment().iter().any(|tp| tp.is(topic, partition)) {
                        log.write(&Event::Sought {
                            instance: id,
                            at: (listener.to_string(), topic.to_string(), partition),
                        });
                        let _ = container.seek(topic, partition, SeekTo::Relative(-back));
                    }
                }
            }
            ["pause", listener] => drop(running.pause(listener)),
            ["resume", listener] => drop(running.resume(listener)),
            ["slow", ms] => slow.store(ms.parse().unwrap_or(0), Ordering::Release),
            ["stop"] => break,
            _ => eprintln!("instance {id}: unknown command `{line}`"),
        }
    }
    running.shutdown().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The driver: processes, producer, committed-offset sampler, faults, and the final check.

struct Instance {
    id: u32,
    child: Child,
    stdin: ChildStdin,
}

impl Instance {
    fn spawn(id: u32, bootstrap: &str, log: &Path) -> anyhow::Result<Instance> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--role", "instance", "--id", &id.to_string(), "--bootstrap", bootstrap, "--log"])
            .arg(log)
            .env("RUST_LOG", std::env::var("CHAOS_INSTANCE_LOG").unwrap_or_else(|_| "error".into()))
            .stdin(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().context("instance stdin")?;
        Ok(Instance { id, child, stdin })
    }

    fn command(&mut self, line: &str) {
        let _ = writeln!(self.stdin, "{line}");
    }
}

fn driver(seed: u64, duration: Duration, count: u32, broker_down: bool, log_path: &Path) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(log_path);
    let log = Log::open(log_path)?;
    let mut rng = Rng::new(seed);
    let mut broker = Command::new(std::env::current_exe()?)
        .args(["--role", "broker"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(broker.stdout.take().context("broker stdout")?).read_line(&mut line)?;
    let bootstrap = line.trim().to_string();
    let mut broker_in = broker.stdin.take().context("broker stdin")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let started = Instant::now();
    let seconds = || started.elapsed().as_secs_f64();
    let fault = |description: String| {
        eprintln!("{:6.1}s {description}", started.elapsed().as_secs_f64());
        log.write(&Event::Fault { seconds: started.elapsed().as_secs_f64(), description });
    };

    // The producer: numbered, keyed records to every topic, RATE per second each.
    let producing = Arc::new(AtomicBool::new(true));
    let template = KafkaTemplate::builder().bootstrap_servers(bootstrap.as_str()).build()?;
    let producer = {
        let (producing, template) = (producing.clone(), template.clone());
        runtime.spawn(async move {
            let mut seq = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / RATE));
            while producing.load(Ordering::Acquire) {
                tick.tick().await;
                for (listener, ..) in LISTENERS {
                    let _ = template.send(&topic(listener), seq.to_string()).key(format!("k{}", seq % 20)).await;
                }
                seq += 1;
            }
            seq
        })
    };
    // The sampler: every group's committed offsets, read back, into the log.
    let sampling = Arc::new(AtomicBool::new(true));
    let admin = Admin::new(bootstrap.as_str());
    let sampler = {
        let (sampling, admin, log) = (sampling.clone(), admin.clone(), log.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Acquire) {
                for (listener, ..) in LISTENERS {
                    if let Ok(offsets) = admin.committed_offsets(listener, &topic(listener)) {
                        // Partitions the group has committed nothing on are left out.
                        for (partition, offset) in offsets.into_iter().filter_map(|(p, o)| Some((p, o?))) {
                            log.write(&Event::Committed {
                                at: (listener.to_string(), topic(listener), partition),
                                offset,
                            });
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let mut next_id = 0;
    let spawn = |next_id: &mut u32| -> anyhow::Result<Instance> {
        *next_id += 1;
        Instance::spawn(*next_id, &bootstrap, log_path)
    };
    let mut instances: Vec<Instance> = Vec::new();
    for _ in 0..count {
        instances.push(spawn(&mut next_id)?);
    }
    // Actions due later: (when, what).
    let mut later: Vec<(Instant, String)> = Vec::new();
    let mut stopped_broker = false;
    while started.elapsed() < duration {
        std::thread::sleep(Duration::from_millis(rng.range(800, 3500)));
        if let Ok(Some(status)) = broker.try_wait() {
            // Not a finding about kafka-listener: the campaign cannot go on without its broker.
            bail!(
                "chaos seed={seed}: the broker process ended ({status}) {:.1}s into the campaign; its stderr says why \
                 (librdkafka's mock cluster aborts on some request sequences); log {}",
                seconds(),
                log_path.display()
            );
        }
        // Due actions first.
        let now = Instant::now();
        let due: Vec<String> = later.iter().filter(|(at, _)| *at <= now).map(|(_, what)| what.clone()).collect();
        later.retain(|(at, _)| *at > now);
        for what in due {
            match what.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["restart"] => {
                    let instance = spawn(&mut next_id)?;
                    fault(format!("start instance {} (restart)", instance.id));
                    instances.push(instance);
                }
                ["up"] => {
                    let _ = writeln!(broker_in, "up");
                    stopped_broker = false;
                    fault("broker up".into());
                }
                ["resume", id, listener] => {
                    if let Some(instance) = instances.iter_mut().find(|i| i.id.to_string() == *id) {
                        instance.command(&format!("resume {listener}"));
                        fault(format!("resume {listener} on instance {id}"));
                    }
                }
                _ => {}
            }
        }
        let pick = rng.range(0, 100);
        let index = rng.range(0, instances.len() as u64) as usize;
        let (listener, ..) = LISTENERS[rng.range(0, LISTENERS.len() as u64) as usize];
        match pick {
            0..=14 if instances.len() >= 2 => {
                let mut instance = instances.remove(index);
                fault(format!("kill -9 instance {}", instance.id));
                let _ = instance.child.kill();
                let _ = instance.child.wait();
                // Logged once the process is gone: every line it wrote (it runs until the signal
                // lands) comes before the kill, which excuses the redelivery of what it handled.
                log.write(&Event::Killed { instance: instance.id });
                later.push((Instant::now() + Duration::from_millis(rng.range(1000, 4000)), "restart".into()));
            }
            15..=24 if instances.len() < 4 => {
                let instance = spawn(&mut next_id)?;
                fault(format!("start instance {} (join)", instance.id));
                instances.push(instance);
            }
            25..=32 if instances.len() > 2 => {
                let mut instance = instances.remove(index);
                fault(format!("stop instance {} (graceful leave)", instance.id));
                instance.command("stop");
                let _ = instance.child.wait();
            }
            33..=62 => {
                let (api, errors): (&str, &[&str]) = match rng.range(0, 6) {
                    0 => ("Fetch", &["REQUEST_TIMED_OUT", "NOT_LEADER_FOR_PARTITION", "TRANSPORT"]),
                    1 => ("OffsetCommit", &["REQUEST_TIMED_OUT", "COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR"]),
                    2 => ("Produce", &["REQUEST_TIMED_OUT", "NOT_LEADER_FOR_PARTITION"]),
                    3 => ("JoinGroup", &["COORDINATOR_LOAD_IN_PROGRESS", "NOT_COORDINATOR"]),
                    4 => ("Heartbeat", &["NOT_COORDINATOR", "REBALANCE_IN_PROGRESS"]),
                    _ => ("SyncGroup", &["COORDINATOR_NOT_AVAILABLE", "NOT_COORDINATOR"]),
                };
                let error = errors[rng.range(0, errors.len() as u64) as usize];
                let times = rng.range(1, 6);
                let _ = writeln!(broker_in, "fail {api} {error} {times}");
                fault(format!("fail {times} {api} requests with {error}"));
            }
            63..=67 if broker_down && !stopped_broker => {
                let _ = writeln!(broker_in, "down");
                stopped_broker = true;
                fault("broker down".into());
                later.push((Instant::now() + Duration::from_millis(rng.range(1000, 3000)), "up".into()));
            }
            63..=67 => {
                // An outage without the mock's down/up: every kind of request times out for a
                // while (each kind fails this many times in a row).
                let times = rng.range(5, 20);
                for api in ["Fetch", "OffsetCommit", "Produce", "Heartbeat", "OffsetFetch"] {
                    let _ = writeln!(broker_in, "fail {api} REQUEST_TIMED_OUT {times}");
                }
                fault(format!("outage: {times} requests of each kind time out"));
            }
            68..=79 if !instances.is_empty() => {
                let partition = rng.range(0, PARTITIONS as u64);
                let back = rng.range(1, 50);
                let instance = &mut instances[index];
                instance.command(&format!("seek {listener} {} {partition} {back}", topic(listener)));
                fault(format!(
                    "seek {listener} {}-{partition} back {back} on instance {}",
                    topic(listener),
                    instance.id
                ));
            }
            80..=89 if !instances.is_empty() => {
                let instance = &mut instances[index];
                instance.command(&format!("pause {listener}"));
                fault(format!("pause {listener} on instance {}", instance.id));
                later.push((
                    Instant::now() + Duration::from_millis(rng.range(500, 2500)),
                    format!("resume {} {listener}", instance.id),
                ));
            }
            90..=99 if !instances.is_empty() => {
                let instance = &mut instances[index];
                let ms = rng.range(1000, 25_000);
                instance.command(&format!("slow {ms}"));
                fault(format!("slow handler {ms} ms on instance {}", instance.id));
            }
            _ => {}
        }
    }

    // The end: no more faults or records; every instance back; wait until everything is
    // committed, then stop them all gracefully and read the final offsets.
    producing.store(false, Ordering::Release);
    let produced = runtime.block_on(producer).unwrap_or(0);
    if stopped_broker {
        let _ = writeln!(broker_in, "up");
    }
    for (_, what) in later.drain(..) {
        match what.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["restart"] => instances.push(spawn(&mut next_id)?),
            ["resume", id, listener] => {
                if let Some(instance) = instances.iter_mut().find(|i| i.id.to_string() == *id) {
                    instance.command(&format!("resume {listener}"));
                }
            }
            _ => {}
        }
    }
    let ends = |admin: &Admin| -> BTreeMap<String, BTreeMap<i32, i64>> {
        LISTENERS.iter().map(|(l, ..)| (l.to_string(), admin.end_offsets(&topic(l)).unwrap_or_default())).collect()
    };
    // Until every record is handled or dead-lettered (Count mode commits the rest at the stop),
    // as long as the backlog keeps shrinking: slow handlers and pauses leave one behind.
    let (mut best, mut progressed, cap) = (0i64, Instant::now(), Instant::now() + Duration::from_secs(900));
    loop {
        let end = ends(&admin);
        let lines: Vec<String> = BufReader::new(File::open(log_path)?).lines().map_while(Result::ok).collect();
        let prefixes = handled_prefixes(&lines);
        let mut done = true;
        let mut total = 0;
        for (l, ..) in LISTENERS {
            for (p, e) in &end[l] {
                let prefix = prefixes.get(&(l.to_string(), topic(l), *p)).copied().unwrap_or(0);
                total += prefix.min(*e);
                done &= prefix >= *e;
            }
        }
        if total > best {
            (best, progressed) = (total, Instant::now());
        }
        if done || progressed.elapsed() > Duration::from_secs(90) || Instant::now() > cap {
            break;
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
    // One at a time: each stop commits with the group stable, then the rest take over.
    for mut instance in instances {
        instance.command("stop");
        let _ = instance.child.wait();
    }
    sampling.store(false, Ordering::Release);
    let _ = sampler.join();
    let end = ends(&admin);
    for (listener, ..) in LISTENERS {
        let committed = admin.committed_offsets(listener, &topic(listener)).unwrap_or_default();
        for (partition, end) in &end[listener] {
            let at = (listener.to_string(), topic(listener), *partition);
            log.write(&Event::Final {
                at,
                committed: committed.get(partition).copied().flatten().unwrap_or(-1),
                end: *end,
            });
        }
    }
    drop(broker_in);
    let _ = broker.wait();

    let lines: Vec<String> = BufReader::new(File::open(log_path)?).lines().map_while(Result::ok).collect();
    let report = check(&lines, seed);
    for violation in &report.violations {
        println!("{violation}");
    }
    println!(
        "chaos seed={seed} duration={:.0} faults={} records={} duplicates={} violations={} produced={} log={}",
        seconds(),
        report.faults,
        report.records,
        report.duplicates,
        report.violations.len(),
        produced * LISTENERS.len() as u64,
        log_path.display()
    );
    if !report.violations.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
