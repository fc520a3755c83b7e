//! A loaded model's one llama.cpp context, cut into N sequence slots, and the replies being
//! written in them. Every [`Slots::step`] is one `decode` for all of them: each slot that is
//! writing adds its last token, and the prompts being read share what is left of the batch, so
//! a long prompt is read in chunks between the other replies' tokens instead of freezing them.
//!
//! Each slot keeps the tokens its KV cache holds after its reply ends. A new reply goes to the
//! free slot whose cache it goes on from (the longest shared start, when that is most of what
//! the slot holds), else to the one used least recently, and decodes only what is not shared:
//! the next turn of a conversation costs its new tokens, and four people's conversations stay
//! cached side by side.
//!
//! Everything here blocks: the scheduler's thread ([`super::scheduler`]) drives it.

use super::runtime::{Job, Prepared, RuntimeError, Utf8Pieces, backend};
use super::stops::StopScan;
use crate::chat::{ChatStats, Finish, TokenLogprob, TopLogprob};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Tokens in one decode call, all slots together (llama.cpp's default batch).
const BATCH: usize = 512;

/// Where a reply's pieces and its end go. The brain's implementation sends them to the
/// listener; dropping one without [`Out::end`] (a panic) must tell the listener too.
pub trait Out: Send {
    /// More of the reply, with its tokens' log-probabilities when asked; `false` when nobody
    /// is listening any more.
    fn piece(&mut self, text: &str, logprobs: Vec<TokenLogprob>) -> bool;
    /// Whether the listener has gone (checked before a waiting reply takes a slot).
    fn gone(&self) -> bool;
    /// The reply ended. `alone` when no other reply was written beside it, so its speed is
    /// this machine's single-stream speed.
    fn end(self: Box<Self>, result: Result<ChatStats, RuntimeError>, alone: bool);
}

/// A reply to write: the prompt, how, who asked and where it goes.
pub struct Order {
    pub owner: i64,
    pub prepared: Prepared,
    pub job: Box<Job>,
    pub cancel: CancellationToken,
    pub out: Box<dyn Out>,
}

/// When the steps of one reply happened.
struct Clock {
    received: Instant,
    started: Instant,
    prompt_done: Instant,
    first_piece: Option<Instant>,
}

impl Clock {
    fn now(received: Instant) -> Self {
        let now = Instant::now();
        Clock { received, started: now, prompt_done: now, first_piece: None }
    }

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
            // The brain's listener says where the model is (the slots do not know).
            gpu: None,
        }
    }
}

/// A reply being written in a slot.
struct Writing {
    order: Order,
    /// Prompt tokens reused from the slot's cache.
    cached: usize,
    /// Prompt tokens in the KV cache so far (reused or read).
    fed: usize,
    max_tokens: u32,
    sampler: LlamaSampler,
    text: Utf8Pieces,
    stops: StopScan,
    generated: u32,
    /// A stop sequence ended the reply: what was held back is not part of it.
    cut: bool,
    /// Log-probabilities of the tokens whose text has not been sent yet (held back as a
    /// partial character or a possible stop's start): they go out with it.
    logprobs: Vec<TokenLogprob>,
    /// The token sampled last, to be decoded at the next step.
    next: Option<LlamaToken>,
    /// Where this slot's logits are in the batch being decoded.
    logits_at: Option<i32>,
    alone: bool,
    clock: Clock,
}

impl Writing {
    fn new(order: Order, cached: usize, context: u32, model: &LlamaModel) -> Result<Self, (Order, RuntimeError)> {
        let tokens = order.prepared.tokens.len();
        let room = context.saturating_sub(tokens as u32).max(1);
        let max_tokens = order.job.max_tokens.map_or(room, |m| m.min(room));
        let now = Instant::now();
        let sampler = match sampler(&order.job, model) {
            Ok(s) => s,
            Err(e) => return Err((order, e)),
        };
        Ok(Writing {
            sampler,
            stops: StopScan::new(&order.job.stop),
            clock: Clock { received: order.job.received, started: now, prompt_done: now, first_piece: None },
            order,
            cached,
            fed: cached,
            max_tokens,
            text: Utf8Pieces::default(),
            generated: 0,
            cut: false,
            logprobs: Vec::new(),
            next: None,
            logits_at: None,
            alone: true,
        })
    }

