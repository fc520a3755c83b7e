//! The SHA-256 checks of installed models running in this server: at most one per model, each
//! its own task, with the bytes hashed so far and a token that stops it. The server's state
//! owns the registry (never a global), so a check outlives the request that asked for it and
//! ends with the server ([`Checks::shutdown`]).
//!
//! Contract:
//! - A second start for a model that is being checked joins the running check.
//! - [`Checks::stop`] returns once the check has ended: whatever it would have recorded is not.
//! - A check's entry goes only when its task ends, after the task has recorded what it found:
//!   a reader that looks here first and then reads the records sees, for a model it did not
//!   see being checked, the newest result.
//! - Never blocks: the work is a future; the hashing inside it runs on a blocking thread.

use crate::installed::CheckProgress;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The running checks, by model id.
#[derive(Default)]
pub struct Checks {
    running: Arc<Mutex<HashMap<String, Running>>>,
    /// The checks' tasks: dropping the registry aborts them; [`Checks::shutdown`] drains them.
    tasks: Mutex<JoinSet<()>>,
    /// The parent of every check's token: cancelled at shutdown.
    root: CancellationToken,
    /// Tells one check's entry from the next one's for the same model.
    next_id: AtomicU64,
}

/// One running check.
#[derive(Clone)]
struct Running {
    id: u64,
    done: Arc<AtomicU64>,
    total: u64,
    stop: CancellationToken,
    /// Closed when the task ends (its sender drops with it, even on a panic).
    ended: watch::Receiver<()>,
}

impl Running {
    fn progress(&self) -> CheckProgress {
        CheckProgress { bytes_done: self.done.load(Ordering::Relaxed).min(self.total), total: self.total }
    }
}

/// What a check's work gets: where to count the bytes it hashed, and the token that stops it.
pub struct CheckJob {
    pub done: Arc<AtomicU64>,
    pub stop: CancellationToken,
}

impl Checks {
    /// How far the check of `model_id` has got, if one runs.
    pub fn progress(&self, model_id: &str) -> Option<CheckProgress> {
        self.running.lock().unwrap().get(model_id).map(Running::progress)
    }

    /// How far every running check has got, by model id.
    pub fn running(&self) -> HashMap<String, CheckProgress> {
        self.running.lock().unwrap().iter().map(|(id, r)| (id.clone(), r.progress())).collect()
    }

    /// Starts checking `model_id` (`total` bytes) with `work`, unless a check of it runs: then
    /// that one goes on and `work` is dropped unstarted. True when this call started it.
    pub fn start<W, F>(&self, model_id: &str, total: u64, work: W) -> bool
    where
        W: FnOnce(CheckJob) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let mut running = self.running.lock().unwrap();
        if running.contains_key(model_id) {
            return false;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (ended_tx, ended) = watch::channel(());
        let entry = Running { id, done: Arc::default(), total, stop: self.root.child_token(), ended };
        let job = work(CheckJob { done: entry.done.clone(), stop: entry.stop.clone() });
        running.insert(model_id.to_string(), entry);
        drop(running);

        let registry = self.running.clone();
        let model_id = model_id.to_string();
        let mut tasks = self.tasks.lock().unwrap();
        // Finished tasks are collected here, so the set holds only the running ones.
        while let Some(ended) = tasks.try_join_next() {
            log_panic(ended);
        }
        tasks.spawn(async move {
            let _ended_tx = ended_tx;
            // Leaves the registry even if the work panics (the guard runs as it unwinds).
            let _leave = Leave { registry, model_id, id };
            job.await;
        });
        true
    }

    /// Stops the check of `model_id` and waits until it has ended; nothing when none runs.
    pub async fn stop(&self, model_id: &str) {
        let Some(running) = self.running.lock().unwrap().get(model_id).cloned() else { return };
        running.stop.cancel();
        let mut ended = running.ended;
        // Resolves with an error once the task has dropped its sender: it has ended.
        while ended.changed().await.is_ok() {}
    }

    /// Stops every check and waits for them, at most `within`; the rest are aborted.
    pub async fn shutdown(&self, within: Duration) {
        self.root.cancel();
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap());
        let drained = tokio::time::timeout(within, async {
            while let Some(ended) = tasks.join_next().await {
                log_panic(ended);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(left = tasks.len(), "model checks still running at shutdown; aborting them");
            tasks.shutdown().await;
        }
    }
}

/// Removes a check's entry when its task ends, unless a later check of the model owns it.
struct Leave {
    registry: Arc<Mutex<HashMap<String, Running>>>,
    model_id: String,
    id: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        // A poisoned lock means a panic while it was held: the map is still a map.
        let mut running = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if running.get(&self.model_id).is_some_and(|r| r.id == self.id) {
            running.remove(&self.model_id);
        }
    }
}

fn log_panic(ended: Result<(), tokio::task::JoinError>) {
    if let Err(e) = ended
        && e.is_panic()
    {
        tracing::error!(error = %e, "a model check panicked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work that counts `n` bytes, then waits to be stopped or let go.
    fn held(
        n: u64,
        go: Arc<tokio::sync::Notify>,
    ) -> impl FnOnce(CheckJob) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        move |job: CheckJob| {
            Box::pin(async move {
                job.done.fetch_add(n, Ordering::Relaxed);
                tokio::select! {
                    () = job.stop.cancelled() => {}
                    () = go.notified() => {}
                }
            })
        }
    }

    #[tokio::test]
    async fn a_second_start_joins_the_running_check_and_stop_waits_for_its_end() {
        let checks = Checks::default();
        let go = Arc::new(tokio::sync::Notify::new());
        assert!(checks.start("m", 100, held(40, go.clone())));
        tokio::task::yield_now().await;
        let joined = checks.start("m", 100, |_| async { panic!("a joined start runs nothing") });
        assert!(!joined);
        tokio::time::timeout(Duration::from_secs(5), async {
            while checks.progress("m") != Some(CheckProgress { bytes_done: 40, total: 100 }) {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the check counts its bytes");

        checks.stop("m").await;
        assert_eq!(checks.progress("m"), None, "a stopped check has left the registry");
        checks.stop("m").await; // none runs: nothing to wait for
        assert!(checks.start("m", 100, held(0, go.clone())), "a new check may start after");
        go.notify_one();
        tokio::time::timeout(Duration::from_secs(5), async {
            while checks.progress("m").is_some() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("a check that ends leaves the registry");
    }

    #[tokio::test]
    async fn shutdown_stops_every_check() {
        let checks = Checks::default();
        let go = Arc::new(tokio::sync::Notify::new());
        checks.start("a", 1, held(0, go.clone()));
        checks.start("b", 1, held(0, go));
        tokio::time::timeout(Duration::from_secs(5), checks.shutdown(Duration::from_secs(5)))
            .await
            .expect("shutdown ends the held checks");
        assert_eq!((checks.progress("a"), checks.progress("b")), (None, None));
    }

    #[tokio::test]
    async fn a_check_that_panics_leaves_the_registry() {
        let checks = Checks::default();
        checks.start("m", 1, |_| async { panic!("boom") });
        checks.stop("m").await;
        assert_eq!(checks.progress("m"), None);
    }
}
