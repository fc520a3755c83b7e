//! What is let in before a reply starts: a request's shape, a place among the replies the
//! brain holds, and the memory rule (which also says how many slots fit).

use super::BrainError;
use super::stops::{MAX_STOP_BYTES, MAX_STOPS};
use crate::catalog::ModelEntry;
use crate::chat::{ChatRequest, MAX_MESSAGE_BYTES, MAX_MESSAGES, MAX_TOP_LOGPROBS, Prompt, Role};
use crate::memory_rule::{kv_cache_bytes, ram_fits, ram_needed_bytes};
use crate::units::{format_bytes, format_ram};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A reply's place among those the brain holds (in its slots and waiting), given back when
/// dropped (the reply ended, or the caller went away first).
pub(super) struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// A place when fewer than `limit` are taken, with how many were taken before it; else
    /// how many are taken.
    pub(super) fn take(count: &Arc<AtomicUsize>, limit: usize) -> Result<(Self, usize), usize> {
        let before = count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))?;
        Ok((InFlight(count.clone()), before))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How long until a slot is likely free for one more request, when `waiting` replies wait
/// for `slots` slots and a reply takes `reply_secs` on average: the replies ahead are served
/// `slots` at a time, and the one being written now is half done on average.
pub(super) fn wait_estimate(waiting: usize, slots: u32, reply_secs: f64) -> Duration {
    let rounds = waiting as f64 / f64::from(slots.max(1)) + 0.5;
    Duration::from_secs_f64((rounds * reply_secs).clamp(1.0, 3600.0))
}

/// The memory rule: the model must fit this machine's RAM by the same rule the recommendation
/// uses, and its weights plus the context of every slot must fit in what is free now. Returns
/// how many of the `wanted` slots fit (at least one), or why none does. `in_ram` is the share
/// of the weights and the cache that stays in RAM (1: all; less when layers are on the GPU).
/// `kv_per_slot`: one slot's KV cache as the model's header gives it (its layers, KV heads and
/// head sizes); 0 when the header does not say, and then the catalog rule's estimate, which
/// is made for 1-15B models and runs about 10x low for the smallest ones.
pub(super) fn fit_slots(entry: &ModelEntry, wanted: u32, in_ram: f64, kv_per_slot: u64) -> Result<u32, BrainError> {
    let (total, available) = crate::hardware::memory();
    let share = |bytes: u64| (bytes as f64 * in_ram.clamp(0.0, 1.0)).ceil() as u64;
    let needed = share(ram_needed_bytes(entry));
    if let Some(ram) = total.filter(|&ram| !ram_fits(needed, ram)) {
        return Err(BrainError::TooBig { name: entry.name.clone(), needed: format_ram(needed), ram: format_ram(ram) });
    }
    let kv_per_slot = if kv_per_slot > 0 { kv_per_slot } else { kv_cache_bytes(entry) };
    let working = |slots: u32| share(entry.size_bytes.saturating_add(kv_per_slot.saturating_mul(u64::from(slots))));
    let Some(free) = available else { return Ok(wanted.max(1)) };
    slots_in(free, wanted, working).ok_or_else(|| BrainError::LowMemory {
        name: entry.name.clone(),
        needed: format_bytes(working(1)),
        available: format_bytes(free),
    })
}

/// The most of `wanted` slots (at least 1) whose `working` memory fits `free`.
fn slots_in(free: u64, wanted: u32, working: impl Fn(u32) -> u64) -> Option<u32> {
    (1..=wanted.max(1)).rev().find(|&n| working(n) <= free)
}