    fn reading(&self) -> bool {
        self.fed < self.order.prepared.tokens.len()
    }

    fn stats(&self, finish: Finish) -> ChatStats {
        self.clock.stats(finish, self.order.prepared.tokens.len(), self.cached, self.generated)
    }

    /// Handles the token sampled from this step's logits (`logits`, for its log-probability
    /// when asked); `Some` when the reply ended.
    fn take(&mut self, model: &LlamaModel, token: LlamaToken, logits: &[f32]) -> Option<Finish> {
        let vocab = model.vocab();
        if vocab.is_eog(token) {
            return Some(Finish::Stop);
        }
        self.generated += 1;
        let bytes = vocab.token_to_piece(token, false, None);
        if let Some(top) = self.order.job.logprobs {
            self.logprobs.push(logprob_of(model, logits, token, top));
        }
        let scanned = self.stops.push(&self.text.push(&bytes));
        if !scanned.text.is_empty() {
            self.clock.first_piece.get_or_insert_with(Instant::now);
            let logprobs = std::mem::take(&mut self.logprobs);
            if !self.order.out.piece(&scanned.text, logprobs) {
                return Some(Finish::Cancelled);
            }
        }
        if scanned.stopped {
            self.cut = true;
            return Some(Finish::Stop);
        }
        if self.generated >= self.max_tokens {
            return Some(Finish::Length);
        }
        self.next = Some(token);
        None
    }

    /// Sends what was held back (a partial character, a possible stop's start) and the end.
    fn end(mut self, finish: Finish) {
        let rest = if self.cut {
            String::new()
        } else {
            let tail = self.stops.push(&self.text.finish());
            if tail.stopped { tail.text } else { tail.text + &self.stops.finish() }
        };
        if !rest.is_empty() && finish != Finish::Cancelled {
            self.clock.first_piece.get_or_insert_with(Instant::now);
            let logprobs = std::mem::take(&mut self.logprobs);
            self.order.out.piece(&rest, logprobs);
        }
        let stats = self.stats(finish);
        self.order.out.end(Ok(stats), self.alone);
    }
}

/// How many tokens `a` and `b` share from their start.
fn shared_start(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The sampler chain of `job`: its grammar first (only tokens it allows are left), then
/// greedy at temperature 0, else top-k, top-p, min-p, temperature and a seeded draw.
fn sampler(job: &Job, model: &LlamaModel) -> Result<LlamaSampler, RuntimeError> {
    let mut chain = Vec::new();
    if let Some(grammar) = &job.grammar {
        chain.push(
            LlamaSampler::grammar(model, grammar, "root")
                .map_err(|e| RuntimeError::BadInput(format!("the grammar cannot be used: {e}")))?,
        );
    }
    if job.temperature <= 0.0 {
        chain.push(LlamaSampler::greedy());
    } else {
        chain.extend([
            LlamaSampler::top_k(40),
            LlamaSampler::top_p(job.top_p, 1),
            LlamaSampler::min_p(0.05, 1),
            LlamaSampler::temp(job.temperature),
            LlamaSampler::dist(job.seed),
        ]);
    }
    Ok(LlamaSampler::chain_simple(chain))
}

/// `token`'s log-probability under the model's distribution at this place (the softmax of its
/// raw logits, before any sampling setting), with the `top` likeliest tokens.
fn logprob_of(model: &LlamaModel, logits: &[f32], token: LlamaToken, top: u32) -> TokenLogprob {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = logits.iter().map(|&l| f64::from(l - max).exp()).sum::<f64>().ln() as f32 + max;
    let entry = |t: LlamaToken| {
        let bytes = model.vocab().token_to_piece(t, false, None);
        let logprob = logits.get(t.0 as usize).map_or(f32::NEG_INFINITY, |&l| l - log_sum);
        (String::from_utf8_lossy(&bytes).into_owned(), bytes, logprob)
    };
    let mut order: Vec<usize> = (0..logits.len()).collect();
    let n = (top as usize).min(order.len());
    let top = if n == 0 {
        Vec::new()
    } else {
        order.select_nth_unstable_by(n - 1, |&a, &b| logits[b].total_cmp(&logits[a]));
        order.truncate(n);
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        order
            .into_iter()
            .map(|i| {
                let (token, bytes, logprob) = entry(LlamaToken(i as i32));
                TopLogprob { token, bytes, logprob }
            })
            .collect()
    };
    let (text, bytes, logprob) = entry(token);
    TokenLogprob { token: text, bytes, logprob, top }
}

/// One sequence of the context: what its KV cache holds, and the reply it is writing.
struct Slot {
    /// Tokens in this sequence's KV cache, positions 0.. .
    tokens: Vec<LlamaToken>,
    last_used: Instant,
    writing: Option<Writing>,
}

/// The context of a loaded model with its slots.
pub struct Slots<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    slots: Vec<Slot>,
    batch: LlamaBatch<'static>,
    /// Tokens each slot holds.
    context: u32,
}

