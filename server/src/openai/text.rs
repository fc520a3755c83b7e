//! `POST /v1/completions`, OpenAI's legacy shape: a prompt continued as it is (no chat
//! template), or, with `suffix`, the middle between a prefix and a suffix (editor autocomplete:
//! Continue, Tabby-style clients). One choice per prompt, streamed or not, with `echo` and
//! `logprobs` (top-N per token) as the legacy API writes them.

use super::KeyUser;
use super::error::OpenAiError;
use super::stream::{event, sse, stopped};
use super::wire::{Stop, StreamOptions, Usage, finish_reason};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use localbrain::brain::{Brain, Reply};
use localbrain::chat::{ChatEvent, ChatRequest, Prompt, TokenLogprob};
use localbrain::time::unix_seconds;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Tokens written when the request gives no `max_tokens` (OpenAI's default for this endpoint).
const DEFAULT_MAX_TOKENS: u32 = 16;
/// Most prompts in one request: each takes a place in the brain's queue.
const MAX_PROMPTS: usize = 16;

/// The request. Fields not listed (`user`, `presence_penalty`, `logit_bias`...) are accepted
/// and ignored, as on `/v1/chat/completions`.
#[derive(Debug, Deserialize)]
pub struct TextRequest {
    pub model: String,
    pub prompt: PromptField,
    pub suffix: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub stop: Option<Stop>,
    pub seed: Option<i64>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub echo: bool,
    pub logprobs: Option<u32>,
    pub n: Option<u32>,
    pub best_of: Option<u32>,
}

/// `prompt`: a string or a list of them (token arrays are refused in words).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PromptField {
    One(String),
    Many(Vec<String>),
    Tokens(serde::de::IgnoredAny),
}

impl TextRequest {
    /// The prompts, and the brain's request for each, or why there are none.
    fn to_brain(&self) -> Result<(Vec<String>, ChatRequest), OpenAiError> {
        let prompts = match &self.prompt {
            PromptField::One(p) => vec![p.clone()],
            PromptField::Many(v) => v.clone(),
            PromptField::Tokens(_) => {
                return Err(OpenAiError::bad_request(
                    "prompt: token arrays are not supported here; send the prompt as text (a string or a list of strings)",
                ));
            }
        };
        if prompts.is_empty() || prompts.len() > MAX_PROMPTS {
            return Err(OpenAiError::bad_request(format!(
                "prompt: send 1 to {MAX_PROMPTS} prompts, not {}",
                prompts.len()
            )));
        }
        if self.n.is_some_and(|n| n != 1) || self.best_of.is_some_and(|n| n != 1) {
            return Err(OpenAiError::bad_request("n and best_of must be 1: localbrain writes one answer per prompt"));
        }
        if self.echo && self.logprobs.is_some() {
            return Err(OpenAiError::bad_request(
                "echo with logprobs is not supported: the prompt's own log-probabilities are not computed; \
                 send one or the other",
            ));
        }
        if self.echo && self.suffix.is_some() {
            return Err(OpenAiError::bad_request("echo with suffix is not supported: send one or the other"));
        }
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        let req = ChatRequest {
            model_id: self.model.clone(),
            messages: Vec::new(),
            max_tokens: Some(self.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
            temperature: self.temperature,
            seed: self.seed.map(|s| s as u32),
            top_p: self.top_p,
            stop,
            grammar: None,
            logprobs: self.logprobs,
            tools: Vec::new(),
            tool_choice: Default::default(),
        };
        Ok((prompts, req))
    }

    fn prompt(&self, text: String) -> Prompt {
        match &self.suffix {
            Some(suffix) => Prompt::Fill { prefix: text, suffix: suffix.clone() },
            None => Prompt::Text { text },
        }
    }
}

/// A whole answer.
#[derive(Debug, Serialize)]
struct TextCompletion {
    id: String,
    object: &'static str,
    created: u64,
    model: String,
    choices: Vec<TextChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Debug, Serialize)]
struct TextChoice {
    text: String,
    index: usize,
    logprobs: Option<Logprobs>,
    finish_reason: Option<&'static str>,
}

/// The legacy `logprobs` object: parallel lists, one entry per token.
#[derive(Debug, Default, Serialize)]
struct Logprobs {
    tokens: Vec<String>,
    token_logprobs: Vec<f32>,
    top_logprobs: Vec<BTreeMap<String, f32>>,
    text_offset: Vec<usize>,
}

impl Logprobs {
    /// Adds `entries`, whose text starts at `offset` in the choice's text.
    fn extend(&mut self, entries: &[TokenLogprob], mut offset: usize) {
        for e in entries {
            self.tokens.push(e.token.clone());
            self.token_logprobs.push(e.logprob);
            self.top_logprobs.push(e.top.iter().map(|t| (t.token.clone(), t.logprob)).collect());
            self.text_offset.push(offset);
            offset += e.token.len();
        }
    }
}

