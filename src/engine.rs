//! The download engine: starts, pauses, resumes and cancels downloads, and runs each one in a
//! task of its own (see `runner`).
//!
//! Contract:
//! - One runner per download id at a time: a runner holds its slot's `run` lock for its whole
//!   life, so a resume that lands while the previous runner winds down waits for it.
//! - Pause and cancel write the row first (a compare-and-set), then fire the runner's
//!   cancellation token. A runner that has not started yet re-reads the row and exits.
//! - The install step and every pause/cancel hold the slot's `critical` lock, so a cancel either
//!   lands before the rename (nothing installed) or is refused after it (409, complete).
//! - Progress reaches the row at most once per `progress_interval`; live numbers stay in memory.

mod error;
pub mod files;
mod live;
pub mod pace;
pub mod range;
mod recovery;
pub use recovery::Recovered;
mod parallel;
pub mod retry;
mod runner;
mod segment_sink;
pub mod segments;
mod sink;

pub use error::EngineError;

use crate::catalog::Catalog;
use crate::status::DownloadStatus;
use crate::store::Db;
use crate::store::downloads::{self, DownloadRow, NewDownload};
use crate::units::{disk_margin, format_bytes};
use crate::view::DownloadView;
use live::Live;
use retry::RetryPolicy;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How the engine behaves. Tests shrink the timings; the product uses [`EngineConfig::new`].
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub models_dir: PathBuf,
    pub retry: RetryPolicy,
    /// A transfer with no byte for this long is treated as a dropped connection.
    pub stall_timeout: Duration,
    /// How often bytes are written to the row.
    pub progress_interval: Duration,
    pub connect_timeout: Duration,
    /// A bandwidth limit in bytes per second, shared by every download; `None` for none.
    pub max_rate: Option<u64>,
    /// Connections one download may open at once (1: always one stream).
    pub connections: usize,
    /// How a large file is cut into segments for those connections.
    pub segment_rule: segments::SegmentRule,
    /// The other connections open only while the first delivers less than this (bytes per
    /// second); `None` opens them all at once.
    pub fast_stream_bps: Option<u64>,
}

/// Seconds without a byte before a connection is retried, unless configured: long enough for a
/// busy server or a Wi-Fi hiccup, short enough that a dead connection is noticed.
pub const DEFAULT_STALL_TIMEOUT_SECS: u64 = 30;

/// Connections per download unless configured: see BENCHMARKS.md for how it was chosen.
pub const DEFAULT_CONNECTIONS: usize = 8;

/// One stream this fast (2 Gbit/s, faster than most disks) needs no help: see BENCHMARKS.md.
pub const FAST_STREAM_BPS: u64 = 250_000_000;

impl EngineConfig {
    /// The product's settings for a models folder.
    pub fn new(models_dir: PathBuf) -> Self {
        EngineConfig {
            models_dir,
            retry: RetryPolicy::default(),
            stall_timeout: Duration::from_secs(DEFAULT_STALL_TIMEOUT_SECS),
            progress_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(30),
            max_rate: None,
            connections: DEFAULT_CONNECTIONS,
            segment_rule: segments::SegmentRule::default(),
            fast_stream_bps: Some(FAST_STREAM_BPS),
        }
    }
}

/// One download's in-process handle.
#[derive(Default)]
struct Slot {
    /// Held by the runner for its whole life.
    run: tokio::sync::Mutex<()>,
    /// Held across a pause/cancel row write and across the install step.
    critical: tokio::sync::Mutex<()>,
    /// The current runner's token; replaced when a new runner is spawned.
    token: Mutex<CancellationToken>,
    live: Mutex<Live>,
}

/// The engine, shared by the server's requests and the CLI.
pub struct Engine {
    db: Db,
    catalog: Arc<Catalog>,
    cfg: EngineConfig,
    client: reqwest::Client,
    slots: Mutex<HashMap<i64, Arc<Slot>>>,
    pacer: Option<pace::Pacer>,
}