impl<'m> Slots<'m> {
    /// A new context for `model` with `count` slots of `context` tokens each (llama.cpp keeps
    /// one KV stream per sequence, so a slot always has its whole context).
    pub fn new(model: &'m LlamaModel, count: u32, context: u32, threads: u32) -> Result<Self, RuntimeError> {
        let count = count.max(1);
        let threads = i32::try_from(threads.max(1)).unwrap_or(1);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(context.saturating_mul(count)))
            .with_n_seq_max(count)
            .with_kv_unified(false)
            .with_n_batch(BATCH as u32)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let ctx = model.new_context(backend()?, params).map_err(|e| RuntimeError::Context(context, e))?;
        let slots = (0..count).map(|_| Slot { tokens: Vec::new(), last_used: Instant::now(), writing: None }).collect();
        Ok(Slots { model, ctx, slots, batch: LlamaBatch::new(BATCH, 1), context })
    }

    /// Whether a slot is free for another reply.
    pub fn has_free(&self) -> bool {
        self.slots.iter().any(|s| s.writing.is_none())
    }

    /// Whether no reply is being written.
    pub fn is_idle(&self) -> bool {
        self.slots.iter().all(|s| s.writing.is_none())
    }

    /// How many replies `owner` has in the slots now.
    pub fn writing_for(&self, owner: i64) -> usize {
        self.slots.iter().filter(|s| s.writing.as_ref().is_some_and(|w| w.order.owner == owner)).count()
    }

    /// Ends every reply as cancelled (the scheduler is closing).
    pub fn cancel_all(&mut self) {
        for slot in &mut self.slots {
            if let Some(w) = slot.writing.take() {
                w.end(Finish::Cancelled);
            }
        }
    }

    /// Places `order` in the free slot its prompt goes on from, else the least recently used,
    /// keeping the start they share. A listener that has already gone is
    /// ended at once. Call only when [`Slots::has_free`].
    pub fn admit(&mut self, order: Order) {
        if order.out.gone() || order.cancel.is_cancelled() {
            order.out.end(Ok(Clock::now(order.job.received).stats(Finish::Cancelled, 0, 0, 0)), true);
            return;
        }
        let prompt = &order.prepared.tokens;
        // A slot counts as a match only when the prompt goes on from most of what it holds (the
        // same conversation): one that shares only the template's opening is another person's
        // conversation, kept for their next turn, and the least recently used slot goes instead.
        let reuse = |s: &Slot| {
            let shared = shared_start(&s.tokens, prompt);
            if shared * 2 >= s.tokens.len() { shared } else { 0 }
        };
        let Some(seq) = (0..self.slots.len())
            .filter(|&i| self.slots[i].writing.is_none())
            .max_by_key(|&i| (reuse(&self.slots[i]), std::cmp::Reverse(self.slots[i].last_used)))
        else {
            unreachable!("admit is called with a free slot");
        };
        let cached = self.keep_prefix_of(seq, prompt);
        match Writing::new(order, cached, self.context, self.model) {
            Ok(w) => self.slots[seq].writing = Some(w),
            Err((order, e)) => order.out.end(Err(e), true),
        }
    }

    /// Keeps the longest start of `prompt` slot `seq` holds (never all of it: the last prompt
    /// token is decoded again for its logits) and drops the rest of that sequence from the KV
    /// cache. Returns how many tokens are kept. A model whose memory cannot be cut back
    /// part-way (recurrent and hybrid layers) is cleared instead and reuses nothing: a wrong
    /// answer is never the price.
    fn keep_prefix_of(&mut self, seq: usize, prompt: &[LlamaToken]) -> usize {
        let keep = shared_start(&self.slots[seq].tokens, prompt).min(prompt.len().saturating_sub(1));
        let cut =
            u32::try_from(keep).ok().and_then(|p0| self.ctx.clear_kv_cache_seq(Some(seq as u32), Some(p0), None).ok());
        if cut == Some(true) {
            self.slots[seq].tokens.truncate(keep);
            keep
        } else {
            self.forget(seq);
            0
        }
    }

    /// Empties slot `seq`'s KV cache (after a failed decode its contents are unknown).
    fn forget(&mut self, seq: usize) {
        let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        self.slots[seq].tokens.clear();
    }

    /// One decode for every reply being written: ends the cancelled ones, adds each writing
    /// slot's next token, then as much of the prompts being read as the batch holds, decodes,
    /// and samples each slot whose logits came out. Does nothing when no reply is written.
    pub fn step(&mut self) {
        self.end_cancelled();
        self.batch.clear();
        let writers = self.slots.iter().filter(|s| s.writing.as_ref().is_some_and(|w| !w.reading())).count();
        let busy = self.slots.iter().filter(|s| s.writing.is_some()).count();
        // (slot, tokens added to its sequence) for this decode.
        let mut added: Vec<(usize, Vec<LlamaToken>)> = Vec::new();
        for (seq, slot) in self.slots.iter_mut().enumerate() {
            let Some(w) = slot.writing.as_mut() else { continue };
            w.logits_at = None;
            if busy > 1 {
                w.alone = false;
            }
            if let Some(token) = w.next.take() {
                let at = self.batch.n_tokens();
                // The batch has room: one token per slot, and slots are far fewer than BATCH.
                let _ = self.batch.add(token, slot.tokens.len() as i32, &[seq as i32], true);
                w.logits_at = Some(at);
                added.push((seq, vec![token]));
            }
        }
        // Prompts share what is left, in slot order; a prompt finished in this batch gets its
        // logits for its first token.
        let mut room = BATCH.saturating_sub(writers);
        for (seq, slot) in self.slots.iter_mut().enumerate() {
            let Some(w) = slot.writing.as_mut() else { continue };
            if !w.reading() || room == 0 {
                continue;
            }
            let prompt = &w.order.prepared.tokens;
            let take = (prompt.len() - w.fed).min(room);
            let chunk = prompt[w.fed..w.fed + take].to_vec();
            for (i, token) in chunk.iter().enumerate() {
                let pos = w.fed + i;
                let last = pos == prompt.len() - 1;
                if last {
                    w.logits_at = Some(self.batch.n_tokens());
                }
                let _ = self.batch.add(*token, pos as i32, &[seq as i32], last);
            }
            w.fed += take;
            room -= take;
            added.push((seq, chunk));
        }
        if added.is_empty() {
            return;
        }
        if let Err(e) = self.ctx.decode(&mut self.batch) {
            let why = e.to_string();
            tracing::error!(error = %why, "a decode failed");
            for (seq, _) in added {
                self.forget(seq);
                if let Some(w) = self.slots[seq].writing.take() {
                    w.order.out.end(Err(RuntimeError::Decode(why.clone())), false);
                }
            }
            return;
        }
        let now = Instant::now();
        for (seq, tokens) in added {
            self.slots[seq].tokens.extend_from_slice(&tokens);
            self.slots[seq].last_used = now;
        }
        for seq in 0..self.slots.len() {
            let Some(w) = self.slots[seq].writing.as_mut() else { continue };
            let Some(at) = w.logits_at else { continue };
            if w.generated == 0 {
                w.clock.prompt_done = now;
            }
            let token = w.sampler.sample(&self.ctx, at);
            let logits = if w.order.job.logprobs.is_some() { self.ctx.get_logits_ith(at) } else { &[] };
            if let Some(finish) = w.take(self.model, token, logits) {
                let w = self.slots[seq].writing.take().expect("the slot is writing");
                w.end(finish);
            }
        }
    }

    /// Ends the replies that were cancelled (Stop, Ctrl-C, a listener that left) since the
    /// last step: their slots are free for the next.
    fn end_cancelled(&mut self) {
        for slot in &mut self.slots {
            if slot.writing.as_ref().is_some_and(|w| w.order.cancel.is_cancelled() || w.order.out.gone()) {
                let w = slot.writing.take().expect("checked above");
                w.end(Finish::Cancelled);
            }
        }
    }
}
