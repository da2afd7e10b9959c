use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::{BatchOutcome, RecordOutcome};
use crate::extract::{ListenerContext, Record};

/// Runs a record listener: conversion, handler, outcome.
pub(crate) type RecordInvoker = Arc<dyn Fn(&Record<'_>, &ListenerContext<'_>) -> RecordOutcome + Send + Sync>;

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
