//! The brain's endpoints: the installed models, a streamed chat reply, and Stop.
//!
//! `POST /api/chat` answers with newline-delimited JSON, one [`ChatEvent`] per line, written as
//! the model generates: `started` (with the id Stop names), `piece`s, then `done` or `error`.
//! A request the brain refuses before it starts gets an error status instead (404 not
//! installed, 409 not a usable model, 429 busy, 503 does not fit in memory now). Closing the
//! connection stops the generation within a token.

use super::ApiError;
#[cfg(feature = "ssr")]
use super::ssr;
use leptos::prelude::*;
use localbrain::chat::{BrainView, ChatMessage};
use server_fn::codec::{ByteStream, Json, Streaming};

/// The installed models (with their facts or problems) and whether the brain is busy.
#[server(prefix = "/api", endpoint = "brain", input = Json, output = Json)]
pub async fn brain_status() -> Result<BrainView, ApiError> {
    let (brain, _user) = ssr::brain_caller().await?;
    Ok(brain.view().await)
}

/// Streams a reply of `model_id` to the conversation `messages` (the last is the user's).
#[server(prefix = "/api", endpoint = "chat", input = Json, output = Streaming)]
pub async fn chat(
    model_id: String,
    messages: Vec<ChatMessage>,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
    seed: Option<u32>,
) -> Result<ByteStream<ApiError>, ApiError> {
    use futures::StreamExt;
    use localbrain::chat::ChatRequest;

    let (brain, user) = ssr::brain_caller().await?;
    let request = ChatRequest { model_id, messages, max_tokens, temperature, seed, ..Default::default() };
    let reply = brain.chat(user.id, request).await.map_err(ssr::brain_error)?;
    // The stream owns the reply: when the connection closes, the stream and the reply are
    // dropped, and the generation stops at its next token.
    let lines = futures::stream::unfold(reply, |mut reply| async move {
        let event = reply.events.recv().await?;
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Some((bytes::Bytes::from(line), reply))
    });
    Ok(ByteStream::new(lines.map(Ok::<_, ApiError>)))
}

/// Stops the caller's reply `id`; `false` when it had already ended.
#[server(prefix = "/api", endpoint = "chat/stop", input = Json, output = Json)]
pub async fn stop_chat(id: i64) -> Result<bool, ApiError> {
    let (brain, user) = ssr::brain_caller().await?;
    Ok(brain.stop(user.id, id))
}
