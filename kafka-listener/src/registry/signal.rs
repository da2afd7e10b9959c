//! A future that resolves when the process is asked to stop (SIGINT or SIGTERM), to select on
//! together with a program's own work before shutting the listeners down.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::{Error, Result};

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM after it was created (on Windows, Ctrl-C);
/// its output names the signal. Made by [`shutdown_signal`].
///
/// The handlers are installed when it is created, so a signal that arrives before it is awaited
/// is not missed (and no longer ends the process at once: create it when the program is ready to
/// shut down by itself).
#[must_use = "a shutdown signal does nothing unless awaited"]
pub struct ShutdownSignal {
    /// The handlers; `None` until installed (made outside a runtime: installed on the first poll).
    #[cfg(unix)]
    signals: Option<std::result::Result<[tokio::signal::unix::Signal; 2], Option<std::io::Error>>>,
    #[cfg(not(unix))]
    ctrl_c: Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>,
}

impl std::fmt::Debug for ShutdownSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownSignal").finish_non_exhaustive()
    }
}

/// A future resolving on SIGINT (Ctrl-C) or SIGTERM, for programs that stop more than listeners:
///
/// ```no_run
/// # use kafka_listener::prelude::*;
/// # async fn serve_http() {}
/// # async fn run(running: RunningListeners) -> kafka_listener::Result<()> {
/// tokio::select! {
///     signal = kafka_listener::shutdown_signal() => { tracing::info!("{} received", signal?); }
///     () = serve_http() => {}
/// }
/// running.shutdown().await // commits what was processed, leaves the groups
/// # }
/// ```
///
/// The future must be awaited on a tokio runtime; made on one, it installs the handlers at once
/// (made elsewhere, on its first poll). Its output is the signal's name (`"SIGTERM"`, `"SIGINT"`).
///
/// # Errors
/// The future resolves to [`Error::Signal`] when a handler cannot be installed (no tokio
/// runtime with signals enabled).
pub fn shutdown_signal() -> ShutdownSignal {
    #[cfg(unix)]
    {
        // Installing needs a runtime; made outside one (e.g. for `Runtime::block_on`), the
        // handlers are installed when it is first polled.
        let signals = tokio::runtime::Handle::try_current().ok().map(|_| install());
        ShutdownSignal { signals }
    }
    #[cfg(not(unix))]
    {
        ShutdownSignal { ctrl_c: Box::pin(tokio::signal::ctrl_c()) }
    }
}

#[cfg(unix)]
fn install() -> std::result::Result<[tokio::signal::unix::Signal; 2], Option<std::io::Error>> {
    use tokio::signal::unix::{signal, SignalKind};
    signal(SignalKind::interrupt())
        .and_then(|interrupt| signal(SignalKind::terminate()).map(|terminate| [interrupt, terminate]))
        .map_err(Some)
}

impl Future for ShutdownSignal {
    type Output = Result<&'static str>;

    #[cfg(unix)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.signals.get_or_insert_with(install) {
            Ok([interrupt, terminate]) => {
                if interrupt.poll_recv(cx).is_ready() {
                    return Poll::Ready(Ok("SIGINT"));
                }
                if terminate.poll_recv(cx).is_ready() {
                    return Poll::Ready(Ok("SIGTERM"));
                }
                Poll::Pending
            }
            Err(error) => Poll::Ready(Err(Error::Signal(
                error.take().unwrap_or_else(|| std::io::Error::other("the signal handlers could not be installed")),
            ))),
        }
    }

    #[cfg(not(unix))]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.ctrl_c.as_mut().poll(cx).map(|result| result.map(|()| "Ctrl-C").map_err(Error::Signal))
    }
}
