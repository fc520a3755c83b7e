//! Wire types of the brain (the model runtime): a chat request, the events of a streamed reply,
//! and what an installed model is. The card, the API and the terminal share them.
//!
//! A reply streams as newline-delimited JSON, one [`ChatEvent`] per line: `started`, then
//! `piece`s as tokens are generated, then exactly one `done` or `error`.

use serde::{Deserialize, Serialize};

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    /// A tool's result, answering the assistant's tool call `tool_call_id` (the API only).
    Tool,
}

impl Role {
    /// The name chat templates use.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }

    /// The role [`Role::as_str`] names.
    pub fn parse(name: &str) -> Option<Role> {
        [Role::System, Role::User, Role::Assistant, Role::Tool].into_iter().find(|r| r.as_str() == name)
    }
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// The functions an assistant's message called (`/v1` tools), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Which call a tool's message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        ChatMessage { role, content: content.into(), tool_calls: Vec::new(), tool_call_id: None }
    }
}

/// One call of a function the request offered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// `call_...`, unique within the conversation; the tool's answer names it.
    pub id: String,
    pub name: String,
    /// The arguments, a JSON object as text (as OpenAI sends them).
    pub arguments: String,
}

/// A function the model may call: its name, what it does, and its arguments' JSON schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolDef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON schema of the arguments, as JSON text; `{}` when the function takes none.
    pub parameters: String,
}

/// Whether, and which, tools the reply calls.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides: text, or calls.
    #[default]
    Auto,
    /// Text only: the tools are not shown to the model.
    None,
    /// At least one call, of any of the tools.
    Required,
    /// One call of this function.
    Function(String),
}

/// Most tools one request may offer.
pub const MAX_TOOLS: usize = 128;

/// Longest message text accepted, in bytes: a prompt bigger than any context is refused early.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Most messages in one request.
pub const MAX_MESSAGES: usize = 256;

/// A conversation to continue with an installed model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// A catalog id of an installed model.
    pub model_id: String,
    /// The conversation so far; the last one is the user's.
    pub messages: Vec<ChatMessage>,
    /// Most tokens to generate; the room left in the context when `None`.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Sampling temperature; 0 picks the likeliest token every time. Default 0.7.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Seed for sampling; random when `None`.
    #[serde(default)]
    pub seed: Option<u32>,
    /// Nucleus sampling: only the likeliest tokens whose chances add up to this are drawn
    /// from. Default 0.95.
    #[serde(default)]
    pub top_p: Option<f32>,
    /// The reply ends where one of these first appears (none of it is sent); at most four.
    #[serde(default)]
    pub stop: Vec<String>,
    /// A GBNF grammar (llama.cpp's, root rule `root`) the reply must follow: structured output
    /// ([`crate::brain::json_schema`] writes one from a JSON schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grammar: Option<String>,
    /// `Some(n)`: each generated token's log-probability comes with its piece, with the `n`
    /// likeliest tokens at that place (at most [`MAX_TOP_LOGPROBS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u32>,
    /// Functions the model may call (`/v1` tools): the chat template shows them to the model,
    /// and the reply's calls come back parsed ([`crate::brain::tool_calls`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDef>,
    #[serde(default)]
    pub tool_choice: ToolChoice,
}

/// Most alternatives asked for per token (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: u32 = 20;

/// What a completion continues instead of a conversation (`/v1/completions`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Prompt {
    /// Text the model continues as it is, no chat template around it.
    Text { text: String },
    /// Fill in the middle: what comes between `prefix` and `suffix`, for models whose
    /// vocabulary has fill-in-the-middle tokens (code models).
    Fill { prefix: String, suffix: String },
}

/// One token of a reply and how likely the model found it, with the likeliest at its place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    pub token: String,
    pub bytes: Vec<u8>,
    pub logprob: f32,
    #[serde(default)]
    pub top: Vec<TopLogprob>,
}

/// A token the model could have written at a place, and its log-probability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopLogprob {
    pub token: String,
    pub bytes: Vec<u8>,
    pub logprob: f32,
}

/// One input to embed: text, or tokens already made with the model's own tokenizer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbedInput {
    Text(String),
    Tokens(Vec<u32>),
}

/// Inputs to turn into vectors with an installed model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbedRequest {
    pub model_id: String,
    pub inputs: Vec<EmbedInput>,
}

/// Most inputs in one embedding request (OpenAI's limit too).
pub const MAX_EMBED_INPUTS: usize = 2048;

/// The vectors of an [`EmbedRequest`], in its order: unit length, one per input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    /// Tokens read, all inputs together.
    pub prompt_tokens: u32,
}

/// Why a reply ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Finish {
    /// The model said it was done (end-of-text).
    Stop,
    /// The token limit (or the end of the context) was reached.
    Length,
    /// Stopped by the user or a closed connection.
    Cancelled,
}

/// The numbers of one reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatStats {
    pub finish: Finish,
    pub prompt_tokens: u32,
    /// Prompt tokens that were already in the model's cache from an earlier reply (the start
    /// of the same conversation) and were not read again.
    #[serde(default)]
    pub cached_tokens: u32,
    pub generated_tokens: u32,
    /// From the request reaching the runtime to the first piece, in milliseconds (includes
    /// waiting in the queue, loading the model and reading the prompt).
    pub first_token_ms: u64,
    /// Prompt tokens read per second (those not reused from the cache).
    pub prompt_tokens_per_second: f64,
    /// Tokens generated per second, after the first.
    pub tokens_per_second: f64,
    /// The GPU it was written on, and how many of the model's layers; `None`: the CPU alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuUse>,
}

