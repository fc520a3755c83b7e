//! Where a reply goes: the [`super::Reply`]'s channel. It holds what the reply holds while it
//! is written (its place in the limit, the loaded model) and lets go of both before the last
//! event goes out, so whoever reads that event may ask again at once.

use super::Brain;
use super::RuntimeError;
use super::admission::InFlight;
use super::loaded::Loaded;
use super::slots::Out;
use crate::chat::{ChatEvent, ChatStats, TokenLogprob};
use std::path::PathBuf;
use std::sync::Weak;
use tokio::sync::OwnedRwLockReadGuard;
use tokio::sync::mpsc::UnboundedSender;

/// What a reply holds until it ends (held for their drop alone).
pub(super) struct Hold {
    /// The loaded model: a swap or an unload waits for it.
    pub _model: OwnedRwLockReadGuard<Option<Loaded>>,
    pub _place: InFlight,
}

pub(super) struct Listener {
    pub id: i64,
    pub model_id: String,
    pub tx: UnboundedSender<ChatEvent>,
    pub brain: Weak<Brain>,
    pub machine_file: Option<PathBuf>,
    pub hold: Option<Hold>,
}

impl Listener {
    /// Lets go of what the reply held, then sends its last event; only the first call counts.
    fn finish(&mut self, last: ChatEvent) {
        let Some(hold) = self.hold.take() else { return };
        drop(hold);
        if let Some(brain) = self.brain.upgrade() {
            brain.finished(self.id);
        }
        let _ = self.tx.send(last);
    }
}

impl Out for Listener {
    fn piece(&mut self, text: &str, logprobs: Vec<TokenLogprob>) -> bool {
        self.tx.send(ChatEvent::Piece { text: text.to_string(), logprobs }).is_ok()
    }

    fn gone(&self) -> bool {
        self.tx.is_closed()
    }

    fn end(mut self: Box<Self>, result: Result<ChatStats, RuntimeError>, alone: bool) {
        let last = match result {
            Ok(mut stats) => {
                stats.gpu = self.hold.as_ref().and_then(|h| h._model.as_ref()).and_then(|l| l.gpu.clone());
                // The usage line of every reply (the card's, the terminal's, the API's).
                tracing::info!(
                    model = %self.model_id, prompt_tokens = stats.prompt_tokens, cached_tokens = stats.cached_tokens,
                    generated_tokens = stats.generated_tokens, tokens_per_second = format!("{:.1}", stats.tokens_per_second),
                    first_token_ms = stats.first_token_ms, ran_on = %stats.ran_on(), "reply written"
                );
                // Every reply written alone, whoever asked (the card, the terminal, the API),
                // is a measurement of this model on this machine: the recommendation shows it
                // instead of its prediction. Recorded before the last event goes out, so
                // whoever reads it finds the figure stored. A reply written beside others ran
                // slower than this machine's single stream, so it is not one.
                if let Some(path) = self.machine_file.as_deref().filter(|_| alone) {
                    let device = stats.gpu.as_ref().map(|g| g.device.as_str());
                    let (tokens, tps) = (stats.generated_tokens, stats.tokens_per_second);
                    crate::machine::record_speed(path, &self.model_id, device, tokens, tps);
                }
                if let Some(brain) = self.brain.upgrade() {
                    brain.measured(&stats);
                }
                ChatEvent::Done { stats }
            }
            Err(e) => {
                tracing::error!(error = %e, "generation failed");
                ChatEvent::Error { error: e.to_string() }
            }
        };
        self.finish(last);
    }
}

impl Drop for Listener {
    /// Dropped without an end: the reply thread lost its context (a panic) or is gone.
    fn drop(&mut self) {
        self.finish(ChatEvent::Error { error: "the model stopped unexpectedly; try again".into() });
    }
}
