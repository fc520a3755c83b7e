//! The brain: runs installed models on llama.cpp inside this process, for the card, the
//! terminal (`localbrain run`) and the API alike.
//!
//! Contract:
//! - One llama.cpp backend per process and one model in memory at a time. A request for
//!   another model unloads the current one first; a model idle for `keep_alive` is unloaded so
//!   its memory comes back.
//! - A loaded model keeps its llama.cpp context between replies ([`runtime::Cache`]): a prompt
//!   that begins with what the last reply left in the KV cache (the same conversation, one turn
//!   on) decodes only its new tokens, and [`crate::chat::ChatStats::cached_tokens`] says how
//!   many were reused. The context goes with the model when it is unloaded.
//! - One reply is generated at a time. Others wait first-come in a queue of at most
//!   `queue_limit`; beyond that a request is refused at once with [`BrainError::Busy`].
//! - A reply stops between two tokens when its [`Reply`] is dropped (a closed connection),
//!   when [`Brain::stop`] names it, or when the brain shuts down.
//! - A file is never handed to llama.cpp before its GGUF header has been read and checked
//!   ([`gguf`]), and a model the memory rule ([`crate::recommend::ram_needed_bytes`]) says will
//!   not fit is refused instead of being loaded into swap.
//! - Generation runs on blocking threads owned by the brain (a `JoinSet`); a panic in one
//!   becomes an error event for its listener, never a silent hang.

mod admission;
mod error;
pub mod gguf;
mod runtime;
pub mod stops;
pub mod template;

pub use error::{BrainError, ErrorKind};
pub use runtime::RuntimeError;

use crate::catalog::{Catalog, ModelEntry};
use crate::chat::{BrainView, ChatEvent, ChatRequest, InstalledModel};
use crate::engine::files::target_path;
use admission::{QueueTicket, check_memory, rand_seed, validate};
use gguf::{GgufError, Header};
use llama_cpp_2::model::LlamaModel;
use runtime::Cache;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// An idle model stays loaded this long unless configured (ollama's default too).
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(5 * 60);
/// Context size a conversation runs in unless configured (capped by the model's own).
pub const DEFAULT_CONTEXT_TOKENS: u32 = 4096;
/// Requests that may wait for the one being answered.
pub const DEFAULT_QUEUE_LIMIT: usize = 8;
/// Sampling temperature unless the request says otherwise.
pub const DEFAULT_TEMPERATURE: f32 = 0.7;
/// Nucleus sampling's share unless the request says otherwise.
pub const DEFAULT_TOP_P: f32 = 0.95;

/// How the brain behaves.
#[derive(Clone, Debug)]
pub struct BrainConfig {
    pub models_dir: PathBuf,
    /// CPU threads for generation: see [`default_threads`].
    pub threads: u32,
    pub keep_alive: Duration,
    pub context_tokens: u32,
    pub queue_limit: usize,
    /// Where each reply's measured speed is recorded (`<data-dir>/machine.json`, see
    /// [`crate::machine`]); `None` records nothing.
    pub machine_file: Option<PathBuf>,
    /// Tokens/s below which the recommendation calls a model slow here.
    pub usable_tokens_per_second: f64,
}

impl BrainConfig {
    /// The product's settings for a models folder.
    pub fn new(models_dir: PathBuf) -> Self {
        BrainConfig {
            models_dir,
            threads: default_threads(),
            keep_alive: DEFAULT_KEEP_ALIVE,
            context_tokens: DEFAULT_CONTEXT_TOKENS,
            queue_limit: DEFAULT_QUEUE_LIMIT,
            machine_file: None,
            usable_tokens_per_second: crate::speed::DEFAULT_USABLE_TOKENS_PER_SECOND,
        }
    }

    /// The speeds measured on this machine and the usable speed: what the recommendation needs
    /// besides the catalog and the hardware.
    pub fn speed_inputs(&self) -> crate::speed::SpeedInputs {
        let facts = self.machine_file.as_deref().map(crate::machine::load).unwrap_or_default();
        crate::speed::SpeedInputs {
            measured: facts.measured(),
            usable_tokens_per_second: self.usable_tokens_per_second,
        }
    }

