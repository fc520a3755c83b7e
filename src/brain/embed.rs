//! Embeddings: each input's vector from the loaded model, pooled the way its file says (mean
//! where it says nothing, as for a chat model) and scaled to unit length, as OpenAI's are.
//!
//! They are made in a context of their own, made for the request on the loaded model's weights
//! and dropped after it: the slots' contexts keep their conversations, and a request's memory
//! is what its inputs need. Many inputs are packed into one decode, each its own sequence, up
//! to [`MAX_SEQUENCES`] or [`TOKEN_BUDGET`] tokens at a time. Everything here blocks.

use super::runtime::{RuntimeError, backend};
use crate::chat::EmbedInput;
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Sequences in one decode (llama.cpp's own limit is 256; llama-server batches 64).
pub const MAX_SEQUENCES: usize = 64;
/// Tokens in one decode, all sequences together, unless one input alone is longer.
pub const TOKEN_BUDGET: usize = 4096;
/// The longest input embedded, in tokens, when the model was trained for more.
pub const MAX_INPUT_TOKENS: u32 = 8192;

/// One embedding request at a time: a request's context takes memory in proportion to its
/// batch, and two at once would only share the same cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// How a model's tokens become one vector, from `{arch}.pooling_type`
/// ([`super::gguf::Header::pooling`]).
pub fn pooling(from_file: Option<u32>) -> Result<LlamaPoolingType, RuntimeError> {
    match from_file {
        Some(2) => Ok(LlamaPoolingType::Cls),
        Some(3) => Ok(LlamaPoolingType::Last),
        Some(4) => Err(RuntimeError::NotForEmbedding("it is a reranker: it scores pairs of texts instead")),
        // None (a chat model), 0 (per-token only) and 1: the mean of the tokens.
        _ => Ok(LlamaPoolingType::Mean),
    }
}

/// The longest input `model` embeds, in tokens.
pub fn max_input_tokens(model: &LlamaModel) -> u32 {
    model.n_ctx_train().clamp(1, MAX_INPUT_TOKENS)
}

/// `inputs` as tokens, each checked: not empty, no longer than [`max_input_tokens`], token ids
/// within the vocabulary.
pub fn tokenize(model: &LlamaModel, inputs: &[EmbedInput]) -> Result<Vec<Vec<LlamaToken>>, RuntimeError> {
    let limit = max_input_tokens(model) as usize;
    let vocab = model.n_vocab();
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let tokens = match input {
                // As llama.cpp's embedding tool does: with the model's own start (and end)
                // tokens, and special tokens in the text read as plain text.
                EmbedInput::Text(text) => model.vocab().tokenize(text.as_bytes(), true, false),
                EmbedInput::Tokens(ids) => {
                    if let Some(bad) = ids.iter().find(|&&t| i32::try_from(t).is_err() || t as i32 >= vocab) {
                        return Err(RuntimeError::BadInput(format!(
                            "input[{i}]: token {bad} is not in this model's vocabulary of {vocab}"
                        )));
                    }
                    ids.iter().map(|&t| LlamaToken(t as i32)).collect()
                }
            };
            if tokens.is_empty() {
                return Err(RuntimeError::BadInput(format!("input[{i}] is empty")));
            }
            if tokens.len() > limit {
                return Err(RuntimeError::BadInput(format!(
                    "input[{i}] is {} tokens long; this model embeds at most {limit}",
                    tokens.len()
                )));
            }
            Ok(tokens)
        })
        .collect()
}

/// The unit vector of each of `inputs` (tokens from [`tokenize`]). Stops early with
/// [`RuntimeError::Cancelled`] when `cancelled` is set (the client left).
pub fn embed(
    model: &LlamaModel,
    pooling: LlamaPoolingType,
    inputs: &[Vec<LlamaToken>],
    threads: u32,
    cancelled: &AtomicBool,
) -> Result<Vec<Vec<f32>>, RuntimeError> {
    let longest = inputs.iter().map(Vec::len).max().unwrap_or(1);
    let total: usize = inputs.iter().map(Vec::len).sum();
    // Small requests get a small context; an input is never split (a model that reads both
    // ways must see all of it in one batch).
    let sequences = inputs.len().clamp(1, MAX_SEQUENCES);
    // A multiple of the sequences: llama.cpp sizes its worst-case graph as equal shares of the
    // batch per sequence, and a batch that does not divide (64 tokens for 3 inputs) aborts.
    let budget = total.min(TOKEN_BUDGET).max(longest).max(64).next_multiple_of(sequences);
    let threads = i32::try_from(threads.max(1)).unwrap_or(1);
    let params = LlamaContextParams::default()
        .with_embeddings(true)
        .with_pooling_type(pooling)
        .with_n_ctx(NonZeroU32::new(budget as u32))
        .with_n_batch(budget as u32)
        .with_n_ubatch(budget as u32)
        .with_n_seq_max(sequences as u32)
        // One cache for every sequence: with a cache per sequence each would get 1/N of it.
        .with_kv_unified(true)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut ctx = model.new_context(backend()?, params).map_err(|e| RuntimeError::Context(budget as u32, e))?;
    let mut batch = LlamaBatch::new(budget, 1);
    let mut out = Vec::with_capacity(inputs.len());
    let mut start = 0;
    while start < inputs.len() {
        if cancelled.load(Ordering::Relaxed) {
            return Err(RuntimeError::Cancelled);
        }
        // As many whole inputs as the batch holds, at least one.
        let mut end = start;
        let mut tokens = 0;
        while end < inputs.len() && end - start < sequences && tokens + inputs[end].len() <= budget {
            tokens += inputs[end].len();
            end += 1;
        }
        batch.clear();
        for (seq, input) in inputs[start..end].iter().enumerate() {
            for (pos, &token) in input.iter().enumerate() {
                batch.add(token, pos as i32, &[seq as i32], true).map_err(|e| RuntimeError::Decode(e.to_string()))?;
            }
        }
        ctx.clear_kv_cache();
        ctx.decode(&mut batch).map_err(|e| RuntimeError::Decode(e.to_string()))?;
        for seq in 0..end - start {
            let v = ctx
                .embeddings_seq_ith(seq as i32)
                .map_err(|_| RuntimeError::Decode("llama.cpp gave no embedding for a sequence".into()))?;
            out.push(unit(v));
        }
        start = end;
    }
    Ok(out)
}

/// `v` scaled to length 1 (a zero vector stays zero).
fn unit(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    if norm == 0.0 { v.to_vec() } else { v.iter().map(|x| (f64::from(*x) / norm) as f32).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_come_out_unit_length() {
        let v = unit(&[3.0, 4.0]);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert_eq!(unit(&[0.0, 0.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn pooling_follows_the_file_and_refuses_a_reranker() {
        assert_eq!(pooling(None).unwrap(), LlamaPoolingType::Mean);
        assert_eq!(pooling(Some(0)).unwrap(), LlamaPoolingType::Mean);
        assert_eq!(pooling(Some(2)).unwrap(), LlamaPoolingType::Cls);
        assert_eq!(pooling(Some(3)).unwrap(), LlamaPoolingType::Last);
        assert!(pooling(Some(4)).unwrap_err().to_string().contains("reranker"));
    }
}
