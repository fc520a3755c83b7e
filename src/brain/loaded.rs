//! The model in memory: its weights, its context with N slots, and the thread that writes its
//! replies ([`super::scheduler`]). Dropping it closes the thread, waits for it, and lets the
//! memory go.

use super::gguf::Header;
use super::scheduler::{self, Queue};
use super::slots::Slots;
use super::{BrainError, runtime};
use crate::chat::GpuUse;
use llama_cpp_2::model::LlamaModel;
use std::path::Path;
use std::sync::Arc;

/// A model file loaded by llama.cpp.
pub(super) struct Model {
    pub model_id: String,
    pub model: LlamaModel,
    pub header: Arc<Header>,
}

self_cell::self_cell!(
    /// A loaded model with its context: the context borrows the model, so the two live and go
    /// together.
    struct Session {
        owner: Arc<Model>,
        #[not_covariant]
        dependent: Slots,
    }
);

/// The model in memory and the thread writing its replies.
pub(super) struct Loaded {
    pub model: Arc<Model>,
    /// Replies written at once.
    pub slots: u32,
    /// Tokens each slot holds.
    pub context: u32,
    pub queue: Arc<Queue>,
    /// Its layers on the GPU; `None`: the CPU alone.
    pub gpu: Option<GpuUse>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How a model is loaded.
pub(super) struct Shape {
    pub slots: u32,
    pub context: u32,
    pub threads: u32,
    /// Its layers on the GPU ([`super::offload`]); `None`: the CPU alone.
    pub gpu: Option<GpuUse>,
}

impl Loaded {
    /// Loads `path` and makes its context; blocks (run it on a blocking thread).
    pub fn load(model_id: &str, path: &Path, header: Arc<Header>, shape: Shape) -> Result<Loaded, BrainError> {
        let n_gpu_layers = shape.gpu.as_ref().map_or(0, |g| super::offload::n_gpu_layers(g.layers, g.of));
        let model =
            Arc::new(Model { model_id: model_id.to_string(), model: runtime::load(path, n_gpu_layers)?, header });
        let context = runtime::slot_context(&model.model, shape.context);
        let (slots, threads) = (shape.slots, shape.threads);
        let make = move |owner: Arc<Model>| Session::try_new(owner, |m| Slots::new(&m.model, slots, context, threads));
        let session = make(model.clone())?;
        let queue = Arc::new(Queue::default());
        let q = queue.clone();
        let thread = std::thread::Builder::new()
            .name(format!("brain {model_id}"))
            .spawn(move || write_replies(session, &q, make))
            .map_err(BrainError::Io)?;
        Ok(Loaded { model, slots: shape.slots, context, queue, gpu: shape.gpu, thread: Some(thread) })
    }

    /// Whether this is `model_id` loaded from the file `header` was read from, and its thread
    /// is still writing.
    pub fn serves(&self, model_id: &str, header: &Arc<Header>) -> bool {
        self.model.model_id == model_id && Arc::ptr_eq(&self.model.header, header) && !self.queue.is_closed()
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        self.queue.close();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(model = %self.model.model_id, "the reply thread ended badly");
        }
    }
}

/// The thread's body: writes replies until the queue closes. A panic while writing loses the
/// context (its state is unknown): the replies in it end with an error (their listeners are
/// dropped), and a new context takes over. If none can be made, the queue closes, the replies
/// waiting are told, and the brain loads the model again for the next request.
fn write_replies(session: Session, queue: &Queue, make: impl Fn(Arc<Model>) -> Result<Session, super::RuntimeError>) {
    let mut session = session;
    loop {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            session.with_dependent_mut(|_, slots| {
                scheduler::run(queue, slots);
                slots.cancel_all();
            })
        }));
        if outcome.is_ok() {
            return;
        }
        tracing::error!("the reply thread panicked; its context is made anew");
        let owner = session.into_owner();
        match make(owner) {
            Ok(fresh) => session = fresh,
            Err(e) => {
                tracing::error!(error = %e, "no new context could be made; the model will be loaded again");
                queue.close();
                drop(queue.drain());
                return;
            }
        }
    }
}