    /// This machine's profile for the models folder: [`crate::hardware::detect`] plus the
    /// generation threads and the memory bandwidth measured with them (measured now and stored
    /// when the machine file has none for these threads, or when `measure_again`). Blocks for
    /// up to about half a second: call it from a blocking thread in async code.
    pub fn hardware(&self, measure_again: bool) -> crate::hardware::HardwareProfile {
        let mut hw = crate::hardware::detect(&self.models_dir);
        hw.threads = Some(self.threads);
        hw.memory_bandwidth_gbps =
            self.machine_file.as_deref().map(|path| crate::machine::bandwidth(path, self.threads, measure_again).gbps);
        hw
    }
}

/// Whether this build's llama.cpp can run models on a GPU (built with CUDA, Metal, Vulkan...).
/// Starts the backend if it has not started.
pub fn gpu_offload() -> bool {
    runtime::backend().is_ok_and(|b| b.supports_gpu_offload())
}

/// Physical cores minus one, at least one. With every core generating, llama.cpp's threads
/// spin-wait on each other, and anything else using a core (the server answering, a download
/// hashing) drops generation from ~180 to under 10 tokens/s on 2 cores (TOOLCHAIN.md); one
/// core left free keeps it steady.
pub fn default_threads() -> u32 {
    crate::hardware::cpu_cores().unwrap_or(1).saturating_sub(1).max(1)
}

/// A reply being generated: its events arrive on `events`. Dropping it stops the generation.
pub struct Reply {
    pub id: i64,
    pub events: mpsc::Receiver<ChatEvent>,
}

/// The model in memory.
struct Loaded {
    model_id: String,
    model: LlamaModel,
    header: Arc<Header>,
}

self_cell::self_cell!(
    /// A loaded model with its kept context: the context borrows the model, so the two live
    /// and go together.
    struct Session {
        owner: Arc<Loaded>,
        #[not_covariant]
        dependent: Cache,
    }
);

/// The reply being generated.
struct Running {
    id: i64,
    owner: i64,
    cancel: CancellationToken,
}

/// A header read, valid while the file keeps its length and modification time.
struct Checked {
    len: u64,
    modified: Option<SystemTime>,
    result: Result<Arc<Header>, Arc<GgufError>>,
}

type HeaderCache = Arc<Mutex<HashMap<String, Checked>>>;

/// The model runtime, shared by the server's requests and the CLI.
pub struct Brain {
    cfg: BrainConfig,
    catalog: Arc<Catalog>,
    /// One permit: held by the reply being generated, and by a load or an unload.
    gate: Arc<Semaphore>,
    waiting: AtomicUsize,
    loaded: Mutex<Option<Arc<Loaded>>>,
    /// The loaded model's context, between replies (a reply takes it while it runs).
    session: Mutex<Option<Session>>,
    running: Mutex<Option<Running>>,
    last_used: Mutex<Instant>,
    next_id: AtomicI64,
    headers: HeaderCache,
    tasks: Mutex<JoinSet<()>>,
    root: CancellationToken,
}

impl Brain {
    /// A brain over the models folder of `cfg`. Starts its idle-unload task (it ends when the
    /// brain is dropped or shut down). Call inside a tokio runtime.
    pub fn new(catalog: Arc<Catalog>, cfg: BrainConfig) -> Arc<Brain> {
        let brain = Arc::new(Brain {
            cfg,
            catalog,
            gate: Arc::new(Semaphore::new(1)),
            waiting: AtomicUsize::new(0),
            loaded: Mutex::new(None),
            session: Mutex::new(None),
            running: Mutex::new(None),
            last_used: Mutex::new(Instant::now()),
            next_id: AtomicI64::new(1),
            headers: HeaderCache::default(),
            tasks: Mutex::new(JoinSet::new()),
            root: CancellationToken::new(),
        });
        let weak = Arc::downgrade(&brain);
        let root = brain.root.clone();
        let tick = (brain.cfg.keep_alive / 4).clamp(Duration::from_millis(20), Duration::from_secs(5));
        brain.tasks.lock().expect("task set").spawn(idle_unloader(weak, root, tick));
        brain
    }

