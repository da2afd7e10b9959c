//! One consumer and its poll loop, on a thread of its own (Spring's
//! `KafkaMessageListenerContainer`): start-up, the loop, the final commits, closing.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::watch;

use super::contain::contain;
use super::events::ContainerEvent;
use super::plan::ContainerPlan;
use super::poll_loop::PollLoop;
use super::shared::{ContainerShared, ListenerState};
use super::siblings::{Arrival, Siblings};
use super::startup;
use crate::error::Error;

/// One rdkafka consumer in the listener's group with its own poll loop. Records of a partition
/// are handled in order, one at a time, on the container's thread.
pub(crate) struct ListenerContainer {
    pub(crate) shared: Arc<ContainerShared>,
    done: watch::Receiver<()>,
    _thread: JoinHandle<()>,
}

impl ListenerContainer {
    /// Starts consumer `index` of the listener on a thread named
    /// `kafka-listener-<listener>-<index>`.
    ///
    /// Errors: [`Error::ThreadSpawn`] when the operating system refuses the thread.
    pub(crate) fn spawn(
        plan: Arc<ContainerPlan>,
        index: usize,
        siblings: Arc<Siblings>,
        state: &ListenerState,
    ) -> Result<Self, Error> {
        let shared = Arc::new(ContainerShared::new(
            plan.listener_id.clone(),
            plan.group.clone(),
            plan.ack_mode,
            plan.settings.sync_commits,
            index,
            plan.settings.event_listener.clone(),
            state,
        ));
        let (done_tx, done) = watch::channel(());
        let thread_shared = shared.clone();
        let name = format!("kafka-listener-{}-{index}", plan.listener_id);
        let listener = plan.listener_id.to_string();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                // Dropped when the thread ends, however it ends: that is the "stopped" signal.
                let _done = done_tx;
                // Counts as arrived however the thread ends.
                let arrival = Arrival::new(&siblings, index);
                if let Err(panic) = contain(|| run(&plan, index, thread_shared.clone(), &arrival)) {
                    internal_panic(&thread_shared, "the container", panic);
                }
                thread_shared.meters.paused(0);
                thread_shared.health.ended();
                thread_shared.stats().set_finished();
                thread_shared.emit(|listener, consumer| ContainerEvent::Stopped { listener, consumer });
            })
            .map_err(|source| Error::ThreadSpawn {
                thread: name,
                what: format!("consumer {index} of listener `{listener}`"),
                source,
            })?;
        Ok(ListenerContainer { shared, done, _thread: thread })
    }

    pub(crate) fn is_running(&self) -> bool {
        self.done.has_changed().is_ok()
    }

    pub(crate) fn request_stop(&self) {
        self.shared.control().request_stop();
    }

    /// Resolves when the container's thread has ended.
    pub(crate) fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut done = self.done.clone();
        async move { while done.changed().await.is_ok() {} }
    }
}

fn run(plan: &Arc<ContainerPlan>, index: usize, shared: Arc<ContainerShared>, arrival: &Arrival<'_>) {
    let _runtime = plan.runtime.enter();
    let Some(consumer) = startup::create(plan, index, &shared, arrival.siblings) else {
        shared.health.failed("could not create the consumer (see the log)");
        return;
    };
    let Some(replay) = startup::start(plan, index, arrival.siblings, &shared, &consumer) else {
        if !shared.control().stop_requested() {
            shared.health.failed("could not start the consumer (see the log)");
        }
        return;
    };
    tracing::debug!(listener = &*plan.listener_id, index, topics = ?plan.subscription, "container started");
    shared.emit(|listener, consumer| ContainerEvent::Started { listener, consumer });
    {
        let mut poll_loop = PollLoop::new(plan, &shared, &consumer, replay);
        if let Err(panic) = contain(|| poll_loop.run()) {
            // What was processed is still committed below.
            internal_panic(&shared, "the container's poll loop", panic);
        }
        poll_loop.finish(arrival);
    }
    // Dropping the last reference closes the consumer: it leaves the group (the revocation
    // callback commits again, a no-op by now).
    shared.close(consumer);
    tracing::debug!(listener = &*plan.listener_id, index, "container stopped");
}

/// A panic of our own code stopped a consumer (user code is contained where it is called): said
/// in the log and as an event.
fn internal_panic(shared: &ContainerShared, during: &str, panic: String) {
    tracing::error!(
        listener = &*shared.listener_id,
        consumer = shared.index,
        during,
        panic,
        "the consumer stops after an internal panic; please report it"
    );
    shared.health.failed(format!("{during} panicked: {panic}"));
    shared.emit_panicked(during, panic, true);
}
