//! The server's own background work (the session sweep, taking over abandoned downloads, the
//! engine's change listener, a fresh bandwidth reading), owned in one `JoinSet` like the
//! engine's runners: never detached. [`Background::stop`] aborts the loops at shutdown (at
//! their next await) and waits for every task to end, so none runs on while the engine pauses its downloads; a task
//! that panicked is logged then, by name, instead of vanishing.

use std::collections::HashMap;
use std::future::Future;
use tokio::task::{Id, JoinSet};

/// The background tasks of one command.
#[derive(Default)]
pub struct Background {
    tasks: JoinSet<()>,
    names: HashMap<Id, &'static str>,
}

impl Background {
    /// Runs `job` (a loop, as a rule) until [`Background::stop`].
    pub fn spawn(&mut self, name: &'static str, job: impl Future<Output = ()> + Send + 'static) {
        let handle = self.tasks.spawn(job);
        self.names.insert(handle.id(), name);
    }

    /// Runs `job` on a blocking thread. It cannot be cancelled: [`Background::stop`] waits for
    /// it, so give it only short work.
    pub fn spawn_blocking(&mut self, name: &'static str, job: impl FnOnce() + Send + 'static) {
        let handle = self.tasks.spawn_blocking(job);
        self.names.insert(handle.id(), name);
    }

    /// Aborts every loop and waits until every task has ended.
    pub async fn stop(mut self) {
        self.tasks.abort_all();
        while let Some(ended) = self.tasks.join_next().await {
            if let Err(e) = ended
                && e.is_panic()
            {
                let task = self.names.get(&e.id()).copied().unwrap_or("?");
                tracing::error!(task, error = %e, "a background task panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// Set when dropped: the task that owns it has ended.
    struct Ended(Arc<AtomicBool>);

    impl Drop for Ended {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn stop_ends_the_loops_and_waits_for_the_blocking_work() {
        let mut background = Background::default();
        let looped = Arc::new(AtomicBool::new(false));
        let ended = Ended(looped.clone());
        background.spawn("forever", async move {
            let _ended = ended;
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let measured = Arc::new(AtomicBool::new(false));
        let done = measured.clone();
        background.spawn_blocking("short", move || {
            std::thread::sleep(Duration::from_millis(50));
            done.store(true, Ordering::SeqCst);
        });
        background.spawn("panics", async { panic!("a loop's bug") });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!looped.load(Ordering::SeqCst), "the loop runs until stopped");

        tokio::time::timeout(Duration::from_secs(5), background.stop()).await.expect("stop returns");
        assert!(looped.load(Ordering::SeqCst), "the loop ended at stop");
        assert!(measured.load(Ordering::SeqCst), "stop waited for the blocking work");
    }
}