    /// The settings it runs with.
    pub fn config(&self) -> &BrainConfig {
        &self.cfg
    }

    /// Reads (or recalls) the header of `model_id`'s installed file. `NotInstalled` when there
    /// is no file; `Unusable` when it is not a model this runtime can run.
    pub async fn check(&self, model_id: &str) -> Result<Arc<Header>, BrainError> {
        let path = target_path(&self.cfg.models_dir, model_id);
        let cache = self.headers.clone();
        let id = model_id.to_string();
        let result = tokio::task::spawn_blocking(move || {
            let meta = match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => m,
                Ok(_) => return Err(BrainError::NotInstalled(id)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BrainError::NotInstalled(id)),
                Err(e) => return Err(BrainError::Io(e)),
            };
            let (len, modified) = (meta.len(), meta.modified().ok());
            let mut cache = cache.lock().expect("header cache");
            let fresh = cache.get(&id).filter(|c| c.len == len && c.modified == modified && modified.is_some());
            let result = match fresh {
                Some(c) => c.result.clone(),
                None => {
                    let result = gguf::read(&path).map(Arc::new).map_err(Arc::new);
                    if let Err(e) = &result {
                        tracing::warn!(model = %id, error = %e, "installed file is not a usable model");
                    }
                    cache.insert(id.clone(), Checked { len, modified, result: result.clone() });
                    result
                }
            };
            result.map_err(|source| BrainError::Unusable { model_id: id, source })
        })
        .await;
        result.unwrap_or_else(|e| Err(BrainError::Io(std::io::Error::other(e))))
    }

    /// The catalog's models that are in the models folder, each with its facts or its problem.
    pub async fn installed(&self) -> Vec<InstalledModel> {
        let loaded = self.loaded_model();
        let mut out = Vec::new();
        for entry in &self.catalog.models {
            let (size, installed_at) = match std::fs::metadata(target_path(&self.cfg.models_dir, &entry.id)) {
                Ok(m) if m.is_file() => (m.len(), m.modified().map_or(0, crate::time::unix_seconds)),
                _ => continue,
            };
            let (facts, problem) = match self.check(&entry.id).await {
                Ok(h) => (Some(h.facts.clone()), None),
                Err(BrainError::NotInstalled(_)) => continue,
                Err(e) => (None, Some(e.to_string())),
            };
            let is_loaded = loaded.as_deref() == Some(entry.id.as_str());
            out.push(InstalledModel {
                model_id: entry.id.clone(),
                name: entry.name.clone(),
                size_bytes: size,
                installed_at,
                facts,
                problem,
                loaded: is_loaded,
            });
        }
        out
    }

    /// The installed models and whether a reply is being generated.
    pub async fn view(&self) -> BrainView {
        BrainView { models: self.installed().await, busy: self.is_busy(), threads: self.cfg.threads }
    }

    /// Whether a reply is being generated right now.
    pub fn is_busy(&self) -> bool {
        self.running.lock().expect("running").is_some()
    }

    /// The model in memory, if any.
    pub fn loaded_model(&self) -> Option<String> {
        self.loaded.lock().expect("loaded").as_ref().map(|l| l.model_id.clone())
    }

    /// Lets go of `model_id` before its file is deleted: an idle loaded copy is unloaded.
    /// [`BrainError::Busy`] while a reply is being generated with it. The permit returned (when
    /// nothing was generating) keeps any reply from loading a model until it is dropped, so the
    /// caller deletes the file while holding it.
    pub fn let_go(&self, model_id: &str) -> Result<Option<tokio::sync::SemaphorePermit<'_>>, BrainError> {
        let Ok(permit) = self.gate.try_acquire() else {
            // Generating (or loading) right now: only a problem when it is this model.
            return if self.loaded_model().as_deref() == Some(model_id) { Err(BrainError::Busy) } else { Ok(None) };
        };
        if self.loaded_model().as_deref() == Some(model_id) {
            self.unload();
            tracing::info!(model = %model_id, "unloaded a model that is being deleted");
        }
        Ok(Some(permit))
    }

    /// Starts a reply for `owner` (a user id; the CLI uses its own). Waits its turn in the
    /// queue, loads the model if needed, and returns once the prompt is ready; the reply then
    /// streams on [`Reply::events`].
    pub async fn chat(self: &Arc<Self>, owner: i64, req: ChatRequest) -> Result<Reply, BrainError> {
        let received = Instant::now();
        validate(&req)?;
        let entry =
            self.catalog.get(&req.model_id).ok_or_else(|| BrainError::UnknownModel(req.model_id.clone()))?.clone();
        let header = self.check(&entry.id).await?;

        let permit = {
            let _ticket = QueueTicket::take(&self.waiting, self.cfg.queue_limit)?;
            tokio::select! {
                p = self.gate.clone().acquire_owned() => p.map_err(|_| BrainError::ShuttingDown)?,
                _ = self.root.cancelled() => return Err(BrainError::ShuttingDown),
            }
        };
        let loaded = self.ensure_loaded(&entry, header).await?;
        let messages = req.messages.clone();
        let context_tokens = self.cfg.context_tokens;
        let model = loaded.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            let text = runtime::prompt(&model.model, model.header.chat_template.as_deref(), &messages)?;
            runtime::prepare(&model.model, &text, context_tokens)
        })
        .await
        .map_err(|e| BrainError::Io(std::io::Error::other(e)))??;

        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let cancel = self.root.child_token();
        *self.running.lock().expect("running") = Some(Running { id, owner, cancel: cancel.clone() });
        let (tx, events) = mpsc::channel(256);
        let _ = tx.try_send(ChatEvent::Started { id, model_id: entry.id.clone() });
        let job = runtime::Job {
            max_tokens: req.max_tokens,
            temperature: req.temperature.unwrap_or(DEFAULT_TEMPERATURE),
            top_p: req.top_p.unwrap_or(DEFAULT_TOP_P),
            stop: req.stop.clone(),
            seed: req.seed.unwrap_or_else(rand_seed),
            received,
        };
        // The kept context, when it belongs to this very load of the model.
        let session = self.session.lock().expect("session").take().filter(|s| {
            Arc::ptr_eq(s.borrow_owner(), &loaded) && s.with_dependent(|_, c| c.context()) == prepared.context
        });
        let threads = self.cfg.threads;
        let brain = Arc::downgrade(self);
        let machine_file = self.cfg.machine_file.clone();
        let model_id = entry.id.clone();
        self.tasks.lock().expect("task set").spawn_blocking(move || {
            let mut kept = None;
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut session = match session {
                    Some(s) => s,
                    None => Session::try_new(loaded.clone(), |l| Cache::new(&l.model, prepared.context, threads))?,
                };
                let result = session.with_dependent_mut(|l, cache| {
                    runtime::generate(&l.model, cache, &prepared, &job, &cancel, |piece| {
                        tx.blocking_send(ChatEvent::Piece { text: piece.to_string() }).is_ok()
                    })
                });
                kept = Some(session);
                result
            }));
            let last = match outcome {
                Ok(Ok(stats)) => {
                    // Every reply, whoever asked (the card, the terminal, the API), is a
                    // measurement of this model on this machine: the recommendation shows it
                    // instead of its prediction. Recorded before the last event goes out, so
                    // whoever reads it finds the figure stored.
                    if let Some(path) = &machine_file {
                        crate::machine::record_speed(path, &model_id, stats.generated_tokens, stats.tokens_per_second);
                    }
                    ChatEvent::Done { stats }
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "generation failed");
                    ChatEvent::Error { error: e.to_string() }
                }
                Err(_) => ChatEvent::Error { error: "the model stopped unexpectedly; try again".into() },
            };
            // Free before the last event goes out: whoever reads it may ask again at once. The
            // context goes back only while its model is still the loaded one (after a panic,
            // its state is unknown and it is dropped).
            if let Some(brain) = brain.upgrade() {
                if let Some(session) = kept.filter(|s| brain.is_loaded(s.borrow_owner())) {
                    *brain.session.lock().expect("session") = Some(session);
                }
                brain.finished(id);
            }
            drop((permit, loaded));
            let _ = tx.blocking_send(last);
        });
        Ok(Reply { id, events })
    }

    /// Stops `owner`'s reply `id` if it is being generated; `false` when there is none.
    pub fn stop(&self, owner: i64, id: i64) -> bool {
        match self.running.lock().expect("running").as_ref() {
            Some(r) if r.id == id && r.owner == owner => {
                r.cancel.cancel();
                true
            }
            _ => false,
        }
    }

    /// Stops every reply and refuses new ones. A server calls it as soon as it is told to stop,
    /// so streamed replies end (with `cancelled`) instead of holding the shutdown open.
    pub fn close(&self) {
        self.root.cancel();
    }

    /// [`Brain::close`], then waits (up to `within`) for the generation threads to end.
    pub async fn shutdown(&self, within: Duration) {
        self.close();
        let mut tasks = std::mem::take(&mut *self.tasks.lock().expect("task set"));
        let _ = tokio::time::timeout(within, async { while tasks.join_next().await.is_some() {} }).await;
        self.unload();
    }

    /// Whether `l` is the model in memory now.
    fn is_loaded(&self, l: &Arc<Loaded>) -> bool {
        self.loaded.lock().expect("loaded").as_ref().is_some_and(|now| Arc::ptr_eq(now, l))
    }

    /// Lets go of the loaded model and its context; returns the model's id, if one was loaded.
    fn unload(&self) -> Option<String> {
        let model = self.loaded.lock().expect("loaded").take();
        *self.session.lock().expect("session") = None;
        model.map(|l| l.model_id.clone())
    }

    fn finished(&self, id: i64) {
        let mut running = self.running.lock().expect("running");
        if running.as_ref().is_some_and(|r| r.id == id) {
            *running = None;
        }
        *self.last_used.lock().expect("last used") = Instant::now();
    }

    /// The model for `entry`, loading it (and unloading another) if needed. Called with the
    /// gate held, so nothing is generating with the model being replaced.
    async fn ensure_loaded(&self, entry: &ModelEntry, header: Arc<Header>) -> Result<Arc<Loaded>, BrainError> {
        if let Some(l) = self.loaded.lock().expect("loaded").as_ref()
            && l.model_id == entry.id
            && Arc::ptr_eq(&l.header, &header)
        {
            return Ok(l.clone());
        }
        // Another model, or this one's file changed: its memory comes back before the next one
        // is mapped.
        self.unload();
        check_memory(entry)?;
        let path = target_path(&self.cfg.models_dir, &entry.id);
        let started = Instant::now();
        let model = tokio::task::spawn_blocking(move || runtime::load(&path))
            .await
            .map_err(|e| BrainError::Io(std::io::Error::other(e)))??;
        tracing::info!(model = %entry.id, ms = started.elapsed().as_millis() as u64, "model loaded");
        let loaded = Arc::new(Loaded { model_id: entry.id.clone(), model, header });
        *self.loaded.lock().expect("loaded") = Some(loaded.clone());
        Ok(loaded)
    }

    /// Unloads the model if nothing has used it for `keep_alive`.
    fn unload_if_idle(&self) {
        let Ok(_permit) = self.gate.try_acquire() else { return };
        if self.last_used.lock().expect("last used").elapsed() < self.cfg.keep_alive {
            return;
        }
        if let Some(model) = self.unload() {
            tracing::info!(model = %model, "unloaded an idle model");
        }
    }
}

/// Wakes every `tick` to unload an idle model; ends with the brain.
async fn idle_unloader(brain: Weak<Brain>, root: CancellationToken, tick: Duration) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = root.cancelled() => return,
        }
        let Some(brain) = brain.upgrade() else { return };
        brain.unload_if_idle();
        // Reap finished generation threads so the set does not grow.
        let mut tasks = brain.tasks.lock().expect("task set");
        while let Some(done) = tasks.try_join_next() {
            if let Err(e) = done {
                tracing::error!(error = %e, "a brain task ended badly");
            }
        }
    }
}
