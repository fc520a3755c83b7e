//! llama.cpp itself: the process's one backend, loading a model file, making the prompt, and
//! generating one reply in a context kept between replies ([`Cache`]), so the next turn of a
//! conversation reads only its new tokens. Everything here blocks (loading reads the file,
//! generating keeps a core busy): callers run it on a blocking thread.

use super::stops::StopScan;
use super::template::{self, TemplateError};
use crate::chat::{ChatMessage, ChatStats, Finish};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Tokens read per decode call while reading the prompt.
const BATCH: usize = 512;

/// What went wrong inside llama.cpp.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("llama.cpp did not start: {0}")]
    Backend(String),
    #[error("llama.cpp could not load the model file")]
    Load(#[source] llama_cpp_2::LlamaModelLoadError),
    #[error("llama.cpp could not make room for the conversation (context of {0} tokens)")]
    Context(u32, #[source] llama_cpp_2::LlamaContextLoadError),
    #[error("llama.cpp failed while reading or writing tokens")]
    Decode(#[source] llama_cpp_2::DecodeError),
    #[error("the conversation is {tokens} tokens long; this model's context holds {context}")]
    PromptTooLong { tokens: usize, context: u32 },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("a message contains a NUL character")]
    NulInText,
}

/// The process's llama.cpp backend. llama.cpp allows one; the first call starts it (with its
/// log lines sent to `tracing` under the target `llama-cpp-2`, so they stay out of the
/// terminal unless asked for) and every later call shares it.
pub fn backend() -> Result<&'static LlamaBackend, RuntimeError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| RuntimeError::Backend(e.clone()))
}

/// Loads the model at `path` (memory-mapped, CPU).
pub fn load(path: &Path) -> Result<LlamaModel, RuntimeError> {
    LlamaModel::load_from_file(backend()?, path, &LlamaModelParams::default()).map_err(RuntimeError::Load)
}

/// The prompt for `messages`: llama.cpp's built-in format when it recognises the model's
/// template, else the template itself rendered as Jinja.
pub fn prompt(
    model: &LlamaModel,
    gguf_template: Option<&str>,
    messages: &[ChatMessage],
) -> Result<String, RuntimeError> {
    if let Ok(tmpl) = model.chat_template(None) {
        let chat = messages
            .iter()
            .map(|m| LlamaChatMessage::new(m.role.as_str().to_string(), m.content.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| RuntimeError::NulInText)?;
        if let Ok(text) = model.apply_chat_template(&tmpl, &chat, true) {
            return Ok(text);
        }
    }
    let tmpl = gguf_template.ok_or(TemplateError::Missing)?;
    let vocab = model.vocab();
    let piece = |t| String::from_utf8_lossy(&vocab.token_to_piece(t, true, None)).into_owned();
    Ok(template::render_jinja(tmpl, messages, &piece(vocab.bos()), &piece(vocab.eos()))?)
}

/// How a reply is generated.
#[derive(Clone, Debug)]
pub struct Job {
    pub max_tokens: Option<u32>,
    /// 0 or less: greedy.
    pub temperature: f32,
    pub top_p: f32,
    /// Stop sequences: see [`StopScan`].
    pub stop: Vec<String>,
    pub seed: u32,
    /// When the request reached the runtime, for the time to first token.
    pub received: Instant,
}

/// A prompt turned into tokens, checked against the context it will run in.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub tokens: Vec<LlamaToken>,
    /// The context size: what was asked for, capped by what the model was trained for.
    pub context: u32,
}

/// Tokenizes `prompt` for a context of `context_tokens` (capped by the model's own), refusing
/// a prompt that leaves no room for a reply.
pub fn prepare(model: &LlamaModel, prompt: &str, context_tokens: u32) -> Result<Prepared, RuntimeError> {
    let context = context_tokens.min(model.n_ctx_train().max(1)).max(64);
    let vocab = model.vocab();
    let mut tokens = vocab.tokenize(prompt.as_bytes(), true, true);
    // A template that writes the BOS token itself, plus llama.cpp adding one, makes two.
    if tokens.len() >= 2 && tokens[0] == vocab.bos() && tokens[1] == vocab.bos() {
        tokens.remove(0);
    }
    if tokens.is_empty() || tokens.len() + 1 >= context as usize {
        return Err(RuntimeError::PromptTooLong { tokens: tokens.len(), context });
    }
    Ok(Prepared { tokens, context })
}

