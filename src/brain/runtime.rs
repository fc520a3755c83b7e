//! llama.cpp itself: the process's one backend, loading a model file, and making the prompt.
//! The context the replies are written in is [`super::slots`]. Everything here blocks (loading
//! reads the file, tokenizing a long prompt takes a while): callers run it on a blocking thread.

use super::template::{self, TemplateError};
use crate::chat::ChatMessage;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

/// What went wrong inside llama.cpp.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("llama.cpp did not start: {0}")]
    Backend(String),
    #[error("llama.cpp could not load the model file")]
    Load(#[source] llama_cpp_2::LlamaModelLoadError),
    #[error("llama.cpp could not make room for the conversation (context of {0} tokens)")]
    Context(u32, #[source] llama_cpp_2::LlamaContextLoadError),
    #[error("llama.cpp failed while reading or writing tokens: {0}")]
    Decode(String),
    #[error("the conversation is {tokens} tokens long; this model's context holds {context}")]
    PromptTooLong { tokens: usize, context: u32 },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("a message contains a NUL character")]
    NulInText,
    #[error("{0}")]
    BadInput(String),
    #[error("this model cannot make embeddings: {0}")]
    NotForEmbedding(&'static str),
    #[error(
        "this is an embedding model: it turns text into vectors for search (/v1/embeddings) and cannot write a reply; pick a chat model"
    )]
    NotForChat,
    #[error("the request was cancelled")]
    Cancelled,
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

/// Loads the model at `path` (memory-mapped), with `n_gpu_layers` of it on the GPU
/// ([`super::offload::n_gpu_layers`]; 0: the CPU alone).
pub fn load(path: &Path, n_gpu_layers: u32) -> Result<LlamaModel, RuntimeError> {
    let params = LlamaModelParams::default().with_n_gpu_layers(n_gpu_layers);
    LlamaModel::load_from_file(backend()?, path, &params).map_err(RuntimeError::Load)
}

/// The prompt for `messages`: llama.cpp's built-in format when it recognises the model's
/// template, else the template itself rendered as Jinja.
pub fn prompt(
    model: &LlamaModel,
    gguf_template: Option<&str>,
    messages: &[ChatMessage],
    tools: &[crate::chat::ToolDef],
) -> Result<String, RuntimeError> {
    // llama.cpp's built-in formats know neither tools nor the messages of a tool round trip.
    let tool_use =
        !tools.is_empty() || messages.iter().any(|m| m.role == crate::chat::Role::Tool || !m.tool_calls.is_empty());
    if let Ok(tmpl) = model.chat_template(None).map_err(drop).and_then(|t| if tool_use { Err(()) } else { Ok(t) }) {
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
    let tools = super::tool_calls::for_template(tools);
    Ok(template::render_jinja(tmpl, messages, &tools, &piece(vocab.bos()), &piece(vocab.eos()))?)
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
    /// A GBNF grammar the reply must follow (root rule `root`), checked by [`check_grammar`].
    pub grammar: Option<String>,
    /// Each token's log-probability and this many alternatives, when asked.
    pub logprobs: Option<u32>,
}

/// What a reply is written after: a conversation, or a prompt as it is.
#[derive(Clone, Debug)]
pub enum Input {
    /// A conversation, and the tools to show the model (none when it may not call them).
    Chat {
        messages: Vec<ChatMessage>,
        tools: Vec<crate::chat::ToolDef>,
    },
    Prompt(crate::chat::Prompt),
}

/// The tokens for `input` in a slot of `context` tokens ([`slot_context`]): a conversation
/// through the model's template, a prompt as it is, fill-in-the-middle with the model's own
/// tokens for it.
pub fn tokens_for(
    model: &LlamaModel,
    gguf_template: Option<&str>,
    input: &Input,
    context: u32,
) -> Result<Prepared, RuntimeError> {
    use crate::chat::Prompt;
    match input {
        Input::Chat { messages, tools } => prepare(model, &prompt(model, gguf_template, messages, tools)?, context),
        Input::Prompt(Prompt::Text { text }) => prepare(model, text, context),
        Input::Prompt(Prompt::Fill { prefix, suffix }) => {
            let vocab = model.vocab();
            let (pre, suf, mid) = (vocab.fim_pre(), vocab.fim_suf(), vocab.fim_mid());
            // llama.cpp answers -1 for a token the vocabulary does not have.
            if [pre, suf, mid].iter().any(|t| t.0 < 0) {
                return Err(RuntimeError::BadInput(
                    "suffix (fill-in-the-middle) needs a model whose vocabulary has fill-in-the-middle tokens \
                     (a code model such as Qwen2.5-Coder); this one has none: send the prompt without a suffix"
                        .into(),
                ));
            }
            // Prefix, suffix, middle: the order llama-server writes for infill.
            let mut tokens = Vec::new();
            if vocab.should_add_bos() {
                tokens.push(vocab.bos());
            }
            tokens.push(pre);
            tokens.extend(vocab.tokenize(prefix.as_bytes(), false, false));
            tokens.push(suf);
            tokens.extend(vocab.tokenize(suffix.as_bytes(), false, false));
            tokens.push(mid);
            fits(tokens, context)
        }
    }
}

/// Whether llama.cpp reads `grammar` (a grammar that does not parse is refused here, before
/// the reply waits for a slot, instead of failing in it).
pub fn check_grammar(model: &LlamaModel, grammar: &str) -> Result<(), RuntimeError> {
    llama_cpp_2::sampling::LlamaSampler::grammar(model, grammar, "root")
        .map(drop)
        .map_err(|e| RuntimeError::BadInput(format!("the grammar cannot be used: {e}")))
}

/// A prompt turned into tokens, checked against the context it will run in.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub tokens: Vec<LlamaToken>,
}

/// The context a slot of `model` gets when `asked` tokens are configured: capped by what the
/// model was trained for, and never too small for a short exchange.
pub fn slot_context(model: &LlamaModel, asked: u32) -> u32 {
    asked.min(model.n_ctx_train().max(1)).max(64)
}

/// Tokenizes `prompt` for a slot of `context` tokens ([`slot_context`]), refusing a prompt
/// that leaves no room for a reply.
pub fn prepare(model: &LlamaModel, prompt: &str, context: u32) -> Result<Prepared, RuntimeError> {
    let vocab = model.vocab();
    let mut tokens = vocab.tokenize(prompt.as_bytes(), true, true);
    // A template that writes the BOS token itself, plus llama.cpp adding one, makes two.
    if tokens.len() >= 2 && tokens[0] == vocab.bos() && tokens[1] == vocab.bos() {
        tokens.remove(0);
    }
    fits(tokens, context)
}

/// `tokens`, when they leave room for a reply in `context`.
fn fits(tokens: Vec<LlamaToken>, context: u32) -> Result<Prepared, RuntimeError> {
    if tokens.is_empty() || tokens.len() + 1 >= context as usize {
        return Err(RuntimeError::PromptTooLong { tokens: tokens.len(), context });
    }
    Ok(Prepared { tokens })
}

/// Joins token bytes into whole UTF-8 text: a character split across two tokens (emoji, CJK)
/// is held back until its last byte arrives.
#[derive(Default)]
pub(super) struct Utf8Pieces {
    pending: Vec<u8>,
}

impl Utf8Pieces {
    pub(super) fn push(&mut self, bytes: &[u8]) -> String {
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

    pub(super) fn finish(&mut self) -> String {
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
