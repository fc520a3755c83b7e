//! The downloads this process is running: one [`Slot`] per download with a runner (its locks,
//! token and live numbers), and the runner tasks themselves, owned in a `JoinSet` (never
//! detached). A runner that panics is reported to its `on_panic`, so its row ends failed with a
//! clear error instead of "downloading" until the next boot; a finished runner's slot leaves
//! the map, so the map holds only what is running.

use super::live::Live;
use futures::FutureExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// One download's in-process handle.
pub(super) struct Slot {
    /// Held by the runner for its whole life.
    pub run: tokio::sync::Mutex<()>,
    /// Held across a pause/cancel row write and across the install step.
    pub critical: tokio::sync::Mutex<()>,
    /// The current runner's token; replaced when a new runner is spawned.
    pub token: Mutex<CancellationToken>,
    pub live: Mutex<Live>,
    /// The wait before the next try, while the transfer is waiting after a failure.
    pub waiting: Mutex<Option<Waiting>>,
    /// Ends a wait before the next try at once (a person pressed "Try now").
    pub try_now: tokio::sync::Notify,
    /// Wakes the runner's heartbeat at once: another process announced a change to the row.
    pub nudge: tokio::sync::Notify,
    /// What a watcher (the CLI's progress bar, a wait for the end) is woken with.
    news: watch::Sender<News>,
}

/// A transfer waiting after a failed try: why, which try comes next, and when.
#[derive(Clone, Debug, PartialEq)]
pub struct Waiting {
    /// The failure in plain words (the words table's "what happened").
    pub what: String,
    /// The failure's technical account.
    pub detail: String,
    /// The try that comes next, counted from 1, and how many there will be at most.
    pub attempt: u32,
    pub of: u32,
    pub until: Instant,
}

/// A download's latest news, as [`Engine::watch`](super::Engine::watch) delivers it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct News {
    /// Bytes on disk.
    pub bytes: u64,
    /// The runner has ended (the row says how).
    pub ended: bool,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            run: Default::default(),
            critical: Default::default(),
            token: Default::default(),
            live: Default::default(),
            waiting: Default::default(),
            try_now: Default::default(),
            nudge: Default::default(),
            news: watch::Sender::new(News::default()),
        }
    }
}

impl Slot {
    /// Bytes on disk now: the live numbers and the watchers.
    pub fn record(&self, bytes: u64) {
        self.live.lock().expect("live lock").record(bytes, Instant::now());
        self.news.send_replace(News { bytes, ended: false });
    }

    pub fn watch(&self) -> watch::Receiver<News> {
        self.news.subscribe()
    }
}

#[derive(Default)]
pub(super) struct Runners {
    slots: Mutex<HashMap<i64, Arc<Slot>>>,
    /// Finished tasks are reaped whenever another starts.
    tasks: Mutex<JoinSet<()>>,
}

impl Runners {
    /// The download's slot, made if it has none.
    pub fn slot(&self, id: i64) -> Arc<Slot> {
        self.slots.lock().expect("slots lock").entry(id).or_default().clone()
    }

    /// The download's slot if it has one: only a runner, or a pause or cancel, makes one.
    pub fn find(&self, id: i64) -> Option<Arc<Slot>> {
        self.slots.lock().expect("slots lock").get(&id).cloned()
    }

    /// The downloads whose runner is working right now.
    pub fn running(&self) -> Vec<(i64, Arc<Slot>)> {
        let slots = self.slots.lock().expect("slots lock");
        slots.iter().filter(|(_, s)| s.run.try_lock().is_err()).map(|(id, s)| (*id, s.clone())).collect()
    }

    /// Whether a runner of this process is working on the download right now.
    pub fn is_running(&self, id: i64) -> bool {
        self.find(id).is_some_and(|s| s.run.try_lock().is_err())
    }

    /// Waits until no runner of this process works on the download.
    pub async fn gone(&self, id: i64) {
        if let Some(slot) = self.find(id) {
            let _run = slot.run.lock().await;
        }
    }

    /// Gives the download a fresh token and runs `make(slot, token)` as its runner task.
    /// `on_panic` gets the panic's message if the runner panics.
    pub fn spawn<R, P>(
        self: &Arc<Self>,
        id: i64,
        make: impl FnOnce(Arc<Slot>, CancellationToken) -> R,
        on_panic: impl FnOnce(String) -> P + Send + 'static,
    ) where
        R: Future<Output = ()> + Send + 'static,
        P: Future<Output = ()> + Send + 'static,
    {
        let slot = self.slot(id);
        let token = CancellationToken::new();
        *slot.token.lock().expect("token lock") = token.clone();
        slot.news.send_modify(|n| n.ended = false);
        let run = make(slot.clone(), token);
        let runners = self.clone();
        let mut tasks = self.tasks.lock().expect("tasks lock");
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            if let Err(panic) = std::panic::AssertUnwindSafe(run).catch_unwind().await {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                tracing::error!(id, panic = %what, "download runner panicked");
                on_panic(what).await;
            }
            slot.news.send_modify(|n| n.ended = true);
            runners.forget(id, slot);
        });
    }

    /// Drops a finished runner's slot unless someone (a new runner, a pause in flight) still
    /// holds it.
    fn forget(&self, id: i64, slot: Arc<Slot>) {
        let mut slots = self.slots.lock().expect("slots lock");
        // Ours and the map's: nobody else is looking at this slot.
        if slots.get(&id).is_some_and(|s| Arc::ptr_eq(s, &slot)) && Arc::strong_count(&slot) == 2 {
            slots.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Runners;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn a_panicking_runner_is_reported_and_its_slot_leaves_the_map() {
        let runners = Arc::new(Runners::default());
        let (told, panicked) = oneshot::channel();
        runners.spawn(
            7,
            |slot, _token| async move {
                let _run = slot.run.lock().await;
                panic!("the runner broke");
            },
            move |what| async move {
                let _ = told.send(what);
            },
        );
        let what = tokio::time::timeout(Duration::from_secs(5), panicked).await.expect("reported").expect("sent");
        assert_eq!(what, "the runner broke");
        // The task forgets its slot right after reporting.
        for _ in 0..100 {
            if runners.find(7).is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(runners.find(7).is_none(), "a finished runner's slot stays in the map");
        assert!(!runners.is_running(7));
    }

    #[tokio::test]
    async fn a_finished_runner_leaves_the_map_unless_its_slot_is_held() {
        let runners = Arc::new(Runners::default());
        let (done_tx, done) = oneshot::channel::<()>();
        runners.spawn(1, |_slot, _token| async move { drop(done_tx) }, |_| async {});
        let _ = done.await;
        let held = runners.slot(2);
        let (done_tx, done) = oneshot::channel::<()>();
        runners.spawn(2, |_slot, _token| async move { drop(done_tx) }, |_| async {});
        let _ = done.await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(runners.find(1).is_none());
        assert!(runners.find(2).is_some_and(|s| Arc::ptr_eq(&s, &held)), "a held slot was dropped");
    }
}