/// Checks a request's shape before it waits for anything.
pub(super) fn validate(req: &ChatRequest) -> Result<(), BrainError> {
    let bad = |why: &str| Err(BrainError::BadRequest(why.to_string()));
    match req.messages.last() {
        None => return bad("send at least one message"),
        // A tool's result is answered like a question (the API's tool round trip).
        Some(m) if m.role != Role::User && m.role != Role::Tool => {
            return bad("the last message must be the user's (or a tool's result)");
        }
        Some(_) => {}
    }
    // A tool's result answers a call the assistant made just before (only other results between),
    // as OpenAI requires: a result without its call would be shown to the model out of nowhere.
    for (i, m) in req.messages.iter().enumerate() {
        if m.role != Role::Tool {
            continue;
        }
        let call = req.messages[..i].iter().rev().find(|p| p.role != Role::Tool);
        let Some(call) = call.filter(|p| p.role == Role::Assistant && !p.tool_calls.is_empty()) else {
            return bad("a tool message must follow an assistant message with tool_calls (the call it answers)");
        };
        if let Some(id) = &m.tool_call_id
            && !call.tool_calls.iter().any(|c| &c.id == id)
        {
            return Err(BrainError::BadRequest(format!(
                "the tool message's tool_call_id {id:?} is not one of the calls of the assistant message before it"
            )));
        }
    }
    if req.messages.len() > MAX_MESSAGES {
        return Err(BrainError::BadRequest(format!("at most {MAX_MESSAGES} messages per request")));
    }
    if let Some(m) = req.messages.iter().find(|m| m.content.len() > MAX_MESSAGE_BYTES || m.content.contains('\0')) {
        return Err(BrainError::BadRequest(if m.content.contains('\0') {
            "messages cannot contain NUL characters".to_string()
        } else {
            format!("a message is longer than {} KB", MAX_MESSAGE_BYTES / 1024)
        }));
    }
    validate_generation(req)
}

/// Checks a completion's prompt ([`crate::chat::Prompt`]) and how it is to be written.
pub(super) fn validate_prompt(req: &ChatRequest, prompt: &Prompt) -> Result<(), BrainError> {
    let texts = match prompt {
        Prompt::Text { text } => vec![text],
        Prompt::Fill { prefix, suffix } => vec![prefix, suffix],
    };
    if texts.iter().map(|t| t.len()).sum::<usize>() > MAX_PROMPT_BYTES {
        return Err(BrainError::BadRequest(format!("the prompt is longer than {} KB", MAX_PROMPT_BYTES / 1024)));
    }
    if texts.iter().any(|t| t.contains('\0')) {
        return Err(BrainError::BadRequest("the prompt cannot contain NUL characters".into()));
    }
    if let Prompt::Text { text } = prompt
        && text.is_empty()
    {
        return Err(BrainError::BadRequest("the prompt is empty".into()));
    }
    validate_generation(req)
}

/// Longest completion prompt accepted, in bytes (a prompt bigger than any context is refused
/// before it is read).
pub const MAX_PROMPT_BYTES: usize = 256 * 1024;

/// Longest grammar accepted, in bytes.
const MAX_GRAMMAR_BYTES: usize = 256 * 1024;

/// The checks every reply gets: its model id, the sampling settings, stops, grammar, logprobs.
fn validate_generation(req: &ChatRequest) -> Result<(), BrainError> {
    let bad = |why: &str| Err(BrainError::BadRequest(why.to_string()));
    if !crate::catalog::is_valid_model_id(&req.model_id) {
        return bad("model_id must be a catalog model id");
    }
    if let Some(n) = req.logprobs.filter(|&n| n > MAX_TOP_LOGPROBS) {
        return Err(BrainError::BadRequest(format!("at most {MAX_TOP_LOGPROBS} top log-probabilities, not {n}")));
    }
    if req.grammar.as_ref().is_some_and(|g| g.len() > MAX_GRAMMAR_BYTES || g.contains('\0')) {
        return Err(BrainError::BadRequest(format!(
            "the grammar must be at most {} KB, without NUL characters",
            MAX_GRAMMAR_BYTES / 1024
        )));
    }
    if req.max_tokens == Some(0) {
        return bad("max_tokens must be at least 1");
    }
    if let Some(t) = req.temperature.filter(|t| !t.is_finite() || !(0.0..=2.0).contains(t)) {
        return Err(BrainError::BadRequest(format!("temperature must be between 0 and 2, not {t}")));
    }
    if let Some(p) = req.top_p.filter(|p| !p.is_finite() || *p <= 0.0 || *p > 1.0) {
        return Err(BrainError::BadRequest(format!("top_p must be more than 0 and at most 1, not {p}")));
    }
    if req.stop.len() > MAX_STOPS {
        return Err(BrainError::BadRequest(format!("at most {MAX_STOPS} stop sequences")));
    }
    if req.stop.iter().any(|s| s.is_empty() || s.len() > MAX_STOP_BYTES || s.contains('\0')) {
        return Err(BrainError::BadRequest(format!(
            "a stop sequence must be 1 to {MAX_STOP_BYTES} bytes, without NUL characters"
        )));
    }
    Ok(())
}

