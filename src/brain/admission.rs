//! What is let in before a reply starts: a request's shape, a place in the bounded queue, and
//! the memory rule.

use super::BrainError;
use super::stops::{MAX_STOP_BYTES, MAX_STOPS};
use crate::catalog::ModelEntry;
use crate::chat::{ChatRequest, MAX_MESSAGE_BYTES, MAX_MESSAGES, Role};
use crate::recommend::{kv_cache_bytes, ram_fits, ram_needed_bytes};
use crate::units::{format_bytes, format_ram};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A place in the queue, given back when dropped (served, or the caller went away).
pub(super) struct QueueTicket<'a>(&'a AtomicUsize);

impl<'a> QueueTicket<'a> {
    pub(super) fn take(waiting: &'a AtomicUsize, limit: usize) -> Result<Self, BrainError> {
        waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))
            .map_err(|_| BrainError::Busy)?;
        Ok(QueueTicket(waiting))
    }
}

impl Drop for QueueTicket<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The memory rule: the model must fit this machine's RAM by the same rule the recommendation
/// uses, and its weights plus context must fit in what is free now.
pub(super) fn check_memory(entry: &ModelEntry) -> Result<(), BrainError> {
    let (total, available) = crate::hardware::memory();
    let needed = ram_needed_bytes(entry);
    if let Some(ram) = total.filter(|&ram| !ram_fits(needed, ram)) {
        return Err(BrainError::TooBig { name: entry.name.clone(), needed: format_ram(needed), ram: format_ram(ram) });
    }
    let working = entry.size_bytes.saturating_add(kv_cache_bytes(entry));
    if let Some(free) = available.filter(|&free| free < working) {
        return Err(BrainError::LowMemory {
            name: entry.name.clone(),
            needed: format_bytes(working),
            available: format_bytes(free),
        });
    }
    Ok(())
}

/// Checks a request's shape before it waits for anything.
pub(super) fn validate(req: &ChatRequest) -> Result<(), BrainError> {
    let bad = |why: &str| Err(BrainError::BadRequest(why.to_string()));
    if !crate::catalog::is_valid_model_id(&req.model_id) {
        return bad("model_id must be a catalog model id");
    }
    match req.messages.last() {
        None => return bad("send at least one message"),
        Some(m) if m.role != Role::User => return bad("the last message must be the user's"),
        Some(_) => {}
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
