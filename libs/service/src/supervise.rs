//! Watching a service's background workers: one that ends before shutdown
//! (a panic, or a return it should not have made) leaves the service
//! unable to do part of its job, so health turns NOT_SERVING for good and
//! the log says which worker, at error level. Nothing runs on silently
//! degraded.

use tokio::{sync::watch, task::JoinHandle};

use crm_server::Shutdown;

use crate::Worker;

/// Watches `workers` until each ends. The receiver is `true` while every
/// worker that should run does; the handles end when their worker does,
/// for [`crate::serve`] to wait for at shutdown.
pub(crate) fn supervise(
    service: &'static str,
    workers: Vec<Worker>,
    shutdown: &Shutdown,
) -> (watch::Receiver<bool>, Vec<JoinHandle<()>>) {
    let (healthy, watching) = watch::channel(true);
    let handles = workers
        .into_iter()
        .map(|worker| {
            let (healthy, shutdown) = (healthy.clone(), shutdown.clone());
            tokio::spawn(async move {
                let ended = worker.task.await;
                if shutdown.is_triggered() {
                    if let Err(err) = ended {
                        tracing::warn!(service, error = %err, "{} ended abnormally", worker.name);
                    }
                    return;
                }
                let how = match ended {
                    Ok(()) => "returned".to_owned(),
                    Err(err) => err.to_string(),
                };
                tracing::error!(
                    service,
                    worker = worker.name,
                    ended = %how,
                    "a background worker ended before shutdown: not serving"
                );
                healthy.send_replace(false);
            })
        })
        .collect();
    (watching, handles)
}

/// `true` while both `a` and `b` are, until `shutdown`.
pub(crate) fn both(
    mut a: watch::Receiver<bool>,
    mut b: watch::Receiver<bool>,
    shutdown: Shutdown,
) -> (watch::Receiver<bool>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(*a.borrow_and_update() && *b.borrow_and_update());
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.triggered() => break,
                changed = a.changed() => if changed.is_err() { break },
                changed = b.changed() => if changed.is_err() { break },
            }
            let up = *a.borrow_and_update() && *b.borrow_and_update();
            tx.send_if_modified(|known| std::mem::replace(known, up) != up);
        }
    });
    (rx, task)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn worker(
        name: &'static str,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Worker {
        Worker::new(name, tokio::spawn(task))
    }

    /// Issue 15: a worker that panics before shutdown turns the service's
    /// health to NOT_SERVING; one that returns early does too.
    #[tokio::test]
    async fn a_worker_that_dies_before_shutdown_makes_the_service_not_serving() {
        for dies in [
            worker("panicking", async { panic!("sweep interval of zero") }),
            worker("returning", async {}),
        ] {
            let shutdown = Shutdown::new();
            let runs = {
                let shutdown = shutdown.clone();
                worker("runs", async move { shutdown.triggered().await })
            };
            let (mut healthy, handles) = supervise("test", vec![runs, dies], &shutdown);
            healthy.wait_for(|up| !*up).await.unwrap();
            shutdown.trigger();
            for handle in handles {
                handle.await.unwrap();
            }
            assert!(!*healthy.borrow(), "stays NOT_SERVING");
        }
    }

    /// Workers that stop because shutdown came are no failure.
    #[tokio::test]
    async fn workers_ending_at_shutdown_leave_health_alone() {
        let shutdown = Shutdown::new();
        let workers = (0..3)
            .map(|_| {
                let shutdown = shutdown.clone();
                worker("runs", async move { shutdown.triggered().await })
            })
            .collect();
        let (healthy, handles) = supervise("test", workers, &shutdown);
        shutdown.trigger();
        for handle in handles {
            handle.await.unwrap();
        }
        assert!(*healthy.borrow());
    }

    #[tokio::test]
    async fn ready_only_while_both_are() {
        let shutdown = Shutdown::new();
        let (a_tx, a) = watch::channel(true);
        let (b_tx, b) = watch::channel(true);
        let (mut ready, task) = both(a, b, shutdown.clone());
        assert!(*ready.borrow_and_update());
        a_tx.send_replace(false);
        ready.wait_for(|up| !*up).await.unwrap();
        a_tx.send_replace(true);
        ready.wait_for(|up| *up).await.unwrap();
        b_tx.send_replace(false);
        ready.wait_for(|up| !*up).await.unwrap();
        shutdown.trigger();
        task.await.unwrap();
    }
}