/// When the steps of one reply happened.
struct Clock {
    received: Instant,
    started: Instant,
    prompt_done: Instant,
    first_piece: Option<Instant>,
}

impl Clock {
    fn stats(&self, finish: Finish, prompt_tokens: usize, cached: usize, generated: u32) -> ChatStats {
        let per_second = |n: f64, secs: f64| if secs > 0.0 { n / secs } else { 0.0 };
        ChatStats {
            finish,
            prompt_tokens: prompt_tokens as u32,
            cached_tokens: cached as u32,
            generated_tokens: generated,
            first_token_ms: self.first_piece.map_or(0, |t| t.duration_since(self.received).as_millis() as u64),
            // What was read, not what was reused: the reading speed of this machine.
            prompt_tokens_per_second: per_second(
                (prompt_tokens - cached) as f64,
                self.prompt_done.duration_since(self.started).as_secs_f64(),
            ),
            tokens_per_second: per_second(f64::from(generated), self.prompt_done.elapsed().as_secs_f64()),
        }
    }
}

/// A loaded model's llama.cpp context, kept from one reply to the next, and the tokens its KV
/// cache holds (sequence 0, positions 0..). A reply whose prompt begins with those tokens
/// decodes only the rest: the next turn of a conversation costs its new tokens alone.
pub struct Cache<'m> {
    ctx: LlamaContext<'m>,
    tokens: Vec<LlamaToken>,
    context: u32,
}

impl<'m> Cache<'m> {
    /// A new, empty context of `context` tokens for `model`.
    pub fn new(model: &'m LlamaModel, context: u32, threads: u32) -> Result<Self, RuntimeError> {
        let threads = i32::try_from(threads.max(1)).unwrap_or(1);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(context))
            .with_n_batch(BATCH as u32)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let ctx = model.new_context(backend()?, params).map_err(|e| RuntimeError::Context(context, e))?;
        Ok(Cache { ctx, tokens: Vec::new(), context })
    }

    /// The context size it was made with.
    pub fn context(&self) -> u32 {
        self.context
    }

    /// Keeps the longest prefix of `prompt` the cache holds (never all of it: the last prompt
    /// token is decoded again for its logits) and drops the rest from the KV cache. Returns how
    /// many tokens are kept. A model whose memory cannot be cut back part-way (recurrent and
    /// hybrid layers) is cleared instead and reuses nothing: a wrong answer is never the price.
    fn keep_prefix_of(&mut self, prompt: &[LlamaToken]) -> usize {
        let shared = self.tokens.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        let keep = shared.min(prompt.len().saturating_sub(1));
        let cut = u32::try_from(keep).ok().and_then(|p0| self.ctx.clear_kv_cache_seq(Some(0), Some(p0), None).ok());
        if cut == Some(true) {
            self.tokens.truncate(keep);
            keep
        } else {
            self.forget();
            0
        }
    }

    /// Empties the KV cache (after a failed decode its contents are unknown).
    fn forget(&mut self) {
        self.ctx.clear_kv_cache();
        self.tokens.clear();
    }

    /// Decodes `batch`, whose tokens are `added`, and records them as cached; a failure leaves
    /// the cache empty.
    fn decode(&mut self, batch: &mut LlamaBatch, added: &[LlamaToken]) -> Result<(), RuntimeError> {
        if let Err(e) = self.ctx.decode(batch) {
            self.forget();
            return Err(RuntimeError::Decode(e));
        }
        self.tokens.extend_from_slice(added);
        Ok(())
    }
}

