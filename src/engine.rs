//! The download engine: starts, pauses, resumes and cancels downloads, and runs each one in a
//! task of its own (its `life`: a [`job::Job`] and its transfer, `single` or `segmented`).
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
//!
//! Layout, every import pointing down: this file holds every `Engine` method (starting and
//! stopping, sharing a transfer, recovery, the heartbeat) and spawns runners; a runner runs a
//! download's `life`, which drives `single` or `segmented`; both use `http` and `job` (the
//! [`job::Job`] they work on), which use `record`, `runners`, `retry`, the sinks and, at the
//! bottom, `files`, `blocking` and `config`.

mod blocking;
mod carriers;
mod config;
mod error;
mod failure;
pub mod files;
mod http;
pub mod instance;
mod job;
mod life;
mod live;
pub mod pace;
pub mod range;
mod record;
mod recovery;
pub use recovery::Recovered;
pub mod retry;
mod runners;
mod segment_sink;
mod segmented;
pub mod segments;
mod single;
mod sink;
mod words;
mod writer;

pub use config::{DEFAULT_CONNECTIONS, DEFAULT_STALL_TIMEOUT_SECS, EngineConfig, FAST_STREAM_BPS};
pub use error::{EngineError, TransferError};
pub use failure::{Failure, Reach};
pub use words::Said;