/// A sampling seed from the OS's randomness.
pub(super) fn rand_seed() -> u32 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    u32::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::{slots_in, validate, wait_estimate};
    use crate::chat::{ChatMessage, ChatRequest, Role, ToolCall};
    use std::time::Duration;

    #[test]
    fn a_tool_result_must_answer_the_call_before_it() {
        let ask = |messages: Vec<ChatMessage>| {
            let req = ChatRequest { model_id: "m".into(), messages, ..Default::default() };
            validate(&req).map_err(|e| e.to_string())
        };
        let result = |id: Option<&str>| {
            let mut m = ChatMessage::new(Role::Tool, "21C");
            m.tool_call_id = id.map(String::from);
            m
        };
        let mut call = ChatMessage::new(Role::Assistant, "");
        call.tool_calls = vec![
            ToolCall { id: "call_1".into(), name: "weather".into(), arguments: "{}".into() },
            ToolCall { id: "call_2".into(), name: "time".into(), arguments: "{}".into() },
        ];
        let user = ChatMessage::new(Role::User, "Weather?");
        // Both results of two calls, with or without their ids.
        ask(vec![user.clone(), call.clone(), result(Some("call_1")), result(Some("call_2"))]).unwrap();
        ask(vec![user.clone(), call.clone(), result(None)]).unwrap();
        for (messages, words) in [
            (vec![result(None)], "must follow an assistant message with tool_calls"),
            (vec![user.clone(), ChatMessage::new(Role::Assistant, "Hi"), result(None)], "must follow"),
            (vec![user.clone(), call.clone(), user.clone(), result(None)], "must follow"),
            (vec![user.clone(), call.clone(), result(Some("call_9"))], "\"call_9\" is not one of the calls"),
        ] {
            let err = ask(messages).unwrap_err();
            assert!(err.contains(words), "wanted {words:?}: {err}");
        }
    }

    #[test]
    fn the_wait_grows_with_the_queue_and_shrinks_with_the_slots() {
        // 8 waiting for 4 slots, 6 s a reply: two rounds ahead and half of the current one.
        assert_eq!(wait_estimate(8, 4, 6.0), Duration::from_secs(15));
        assert!(wait_estimate(16, 4, 6.0) > wait_estimate(8, 4, 6.0));
        assert!(wait_estimate(8, 1, 6.0) > wait_estimate(8, 4, 6.0));
        // Never 0 (a client told 0 asks again at once), never absurd.
        assert_eq!(wait_estimate(0, 4, 0.01), Duration::from_secs(1));
        assert_eq!(wait_estimate(10_000, 1, 60.0), Duration::from_secs(3600));
    }

    #[test]
    fn the_slots_that_fit_are_counted_with_the_headers_cache() {
        // SmolLM2-135M: 98 MB of weights; its header's cache is 23,040 bytes a token (30 layers x
        // 3 KV heads x 128 key and value dims x 2 bytes), 94 MB a 4K slot. The catalog estimate
        // (0.135 B params x 16 KiB) would be 9 MB, and four slots would seem to fit 300 MB.
        let weights = 98_362_432u64;
        let slot = 23_040 * 4096;
        let working = |n: u32| weights + slot * u64::from(n);
        assert_eq!(slots_in(300_000_000, 4, working), Some(2));
        assert_eq!(slots_in(500_000_000, 4, working), Some(4));
        assert_eq!(slots_in(150_000_000, 4, working), None);
        assert_eq!(slots_in(500_000_000, 0, working), Some(1), "at least one is asked for");
    }
}
