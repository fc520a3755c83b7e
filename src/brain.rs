//! The brain: runs installed models on llama.cpp inside this process, for the card, the
//! terminal (`localbrain run`) and the API alike.
//!
//! Contract:
//! - One llama.cpp backend per process and one model in memory at a time. A request for
//!   another model waits for the replies of the loaded one to end, then it is unloaded and the
//!   new one loaded; a model idle for `keep_alive` is unloaded so its memory comes back.
//! - A loaded model has one context with N slots (`parallel`, fewer when memory is short) and
//!   one thread that writes all their replies together, one decode per token for all of them
//!   ([`slots`], [`scheduler`]). A reply that arrives while others are written joins them at
//!   the next token.
//! - Each slot keeps what its KV cache holds between replies: a prompt that begins with it (the
//!   same conversation, one turn on) decodes only its new tokens, and
//!   [`crate::chat::ChatStats::cached_tokens`] says how many were reused.
//! - Beyond the slots, at most `queue_limit` replies wait, taken in turn per owner; one more is
//!   refused at once with [`BrainError::Busy`], which says how many wait and for how long.
//! - A reply stops within a token when its [`Reply`] is dropped (a closed connection), when
//!   [`Brain::stop`] names it, or when the brain shuts down.
//! - A file is never handed to llama.cpp before its GGUF header has been read and checked
//!   ([`gguf`]), and a model the memory rule ([`crate::memory_rule::ram_needed_bytes`]) says will
//!   not fit is refused instead of being loaded into swap.
//! - A panic while writing becomes an error event for each reply it touched, never a silent
//!   hang; the context is made anew.

mod admission;
pub mod devices;
mod embed;
mod error;
pub mod gguf;
pub mod json_schema;
mod listener;
mod loaded;
pub mod offload;
mod runtime;
mod scheduler;
mod slots;
pub mod stops;
pub mod template;
pub mod tool_calls;

pub use error::{BrainError, ErrorKind};
pub use runtime::RuntimeError;

use crate::catalog::{Catalog, ModelEntry};
use crate::chat::{BrainView, ChatEvent, ChatRequest, ChatStats, EmbedRequest, Embeddings, InstalledModel, Prompt};
use crate::engine::files::{model_path, target_path};
use admission::{InFlight, fit_slots, rand_seed, validate, wait_estimate};
use gguf::{GgufError, Header};
use listener::{Hold, Listener};
use loaded::{Loaded, Shape};
use slots::Order;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// An idle model stays loaded this long unless configured (ollama's default too).
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(5 * 60);
/// Context size a conversation runs in unless configured (capped by the model's own).
pub const DEFAULT_CONTEXT_TOKENS: u32 = 4096;
/// Requests that may wait beyond the slots.
pub const DEFAULT_QUEUE_LIMIT: usize = 8;
/// Replies written at once unless configured (llama-server's automatic setting too); fewer
/// when the memory free at load time does not hold the context of that many.
pub const DEFAULT_PARALLEL: u32 = 4;
/// What a reply is assumed to take, until one has been measured (for `Retry-After`).
const FIRST_REPLY_SECS: f64 = 5.0;
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
    /// Tokens of context each reply runs in (capped by the model's own).
    pub context_tokens: u32,
    /// Replies written at once: see [`DEFAULT_PARALLEL`].
    pub parallel: u32,
    pub queue_limit: usize,
    /// Where each reply's measured speed is recorded (`<data-dir>/machine.json`, see
    /// [`crate::machine`]); `None` records nothing.
    pub machine_file: Option<PathBuf>,
    /// Tokens/s below which the recommendation calls a model slow here.
    pub usable_tokens_per_second: f64,
    /// Layers of a model on the GPU: by fit, or a count ([`offload`]).
    pub gpu_layers: offload::GpuLayers,
}

