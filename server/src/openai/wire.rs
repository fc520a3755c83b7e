//! The OpenAI chat-completions wire format, as far as localbrain speaks it: the request (read
//! leniently, the way the official clients send it, with what cannot be honoured refused in
//! words) and the objects of an answer.

use super::error::OpenAiError;
use localbrain::chat::{
    ChatMessage, ChatRequest, ChatStats, Finish, Role, TokenLogprob, ToolCall, ToolChoice, ToolDef,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /v1/chat/completions`. Fields not listed (`user`, `presence_penalty`, `logit_bias`,
/// `parallel_tool_calls`...) are accepted and ignored, as llama.cpp's and ollama's servers do;
/// the ones that would change the answer's shape (`n` > 1) are refused.
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
    /// `[{"type": "function", "function": {"name", "description", "parameters"}}]`.
    pub tools: Option<Value>,
    /// `"auto"`, `"none"`, `"required"` or `{"type": "function", "function": {"name"}}`.
    pub tool_choice: Option<Value>,
    /// The older names of `tools` and `tool_choice`: `[{"name", "description", "parameters"}]`
    /// and `"auto"`, `"none"` or `{"name"}`.
    pub functions: Option<Value>,
    pub function_call: Option<Value>,
    pub response_format: Option<ResponseFormat>,
    /// Each token's log-probability in the answer, and `top_logprobs` alternatives (0 to 20).
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// `response_format`: `text`, `json_object` (any JSON object) or `json_schema` (JSON matching
/// the schema), the last two enforced by a grammar.
#[derive(Debug, Deserialize)]
pub struct ResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
    pub json_schema: Option<JsonSchemaFormat>,
}

#[derive(Debug, Deserialize)]
pub struct JsonSchemaFormat {
    #[allow(dead_code)]
    pub name: Option<String>,
    pub schema: Option<serde_json::Value>,
}

impl ResponseFormat {
    /// The GBNF grammar this format asks for; `None` for text.
    pub fn grammar(&self) -> Result<Option<String>, OpenAiError> {
        use localbrain::brain::json_schema;
        match self.kind.as_str() {
            "text" => Ok(None),
            "json_object" => Ok(Some(json_schema::any_object())),
            "json_schema" => {
                let schema = self.json_schema.as_ref().and_then(|j| j.schema.as_ref()).ok_or_else(|| {
                    OpenAiError::bad_request(
                        "response_format.json_schema.schema is missing: send the JSON schema there",
                    )
                })?;
                json_schema::to_gbnf(schema)
                    .map(Some)
                    .map_err(|e| OpenAiError::bad_request(format!("response_format.json_schema.schema: {e}")))
            }
            other => Err(OpenAiError::bad_request(format!(
                "response_format {other:?} is not one localbrain knows: use \"text\", \"json_object\" or \"json_schema\""
            ))),
        }
    }
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
    /// An assistant's calls, sent back with the conversation.
    pub tool_calls: Option<Vec<WireToolCall>>,
    /// A tool's result names the call it answers.
    pub tool_call_id: Option<String>,
}

/// A tool call as OpenAI writes it: `{"id", "type": "function", "function": {"name", "arguments"}}`.
#[derive(Debug, Deserialize, Serialize)]
pub struct WireToolCall {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: WireFunction,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct WireFunction {
    pub name: String,
    /// A JSON object as text (a client that sends the object itself is understood too).
    #[serde(deserialize_with = "text_or_json")]
    pub arguments: String,
}

fn function_type() -> String {
    "function".into()
}

fn text_or_json<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

impl From<&ToolCall> for WireToolCall {
    fn from(c: &ToolCall) -> Self {
        WireToolCall {
            id: c.id.clone(),
            kind: function_type(),
            function: WireFunction { name: c.name.clone(), arguments: c.arguments.clone() },
        }
    }
}

/// A call in a streamed delta: its place in the list, then the call.
#[derive(Debug, Serialize)]
pub struct ToolCallDelta {
    pub index: u32,
    #[serde(flatten)]
    pub call: WireToolCall,
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
        let (tools, tool_choice) = self.tools()?;
        let grammar = match &self.response_format {
            Some(f) => f.grammar()?,
            None => None,
        };
        let logprobs = match (self.logprobs.unwrap_or(false), self.top_logprobs) {
            (true, top) => Some(top.unwrap_or(0)),
            (false, None) => None,
            (false, Some(_)) => {
                return Err(OpenAiError::bad_request("top_logprobs needs logprobs: true"));
            }
        };
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
            grammar,
            logprobs,
            tools,
            tool_choice,
        })
    }

    /// The tools offered and the choice, from `tools`/`tool_choice` or the older
    /// `functions`/`function_call`.
    fn tools(&self) -> Result<(Vec<ToolDef>, ToolChoice), OpenAiError> {
        let bad = |why: String| OpenAiError::bad_request(why);
        let present = |v: &Option<Value>| v.as_ref().filter(|v| !v.is_null()).cloned();
        let (list, choice, legacy) = match (present(&self.tools), present(&self.functions)) {
            (Some(_), Some(_)) => return Err(bad("send tools or functions, not both".into())),
            (Some(t), None) => (t, present(&self.tool_choice), false),
            (None, Some(f)) => (f, present(&self.function_call), true),
            (None, None) => {
                return match present(&self.tool_choice).or(present(&self.function_call)) {
                    Some(c) if c != "none" && c != "auto" => {
                        Err(bad("tool_choice asks for a tool call, but no tools were sent".into()))
                    }
                    _ => Ok((Vec::new(), ToolChoice::Auto)),
                };
            }
        };
        let what = if legacy { "functions" } else { "tools" };
        let list = list.as_array().ok_or_else(|| bad(format!("{what} must be a list")))?;
        let tools = list
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let f = if legacy {
                    t
                } else {
                    match t.get("type").and_then(Value::as_str) {
                        Some("function") => t.get("function").unwrap_or(&Value::Null),
                        other => {
                            return Err(bad(format!("tools[{i}]: type {other:?} is not supported; only \"function\"")));
                        }
                    }
                };
                let name =
                    f.get("name").and_then(Value::as_str).ok_or_else(|| bad(format!("{what}[{i}] has no name")))?;
                let parameters = match f.get("parameters") {
                    None | Some(Value::Null) => "{}".to_string(),
                    Some(p) => p.to_string(),
                };
                let description = f.get("description").and_then(Value::as_str).map(str::to_string);
                Ok(ToolDef { name: name.to_string(), description, parameters })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let choice = match choice {
            None => ToolChoice::Auto,
            Some(Value::String(s)) => match s.as_str() {
                "auto" => ToolChoice::Auto,
                "none" => ToolChoice::None,
                "required" if !legacy => ToolChoice::Required,
                other => return Err(bad(format!("tool_choice {other:?} is not one of auto, none, required"))),
            },
            Some(obj) => {
                let f = if legacy { Some(&obj) } else { obj.get("function") };
                match f.and_then(|f| f.get("name")).and_then(Value::as_str) {
                    Some(name) => ToolChoice::Function(name.to_string()),
                    None => {
                        return Err(bad(
                            "tool_choice must be auto, none, required or {\"type\": \"function\", \"function\": {\"name\": ...}}"
                                .into(),
                        ));
                    }
                }
            }
        };
        Ok((tools, choice))
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
            "tool" | "function" => Role::Tool,
            other => {
                return Err(OpenAiError::bad_request(format!(
                    "messages[{index}]: role {other:?} is not supported; use system, user, assistant or tool"
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
        let mut message = ChatMessage::new(role, content);
        message.tool_call_id = self.tool_call_id.clone();
        message.tool_calls = self
            .tool_calls
            .iter()
            .flatten()
            .map(|c| ToolCall {
                id: c.id.clone(),
                name: c.function.name.clone(),
                arguments: c.function.arguments.clone(),
            })
            .collect();
        Ok(message)
    }
}

/// Token counts of an answer.
#[derive(Debug, Default, Serialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
    pub prompt_tokens_details: PromptTokensDetails,
}

/// OpenAI's breakdown of the prompt: how much of it was served from the cache.
#[derive(Debug, Default, Serialize)]
pub struct PromptTokensDetails {
    /// Prompt tokens the model already held from an earlier request (the same conversation's
    /// start) and did not read again.
    pub cached_tokens: u32,
}

impl Usage {
    /// Adds one more reply's counts (a request with several prompts).
    pub fn add(&mut self, s: &ChatStats) {
        let u = Usage::from(s);
        self.prompt_tokens += u.prompt_tokens;
        self.completion_tokens += u.completion_tokens;
        self.total_tokens += u.total_tokens;
        self.prompt_tokens_details.cached_tokens += u.prompt_tokens_details.cached_tokens;
    }
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
    pub logprobs: Option<ChatLogprobs>,
}

/// A chat answer's `logprobs`: one entry per token.
#[derive(Debug, Default, Serialize)]
pub struct ChatLogprobs {
    pub content: Vec<ChatTokenLogprob>,
    pub refusal: Option<()>,
}

#[derive(Debug, Serialize)]
pub struct ChatTokenLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
    pub top_logprobs: Vec<ChatTopLogprob>,
}

#[derive(Debug, Serialize)]
pub struct ChatTopLogprob {
    pub token: String,
    pub logprob: f32,
    pub bytes: Vec<u8>,
}

impl ChatLogprobs {
    pub fn of(entries: &[TokenLogprob]) -> Self {
        let content = entries
            .iter()
            .map(|e| ChatTokenLogprob {
                token: e.token.clone(),
                logprob: e.logprob,
                bytes: e.bytes.clone(),
                top_logprobs: e
                    .top
                    .iter()
                    .map(|t| ChatTopLogprob { token: t.token.clone(), logprob: t.logprob, bytes: t.bytes.clone() })
                    .collect(),
            })
            .collect();
        ChatLogprobs { content, refusal: None }
    }
}

#[derive(Debug, Serialize)]
pub struct AnswerMessage {
    pub role: &'static str,
    /// `null` when the answer is only tool calls, as OpenAI writes it.
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<WireToolCall>,
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
    pub logprobs: Option<ChatLogprobs>,
}

#[derive(Debug, Default, Serialize)]
pub struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
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
            (r#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#, "role \"robot\""),
            (r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#, "\"image_url\""),
            (r#"{"model":"m","messages":[],"n":2}"#, "n must be 1"),
            (r#"{"model":"m","messages":[],"tools":[{"type":"function"}]}"#, "tools[0] has no name"),
            (r#"{"model":"m","messages":[],"tools":[{"type":"retrieval"}]}"#, "only \"function\""),
            (r#"{"model":"m","messages":[],"tools":{"a":1}}"#, "tools must be a list"),
            (r#"{"model":"m","messages":[],"tools":[],"functions":[]}"#, "not both"),
            (r#"{"model":"m","messages":[],"tool_choice":"required"}"#, "no tools were sent"),
            (
                r#"{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"always"}"#,
                "\"always\"",
            ),
            (
                r#"{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function"}}"#,
                "tool_choice must be",
            ),
            (r#"{"model":"m","messages":[],"response_format":{"type":"xml"}}"#, "\"xml\" is not one"),
            (r#"{"model":"m","messages":[],"response_format":{"type":"json_schema"}}"#, "schema is missing"),
            (
                r#"{"model":"m","messages":[],"response_format":{"type":"json_schema","json_schema":{"schema":{"type":"string","pattern":"a+"}}}}"#,
                "uses \"pattern\" at #",
            ),
            (r#"{"model":"m","messages":[],"top_logprobs":2}"#, "top_logprobs needs logprobs"),
        ] {
            let e = parse(json).to_chat().unwrap_err();
            assert!(e.message.contains(why), "{why}: {}", e.message);
            assert_eq!(e.status, 400);
        }
        assert!(parse(r#"{"model":"m","messages":[],"tools":[]}"#).to_chat().is_ok());
    }

    #[test]
    fn tools_and_a_tool_round_trip_are_read_in_both_spellings() {
        let c = parse(
            r#"{"model":"m","tools":[{"type":"function","function":{"name":"get_weather","description":"d",
            "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
            "tool_choice":{"type":"function","function":{"name":"get_weather"}},
            "messages":[{"role":"user","content":"Paris?"},
            {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
            {"role":"tool","tool_call_id":"call_1","content":"21C"}]}"#,
        )
        .to_chat()
        .unwrap();
        assert_eq!(c.tools.len(), 1);
        assert_eq!((c.tools[0].name.as_str(), c.tools[0].description.as_deref()), ("get_weather", Some("d")));
        let params: Value = serde_json::from_str(&c.tools[0].parameters).unwrap();
        assert_eq!(params, serde_json::json!({"type":"object","properties":{"city":{"type":"string"}}}));
        assert_eq!(c.tool_choice, ToolChoice::Function("get_weather".into()));
        assert_eq!(c.messages[1].tool_calls[0].arguments, r#"{"city":"Paris"}"#);
        assert_eq!((c.messages[2].role, c.messages[2].tool_call_id.as_deref()), (Role::Tool, Some("call_1")));
        // The older functions / function_call, and arguments sent as an object.
        let old = parse(
            r#"{"model":"m","functions":[{"name":"f"}],"function_call":{"name":"f"},"messages":[{"role":"user","content":"x"},
            {"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":{"a":1}}}]}]}"#,
        )
        .to_chat()
        .unwrap();
        assert_eq!((old.tools[0].parameters.as_str(), &old.tool_choice), ("{}", &ToolChoice::Function("f".into())));
        assert_eq!(old.messages[1].tool_calls[0].arguments, r#"{"a":1}"#);
        for (choice, want) in
            [("\"auto\"", ToolChoice::Auto), ("\"none\"", ToolChoice::None), ("\"required\"", ToolChoice::Required)]
        {
            let json = format!(
                r#"{{"model":"m","messages":[],"tools":[{{"type":"function","function":{{"name":"f"}}}}],"tool_choice":{choice}}}"#
            );
            assert_eq!(parse(&json).to_chat().unwrap().tool_choice, want);
        }
    }
}
