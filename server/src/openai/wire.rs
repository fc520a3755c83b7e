//! The OpenAI chat-completions wire format, as far as localbrain speaks it: the request (read
//! leniently, the way the official clients send it, with what cannot be honoured refused in
//! words) and the objects of an answer.

use super::error::OpenAiError;
use localbrain::chat::{ChatMessage, ChatRequest, ChatStats, Finish, Role};
use serde::{Deserialize, Serialize};

/// `POST /v1/chat/completions`. Fields not listed (`user`, `presence_penalty`, `logit_bias`...)
/// are accepted and ignored, as llama.cpp's and ollama's servers do; the ones that would change
/// the answer's shape (`n` > 1, `tools`) are refused.
#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub max_tokens: Option<u32>,
    /// The newer name of `max_tokens` (the official clients send either).
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub stop: Option<Stop>,
    pub seed: Option<i64>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub n: Option<u32>,
    pub tools: Option<serde_json::Value>,
    pub response_format: Option<ResponseFormat>,
}

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize)]
pub struct ResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
}

/// `stop`: one string or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: Option<Content>,
}

/// A message's content: text, or a list of parts of which only text ones are understood.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

impl CompletionRequest {
    /// The brain's request, or why it cannot be one. The brain checks the rest (ranges, sizes,
    /// the last message being the user's).
    pub fn to_chat(&self) -> Result<ChatRequest, OpenAiError> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(OpenAiError::bad_request("n must be 1: localbrain writes one answer per request"));
        }
        if self.tools.as_ref().is_some_and(|t| !t.is_null() && t.as_array().is_none_or(|a| !a.is_empty())) {
            return Err(OpenAiError::bad_request("tools (function calling) are not supported"));
        }
        if let Some(f) = self.response_format.as_ref().filter(|f| f.kind != "text") {
            return Err(OpenAiError::bad_request(format!(
                "response_format {:?} is not supported; only \"text\"",
                f.kind
            )));
        }
        let messages = self.messages.iter().enumerate().map(|(i, m)| m.to_chat(i)).collect::<Result<_, _>>()?;
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        Ok(ChatRequest {
            model_id: self.model.clone(),
            messages,
            max_tokens: self.max_completion_tokens.or(self.max_tokens),
            temperature: self.temperature,
            // OpenAI's seed is any integer; llama.cpp's is 32 bits: the low ones are used.
            seed: self.seed.map(|s| s as u32),
            top_p: self.top_p,
            stop,
        })
    }

    pub fn streams(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    pub fn include_usage(&self) -> bool {
        self.stream_options.as_ref().is_some_and(|o| o.include_usage)
    }
}

impl Message {
    fn to_chat(&self, index: usize) -> Result<ChatMessage, OpenAiError> {
        let role = match self.role.as_str() {
            // "developer" is OpenAI's newer name for the system prompt.
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(OpenAiError::bad_request(format!(
                    "messages[{index}]: role {other:?} is not supported; use system, user or assistant"
                )));
            }
        };
        let content = match &self.content {
            None => String::new(),
            Some(Content::Text(t)) => t.clone(),
            Some(Content::Parts(parts)) => {
                let mut text = String::new();
                for p in parts {
                    match (p.kind.as_str(), &p.text) {
                        ("text", Some(t)) => text.push_str(t),
                        (kind, _) => {
                            return Err(OpenAiError::bad_request(format!(
                                "messages[{index}]: content of type {kind:?} is not supported; only text"
                            )));
                        }
                    }
                }
                text
            }
        };
        Ok(ChatMessage::new(role, content))
    }
}

/// Token counts of an answer.
#[derive(Debug, Serialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
    pub prompt_tokens_details: PromptTokensDetails,
}

/// OpenAI's breakdown of the prompt: how much of it was served from the cache.
#[derive(Debug, Serialize)]
pub struct PromptTokensDetails {
    /// Prompt tokens the model already held from an earlier request (the same conversation's
    /// start) and did not read again.
    pub cached_tokens: u32,
}