/// Generates a reply to a prepared prompt in `cache` (made for the same model, with
/// [`Prepared::context`]), handing each piece of text to `emit` as soon as it is whole UTF-8.
/// Only the prompt tokens after the prefix the cache already holds are decoded. Stops between
/// tokens when `cancel` fires or `emit` returns `false` (nobody is listening any more).
pub fn generate(
    model: &LlamaModel,
    cache: &mut Cache<'_>,
    prepared: &Prepared,
    job: &Job,
    cancel: &CancellationToken,
    mut emit: impl FnMut(&str) -> bool,
) -> Result<ChatStats, RuntimeError> {
    let vocab = model.vocab();
    let tokens = &prepared.tokens;
    let room = prepared.context - tokens.len() as u32;
    let max_tokens = job.max_tokens.map_or(room, |m| m.min(room));
    let too_long = || RuntimeError::PromptTooLong { tokens: tokens.len(), context: prepared.context };

    let now = Instant::now();
    let mut clock = Clock { received: job.received, started: now, prompt_done: now, first_piece: None };
    let cached = cache.keep_prefix_of(tokens);
    let mut batch = LlamaBatch::new(BATCH, 1);
    let last = tokens.len() - 1;
    for chunk_start in (cached..tokens.len()).step_by(BATCH) {
        if cancel.is_cancelled() {
            clock.prompt_done = Instant::now();
            return Ok(clock.stats(Finish::Cancelled, tokens.len(), cached, 0));
        }
        let chunk = &tokens[chunk_start..(chunk_start + BATCH).min(tokens.len())];
        batch.clear();
        for (i, token) in chunk.iter().enumerate() {
            let pos = chunk_start + i;
            batch.add(*token, pos as i32, &[0], pos == last).map_err(|_| too_long())?;
        }
        cache.decode(&mut batch, chunk)?;
    }
    clock.prompt_done = Instant::now();

    let mut sampler = if job.temperature <= 0.0 {
        LlamaSampler::greedy()
    } else {
        LlamaSampler::chain_simple([
            LlamaSampler::top_k(40),
            LlamaSampler::top_p(job.top_p, 1),
            LlamaSampler::min_p(0.05, 1),
            LlamaSampler::temp(job.temperature),
            LlamaSampler::dist(job.seed),
        ])
    };
    let mut text = Utf8Pieces::default();
    let mut stops = StopScan::new(&job.stop);
    let mut cut_at_stop = false;
    let mut generated = 0u32;
    let mut pos = tokens.len() as i32;
    let finish = loop {
        if cancel.is_cancelled() {
            break Finish::Cancelled;
        }
        if generated >= max_tokens {
            break Finish::Length;
        }
        let token = sampler.sample(&cache.ctx, batch.n_tokens() - 1);
        if vocab.is_eog(token) {
            break Finish::Stop;
        }
        generated += 1;
        let scanned = stops.push(&text.push(&vocab.token_to_piece(token, false, None)));
        if !scanned.text.is_empty() {
            clock.first_piece.get_or_insert_with(Instant::now);
            if !emit(&scanned.text) {
                break Finish::Cancelled;
            }
        }
        if scanned.stopped {
            cut_at_stop = true;
            break Finish::Stop;
        }
        batch.clear();
        batch.add(token, pos, &[0], true).map_err(|_| too_long())?;
        pos += 1;
        cache.decode(&mut batch, &[token])?;
    };
    // What was held back belongs to the reply, unless a stop sequence ended it (what followed
    // the stop is not part of it).
    let rest = if cut_at_stop {
        String::new()
    } else {
        let tail = stops.push(&text.finish());
        if tail.stopped { tail.text } else { tail.text + &stops.finish() }
    };
    if !rest.is_empty() && finish != Finish::Cancelled {
        clock.first_piece.get_or_insert_with(Instant::now);
        emit(&rest);
    }
    Ok(clock.stats(finish, tokens.len(), cached, generated))
}

/// Joins token bytes into whole UTF-8 text: a character split across two tokens (emoji, CJK)
/// is held back until its last byte arrives.
#[derive(Default)]
struct Utf8Pieces {
    pending: Vec<u8>,
}

impl Utf8Pieces {
    fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        match std::str::from_utf8(&self.pending) {
            Ok(s) => {
                let out = s.to_string();
                self.pending.clear();
                out
            }
            // Incomplete at the end: keep the tail for the next token.
            Err(e) if e.error_len().is_none() => {
                let n = e.valid_up_to();
                let out = String::from_utf8_lossy(&self.pending[..n]).into_owned();
                self.pending.drain(..n);
                out
            }
            Err(_) => self.finish(),
        }
    }

    fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Pieces;

    #[test]
    fn a_character_split_across_tokens_comes_out_whole() {
        let mut t = Utf8Pieces::default();
        let smile = "🙂".as_bytes();
        assert_eq!(t.push(b"Hi "), "Hi ");
        assert_eq!(t.push(&smile[..2]), "");
        assert_eq!(t.push(&smile[2..]), "🙂");
        assert_eq!(t.push(&[0xff, b'a']), "\u{fffd}a");
        assert_eq!(t.push(&smile[..1]), "");
        assert_eq!(t.finish(), "\u{fffd}");
    }
}
