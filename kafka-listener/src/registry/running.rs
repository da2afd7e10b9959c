use std::sync::Arc;

use crate::container::ConcurrentContainer;
use crate::error::{Error, Result};
use crate::observability::Health;

/// The started listeners: one [`ConcurrentContainer`] per listener.
#[derive(Debug)]
#[must_use = "dropping RunningListeners leaves the listeners running; call shutdown() to stop them cleanly"]
pub struct RunningListeners {
    pub(crate) containers: Vec<Arc<ConcurrentContainer>>,
}

impl RunningListeners {
    /// The container of the listener with this id.
    pub fn container(&self, id: &str) -> Option<&ConcurrentContainer> {
        self.containers.iter().find(|c| c.id() == id).map(|c| &**c)
    }

    /// Waits for the replay with this id (`Endpoint::replay`) to be over: the records it handled
    /// per partition.
    ///
    /// # Errors
    /// [`Error::UnknownListener`] for an unknown id; [`Error::Config`] when it is not a replay.
    pub async fn replayed(&self, id: &str) -> Result<crate::container::ReplayReport> {
        self.container(id).ok_or_else(|| Error::UnknownListener(id.to_string()))?.replayed().await
    }

    /// Starts the listener with this id (one registered with `auto_startup = false`, or stopped),
    /// with its retry topics' containers.
    ///
    /// # Errors
    /// [`Error::UnknownListener`] for an unknown id; when a container thread cannot be spawned;
    /// [`Error::StillStopping`] while its consumers are still stopping (after a stop, or after
    /// its error handler stopped them): try again once `ConcurrentContainer::is_running()` is
    /// false.
    pub fn start(&self, id: &str) -> Result<()> {
        self.container(id).ok_or_else(|| Error::UnknownListener(id.to_string()))?.start()
    }

    /// Stops the listener with this id and its retry topics' containers (committing what was
    /// processed); the others keep running.
    ///
    /// # Errors
    /// [`Error::UnknownListener`] for an unknown id; [`Error::ShutdownTimeout`].
    pub async fn stop(&self, id: &str) -> Result<()> {
        self.container(id).ok_or_else(|| Error::UnknownListener(id.to_string()))?.stop().await
    }

    /// Pauses the listener with this id, and its retry topics' containers (see
    /// [`ConcurrentContainer::pause`]): its consumers stay in their groups, and the pause holds
    /// across stop and start until [`resume`](Self::resume).
    ///
    /// # Errors
    /// [`Error::UnknownListener`] for an unknown id.
    pub fn pause(&self, id: &str) -> Result<()> {
        self.container(id).ok_or_else(|| Error::UnknownListener(id.to_string()))?.pause();
        Ok(())
    }

    /// Resumes the listener with this id, and its retry topics' containers.
    ///
    /// # Errors
    /// [`Error::UnknownListener`] for an unknown id.
    pub fn resume(&self, id: &str) -> Result<()> {
        self.container(id).ok_or_else(|| Error::UnknownListener(id.to_string()))?.resume();
        Ok(())
    }

    /// The health of every listener (and of its retry topics' containers): each consumer's
    /// state and assignment, with [`Health::is_live`] and [`Health::is_ready`] (Spring Boot
    /// actuator's liveness and readiness). Cheap enough for a probe: no broker request.
    pub fn health(&self) -> Health {
        Health::of(self.containers.iter().map(|c| c.health()).collect())
    }

    /// Every container.
    pub fn containers(&self) -> impl Iterator<Item = &ConcurrentContainer> {
        self.containers.iter().map(|c| &**c)
    }

    /// Stops every listener: each finishes the records in hand (bounded by its factory's
    /// `shutdown_timeout`), commits what was processed, and leaves its group.
    ///
    /// # Errors
    /// [`Error::ShutdownTimeout`] for the first listener that did not stop in time (the others are
    /// still stopped).
    pub async fn shutdown(self) -> Result<()> {
        for container in &self.containers {
            container.request_stop();
        }
        let mut first_error = None;
        for container in &self.containers {
            if let Err(error) = container.stop().await {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Waits for SIGINT (Ctrl-C) or SIGTERM, then [`shutdown`](Self::shutdown). A program with
    /// more to stop selects on [`shutdown_signal`](crate::shutdown_signal) itself and then calls
    /// `shutdown`.
    ///
    /// # Errors
    /// When the signal handler cannot be installed, or as `shutdown`.
    pub async fn shutdown_on_signal(self) -> Result<()> {
        let signal = super::shutdown_signal().await?;
        tracing::info!(signal, "signal received; stopping the listeners");
        self.shutdown().await
    }
}
