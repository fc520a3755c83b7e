//! A streamed answer as server-sent events: a first chunk with the role, one
//! `chat.completion.chunk` per piece as the model writes it, a last one with `finish_reason`
//! (then the usage when asked), and `data: [DONE]`. When tools were offered, the text of a call
//! is held back as it is written and sent, read, as `delta.tool_calls` at the end. A failure
//! part-way is an `error` event in OpenAI's shape before the end. The stream owns the
//! [`Reply`]: when the client goes away the body is dropped, and with it the reply, which stops
//! the generation at its next token.

use super::error::OpenAiError;
use super::wire::{ChatLogprobs, Chunk, ChunkChoice, Delta, ToolCallDelta, Usage, WireToolCall, finish_reason};
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use localbrain::brain::{Reply, tool_calls};
use localbrain::chat::{ChatEvent, ToolDef};

/// What every chunk of one answer repeats.
pub struct Answer {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub include_usage: bool,
    /// Whether each piece carries its tokens' log-probabilities.
    pub logprobs: bool,
    /// The tools the model may call: their calls are read out of the text.
    pub tools: Vec<ToolDef>,
    /// Text not sent yet because it is, or may be the start of, a tool call.
    pub held: String,
    /// Whether text other than blank has been sent (a Llama 3 call is a whole reply).
    pub sent_words: bool,
}

impl Answer {
    /// One chunk with the choice it carries, or (the last, when usage was asked for) none.
    fn chunk_of(&self, choice: Option<ChunkChoice<'_>>, usage: Option<Usage>) -> Bytes {
        self.event(&Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: choice.into_iter().collect(),
            usage,
        })
    }

    fn chunk(&self, delta: Delta<'_>, finish: Option<&'static str>, logprobs: Option<ChatLogprobs>) -> Bytes {
        self.chunk_of(Some(ChunkChoice { index: 0, delta, finish_reason: finish, logprobs }), None)
    }

    fn event(&self, value: &impl serde::Serialize) -> Bytes {
        event(value)
    }

    /// The events for one event of the brain; the last batch ends the stream.
    fn events_for(&mut self, event: ChatEvent) -> (Vec<Bytes>, bool) {
        match event {
            ChatEvent::Started { .. } => (
                vec![self.chunk(Delta { role: Some("assistant"), content: Some(""), ..Delta::default() }, None, None)],
                false,
            ),
            ChatEvent::Piece { text, logprobs } => {
                let logprobs = self.logprobs.then(|| ChatLogprobs::of(&logprobs));
                let text = if self.tools.is_empty() {
                    text
                } else {
                    self.held.push_str(&text);
                    let cut = tool_calls::hold_from(&self.held, !self.sent_words);
                    let rest = self.held.split_off(cut);
                    let sent = std::mem::replace(&mut self.held, rest);
                    self.sent_words |= !sent.trim().is_empty();
                    sent
                };
                if text.is_empty() && logprobs.is_none() {
                    return (Vec::new(), false);
                }
                (vec![self.chunk(Delta { content: Some(&text), ..Delta::default() }, None, logprobs)], false)
            }
            ChatEvent::Done { stats } => match finish_reason(stats.finish) {
                Some(mut finish) => {
                    let mut out = Vec::new();
                    let (content, calls) = tool_calls::parse(&std::mem::take(&mut self.held), &self.tools);
                    if !content.is_empty() {
                        out.push(self.chunk(Delta { content: Some(&content), ..Delta::default() }, None, None));
                    }
                    if !calls.is_empty() {
                        finish = "tool_calls";
                        let deltas = calls
                            .iter()
                            .enumerate()
                            .map(|(i, c)| ToolCallDelta { index: i as u32, call: WireToolCall::from(c) })
                            .collect();
                        out.push(self.chunk(Delta { tool_calls: Some(deltas), ..Delta::default() }, None, None));
                    }
                    out.push(self.chunk(Delta::default(), Some(finish), None));
                    if self.include_usage {
                        out.push(self.chunk_of(None, Some(Usage::from(&stats))));
                    }
                    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
                    (out, true)
                }
                None => (vec![self.error(&stopped())], true),
            },
            ChatEvent::Error { error } => (vec![self.error(&OpenAiError::internal(error))], true),
        }
    }

    fn error(&self, e: &OpenAiError) -> Bytes {
        error_event(e)
    }
}

/// One server-sent event carrying `value` as JSON.
pub fn event(value: &impl serde::Serialize) -> Bytes {
    let json = serde_json::to_string(value).unwrap_or_default();
    Bytes::from(format!("data: {json}\n\n"))
}

/// The `error` event that ends a stream which failed part-way, in OpenAI's error shape.
pub fn error_event(e: &OpenAiError) -> Bytes {
    #[derive(serde::Serialize)]
    struct Wrapped<'a> {
        error: super::error::Detail<'a>,
    }
    event(&Wrapped { error: e.detail() })
}

/// A reply that ended before its end: stopped from the card, or the server shutting down.
pub fn stopped() -> OpenAiError {
    OpenAiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "the answer was stopped before its end (its user pressed Stop, or the server is shutting down)",
        "server_error",
        Some("stopped"),
    )
}

/// The streamed response for `reply`.
pub fn respond(answer: Answer, reply: Reply) -> Response {
    let events = futures::stream::unfold(Some((answer, reply)), |state| async move {
        let (mut answer, mut reply) = state?;
        let (bytes, last) = match reply.events.recv().await {
            Some(event) => answer.events_for(event),
            None => {
                (vec![answer.error(&OpenAiError::internal("the answer ended without a word from the brain"))], true)
            }
        };
        Some((futures::stream::iter(bytes), (!last).then_some((answer, reply))))
    })
    .flatten();
    sse(events)
}

/// A `text/event-stream` response of `events`, sent as they come.
pub fn sse(events: impl futures::Stream<Item = Bytes> + Send + 'static) -> Response {
    let mut response = Body::from_stream(events.map(Ok::<_, std::convert::Infallible>)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx buffers a proxied response unless told not to: the pieces must arrive as written.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
