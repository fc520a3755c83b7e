//! The download engine: starts, pauses, resumes and cancels downloads, and runs each one in a
//! task of its own (a [`job::Job`], with its transfer: `single` or `segmented`).
//!
//! Contract:
//! - Runner tasks are owned by the engine (`runners`: a `JoinSet`, never detached). A runner
//!   that panics leaves a failed row with a clear error, not a row stuck "downloading".
//! - One runner per download id at a time: a runner holds its slot's `run` lock for its whole
//!   life, so a resume that lands while the previous runner winds down waits for it.
//! - Pause and cancel write the row first (a compare-and-set), then fire the runner's
//!   cancellation token. A runner that has not started yet re-reads the row and exits.
//! - The install step and every pause/cancel hold the slot's `critical` lock, so a cancel either
//!   lands before the rename (nothing installed) or is refused after it (409, complete).
//! - Progress reaches the row at most once per `progress_interval`; live numbers stay in memory,
//!   and reach in-process watchers (the CLI's bar, `wait_settled`) through one `watch` per download.
//! - Several processes may share the database (issue 17). A runner claims its row
//!   (`store::leases`) and renews the claim every `heartbeat`, writing its speed and reading back
//!   the status: a pause or cancel that another process wrote stops it within a heartbeat. That
//!   process answers once the runner has let go. Another process's reader shows the row's bytes
//!   and speed. A row whose runner died is paused at boot, or taken over by a running server that
//!   shares its models folder ([`Engine::adopt_abandoned`]).
//! - Two users downloading one model share one transfer and one partial (`carriers`): the later
//!   download joins the running one, and the transfer goes on until the last of them stops.

mod carriers;
mod error;
mod failure;
pub mod files;
mod http;
pub mod instance;
mod job;
mod live;
pub mod pace;
pub mod range;
mod recovery;
pub use recovery::Recovered;
pub mod retry;
mod runners;
mod segment_sink;
mod segmented;
pub mod segments;
mod sharing;
mod single;
mod sink;
mod words;
mod writer;

pub use error::{EngineError, TransferError};
pub use failure::{Failure, Reach};
pub use words::Said;

use crate::catalog::Catalog;
use crate::status::DownloadStatus;
use crate::store::Db;
use crate::store::downloads::{self, DownloadRow, NewDownload};
use crate::store::leases;
use crate::units::{disk_margin, format_bytes};
use crate::view::{DownloadView, RetryView};
use job::Job;
use retry::RetryPolicy;
pub use runners::News;
use runners::{Runners, Slot};
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
    /// How often a runner renews its claim on the row, writes its speed and reads the status.
    pub heartbeat: Duration,
    /// How long a claim holds without renewal: then another process may take the download over.
    pub lease: Duration,
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
            heartbeat: Duration::from_secs(1),
            lease: Duration::from_secs(10),
        }
    }
}

/// The engine, shared by the server's requests and the CLI.
pub struct Engine {
    db: Db,
    catalog: Arc<Catalog>,
    cfg: EngineConfig,
    client: reqwest::Client,
    pacer: Option<Arc<pace::Pacer>>,
    /// The proxy variables, read when `client` was built (when reqwest read them too).
    proxies: Arc<crate::proxy::ProxyVars>,
    runners: Arc<Runners>,
    /// This process, as it claims downloads.
    instance: instance::Instance,
    /// The models folder's id (`instance::folder_id`).
    folder_id: String,
    /// Set by [`Engine::pause_all`]: a shutting-down process hands no transfer on.
    stopping: std::sync::atomic::AtomicBool,
}