impl BrainConfig {
    /// The product's settings for a models folder.
    pub fn new(models_dir: PathBuf) -> Self {
        BrainConfig {
            models_dir,
            threads: default_threads(),
            keep_alive: DEFAULT_KEEP_ALIVE,
            context_tokens: DEFAULT_CONTEXT_TOKENS,
            parallel: DEFAULT_PARALLEL,
            queue_limit: DEFAULT_QUEUE_LIMIT,
            machine_file: None,
            usable_tokens_per_second: crate::speed::DEFAULT_USABLE_TOKENS_PER_SECOND,
            gpu_layers: offload::GpuLayers::Auto,
        }
    }

    /// The speeds measured on the device models run on here and the usable speed: what the
    /// recommendation needs besides the catalog and the hardware.
    pub fn speed_inputs(&self) -> crate::speed::SpeedInputs {
        let facts = self.machine_file.as_deref().map(crate::machine::load).unwrap_or_default();
        crate::speed::SpeedInputs {
            measured: facts.measured(self.gpu().map(|d| d.label()).as_deref()),
            usable_tokens_per_second: self.usable_tokens_per_second,
        }
    }

    /// The GPU models are put on: `None` on a CPU build, with `--gpu-layers 0`, or when
    /// llama.cpp sees none.
    fn gpu(&self) -> Option<devices::Device> {
        if self.gpu_layers == offload::GpuLayers::Count(0) {
            return None;
        }
        gpu_device().ok().flatten()
    }

    /// This machine's profile for the models folder: [`crate::hardware::detect`] plus the
    /// generation threads, whether this build runs models on its GPU, the proxy downloads go
    /// through, and the memory bandwidth measured with the threads (measured now and stored
    /// when the machine file has none for these threads, or when `measure_again`). Blocks for
    /// up to about half a second: call it from a blocking thread in async code.
    pub fn hardware(&self, measure_again: bool) -> crate::hardware::HardwareProfile {
        let mut hw = crate::hardware::detect(&self.models_dir);
        hw.threads = Some(self.threads);
        // llama.cpp's own device list where a GPU backend is built in: it names the device
        // that will run the model. A CPU build's llama.cpp uses no GPU it is shown.
        if GPU_BUILD || hw.gpu.is_some() {
            let on = self.gpu_layers != offload::GpuLayers::Count(0);
            match gpu_device() {
                Ok(Some(d)) => {
                    hw.gpu = Some(crate::hardware::Gpu {
                        name: format!("{} via {}", d.description, d.backend),
                        memory_bytes: Some(d.memory_total),
                        unified: d.integrated,
                        used: on,
                    })
                }
                _ => {
                    if let Some(gpu) = hw.gpu.as_mut() {
                        gpu.used = false;
                    }
                }
            }
        }
        hw.proxy = crate::proxy::from_env();
        hw.memory_bandwidth_gbps =
            self.machine_file.as_deref().map(|path| crate::machine::bandwidth(path, self.threads, measure_again).gbps);
        hw
    }
}

/// Whether llama.cpp is built with a GPU backend (or loads them).
const GPU_BUILD: bool =
    cfg!(any(feature = "vulkan", feature = "cuda", feature = "metal", feature = "shared-llama", target_os = "macos"));

/// The GPU llama.cpp sees: `None` on a CPU build (its backend is not started for nothing), or
/// when a GPU build sees none, which is said once.
fn gpu_device() -> Result<Option<devices::Device>, BrainError> {
    if !GPU_BUILD {
        return Ok(None);
    }
    let device = devices::gpu()?;
    if device.is_none() {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| tracing::warn!("llama.cpp sees no GPU here: models run on the CPU"));
    }
    Ok(device)
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
    pub events: mpsc::UnboundedReceiver<ChatEvent>,
}

/// A reply being generated, for [`Brain::stop`].
struct Running {
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

/// The model in memory, behind the lock a reply reads for its whole life and a load or an
/// unload writes: a model is never swapped under a reply.
type Slot = Arc<RwLock<Option<Loaded>>>;

/// Held while a model file is deleted: no model is loaded until it is dropped.
pub struct ModelGate {
    _held: OwnedRwLockWriteGuard<Option<Loaded>>,
}

/// The model runtime, shared by the server's requests and the CLI.
pub struct Brain {
    cfg: BrainConfig,
    catalog: Arc<Catalog>,
    loaded: Slot,
    /// The loaded model's id, readable while a load holds the lock.
    loaded_id: Mutex<Option<String>>,
    /// Replies held now, in the slots and waiting.
    in_flight: Arc<AtomicUsize>,
    running: Mutex<HashMap<i64, Running>>,
    /// Seconds a reply takes, averaged over the last few (for `Retry-After`).
    reply_secs: Mutex<f64>,
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
            loaded: Slot::default(),
            loaded_id: Mutex::new(None),
            in_flight: Arc::new(AtomicUsize::new(0)),
            running: Mutex::new(HashMap::new()),
            reply_secs: Mutex::new(FIRST_REPLY_SECS),
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