/// `POST /v1/completions`.
pub async fn completions(
    State(brain): State<Arc<Brain>>,
    Extension(user): Extension<KeyUser>,
    body: Bytes,
) -> Result<Response, OpenAiError> {
    let request: TextRequest = super::parse_body(&body, "a completion request")?;
    let (prompts, mut req) = request.to_brain()?;
    req.model_id = super::model_id(&brain, &req.model_id);
    // Every prompt is started before any is read: they are written side by side in the slots.
    let mut replies = Vec::with_capacity(prompts.len());
    for text in &prompts {
        replies.push(
            brain.complete(user.0, req.clone(), request.prompt(text.clone())).await.map_err(OpenAiError::from_brain)?,
        );
    }
    let created = SystemTime::now();
    let head = Head {
        id: format!("cmpl-{}-{}", created.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()), replies[0].id),
        created: unix_seconds(created),
        model: request.model.clone(),
    };
    let echoes: Vec<String> = if request.echo { prompts } else { vec![String::new(); replies.len()] };
    let logprobs = request.logprobs.is_some();
    if request.stream.unwrap_or(false) {
        let include_usage = request.stream_options.as_ref().is_some_and(|o| o.include_usage);
        return Ok(streamed(head, replies, echoes, logprobs, include_usage));
    }
    let mut choices = Vec::with_capacity(replies.len());
    let mut usage = Usage::default();
    for (index, (mut reply, echo)) in replies.into_iter().zip(echoes).enumerate() {
        let mut text = echo;
        let mut lp = logprobs.then(Logprobs::default);
        let stats = loop {
            match reply.events.recv().await {
                Some(ChatEvent::Started { .. }) => {}
                Some(ChatEvent::Piece { text: piece, logprobs }) => {
                    if let Some(lp) = lp.as_mut() {
                        lp.extend(&logprobs, text.len());
                    }
                    text.push_str(&piece);
                }
                Some(ChatEvent::Done { stats }) => break stats,
                Some(ChatEvent::Error { error }) => return Err(OpenAiError::internal(error)),
                None => return Err(OpenAiError::internal("the answer ended without a word from the brain")),
            }
        };
        let finish = finish_reason(stats.finish).ok_or_else(stopped)?;
        usage.add(&stats);
        choices.push(TextChoice { text, index, logprobs: lp, finish_reason: Some(finish) });
    }
    let completion = TextCompletion {
        id: head.id,
        object: "text_completion",
        created: head.created,
        model: head.model,
        choices,
        usage: Some(usage),
    };
    Ok(Json(completion).into_response())
}

/// What every chunk of one answer repeats.
struct Head {
    id: String,
    created: u64,
    model: String,
}

impl Head {
    fn chunk(&self, choices: Vec<TextChoice>, usage: Option<Usage>) -> Bytes {
        event(&TextCompletion {
            id: self.id.clone(),
            object: "text_completion",
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
        })
    }
}

/// The answer as server-sent events: a chunk per piece of each prompt's reply (told apart by
/// `index`), a last chunk per reply with its `finish_reason`, the usage when asked, `[DONE]`.
/// A reply that fails or is stopped ends the stream with an `error` event.
fn streamed(head: Head, replies: Vec<Reply>, echoes: Vec<String>, logprobs: bool, include_usage: bool) -> Response {
    let count = replies.len();
    let events = futures::stream::select_all(
        replies.into_iter().enumerate().map(|(i, r)| events_of(r).map(move |e| (i, e)).boxed()),
    );
    struct State {
        head: Head,
        events: futures::stream::SelectAll<futures::stream::BoxStream<'static, (usize, Option<ChatEvent>)>>,
        echoes: Vec<String>,
        offsets: Vec<usize>,
        done: usize,
        usage: Usage,
    }
    let state = State { head, events, echoes, offsets: vec![0; count], done: 0, usage: Usage::default() };
    let stream = futures::stream::unfold(Some(state), move |state| async move {
        let mut st = state?;
        let (index, event) = st.events.next().await?;
        let choice = |text: String, lp: Option<Logprobs>, finish| TextChoice {
            text,
            index,
            logprobs: lp,
            finish_reason: finish,
        };
        let out: Vec<Bytes> = match event {
            Some(ChatEvent::Started { .. }) => {
                let echo = std::mem::take(&mut st.echoes[index]);
                st.offsets[index] = echo.len();
                if echo.is_empty() { Vec::new() } else { vec![st.head.chunk(vec![choice(echo, None, None)], None)] }
            }
            Some(ChatEvent::Piece { text, logprobs: entries }) => {
                let lp = logprobs.then(|| {
                    let mut lp = Logprobs::default();
                    lp.extend(&entries, st.offsets[index]);
                    lp
                });
                st.offsets[index] += text.len();
                vec![st.head.chunk(vec![choice(text, lp, None)], None)]
            }
            Some(ChatEvent::Done { stats }) => match finish_reason(stats.finish) {
                Some(finish) => {
                    st.usage.add(&stats);
                    st.done += 1;
                    let mut out = vec![st.head.chunk(vec![choice(String::new(), None, Some(finish))], None)];
                    if st.done == count {
                        if include_usage {
                            out.push(st.head.chunk(Vec::new(), Some(std::mem::take(&mut st.usage))));
                        }
                        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
                        return Some((futures::stream::iter(out), None));
                    }
                    out
                }
                None => return Some((futures::stream::iter(vec![super::stream::error_event(&stopped())]), None)),
            },
            Some(ChatEvent::Error { error }) => {
                return Some((
                    futures::stream::iter(vec![super::stream::error_event(&OpenAiError::internal(error))]),
                    None,
                ));
            }
            None => {
                let e = OpenAiError::internal("the answer ended without a word from the brain");
                return Some((futures::stream::iter(vec![super::stream::error_event(&e)]), None));
            }
        };
        Some((futures::stream::iter(out), Some(st)))
    })
    .flatten();
    sse(stream)
}

/// A reply's events as a stream: each event, or one `None` when the channel closed before the
/// last. The stream owns the reply, so dropping it (the client left) stops the generation.
fn events_of(reply: Reply) -> impl futures::Stream<Item = Option<ChatEvent>> + Send {
    futures::stream::unfold(Some(reply), |reply| async move {
        let mut reply = reply?;
        match reply.events.recv().await {
            Some(e) => {
                let last = matches!(e, ChatEvent::Done { .. } | ChatEvent::Error { .. });
                Some((Some(e), (!last).then_some(reply)))
            }
            None => Some((None, None)),
        }
    })
}
