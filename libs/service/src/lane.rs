//! A lane apart for calls whose work is big.
//!
//! An import decodes, checks, plans and writes thousands of rows, and much
//! of that is CPU work between awaits, in stretches of milliseconds. On the
//! process's async workers each stretch holds up whatever else is queued on
//! that worker: other tenants' small calls wait behind one tenant's import.
//! On a lane the big calls run on threads of their own, which the operating
//! system shares out beside the async workers, so a small call always finds
//! a worker free.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::{
    runtime::{Builder, Handle, Runtime},
    task::{JoinError, JoinHandle},
};
use tracing::Instrument as _;

/// Threads of their own for one kind of big call; cheap to clone.
#[derive(Clone, Debug)]
pub struct Lane {
    handle: Handle,
    _runtime: Arc<Owned>,
}

/// The lane's runtime, stopped without waiting when the last clone goes
/// (which may be inside the async runtime, where waiting is not allowed).
#[derive(Debug)]
struct Owned(Option<Runtime>);

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The work on the lane ended without an answer (it panicked).
#[derive(Debug, thiserror::Error)]
#[error("the call's work on its lane ended early: {0}")]
pub struct LaneError(#[from] JoinError);

impl Lane {
    /// A lane of `threads` threads (at least one), named `<name>-lane`.
    pub fn new(name: &str, threads: usize) -> std::io::Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(format!("{name}-lane"))
            .enable_all()
            .build()?;
        Ok(Lane {
            handle: runtime.handle().clone(),
            _runtime: Arc::new(Owned(Some(runtime))),
        })
    }

    /// Runs `work` on the lane, in the caller's span, and waits for it.
    /// A caller that stops waiting (its client went away) stops the work
    /// at its next await, as it would have stopped on the caller's thread.
    pub async fn run<F>(&self, work: F) -> Result<F::Output, LaneError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let task = self.handle.spawn(work.instrument(tracing::Span::current()));
        Ok(AbortOnDrop(task).await?)
    }
}

/// A task that is aborted when nobody waits for it any more.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn work_runs_on_the_lanes_threads_not_the_callers() {
        let lane = Lane::new("bulk", 1).unwrap();
        let thread = lane
            .run(async { std::thread::current().name().map(str::to_owned) })
            .await
            .unwrap();
        assert_eq!(thread.as_deref(), Some("bulk-lane"));
        // The caller's own thread stays free meanwhile: a stretch of CPU on
        // the lane does not hold up work queued beside the wait.
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let busy = lane.run(async move {
            let _ = started_tx.send(());
            // Blocks the lane's thread until the caller's side has run.
            let _ = released.recv_timeout(Duration::from_secs(30));
        });
        let beside = async {
            started.await.unwrap();
            release.send(()).unwrap();
        };
        let (busy, ()) = tokio::join!(busy, beside);
        busy.unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_caller_that_stops_waiting_stops_the_work() {
        let lane = Lane::new("bulk", 1).unwrap();
        let (dropped_tx, dropped) = tokio::sync::oneshot::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let waiting = tokio::spawn({
            let lane = lane.clone();
            async move {
                lane.run(async move {
                    let _kept_until_stopped = dropped_tx;
                    let _ = started_tx.send(());
                    std::future::pending::<()>().await;
                })
                .await
            }
        });
        started.await.unwrap();
        waiting.abort();
        // The work's state is dropped: its sender closes.
        assert!(
            tokio::time::timeout(Duration::from_secs(30), dropped)
                .await
                .is_ok(),
            "the abandoned work was stopped"
        );
    }
}