    /// The models it can run: the catalog and its hub shelf.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The settings it runs with.
    pub fn config(&self) -> &BrainConfig {
        &self.cfg
    }

    /// Reads (or recalls) the header of `model_id`'s installed file. `NotInstalled` when there
    /// is no file; `Unusable` when it is not a model this runtime can run.
    pub async fn check(&self, model_id: &str) -> Result<Arc<Header>, BrainError> {
        let path = self.path_of(model_id);
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

    /// Where a model is installed: its file, or a split model's first part (llama.cpp finds the
    /// other parts beside it).
    fn path_of(&self, model_id: &str) -> std::path::PathBuf {
        match self.catalog.get(model_id) {
            Some(entry) => model_path(&self.cfg.models_dir, &entry),
            None => target_path(&self.cfg.models_dir, model_id),
        }
    }

    /// The catalog's models that are in the models folder, each with its facts or its problem.
    pub async fn installed(&self) -> Vec<InstalledModel> {
        let loaded = self.loaded_model();
        let mut out = Vec::new();
        for entry in &self.catalog.all() {
            let (size, installed_at) = match std::fs::metadata(model_path(&self.cfg.models_dir, entry)) {
                // A split model's size is its parts' (the first part is installed last).
                Ok(m) if m.is_file() => {
                    let size = if entry.parts.is_empty() { m.len() } else { entry.size_bytes };
                    (size, m.modified().map_or(0, crate::time::unix_seconds))
                }
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

    /// The installed models, whether a reply is being generated, and how many at once.
    pub async fn view(&self) -> BrainView {
        BrainView {
            models: self.installed().await,
            busy: self.is_busy(),
            threads: self.cfg.threads,
            slots: self.slots(),
        }
    }

    /// Whether a reply is being generated right now.
    pub fn is_busy(&self) -> bool {
        !self.running.lock().expect("running").is_empty()
    }

    /// Replies written at once: the loaded model's slots, or the setting when none is loaded.
    pub fn slots(&self) -> u32 {
        self.loaded.try_read().ok().and_then(|l| l.as_ref().map(|l| l.slots)).unwrap_or(self.cfg.parallel.max(1))
    }

    /// The model in memory, if any.
    pub fn loaded_model(&self) -> Option<String> {
        self.loaded_id.lock().expect("loaded").clone()
    }

    /// Lets go of `model_id` before its file is deleted: an idle loaded copy is unloaded.
    /// [`BrainError::InUse`] while a reply is being generated with it. The guard returned (when
    /// nothing was generating) keeps any reply from loading a model until it is dropped, so the
    /// caller deletes the file while holding it.
    pub fn let_go(&self, model_id: &str) -> Result<Option<ModelGate>, BrainError> {
        let Ok(mut loaded) = self.loaded.clone().try_write_owned() else {
            // Generating (or loading) right now: only a problem when it is this model.
            return if self.loaded_model().as_deref() == Some(model_id) {
                Err(BrainError::InUse(model_id.to_string()))
            } else {
                Ok(None)
            };
        };
        if loaded.as_ref().is_some_and(|l| l.model.model_id == model_id) {
            self.unload(&mut loaded);
            tracing::info!(model = %model_id, "unloaded a model that is being deleted");
        }
        Ok(Some(ModelGate { _held: loaded }))
    }

    /// Starts a reply for `owner` (a user id; the CLI uses its own). Takes a place (or is
    /// refused with how long to wait), loads the model if needed, and returns once the prompt
    /// is ready and waiting for a slot; the reply then streams on [`Reply::events`].
    pub async fn chat(self: &Arc<Self>, owner: i64, req: ChatRequest) -> Result<Reply, BrainError> {
        validate(&req)?;
        // tool_choice none: the tools are not shown to the model at all.
        let tools = if req.tool_choice == crate::chat::ToolChoice::None { Vec::new() } else { req.tools.clone() };
        let input = runtime::Input::Chat { messages: req.messages.clone(), tools };
        self.start(owner, req, input).await
    }

    /// Like [`Brain::chat`], for a prompt continued as it is (no chat template) or a middle
    /// filled in: `/v1/completions`. `req.messages` is not read.
    pub async fn complete(self: &Arc<Self>, owner: i64, req: ChatRequest, prompt: Prompt) -> Result<Reply, BrainError> {
        admission::validate_prompt(&req, &prompt)?;
        self.start(owner, req, runtime::Input::Prompt(prompt)).await
    }

    /// A reply to `input`, its request checked.
    async fn start(
        self: &Arc<Self>,
        owner: i64,
        mut req: ChatRequest,
        input: runtime::Input,
    ) -> Result<Reply, BrainError> {
        let received = Instant::now();
        let entry = self.catalog.get(&req.model_id).ok_or_else(|| BrainError::UnknownModel(req.model_id.clone()))?;
        let header = self.check(&entry.id).await?;
        if !entry.purpose.is_chat() || !header.writes() {
            return Err(RuntimeError::NotForChat.into());
        }
        tool_calls::prepare(&mut req, header.chat_template.as_deref()).map_err(RuntimeError::BadInput)?;

        let slots = self.slots();
        let limit = slots as usize + self.cfg.queue_limit;
        let (place, before) = InFlight::take(&self.in_flight, limit).map_err(|held| {
            let waiting = held.saturating_sub(slots as usize);
            let reply_secs = *self.reply_secs.lock().expect("reply time");
            BrainError::Busy { waiting, slots, retry_after: wait_estimate(waiting, slots, reply_secs) }
        })?;
        let loaded = self.loaded_for(&entry, header).await?;
        let (model, context, queue) = {
            let l = loaded.as_ref().expect("loaded_for returns a loaded model");
            (l.model.clone(), l.context, l.queue.clone())
        };
        let grammar = req.grammar.clone();
        let prepared = tokio::task::spawn_blocking(move || {
            if let Some(g) = &grammar {
                runtime::check_grammar(&model.model, g)?;
            }
            runtime::tokens_for(&model.model, model.header.chat_template.as_deref(), &input, context)
        })
        .await
        .map_err(|e| BrainError::Io(std::io::Error::other(e)))??;

        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let cancel = self.root.child_token();
        self.running.lock().expect("running").insert(id, Running { owner, cancel: cancel.clone() });
        let (tx, events) = mpsc::unbounded_channel();
        let position = (before + 1).saturating_sub(slots as usize) as u32;
        let _ = tx.send(ChatEvent::Started { id, model_id: entry.id.clone(), position });
        let job = runtime::Job {
            max_tokens: req.max_tokens,
            temperature: req.temperature.unwrap_or(DEFAULT_TEMPERATURE),
            top_p: req.top_p.unwrap_or(DEFAULT_TOP_P),
            stop: req.stop.clone(),
            seed: req.seed.unwrap_or_else(rand_seed),
            received,
            grammar: req.grammar.clone(),
            logprobs: req.logprobs,
        };
        let out = Listener {
            id,
            model_id: entry.id.clone(),
            tx,
            brain: Arc::downgrade(self),
            machine_file: self.cfg.machine_file.clone(),
            hold: Some(Hold { _model: loaded, _place: place }),
        };
        // A closed queue (its thread lost its context) hands the order back: dropping it ends
        // the reply with an error, and the next request loads the model anew.
        if let Err(order) = queue.push(Order { owner, prepared, job: Box::new(job), cancel, out: Box::new(out) }) {
            drop(order);
        }
        Ok(Reply { id, events })
    }

    /// The vectors of `req`'s inputs, made with its model (loaded if needed, like a reply).
    /// Takes a place among the replies the brain holds, so embeddings and replies share one
    /// limit; the work stops between batches when the caller goes away.
    pub async fn embed(&self, req: EmbedRequest) -> Result<Embeddings, BrainError> {
        if !crate::catalog::is_valid_model_id(&req.model_id) {
            return Err(BrainError::BadRequest("model_id must be a catalog model id".into()));
        }
        if req.inputs.is_empty() || req.inputs.len() > crate::chat::MAX_EMBED_INPUTS {
            return Err(BrainError::BadRequest(format!(
                "send between 1 and {} inputs, not {}",
                crate::chat::MAX_EMBED_INPUTS,
                req.inputs.len()
            )));
        }
        let entry = self.catalog.get(&req.model_id).ok_or_else(|| BrainError::UnknownModel(req.model_id.clone()))?;
        let header = self.check(&entry.id).await?;
        let pooling = embed::pooling(header.pooling)?;
        let slots = self.slots();
        let (_place, _) = InFlight::take(&self.in_flight, slots as usize + self.cfg.queue_limit).map_err(|held| {
            let waiting = held.saturating_sub(slots as usize);
            let reply_secs = *self.reply_secs.lock().expect("reply time");
            BrainError::Busy { waiting, slots, retry_after: wait_estimate(waiting, slots, reply_secs) }
        })?;
        let loaded = self.loaded_for(&entry, header).await?;
        let model = loaded.as_ref().expect("loaded_for returns a loaded model").model.clone();
        /// Tells the blocking work the caller went away.
        struct Left(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Left {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let left = Left(Arc::default());
        let cancelled = left.0.clone();
        let threads = self.cfg.threads;
        let inputs = req.inputs;
        let out = tokio::task::spawn_blocking(move || {
            let tokens = embed::tokenize(&model.model, &inputs)?;
            let prompt_tokens = tokens.iter().map(Vec::len).sum::<usize>() as u32;
            let vectors = embed::embed(&model.model, pooling, &tokens, threads, &cancelled)?;
            Ok::<_, BrainError>(Embeddings { vectors, prompt_tokens })
        })
        .await
        .map_err(|e| BrainError::Io(std::io::Error::other(e)))?;
        *self.last_used.lock().expect("last used") = Instant::now();
        drop((loaded, left));
        out
    }

    /// Stops `owner`'s reply `id` if it is being generated; `false` when there is none.
    pub fn stop(&self, owner: i64, id: i64) -> bool {
        match self.running.lock().expect("running").get(&id) {
            Some(r) if r.owner == owner => {
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

    /// [`Brain::close`], then waits (up to `within`) for the replies to end and unloads.
    pub async fn shutdown(&self, within: Duration) {
        self.close();
        let mut tasks = std::mem::take(&mut *self.tasks.lock().expect("task set"));
        let _ = tokio::time::timeout(within, async {
            while tasks.join_next().await.is_some() {}
            let mut loaded = self.loaded.clone().write_owned().await;
            self.unload(&mut loaded);
        })
        .await;
    }

    /// Lets go of the loaded model, its context and its thread; returns the model's id, if one
    /// was loaded. Called with the lock written, so no reply holds it.
    fn unload(&self, loaded: &mut Option<Loaded>) -> Option<String> {
        let model = loaded.take().map(|l| l.model.model_id.clone());
        *self.loaded_id.lock().expect("loaded") = None;
        model
    }

    /// A reply ended: it is no longer one Stop can name, and the model was used now.
    fn finished(&self, id: i64) {
        self.running.lock().expect("running").remove(&id);
        *self.last_used.lock().expect("last used") = Instant::now();
    }

    /// A reply's time, into the average `Retry-After` is estimated from.
    fn measured(&self, stats: &ChatStats) {
        let per_second = |n: u32, speed: f64| if speed > 0.0 { f64::from(n) / speed } else { 0.0 };
        let secs = per_second(stats.prompt_tokens - stats.cached_tokens, stats.prompt_tokens_per_second)
            + per_second(stats.generated_tokens, stats.tokens_per_second);
        if secs > 0.0 {
            let mut avg = self.reply_secs.lock().expect("reply time");
            *avg = 0.8 * *avg + 0.2 * secs;
        }
    }

    /// The loaded model, `entry`'s, loading it (and unloading another once its replies have
    /// ended) if needed. The guard returned keeps it loaded.
    async fn loaded_for(
        &self,
        entry: &ModelEntry,
        header: Arc<Header>,
    ) -> Result<OwnedRwLockReadGuard<Option<Loaded>>, BrainError> {
        let read = tokio::select! {
            g = self.loaded.clone().read_owned() => g,
            _ = self.root.cancelled() => return Err(BrainError::ShuttingDown),
        };
        if read.as_ref().is_some_and(|l| l.serves(&entry.id, &header)) {
            return Ok(read);
        }
        drop(read);
        let mut write = tokio::select! {
            g = self.loaded.clone().write_owned() => g,
            _ = self.root.cancelled() => return Err(BrainError::ShuttingDown),
        };
        if !write.as_ref().is_some_and(|l| l.serves(&entry.id, &header)) {
            // Another model, or this one's file changed: its memory comes back before the next
            // one is mapped.
            self.unload(&mut write);
            let gpu = self.placement(&header, self.cfg.parallel)?;
            let in_ram = gpu.as_ref().map_or(1.0, |g| offload::ram_fraction(&header.layout, g.layers));
            let slots = fit_slots(entry, self.cfg.parallel, in_ram, self.kv_per_slot(&header))?;
            if slots < self.cfg.parallel {
                tracing::warn!(
                    model = %entry.id, slots, asked = self.cfg.parallel,
                    "the memory free now holds the context of fewer replies at once than asked for"
                );
            }
            let path = model_path(&self.cfg.models_dir, entry);
            let shape = Shape { slots, context: self.cfg.context_tokens, threads: self.cfg.threads, gpu };
            let started = Instant::now();
            let id = entry.id.clone();
            let loaded = tokio::task::spawn_blocking(move || Loaded::load(&id, &path, header, shape))
                .await
                .map_err(|e| BrainError::Io(std::io::Error::other(e)))??;
            tracing::info!(
                model = %entry.id, slots, context = loaded.context, ran_on = %crate::chat::ran_on(loaded.gpu.as_ref()),
                ms = started.elapsed().as_millis() as u64, "model loaded"
            );
            *write = Some(loaded);
            *self.loaded_id.lock().expect("loaded") = Some(entry.id.clone());
        }
        Ok(write.downgrade())
    }

    /// Where a model with `header` goes for `slots` slots: the GPU and its layers there (as the
    /// stats will name them). `None`, the CPU alone, on a CPU build, on a GPU build that sees no
    /// GPU, and with `--gpu-layers 0`.
    fn placement(&self, header: &Header, slots: u32) -> Result<Option<crate::chat::GpuUse>, BrainError> {
        if self.cfg.gpu_layers == offload::GpuLayers::Count(0) {
            return Ok(None);
        }
        let Some(device) = gpu_device()? else { return Ok(None) };
        let layout = header.layout;
        let kv = self.kv_per_slot(header).saturating_mul(u64::from(slots));
        let layers = offload::layers_on_gpu(self.cfg.gpu_layers, device.memory_free, device.memory_total, &layout, kv);
        Ok(offload::gpu_use(&device.label(), layers, layout.layers))
    }

    /// One slot's KV cache for a model with `header`, at the context a slot gets (the
    /// configured one, capped by the model's own); 0 when the header does not give its shape.
    fn kv_per_slot(&self, header: &Header) -> u64 {
        let context = u64::from(self.cfg.context_tokens).min(header.facts.context_length.max(1));
        header.layout.kv_bytes_per_token.saturating_mul(context)
    }

    /// Unloads the model if nothing has used it for `keep_alive`.
    fn unload_if_idle(&self) {
        let Ok(mut loaded) = self.loaded.clone().try_write_owned() else { return };
        if self.last_used.lock().expect("last used").elapsed() < self.cfg.keep_alive {
            return;
        }
        if let Some(model) = self.unload(&mut loaded) {
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