impl Engine {
    /// An engine over `db`, downloading models of `catalog` into `cfg.models_dir`.
    pub fn new(db: Db, catalog: Arc<Catalog>, cfg: EngineConfig) -> Result<Arc<Engine>, EngineError> {
        // No `.proxy()` here on purpose: without one, reqwest reads HTTPS_PROXY, HTTP_PROXY,
        // ALL_PROXY and NO_PROXY (and their lowercase forms) for every request (`crate::proxy`
        // has the rules, with the source they come from). Its `socks` feature (Cargo.toml) makes
        // a socks5:// ALL_PROXY work: without it every request fails, "unsupported scheme socks5".
        // The same variables are read here once more, for what a failed request may be about:
        // a value reqwest would ignore fails the download at once, as does a proxy not there.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(10))
            .connect_timeout(cfg.connect_timeout)
            .user_agent(concat!("localbrain/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EngineError::Io { what: "cannot set up HTTP", source: std::io::Error::other(e) })?;
        let proxies = Arc::new(crate::proxy::ProxyVars::from_env());
        let pacer = cfg.max_rate.map(|rate| Arc::new(pace::Pacer::new(rate)));
        let folder_id =
            instance::folder_id(&cfg.models_dir).map_err(EngineError::io("cannot read the models folder's id"))?;
        let instance = instance::Instance::new();
        Ok(Arc::new(Engine {
            db,
            catalog,
            cfg,
            client,
            pacer,
            proxies,
            runners: Arc::default(),
            instance,
            folder_id,
            stopping: Default::default(),
        }))
    }

    /// The catalog downloads are checked against.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The database downloads are kept in.
    pub fn db(&self) -> &Db {
        &self.db
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
        // Another user's download of this model is running: this one joins its transfer.
        let carrier = self.carrier_for(&model.id).await?;
        // A model already on disk is only hashed, and a joined download writes nothing: neither
        // needs room.
        if carrier.is_none() && files::len_or_zero(&target) != model.size_bytes {
            self.check_disk(model.size_bytes)?;
        }
        let target_str = target.to_string_lossy();
        let new = NewDownload {
            user_id,
            model_id: &model.id,
            total_bytes: model.size_bytes,
            sha256_expected: &model.sha256,
            target_path: &target_str,
            claim: carrier.is_none().then(|| self.claim()),
            carrier_id: carrier.as_ref().map(|c| c.id),
        };
        let models_dir = self.cfg.models_dir.clone();
        let (row, created) = downloads::insert_or_get_open(&self.db, &new, |id| {
            files::partial_path(&models_dir, &model.id, id).to_string_lossy().into_owned()
        })
        .await?;
        if !created {
            return Ok(self.view(&row));
        }
        match carrier {
            Some(carrier) => Ok(self.view(&self.settle_join(row.id, carrier.id).await?)),
            None => {
                self.spawn_runner(row.id);
                Ok(self.view(&row))
            }
        }
    }

    /// Hands a paused or failed download back to a runner.
    pub async fn resume(self: &Arc<Self>, user_id: i64, id: i64) -> Result<DownloadView, EngineError> {
        let row = self.owned(user_id, id).await?;
        if !matches!(row.status, DownloadStatus::Paused | DownloadStatus::Failed) {
            return Err(EngineError::WrongState { action: "resume", status: row.status });
        }
        let on_disk = files::len_or_zero(std::path::Path::new(&row.partial_path));
        // With nothing of its own on disk, it joins another user's running download of the model.
        if on_disk == 0
            && let Some(carrier) = self.carrier_for(&row.model_id).await?.filter(|c| c.id != id)
        {
            if crate::store::carriers::rejoin(&self.db, id, carrier.id).await?.is_none() {
                let now = self.owned(user_id, id).await?;
                return Err(EngineError::WrongState { action: "resume", status: now.status });
            }
            return Ok(self.view(&self.settle_join(id, carrier.id).await?));
        }
        self.check_disk(row.total_bytes.saturating_sub(on_disk))?;
        let slot = self.runners.slot(id);
        let _critical = slot.critical.lock().await;
        let Some(row) = downloads::resume_claimed(&self.db, id, &self.claim()).await? else {
            let now = self.owned(user_id, id).await?;
            return Err(EngineError::WrongState { action: "resume", status: now.status });
        };
        self.spawn_runner(id);
        Ok(self.view(&row))
    }

    /// Pauses a download in any state that has a runner; the partial is kept. The answer waits
    /// until the runner (here or in another process) has stopped, recorded its bytes and, if
    /// other users share the transfer, handed it on: a resume right after finds it settled.
    pub async fn pause(&self, user_id: i64, id: i64) -> Result<DownloadView, EngineError> {
        let row = self.stop(user_id, id, DownloadStatus::Paused, "pause").await?;
        self.runners.gone(id).await;
        Ok(self.view(&self.let_go_elsewhere(id).await?.unwrap_or(row)))
    }

    /// Cancels a download in any non-terminal state and removes its partial once the runner
    /// has let go of it.
    pub async fn cancel(&self, user_id: i64, id: i64) -> Result<DownloadView, EngineError> {
        let row = self.stop(user_id, id, DownloadStatus::Cancelled, "cancel").await?;
        let view = self.view(&row);
        self.runners.gone(id).await;
        self.let_go_elsewhere(id).await?;
        let partial = PathBuf::from(&row.partial_path);
        job::blocking(move || files::remove_if_exists(&partial))
            .await
            .map_err(EngineError::io("cannot remove the partial file"))?;
        Ok(view)
    }

    async fn stop(
        &self,
        user_id: i64,
        id: i64,
        to: DownloadStatus,
        action: &'static str,
    ) -> Result<DownloadRow, EngineError> {
        let row = self.owned(user_id, id).await?;
        if !row.status.can_become(to) {
            return Err(EngineError::WrongState { action, status: row.status });
        }
        let slot = self.runners.slot(id);
        let _critical = slot.critical.lock().await;
        let Some(row) = downloads::move_to(&self.db, id, to, None).await? else {
            let now = self.owned(user_id, id).await?;
            return Err(EngineError::WrongState { action, status: now.status });
        };
        if row.carrier_id.is_some() {
            // It had no runner: the transfer it shared goes on for the others.
            return self.leave_shared(row).await;
        }
        slot.token.lock().expect("token lock").cancel();
        if row.runner.as_deref().is_some_and(|r| r != self.instance.id)
            && let Err(e) = crate::store::control::announce(&self.db, id).await
        {
            // The runner's heartbeat reads the row anyway, within a second.
            tracing::warn!(id, error = %e, "cannot announce the change");
        }
        Ok(row)
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
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        let running = self.runners.running();
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

    /// Waits until the download leaves the active states (for the CLI and tests). A runner of
    /// this process wakes it through its watch; one of another process is polled for.
    pub async fn wait_settled(&self, id: i64) -> Result<DownloadView, EngineError> {
        loop {
            let row = downloads::get_any_user(&self.db, id).await?.ok_or(EngineError::NotFound)?;
            if !row.status.is_active() {
                // The runner may still be letting go of its files; wait for it.
                self.runners.gone(id).await;
                let row = downloads::get_any_user(&self.db, id).await?.ok_or(EngineError::NotFound)?;
                if !row.status.is_active() {
                    return Ok(self.view(&row));
                }
            }
            match self.watch(id) {
                Some(mut news) => {
                    let ended = news.wait_for(|n| n.ended);
                    let _ = tokio::time::timeout(Duration::from_secs(1), ended).await;
                }
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The news of a download a runner of this process is running: bytes as they land, and
    /// the runner's end. `None` when no runner of this process has it.
    pub fn watch(&self, id: i64) -> Option<tokio::sync::watch::Receiver<News>> {
        self.runners.find(id).map(|slot| slot.watch())
    }

    /// The row as the UI shows it, with live bytes, speed and ETA while it is active. A failed
    /// row's words are made now from its kept failure (the words table as it is in this build);
    /// a row kept without one shows the words stored with it.
    pub fn view(&self, row: &DownloadRow) -> DownloadView {
        let mut view = self.live_view(row);
        if let Some(failure) = row.error_kind.as_deref().and_then(Failure::from_json) {
            view.error = Some(failure.said().stopped());
        }
        view
    }

    /// [`Engine::view`] before the words: the numbers, live while a runner here has them.
    fn live_view(&self, row: &DownloadRow) -> DownloadView {
        // A slot whose runner is not working (left by a pause of a download another process
        // runs) has no live numbers: the row's are the truth then.
        let slot = self.runners.find(row.id).filter(|_| self.runners.is_running(row.id));
        let Some(slot) = slot.filter(|_| row.status == DownloadStatus::Downloading) else {
            return self.view_from_row(row);
        };
        let now = Instant::now();
        let mut view = {
            let live = slot.live.lock().expect("live lock");
            let mut view = row.to_view(live.speed_bps(now), live.eta_seconds(row.total_bytes, now));
            if live.bytes > view.bytes_downloaded {
                view.bytes_downloaded = live.bytes;
                view.percent = crate::view::percent(live.bytes, row.total_bytes);
            }
            view
        };
        view.retrying = slot.waiting.lock().expect("waiting lock").as_ref().map(|w| RetryView {
            reason: w.what.clone(),
            detail: w.detail.clone(),
            attempt: w.attempt,
            of: w.of,
            in_seconds: w.until.saturating_duration_since(now).as_secs_f64().ceil() as u64,
        });
        view
    }

    /// Ends the wait before a download's next try at once ("Try now"). Refused unless the
    /// download is waiting to try again.
    pub async fn try_now(&self, user_id: i64, id: i64) -> Result<DownloadView, EngineError> {
        let row = self.owned(user_id, id).await?;
        let waiting = self.runners.find(id).filter(|s| s.waiting.lock().expect("waiting lock").is_some());
        let Some(slot) = waiting.filter(|_| row.status == DownloadStatus::Downloading) else {
            return Err(EngineError::NotWaiting);
        };
        *slot.waiting.lock().expect("waiting lock") = None;
        slot.try_now.notify_waiters();
        Ok(self.view(&row))
    }

    async fn owned(&self, user_id: i64, id: i64) -> Result<DownloadRow, EngineError> {
        downloads::get(&self.db, user_id, id).await?.ok_or(EngineError::NotFound)
    }

    fn check_disk(&self, remaining: u64) -> Result<(), EngineError> {
        let needed = remaining + disk_margin(remaining);
        let available =
            crate::disk::free_space(&self.cfg.models_dir).map_err(EngineError::io("cannot measure free disk space"))?;
        if available < needed {
            return Err(EngineError::NotEnoughDisk {
                needed: format_bytes(needed),
                available: format_bytes(available),
            });
        }
        Ok(())
    }

    /// The row, for the engine's own tasks: a row gone (deleted) or unreadable ends the task,
    /// the latter logged, since no user is waiting on an answer.
    async fn row_or_log(&self, id: i64) -> Option<DownloadRow> {
        match downloads::get_any_user(&self.db, id).await {
            Ok(row) => row,
            Err(e) => {
                tracing::error!(id, error = %e, "cannot read download row");
                None
            }
        }
    }

    /// Starts the download's runner, owned by the engine: a panic in it fails the row.
    fn spawn_runner(self: &Arc<Self>, id: i64) {
        let (engine, again) = (self.clone(), self.clone());
        self.runners.spawn(
            id,
            move |slot, token| engine.run(id, slot, token),
            move |_| async move {
                again.fail(id, &TransferError::Crashed("an internal error; it is in the server's log".into())).await
            },
        );
    }

    /// The runner task. Holds the slot's run lock for its whole life.
    async fn run(self: Arc<Self>, id: i64, slot: Arc<Slot>, token: CancellationToken) {
        let _run = slot.run.lock().await;
        let Some(row) = self.row_or_log(id).await else { return };
        // A pause or cancel that landed before this runner started wins; the claim made for
        // this run is let go, so nobody waits for it.
        if row.status != DownloadStatus::Pending || token.is_cancelled() {
            // Downloads that joined it go on without it.
            self.after_transfer(id).await;
            if let Err(e) = leases::release(&self.db, id, &self.instance.id).await {
                tracing::error!(id, error = %e, "cannot release the download's claim");
            }
            return;
        }
        let lease_ms = self.cfg.lease.as_millis() as i64;
        match leases::claim(&self.db, id, &self.instance.id, &self.folder_id, lease_ms).await {
            Ok(true) => {}
            Ok(false) => {
                return tracing::info!(id, runner = ?row.runner, "another localbrain process runs this download");
            }
            Err(e) => return tracing::error!(id, error = %e, "cannot claim the download"),
        }
        match self.catalog.get(&row.model_id).cloned() {
            Some(model) => {
                let job = Arc::new(self.job(&row, model, slot.clone(), token.clone()));
                // The heartbeat never ends by itself: the job's end ends both.
                tokio::select! {
                    () = job.run() => {}
                    () = self.heartbeat(id, &slot, &token) => {}
                }
                // Before the claim is let go: a process waiting on it then finds the transfer
                // handed on, or the downloads that shared it ended with it.
                self.after_transfer(id).await;
            }
            None => self.fail(id, &TransferError::NotInCatalog(row.model_id.clone())).await,
        }
        if let Err(e) = leases::release(&self.db, id, &self.instance.id).await {
            tracing::error!(id, error = %e, "cannot release the download's claim");
        }
    }

    /// Marks an active row failed: its runner could not (the model left the catalog) or
    /// panicked. Its partial is kept.
    async fn fail(&self, id: i64, error: &TransferError) {
        if let Some(row) = self.row_or_log(id).await {
            job::record_failure(&self.db, id, std::path::Path::new(&row.partial_path), error).await;
        }
    }

    fn job(
        &self,
        row: &DownloadRow,
        model: crate::catalog::ModelEntry,
        slot: Arc<Slot>,
        cancel: CancellationToken,
    ) -> Job {
        Job {
            id: row.id,
            db: self.db.clone(),
            client: self.client.clone(),
            cfg: self.cfg.clone(),
            pacer: self.pacer.clone(),
            proxies: self.proxies.clone(),
            model,
            partial: PathBuf::from(&row.partial_path),
            target: PathBuf::from(&row.target_path),
            segments: row.segments.clone(),
            validator: Mutex::new(row.validator.clone()),
            cancel,
            slot,
        }
    }
}
