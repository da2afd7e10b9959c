use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::{BatchOutcome, ListenerFailure, RecordOutcome};
use crate::extract::{ListenerContext, Record};

/// Runs a record listener: conversion, handler, outcome.
pub(crate) type RecordInvoker = Arc<dyn Fn(&Record<'_>, &ListenerContext<'_>) -> RecordOutcome + Send + Sync>;

/// Starts a record listener off the consumer's thread (`ProcessingOrder::Key`, `Unordered`):
/// converts the record into the handler's arguments (on the consumer's thread) and returns the
/// work left, or the conversion's failure.
pub(crate) type RecordStarter =
    Arc<dyn Fn(&Record<'_>, &ListenerContext<'_>) -> Result<Job, ListenerFailure> + Send + Sync>;

/// A record's handler with its arguments converted, ready to run as a task (the
/// `ProcessingOrder::Key` and `Unordered` containers run it; `#[kafka_listener]` builds it).
#[doc(hidden)]
pub enum Job {
    /// An async handler's future: spawned on the registry's tokio runtime.
    Async(std::pin::Pin<Box<dyn Future<Output = RecordOutcome> + Send>>),
    /// A blocking handler's call: run on the runtime's blocking pool.
    Blocking(Box<dyn FnOnce() -> RecordOutcome + Send>),
}

/// Runs a batch listener; a conversion failure comes with the failing record's index.
pub(crate) type BatchInvoker = Arc<dyn Fn(&[Record<'_>], &ListenerContext<'_>) -> BatchOutcome + Send + Sync>;

/// Runs a handler's future to completion on the container's thread.
///
/// Most handlers finish without waiting: they are polled once with a no-op waker, which costs
/// nothing. A handler that waits (I/O, timers) is then driven by the tokio runtime the registry was
/// started on; the container thread has entered it, so handlers can use tokio as usual.
#[doc(hidden)]
pub fn drive<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        return output;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(future),
        // Outside a runtime (a handler called from a plain test): a minimal executor.
        Err(_) => block_on_thread(future),
    }
}

fn block_on_thread<F: Future>(future: F) -> F::Output {
    struct ThreadWaker(std::thread::Thread);
    impl std::task::Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            return output;
        }
        std::thread::park();
    }
}
