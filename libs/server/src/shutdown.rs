use std::sync::Arc;

use tokio::sync::watch;

/// A shutdown signal: cloned to everything that must stop, triggered once.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Shutdown {
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Starts the shutdown; later calls do nothing more.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once [`Shutdown::trigger`] has been called (at once if it
    /// already was).
    pub async fn triggered(&self) {
        let mut rx = self.tx.subscribe();
        // Cannot fail: `self` keeps the sender alive.
        let _ = rx.wait_for(|triggered| *triggered).await;
    }

    /// [`Shutdown::triggered`] as a future that owns what it needs.
    pub(crate) async fn into_triggered(self) {
        self.triggered().await;
    }

    /// Triggers on SIGTERM (Kubernetes) or SIGINT (Ctrl-C). Spawns a task:
    /// call it inside the Tokio runtime.
    pub fn on_os_signal(&self) {
        let shutdown = self.clone();
        tokio::spawn(async move {
            let signal = wait_for_signal().await;
            tracing::info!(signal, "shutting down");
            shutdown.trigger();
        });
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};

    match signal(SignalKind::terminate()) {
        Ok(mut sigterm) => tokio::select! {
            _ = sigterm.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_trigger() {
        let shutdown = Shutdown::new();
        let waiter = tokio::spawn(shutdown.clone().into_triggered());
        assert!(!shutdown.is_triggered());
        shutdown.clone().trigger();
        let woke = tokio::time::timeout(Duration::from_secs(10), waiter).await;
        assert!(matches!(woke, Ok(Ok(()))));
        // Waiting after the fact returns at once.
        let late = tokio::time::timeout(Duration::from_secs(10), shutdown.triggered()).await;
        assert!(late.is_ok());
    }
}