impl ChatStats {
    /// "on CUDA0 NVIDIA H200: 30/30 layers", or "on CPU".
    pub fn ran_on(&self) -> String {
        ran_on(self.gpu.as_ref())
    }
}

/// "on Vulkan0 llvmpipe: 30/30 layers", or "on CPU".
pub fn ran_on(gpu: Option<&GpuUse>) -> String {
    gpu.map_or_else(|| "on CPU".to_string(), GpuUse::to_string)
}

/// A model's layers on a GPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuUse {
    /// llama.cpp's device name and the card: "Vulkan0 llvmpipe (LLVM 15.0.6, 256 bits)".
    pub device: String,
    pub layers: u32,
    /// The model's layers.
    pub of: u32,
}

impl std::fmt::Display for GpuUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "on {}: {}/{} layers", self.device, self.layers, self.of)
    }
}

/// One line of a streamed reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatEvent {
    /// The runtime took the request: `id` is what Stop names. `position` is its place in the
    /// line for a slot: 0 when one was free, 1 when it is next, and so on.
    Started {
        id: i64,
        model_id: String,
        #[serde(default)]
        position: u32,
    },
    /// More of the reply, with its tokens' log-probabilities when they were asked for.
    Piece {
        text: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        logprobs: Vec<TokenLogprob>,
    },
    /// The reply ended.
    Done { stats: ChatStats },
    /// The reply failed part-way, in plain words.
    Error { error: String },
}

/// What the GGUF header of an installed file says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelFacts {
    /// llama.cpp's architecture name, e.g. "llama", "qwen2".
    pub architecture: String,
    /// The model's own name, where the file has one.
    pub name: Option<String>,
    /// Weights, counted from the tensor shapes.
    pub parameters: u64,
    /// Longest context the model was trained for, in tokens.
    pub context_length: u64,
    /// The file type, e.g. "Q4_1", "Q4_K_M".
    pub quantization: String,
    /// Whether the file carries a chat template.
    pub has_chat_template: bool,
}

impl ModelFacts {
    /// "llama · 135M parameters · 8K context · Q4_1"
    pub fn summary(&self) -> String {
        format!(
            "{} · {} parameters · {} context · {}",
            self.architecture,
            count_label(self.parameters),
            context_label(self.context_length),
            self.quantization
        )
    }
}

/// 134_515_008 -> "135M", 7_615_616_512 -> "7.6B", 70_553_706_496 -> "71B".
pub fn count_label(n: u64) -> String {
    let n = n as f64;
    let (value, unit) = if n >= 1e9 {
        (n / 1e9, "B")
    } else if n >= 1e6 {
        (n / 1e6, "M")
    } else {
        (n / 1e3, "K")
    };
    if value >= 10.0 { format!("{value:.0}{unit}") } else { format!("{value:.1}{unit}") }
}

/// 8192 -> "8K", 131072 -> "128K", 1000 -> "1000".
pub fn context_label(tokens: u64) -> String {
    if tokens >= 1024 && tokens.is_multiple_of(1024) { format!("{}K", tokens / 1024) } else { tokens.to_string() }
}

/// One model file in the models folder, as the card and `localbrain models` show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstalledModel {
    pub model_id: String,
    /// The catalog's name.
    pub name: String,
    pub size_bytes: u64,
    /// When the file was installed (its modification time), in seconds since 1970.
    pub installed_at: u64,
    /// The header's facts when the file is a model this runtime can run.
    pub facts: Option<ModelFacts>,
    /// Why the file cannot run, in plain words, when it cannot.
    pub problem: Option<String>,
    /// Loaded in memory right now.
    pub loaded: bool,
}

/// The brain as the card sees it: installed models and whether a reply is being generated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BrainView {
    pub models: Vec<InstalledModel>,
    /// A reply is being generated right now.
    pub busy: bool,
    /// CPU threads a reply uses.
    pub threads: u32,
    /// Replies written at once (the loaded model's slots, or the setting).
    #[serde(default = "one")]
    pub slots: u32,
}

fn one() -> u32 {
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_like_a_model_card() {
        assert_eq!(count_label(134_515_008), "135M");
        assert_eq!(count_label(7_615_616_512), "7.6B");
        assert_eq!(count_label(494_032_768), "494M");
        assert_eq!(count_label(70_553_706_496), "71B");
        assert_eq!(context_label(8192), "8K");
        assert_eq!(context_label(131_072), "128K");
        assert_eq!(context_label(1000), "1000");
    }

    #[test]
    fn events_are_tagged_lines() {
        let e = ChatEvent::Piece { text: "Hi".into(), logprobs: Vec::new() };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"type":"piece","text":"Hi"}"#);
        let back: ChatEvent = serde_json::from_str(r#"{"type":"error","error":"busy"}"#).unwrap();
        assert_eq!(back, ChatEvent::Error { error: "busy".into() });
    }
}