use crate::catalog::Catalog;
use crate::status::DownloadStatus::{self, *};
use crate::store::Db;
use crate::store::downloads::{self, DownloadRow, NewDownload};
use crate::store::leases::{self, SeenClaim};
use crate::units::{disk_margin, format_bytes};
use crate::view::{DownloadView, PauseReason, RetryView};
use blocking::blocking;
use carriers::is_joined;
use job::Job;
use recovery::{ACTIVE, ADOPTABLE};
pub use runners::News;
use runners::{Runners, Slot};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

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

    /// The settings the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
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
        // A split model's first part, the file that says the whole is installed.
        let target = files::model_path(&self.cfg.models_dir, &model);
        // Another user's download of this model is running: this one joins its transfer.
        let carrier = self.carrier_for(&model.id).await?;
        // A model already on disk is only hashed, and a joined download writes nothing: neither
        // needs room; nor do a split model's parts in place.
        if carrier.is_none() && files::len_or_zero(&target) != model.files()[0].size_bytes {
            self.check_disk(model.size_bytes - files::parts_in_place(&self.cfg.models_dir, &model))?;
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
        self.check_disk(row.total_bytes.saturating_sub(on_disk + self.parts_in_place(&row.model_id)))?;
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
        blocking(move || files::remove_if_exists(&partial))
            .await
            .map_err(EngineError::io("cannot remove the partial file"))?;
        self.remove_stray_parts(&row.model_id).await?;
        Ok(view)
    }

    /// After a cancel: a split model's parts in place, once no download of it is open any more
    /// and its first part is not (an unfinished model is no model; its parts only take room).
    async fn remove_stray_parts(&self, model_id: &str) -> Result<(), EngineError> {
        let Some(model) = self.catalog.get(model_id).filter(|m| !m.parts.is_empty()) else { return Ok(()) };
        if downloads::open_for_model(&self.db, model_id).await? > 0 {
            return Ok(());
        }
        let paths = files::model_paths(&self.cfg.models_dir, &model);
        blocking(move || {
            if paths[0].exists() {
                return Ok(());
            }
            paths[1..].iter().try_for_each(|p| files::remove_if_exists(p))
        })
        .await
        .map_err(EngineError::io("cannot remove the parts of a cancelled download"))
    }

    /// The bytes of a split model's parts in place ([`files::parts_in_place`]); 0 for one file
    /// or a model not in the catalog.
    fn parts_in_place(&self, model_id: &str) -> u64 {
        self.catalog.get(model_id).map_or(0, |m| files::parts_in_place(&self.cfg.models_dir, &m))
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
            match downloads::set_paused_by(&self.db, *id, PauseReason::Restart).await {
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
        let kind = row.error_kind.as_deref();
        if let Some(failure) = kind.and_then(Failure::from_json) {
            view.error = Some(failure.said().stopped());
        }
        if row.status == DownloadStatus::Paused {
            view.paused_by = kind.and_then(PauseReason::from_kind);
            if let Some(reason) = view.paused_by {
                view.error = Some(reason.note().to_string());
            }
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
        match self.catalog.get(&row.model_id) {
            Some(model) => {
                let job = Arc::new(self.job(&row, model, slot.clone(), token.clone()));
                // The heartbeat never ends by itself: the job's end ends both.
                tokio::select! {
                    () = life::run(&job) => {}
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
            let base = self.parts_in_place(&row.model_id);
            record::record_failure(&self.db, id, std::path::Path::new(&row.partial_path), base, error).await;
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
            whole: model.clone(),
            model,
            base: 0,
            partial: PathBuf::from(&row.partial_path),
            target: PathBuf::from(&row.target_path),
            segments: row.segments.clone(),
            validator: Mutex::new(row.validator.clone()),
            cancel,
            slot,
        }
    }
}

// One transfer per model (see `carriers`): joining a running download, and handing it on.
impl Engine {
    /// The running download a new or resumed download of `model_id` joins, if any.
    async fn carrier_for(&self, model_id: &str) -> Result<Option<DownloadRow>, EngineError> {
        Ok(crate::store::carriers::running_for(&self.db, model_id, &self.folder_id).await?)
    }

    /// Brings a download that just joined `carrier_id` in step with it at once. A carrier that
    /// ended the moment before leaves it complete (the model is installed) or, if it failed or
    /// stopped, on its own: then it runs its own transfer.
    async fn settle_join(self: &Arc<Self>, id: i64, carrier_id: i64) -> Result<DownloadRow, EngineError> {
        // A carrier running here knows bytes its row will only hear of at the next write.
        let live = self.runners.find(carrier_id).map_or(0, |slot| slot.live.lock().expect("live lock").bytes);
        crate::store::carriers::mirror(&self.db, carrier_id, live).await?;
        let row = downloads::get_any_user(&self.db, id).await?.ok_or(EngineError::NotFound)?;
        if row.carrier_id.is_some() || !matches!(row.status, Paused | Failed) {
            return Ok(row);
        }
        let slot = self.runners.slot(id);
        let _critical = slot.critical.lock().await;
        match downloads::resume_claimed(&self.db, id, &self.claim()).await? {
            Some(row) => {
                self.spawn_runner(id);
                Ok(row)
            }
            None => Ok(downloads::get_any_user(&self.db, id).await?.ok_or(EngineError::NotFound)?),
        }
    }

    /// What a carrier's runner does when its transfer has ended: a transfer its own user
    /// stopped goes on for the downloads that joined it ([`Engine::hand_off`]); otherwise they
    /// end as it ended (complete, failed), or are paused with it when this process shuts down.
    async fn after_transfer(self: &Arc<Self>, id: i64) {
        let Some(row) = self.row_or_log(id).await else { return };
        let stopped_by_user = matches!(row.status, Paused | Cancelled) && !self.stopping.load(Ordering::SeqCst);
        if stopped_by_user {
            match self.hand_off(&row).await {
                Ok(Some(_)) => return,
                Ok(None) => {}
                Err(e) => tracing::error!(id, error = %e, "cannot hand the shared transfer on"),
            }
        }
        if let Err(e) = crate::store::carriers::mirror(&self.db, id, 0).await {
            tracing::error!(id, error = %e, "cannot bring the downloads sharing this transfer in step");
        }
    }

    /// Hands a stopped carrier's transfer to the oldest download that joined it: its partial is
    /// renamed to that download's name, the rows are rewritten in one transaction, and its
    /// runner starts here (this process has the partial). The download it went to, if any.
    async fn hand_off(self: &Arc<Self>, row: &DownloadRow) -> Result<Option<i64>, EngineError> {
        for next in crate::store::carriers::followers(&self.db, row.id).await? {
            let (from, to) = (PathBuf::from(&row.partial_path), PathBuf::from(&next.partial_path));
            let (f, t) = (from.clone(), to.clone());
            let moved = blocking(move || files::rename_if_exists(&f, &t))
                .await
                .map_err(EngineError::io("cannot hand the partial file on"))?;
            // A single stream's progress is its file's length; segments say it themselves.
            let bytes = match row.segments {
                Some(_) => row.bytes_downloaded,
                None => self.parts_in_place(&row.model_id) + files::len_or_zero(&to),
            };
            if crate::store::carriers::hand_over(&self.db, row, bytes, next.id, &self.claim()).await? {
                tracing::info!(from = row.id, to = next.id, bytes, "handed the shared transfer on");
                self.spawn_runner(next.id);
                return Ok(Some(next.id));
            }
            // Its user stopped it meanwhile: the file goes back, and the next one is tried.
            if moved {
                blocking(move || std::fs::rename(&to, &from))
                    .await
                    .map_err(EngineError::io("cannot take the partial file back"))?;
            }
        }
        Ok(None)
    }

    /// Ends downloads left joined to a carrier that stopped without handing its transfer on
    /// (its process died): paused, no longer joined, so their users can resume them. A carrier
    /// whose runner still holds its claim is left alone: that runner is handing it on.
    async fn settle_stranded(&self) -> Result<(), EngineError> {
        let now = crate::time::now_ms();
        for carrier in crate::store::carriers::stranded(&self.db).await? {
            let let_go = match carrier.runner.as_deref() {
                None => true,
                Some(runner) => self
                    .instance
                    .has_stopped(runner)
                    .unwrap_or_else(|| carrier.lease_until.is_none_or(|until| until < now)),
            };
            if let_go {
                let n = crate::store::carriers::mirror(&self.db, carrier.id, 0).await?;
                tracing::info!(carrier = carrier.id, settled = n, "downloads that shared a stopped transfer settled");
            }
        }
        Ok(())
    }

    /// A joined download that its user paused or cancelled leaves the shared transfer; the row
    /// as it then is.
    async fn leave_shared(&self, row: DownloadRow) -> Result<DownloadRow, EngineError> {
        if row.carrier_id.is_none() || !matches!(row.status, Paused | Cancelled) {
            return Ok(row);
        }
        crate::store::carriers::leave(&self.db, row.id).await?;
        Ok(downloads::get_any_user(&self.db, row.id).await?.unwrap_or(row))
    }
}

// Boot recovery and takeover (see `recovery`).
impl Engine {
    /// Pauses every active row (any user) and removes orphaned partials. Run once at start,
    /// before any runner exists.
    pub async fn recover(&self) -> Result<Recovered, EngineError> {
        let mut out = Recovered::default();
        for row in downloads::in_statuses_any_user(&self.db, &ACTIVE).await? {
            if self.pause_stale(&row).await? {
                out.paused.push(row.id);
            }
        }
        self.settle_stranded().await?;
        let open: std::collections::HashSet<i64> =
            downloads::in_statuses_any_user(&self.db, &[Pending, Downloading, Paused, Verifying, Installing, Failed])
                .await?
                .into_iter()
                .map(|r| r.id)
                .collect();
        let dir = files::partial_dir(&self.cfg.models_dir);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let owned = files::download_id_of_partial(&name).is_some_and(|id| open.contains(&id));
                if !owned && !files::is_locked_elsewhere(&entry.path()) && entry.file_type().is_ok_and(|t| t.is_file())
                {
                    files::remove_if_exists(&entry.path())
                        .map_err(EngineError::io("cannot remove an orphaned partial"))?;
                    out.orphans_removed += 1;
                }
            }
        }
        Ok(out)
    }

    /// The CLI's recovery: only this user's open row of this model, if a dead process left it
    /// active. Leaves alone a download another live process is running.
    pub async fn recover_one(&self, user_id: i64, model_id: &str) -> Result<bool, EngineError> {
        match downloads::open_for(&self.db, user_id, model_id).await? {
            // Joined to another's transfer: it is stale when that transfer's runner is gone.
            Some(row) if is_joined(&row) => {
                let carrier = downloads::get_any_user(&self.db, row.carrier_id.unwrap_or_default()).await?;
                if let Some(carrier) = carrier.filter(|c| c.status.is_active()) {
                    self.pause_stale(&carrier).await?;
                }
                self.settle_stranded().await?;
                let now = downloads::get_any_user(&self.db, row.id).await?;
                Ok(now.is_some_and(|r| r.status == Paused))
            }
            Some(row) if row.status.is_active() => self.pause_stale(&row).await,
            _ => Ok(false),
        }
    }

    /// Pauses an active row no runner of this process owns, unless another process holds its
    /// partial's lock. Bytes are set to what the partial really holds. A joined row has no
    /// runner: it is settled with its carrier.
    async fn pause_stale(&self, row: &DownloadRow) -> Result<bool, EngineError> {
        let partial = Path::new(&row.partial_path);
        if is_joined(row)
            || self.runners.is_running(row.id)
            || files::is_locked_elsewhere(partial)
            || !self.is_abandoned(row, crate::time::now_ms())
        {
            return Ok(false);
        }
        if !downloads::set_paused_by(&self.db, row.id, PauseReason::Restart).await? {
            return Ok(false);
        }
        if let Some(dead) = &row.runner {
            leases::release(&self.db, row.id, dead).await?;
        }
        record::reconcile_bytes(&self.db, row.id, partial, self.parts_in_place(&row.model_id), &[Paused]).await;
        Ok(true)
    }

    /// Takes over the active downloads whose runner died: resumed here from their partial when
    /// this server shares their models folder, else paused with [`PauseReason::ElsewhereFolder`]. Returns the
    /// ids resumed here. Run every heartbeat or two by `serve`; a download is won by one
    /// process only (a compare-and-set on the claim each read).
    pub async fn adopt_abandoned(self: &std::sync::Arc<Self>) -> Result<Vec<i64>, EngineError> {
        let now = crate::time::now_ms();
        let lease_ms = self.cfg.lease.as_millis() as i64;
        let mut adopted = Vec::new();
        for row in downloads::in_statuses_any_user(&self.db, &ADOPTABLE).await? {
            let partial = Path::new(&row.partial_path);
            if is_joined(&row)
                || self.runners.is_running(row.id)
                || !self.is_abandoned(&row, now)
                || files::is_locked_elsewhere(partial)
            {
                continue;
            }
            let seen = SeenClaim { runner: row.runner.clone(), lease_until: row.lease_until };
            if !leases::adopt(&self.db, row.id, &seen, &ADOPTABLE, &self.instance.id, &self.folder_id, lease_ms).await?
            {
                continue;
            }
            let shared = row.folder_id.as_deref().map_or_else(|| partial.exists(), |f| f == self.folder_id);
            if shared {
                tracing::info!(id = row.id, runner = ?row.runner, "taking over a download whose runner stopped");
                self.spawn_runner(row.id);
                adopted.push(row.id);
            } else {
                tracing::warn!(id = row.id, runner = ?row.runner, "a download whose runner stopped is in a models folder not shared with this server; pausing it");
                downloads::set_paused_by(&self.db, row.id, PauseReason::ElsewhereFolder).await?;
                leases::release(&self.db, row.id, &self.instance.id).await?;
            }
        }
        self.settle_stranded().await?;
        Ok(adopted)
    }
}

// Among other processes on one database (issue 17): whether a row's runner is gone, waiting
// for another process's runner to let go, the heartbeat that keeps a claim and hears of
// pauses, the wake-up that PostgreSQL's NOTIFY brings, and the view of a download another
// process runs.
impl Engine {
    /// This process's claim on a download it is about to run, for the write that makes the
    /// row pending.
    fn claim(&self) -> downloads::Claim<'_> {
        downloads::Claim {
            runner: &self.instance.id,
            folder_id: &self.folder_id,
            lease_until: crate::time::now_ms() + self.cfg.lease.as_millis() as i64,
        }
    }

    /// Waits (up to a lease and a heartbeat) until no other process runs the download; the row
    /// as it then is. A runner that died does not hold the wait up: its claim is abandoned.
    async fn let_go_elsewhere(&self, id: i64) -> Result<Option<DownloadRow>, EngineError> {
        let deadline = Instant::now() + self.cfg.lease + self.cfg.heartbeat;
        loop {
            let Some(row) = downloads::get_any_user(&self.db, id).await? else { return Ok(None) };
            let elsewhere = row.runner.as_deref().is_some_and(|r| r != self.instance.id);
            if !elsewhere || self.is_abandoned(&row, crate::time::now_ms()) || Instant::now() >= deadline {
                return Ok(Some(row));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Whether the process that ran an active row is gone: its claim (if any) is not renewed.
    /// A runner on this host is looked up by its pid; one elsewhere is gone when its lease ran
    /// out. A row nobody claimed is abandoned once it has not changed for a lease.
    fn is_abandoned(&self, row: &DownloadRow, now: i64) -> bool {
        let lease_ms = self.cfg.lease.as_millis() as i64;
        match row.runner.as_deref() {
            None => row.updated_at < now - lease_ms,
            Some(runner) => match self.instance.has_stopped(runner) {
                Some(stopped) => stopped,
                None => row.lease_until.is_none_or(|until| until < now),
            },
        }
    }

    /// Wakes this process's runners when another process announces a change to their row
    /// (PostgreSQL's NOTIFY; `store::control`), so a pause from anywhere stops the transfer at
    /// once instead of at the next heartbeat. Runs for as long as the process; `serve` and
    /// `download` spawn it. Returns at once on SQLite.
    pub async fn listen_for_changes(self: Arc<Self>) {
        let runners = self.runners.clone();
        crate::store::control::listen(&self.db, move |id| {
            if let Some(slot) = runners.find(id) {
                slot.nudge.notify_one();
            }
        })
        .await;
    }

    /// The view of a row no runner of this process has: the bytes and speed its runner (in
    /// another process) last wrote, while that runner's claim holds.
    fn view_from_row(&self, row: &DownloadRow) -> DownloadView {
        // A joined row's speed and lease are its carrier's, copied by the carrier's heartbeat.
        let live = row.status == DownloadStatus::Downloading
            && (row.runner.as_deref().is_some_and(|r| r != self.instance.id) || row.carrier_id.is_some())
            && row.lease_until.is_some_and(|until| until > crate::time::now_ms());
        let speed = if live { row.speed_bps.unwrap_or(0) } else { 0 };
        let eta = (speed > 0).then(|| row.total_bytes.saturating_sub(row.bytes_downloaded).div_ceil(speed));
        row.to_view(speed, eta)
    }

    /// Every `heartbeat` while the runner works: renews its claim and writes its speed, and
    /// stops the transfer when the row says another process paused or cancelled it, or took
    /// it over.
    async fn heartbeat(&self, id: i64, slot: &Slot, token: &CancellationToken) {
        let lease_ms = self.cfg.lease.as_millis() as i64;
        let mut every = tokio::time::interval(self.cfg.heartbeat);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = slot.nudge.notified() => {}
            }
            let (speed, bytes) = {
                let live = slot.live.lock().expect("live lock");
                (live.speed_bps(Instant::now()), live.bytes)
            };
            let stop = match leases::renew(&self.db, id, &self.instance.id, lease_ms, speed).await {
                Ok(Some(status)) => {
                    // The downloads that joined this transfer see its progress too; once it is
                    // paused or cancelled they wait for the hand-off instead (`carriers`).
                    if status.is_active()
                        && let Err(e) = crate::store::carriers::mirror(&self.db, id, bytes).await
                    {
                        tracing::warn!(id, error = %e, "cannot bring the downloads sharing this transfer in step");
                    }
                    matches!(status, DownloadStatus::Paused | DownloadStatus::Cancelled).then_some(status.as_str())
                }
                Ok(None) => Some("taken over"),
                Err(e) => {
                    tracing::warn!(id, error = %e, "cannot renew the download's claim");
                    None
                }
            };
            if let Some(why) = stop
                && !token.is_cancelled()
            {
                tracing::info!(id, status = why, "stopped by another localbrain process");
                token.cancel();
            }
        }
    }
}
