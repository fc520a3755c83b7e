//! The brain's endpoints: the installed models, a streamed chat reply, and Stop.
//!
//! `POST /api/chat` answers with newline-delimited JSON, one [`ChatEvent`] per line, written as
//! the model generates: `started` (with the id Stop names), `piece`s, then `done` or `error`.
//! A request the brain refuses before it starts gets an error status instead (404 not
//! installed, 409 not a usable model, 429 busy, 503 does not fit in memory now). Closing the
//! connection stops the generation within a token.
//!
//! With a `conversation_id` (one of the caller's, else 404) the conversation is kept: the
//! messages sent are written before the reply starts, and the reply (as far as it got, if it
//! was stopped or the page left) once it ends.

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
    conversation_id: Option<i64>,
) -> Result<ByteStream<ApiError>, ApiError> {
    use futures::StreamExt;
    use localbrain::chat::{ChatEvent, ChatRequest};

    let (brain, user) = ssr::brain_caller().await?;
    let request = ChatRequest { model_id, messages, max_tokens, temperature, seed, ..Default::default() };
    let mut transcript = match conversation_id {
        Some(id) => Some(kept::Transcript::start(user.id, id, &request).await?),
        None => None,
    };
    let reply = brain.chat(user.id, request).await.map_err(ssr::brain_error)?;
    // The stream owns the reply: when the connection closes, the stream and the reply are
    // dropped, and the generation stops at its next token (the transcript, dropped with them,
    // keeps what was written).
    let lines = futures::stream::unfold((reply, transcript.take()), |(mut reply, mut transcript)| async move {
        let event = reply.events.recv().await?;
        if let Some(t) = transcript.as_mut() {
            match &event {
                ChatEvent::Piece { text, .. } => t.piece(text),
                ChatEvent::Done { .. } | ChatEvent::Error { .. } => t.keep().await,
                ChatEvent::Started { .. } => {}
            }
        }
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        Some((bytes::Bytes::from(line), (reply, transcript)))
    });
    Ok(ByteStream::new(lines.map(Ok::<_, ApiError>)))
}

/// Kept conversations: the messages sent, then the reply.
#[cfg(feature = "ssr")]
mod kept {
    use super::{ApiError, ssr};
    use localbrain::chat::{ChatMessage, ChatRequest, Role};
    use localbrain::store::{Db, conversations};

    /// A reply being written into a kept conversation.
    pub struct Transcript {
        db: Db,
        user_id: i64,
        id: i64,
        model_id: String,
        messages: Vec<ChatMessage>,
        reply: String,
        kept: bool,
        /// Where a failed write is noted: logged with the chat request, even after its answer.
        errors: Option<ssr::RequestErrors>,
    }

    impl Transcript {
        /// Writes the messages of `request` into the caller's conversation `id` (404 if it is
        /// not theirs) before the reply starts.
        pub async fn start(user_id: i64, id: i64, request: &ChatRequest) -> Result<Transcript, ApiError> {
            let (engine, _) = ssr::caller().await?;
            let db = engine.db().clone();
            let saved = conversations::save(&db, user_id, id, &request.model_id, &request.messages)
                .await
                .map_err(ssr::internal)?;
            if !saved {
                return Err(crate::api::not_found(id));
            }
            Ok(Transcript {
                db,
                user_id,
                id,
                model_id: request.model_id.clone(),
                messages: request.messages.clone(),
                reply: String::new(),
                kept: false,
                errors: ssr::request_errors(),
            })
        }

        pub fn piece(&mut self, text: &str) {
            self.reply.push_str(text);
        }

        /// Writes the reply into the conversation before its last line goes out, so the next
        /// turn (or a reload) finds it there.
        pub async fn keep(&mut self) {
            if let Some(save) = self.take() {
                save.await;
            }
        }

        /// The write of the reply so far, once; `None` when there is nothing to write.
        fn take(&mut self) -> Option<impl Future<Output = ()> + use<>> {
            if std::mem::replace(&mut self.kept, true) || self.reply.is_empty() {
                return None;
            }
            let mut messages = std::mem::take(&mut self.messages);
            messages.push(ChatMessage::new(Role::Assistant, std::mem::take(&mut self.reply)));
            let (db, user_id, id, model_id) = (self.db.clone(), self.user_id, self.id, self.model_id.clone());
            let errors = self.errors.clone();
            Some(async move {
                if let Err(e) = conversations::save(&db, user_id, id, &model_id, &messages).await {
                    ssr::note(errors.as_ref(), format!("the reply in conversation {id} could not be kept: {e}"));
                }
            })
        }
    }

    impl Drop for Transcript {
        /// The page left mid-reply: what was written is kept, in the background.
        fn drop(&mut self) {
            if let Some(save) = self.take() {
                tokio::spawn(save);
            }
        }
    }
}

/// Stops the caller's reply `id`; `false` when it had already ended.
#[server(prefix = "/api", endpoint = "chat/stop", input = Json, output = Json)]
pub async fn stop_chat(id: i64) -> Result<bool, ApiError> {
    let (brain, user) = ssr::brain_caller().await?;
    Ok(brain.stop(user.id, id))
}