impl From<&ChatStats> for Usage {
    fn from(s: &ChatStats) -> Self {
        Usage {
            prompt_tokens: s.prompt_tokens,
            completion_tokens: s.generated_tokens,
            total_tokens: s.prompt_tokens + s.generated_tokens,
            prompt_tokens_details: PromptTokensDetails { cached_tokens: s.cached_tokens },
        }
    }
}

/// `finish_reason`: `None` for a reply that was cut off by a Stop or a shutdown, which OpenAI's
/// vocabulary has no word for (the caller reports it as an error).
pub fn finish_reason(f: Finish) -> Option<&'static str> {
    match f {
        Finish::Stop => Some("stop"),
        Finish::Length => Some("length"),
        Finish::Cancelled => None,
    }
}

/// A whole answer (`stream` false).
#[derive(Debug, Serialize)]
pub struct Completion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: [Choice; 1],
    pub usage: Usage,
}

#[derive(Debug, Serialize)]
pub struct Choice {
    pub index: u32,
    pub message: AnswerMessage,
    pub finish_reason: &'static str,
    pub logprobs: Option<()>,
}

#[derive(Debug, Serialize)]
pub struct AnswerMessage {
    pub role: &'static str,
    pub content: String,
}

/// One piece of a streamed answer (`chat.completion.chunk`).
#[derive(Debug, Serialize)]
pub struct Chunk<'a> {
    pub id: &'a str,
    pub object: &'static str,
    pub created: u64,
    pub model: &'a str,
    pub choices: Vec<ChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Debug, Serialize)]
pub struct ChunkChoice<'a> {
    pub index: u32,
    pub delta: Delta<'a>,
    pub finish_reason: Option<&'static str>,
    pub logprobs: Option<()>,
}

#[derive(Debug, Default, Serialize)]
pub struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
}

/// `GET /v1/models`.
#[derive(Debug, Serialize)]
pub struct ModelList {
    pub object: &'static str,
    pub data: Vec<Model>,
}

#[derive(Debug, Serialize)]
pub struct Model {
    pub id: String,
    pub object: &'static str,
    /// When the file was installed, in Unix seconds.
    pub created: u64,
    pub owned_by: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> CompletionRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn what_the_official_client_sends_becomes_a_chat_request() {
        let r = parse(
            r#"{"model":"m","messages":[{"role":"developer","content":"Be brief"},
            {"role":"user","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]},
            {"role":"assistant","content":null},{"role":"user","content":"Go"}],
            "max_completion_tokens":9,"stop":"END","seed":-1,"top_p":0.5,"user":"x","presence_penalty":0,
            "stream":true,"stream_options":{"include_usage":true}}"#,
        );
        let c = r.to_chat().unwrap();
        assert_eq!(c.messages[0], ChatMessage::new(Role::System, "Be brief"));
        assert_eq!(c.messages[1].content, "Hi there");
        assert_eq!(c.messages[2], ChatMessage::new(Role::Assistant, ""));
        assert_eq!(
            (c.max_tokens, c.stop, c.seed, c.top_p),
            (Some(9), vec!["END".to_string()], Some(u32::MAX), Some(0.5))
        );
        assert!(r.streams() && r.include_usage());
        let c =
            parse(r#"{"model":"m","messages":[],"stop":["a","b"],"max_tokens":3,"stream":null}"#).to_chat().unwrap();
        assert_eq!((c.stop.len(), c.max_tokens), (2, Some(3)));
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_in_words() {
        for (json, why) in [
            (r#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#, "role \"tool\""),
            (r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#, "\"image_url\""),
            (r#"{"model":"m","messages":[],"n":2}"#, "n must be 1"),
            (r#"{"model":"m","messages":[],"tools":[{"type":"function"}]}"#, "tools"),
            (r#"{"model":"m","messages":[],"response_format":{"type":"json_object"}}"#, "json_object"),
        ] {
            let e = parse(json).to_chat().unwrap_err();
            assert!(e.message.contains(why), "{why}: {}", e.message);
            assert_eq!(e.status, 400);
        }
        assert!(parse(r#"{"model":"m","messages":[],"tools":[]}"#).to_chat().is_ok());
    }
}
