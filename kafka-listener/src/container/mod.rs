//! Containers: the consumers and poll loops that run listeners.
//!
//! # Execution model
//!
//! A listener with `concurrency = N` runs N rdkafka consumers in its group, each a container with
//! **its own OS thread** (`kafka-listener-<listener>-<n>`), owned by one
//! [`ConcurrentContainer`]. The thread polls the consumer and hands each record to the handler on
//! that same thread; an `async fn` handler's future is driven to completion there, inside the
//! registry's tokio runtime (so `tokio::spawn`, timers and I/O work in handlers), and the next
//! record waits for it. Records of a partition are thus handled in order, one at a time, and a
//! blocking handler blocks only its own consumer. Because handlers do not run on the runtime's
//! worker threads, a `#[tokio::main(flavor = "current_thread")]` application works too: the
//! runtime's one thread keeps serving the application's tasks (and the tasks handlers spawn)
//! while the consumers' threads run handlers.
//!
//! # Where to look
//!
//! | concern | file |
//! |---|---|
//! | the loop: gather, dispatch, commit | `poll_loop.rs` |
//! | dispatch (how records reach the listener) | `dispatch/` (`records.rs`, `batches.rs`) |
//! | commit cadence per ack mode | `commit_policy.rs` (pure) |
//! | where commits go: consumer, transaction, replay | `commit_sink.rs` |
//! | pause / resume (retry waits, back-pressure, handler and container pauses) | `holds.rs` |
//! | retries and error-handler decisions | `retrying.rs` (pure) |
//! | seeks and start positions | `seeks.rs` |
//! | transactions | `commit_sink.rs` (`begin`, `abort`, `processed`) |
//! | replies (`@SendTo`) | `replies.rs` |
//! | filter and interceptors | `prepare.rs` |
//! | start-up: create, subscribe, assign | `startup.rs` |
//! | rebalances: commit on revocation, hand-over, assignment callback | `context.rs` |
//! | shared state: tracker, requests, pauses, stats | `shared.rs`, `control.rs` |
//! | commits from any thread, the consumer for other threads | `commits.rs` |
//! | what extractors see of a container | `port.rs` |
//! | one consumer's thread and lifetime | `listener_container.rs`, `siblings.rs` |
//! | N consumers of a listener | `concurrent.rs` |
//! | the units one loop owns, and the steps combining two | `units.rs` |
//! | a poll's records by partition (first and last offsets) | `runs.rs` |
//! | the shutdown deadline | `stop_clock.rs` |
//! | idle events, missing topics, time-range replay | `idle.rs`, `missing_topics.rs`, `replay.rs` |

mod commit_policy;
mod commit_sink;
mod commits;
mod concurrent;
mod contain;
mod context;
mod control;
mod dispatch;
mod events;
mod handle;
mod holds;
mod idle;
mod lag;
mod listener_container;
mod missing_topics;
mod plan;
mod poll_loop;
mod port;
mod prepare;
mod protocol_watch;
mod replay;
mod replies;
mod retrying;
mod runs;
mod seeks;
mod shared;
mod siblings;
mod startup;
mod stop_clock;
mod sync;
mod units;

pub use concurrent::ConcurrentContainer;
pub use control::SeekTo;
pub use events::{ContainerEvent, EventListener};
pub use handle::ConsumerHandle;
pub(crate) use plan::{AssignedPartition, ContainerPlan, Invoker, ReplyPlan};
pub(crate) use port::{ContainerPort, DeliveredRecord};
pub(crate) use replay::Replay;
pub use replay::ReplayReport;
pub(crate) use sync::lock;