impl Engine {
    /// An engine over `db`, downloading models of `catalog` into `cfg.models_dir`.
    pub fn new(db: Db, catalog: Arc<Catalog>, cfg: EngineConfig) -> Result<Arc<Engine>, EngineError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(10))
            .connect_timeout(cfg.connect_timeout)
            .user_agent(concat!("localbrain/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EngineError::Io(format!("cannot set up HTTP: {e}")))?;
        let pacer = cfg.max_rate.map(pace::Pacer::new);
        Ok(Arc::new(Engine { db, catalog, cfg, client, slots: Mutex::new(HashMap::new()), pacer }))
    }

    /// The catalog downloads are checked against.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The models folder.
    pub fn models_dir(&self) -> &std::path::Path {
        &self.cfg.models_dir
    }

    /// Starts a download of `model_id` for `user_id`, or returns the user's open one for that
    /// model (a paused or failed one is resumed). Idempotent under races: the database's unique
    /// index decides which insert wins.
    pub async fn start(self: &Arc<Self>, user_id: i64, model_id: &str) -> Result<DownloadView, EngineError> {
        let model = self.catalog.get(model_id).ok_or_else(|| EngineError::UnknownModel(model_id.to_string()))?;
        if let Some(open) = downloads::open_for(&self.db, user_id, model_id).await? {
            return match open.status {
                DownloadStatus::Paused | DownloadStatus::Failed => self.resume(user_id, open.id).await,
                _ => Ok(self.view(&open)),
            };
        }
        let target = files::target_path(&self.cfg.models_dir, &model.id);
        // A model already on disk is only hashed, so it needs no room.
        if files::len_or_zero(&target) != model.size_bytes {
            self.check_disk(model.size_bytes)?;
        }
        let target_str = target.to_string_lossy();
        let new = NewDownload {
            user_id,
            model_id: &model.id,
            total_bytes: model.size_bytes,
            sha256_expected: &model.sha256,
            target_path: &target_str,
        };
        let models_dir = self.cfg.models_dir.clone();
        let (row, created) = downloads::insert_or_get_open(&self.db, &new, |id| {
            files::partial_path(&models_dir, &model.id, id).to_string_lossy().into_owned()
        })
        .await?;
        if created {
            self.spawn_runner(row.id);
        }
        Ok(self.view(&row))
    }

    /// Hands a paused or failed download back to a runner.
    pub async fn resume(self: &Arc<Self>, user_id: i64, id: i64) -> Result<DownloadView, EngineError> {
        let row = self.owned(user_id, id).await?;
        if !matches!(row.status, DownloadStatus::Paused | DownloadStatus::Failed) {
            return Err(EngineError::WrongState { action: "resume", status: row.status });
        }
        let on_disk = files::len_or_zero(std::path::Path::new(&row.partial_path));
        self.check_disk(row.total_bytes.saturating_sub(on_disk))?;
        let slot = self.slot(id);
        let _critical = slot.critical.lock().await;
        if !downloads::set_status(&self.db, id, DownloadStatus::Pending, None).await? {
            let now = self.owned(user_id, id).await?;
            return Err(EngineError::WrongState { action: "resume", status: now.status });
        }
        self.spawn_runner(id);
        Ok(self.view(&self.owned(user_id, id).await?))
    }

    /// Pauses a download in any state that has a runner; the partial is kept.
    pub async fn pause(&self, user_id: i64, id: i64) -> Result<DownloadView, EngineError> {
        self.stop(user_id, id, DownloadStatus::Paused, "pause").await
    }

    /// Cancels a download in any non-terminal state and removes its partial once the runner
    /// has let go of it.
    pub async fn cancel(&self, user_id: i64, id: i64) -> Result<DownloadView, EngineError> {
        let view = self.stop(user_id, id, DownloadStatus::Cancelled, "cancel").await?;
        let row = self.owned(user_id, id).await?;
        let slot = self.slot(id);
        let _run = slot.run.lock().await;
        let partial = PathBuf::from(&row.partial_path);
        tokio::task::spawn_blocking(move || files::remove_if_exists(&partial))
            .await
            .map_err(|e| EngineError::Io(e.to_string()))?
            .map_err(|e| EngineError::Io(format!("cannot remove the partial file: {e}")))?;
        Ok(view)
    }

    async fn stop(
        &self,
        user_id: i64,
        id: i64,
        to: DownloadStatus,
        action: &'static str,
    ) -> Result<DownloadView, EngineError> {
        let row = self.owned(user_id, id).await?;
        if !row.status.can_become(to) {
            return Err(EngineError::WrongState { action, status: row.status });
        }
        let slot = self.slot(id);
        {
            let _critical = slot.critical.lock().await;
            if !downloads::set_status(&self.db, id, to, None).await? {
                let now = self.owned(user_id, id).await?;
                return Err(EngineError::WrongState { action, status: now.status });
            }
            slot.token.lock().expect("token lock").cancel();
        }
        Ok(self.view(&self.owned(user_id, id).await?))
    }

    /// One of the user's downloads.
    pub async fn get(&self, user_id: i64, id: i64) -> Result<DownloadView, EngineError> {
        Ok(self.view(&self.owned(user_id, id).await?))
    }

    /// The user's downloads, newest first.
    pub async fn list(&self, user_id: i64) -> Result<Vec<DownloadView>, EngineError> {
        Ok(downloads::list(&self.db, user_id).await?.iter().map(|r| self.view(r)).collect())
    }

    /// Pauses every download this process is running and waits (up to `within`) for the runners
    /// to flush and let go of their files. Used on shutdown, so a stop never needs recovery.
    /// Returns the ids paused.
    pub async fn pause_all(&self, within: Duration) -> Vec<i64> {
        let running: Vec<(i64, Arc<Slot>)> = {
            let slots = self.slots.lock().expect("slots lock");
            slots.iter().filter(|(_, s)| s.run.try_lock().is_err()).map(|(id, s)| (*id, s.clone())).collect()
        };
        let mut paused = Vec::new();
        for (id, slot) in &running {
            let _critical = slot.critical.lock().await;
            match downloads::set_status(&self.db, *id, DownloadStatus::Paused, Some(crate::view::RESTART_NOTE)).await {
                Ok(true) => paused.push(*id),
                Ok(false) => {}
                Err(e) => tracing::error!(id, error = %e, "cannot pause on shutdown"),
            }
            slot.token.lock().expect("token lock").cancel();
        }
        let drained = async {
            for (_, slot) in &running {
                let _run = slot.run.lock().await;
            }
        };
        if tokio::time::timeout(within, drained).await.is_err() {
            tracing::warn!("some downloads did not stop in time; boot recovery will reconcile them");
        }
        paused
    }

    /// Waits until the download leaves the active states (for the CLI and tests).
    pub async fn wait_settled(&self, id: i64) -> Result<DownloadView, EngineError> {
        loop {
            let row = downloads::get_any_user(&self.db, id).await?.ok_or(EngineError::NotFound)?;
            if !row.status.is_active() {
                // The runner may still be letting go of its files; wait for it.
                let slot = self.slot(id);
                let _run = slot.run.lock().await;
                let row = downloads::get_any_user(&self.db, id).await?.ok_or(EngineError::NotFound)?;
                if !row.status.is_active() {
                    return Ok(self.view(&row));
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Live numbers for a download whoever owns it (the CLI's progress bar).
    pub fn live_bytes(&self, id: i64) -> (u64, u64) {
        let slot = self.slot(id);
        let live = slot.live.lock().expect("live lock");
        (live.bytes, live.speed_bps(Instant::now()))
    }

    /// The row as the UI shows it, with live bytes, speed and ETA while it is active.
    pub fn view(&self, row: &DownloadRow) -> DownloadView {
        if row.status != DownloadStatus::Downloading {
            return row.to_view(0, None);
        }
        let slot = self.slot(row.id);
        let live = slot.live.lock().expect("live lock");
        let now = Instant::now();
        let mut view = row.to_view(live.speed_bps(now), live.eta_seconds(row.total_bytes, now));
        if live.bytes > view.bytes_downloaded {
            view.bytes_downloaded = live.bytes;
            view.percent = crate::view::percent(live.bytes, row.total_bytes);
        }
        view
    }

    async fn owned(&self, user_id: i64, id: i64) -> Result<DownloadRow, EngineError> {
        downloads::get(&self.db, user_id, id).await?.ok_or(EngineError::NotFound)
    }

    fn check_disk(&self, remaining: u64) -> Result<(), EngineError> {
        let needed = remaining + disk_margin(remaining);
        let available = files::free_space(&self.cfg.models_dir)
            .map_err(|e| EngineError::Io(format!("cannot measure free disk space: {e}")))?;
        if available < needed {
            return Err(EngineError::NotEnoughDisk {
                needed: format_bytes(needed),
                available: format_bytes(available),
            });
        }
        Ok(())
    }

    /// Whether a runner of this process is working on the download right now.
    fn has_runner(&self, id: i64) -> bool {
        let slot = self.slots.lock().expect("slots lock").get(&id).cloned();
        slot.is_some_and(|s| s.run.try_lock().is_err())
    }

    fn slot(&self, id: i64) -> Arc<Slot> {
        self.slots.lock().expect("slots lock").entry(id).or_default().clone()
    }

    /// Gives the download a fresh token and a runner task.
    fn spawn_runner(self: &Arc<Self>, id: i64) {
        let slot = self.slot(id);
        let token = CancellationToken::new();
        *slot.token.lock().expect("token lock") = token.clone();
        let engine = self.clone();
        tokio::spawn(async move { engine.run(id, slot, token).await });
    }
}
