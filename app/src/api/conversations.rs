//! The card's kept conversations: the caller's latest (with the last one open), one reopened, and
//! a new one started. A conversation is always the caller's own: another user's id reads as 404,
//! the same as one that does not exist. The reply itself is written into it by `POST /api/chat`.

use super::ApiError;
#[cfg(feature = "ssr")]
use super::ssr;
use leptos::prelude::*;
use localbrain::conversation::{Conversation, ConversationSummary};
use serde::{Deserialize, Serialize};
use server_fn::codec::Json;

/// The caller's latest conversations, the most recent first, and that one with its messages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatsView {
    pub list: Vec<ConversationSummary>,
    pub open: Option<Conversation>,
}

/// The caller's latest conversations, with the most recent open.
#[server(prefix = "/api", endpoint = "conversations", input = Json, output = Json)]
pub async fn recent_chats() -> Result<ChatsView, ApiError> {
    use localbrain::store::conversations;
    let (engine, user) = ssr::caller().await?;
    let list = conversations::list(engine.db(), user.id).await.map_err(ssr::internal)?;
    let open = match list.first() {
        Some(latest) => conversations::get(engine.db(), user.id, latest.id).await.map_err(ssr::internal)?,
        None => None,
    };
    Ok(ChatsView { list, open })
}

/// Reopens the caller's conversation `id`: it becomes the latest (a reload shows it), with its
/// messages; or 404.
#[server(prefix = "/api", endpoint = "conversations/open", input = Json, output = Json)]
pub async fn open_chat(id: i64) -> Result<Conversation, ApiError> {
    use localbrain::store::conversations;
    let (engine, user) = ssr::caller().await?;
    if !conversations::touch(engine.db(), user.id, id).await.map_err(ssr::internal)? {
        return Err(not_found(id));
    }
    conversations::get(engine.db(), user.id, id).await.map_err(ssr::internal)?.ok_or_else(|| not_found(id))
}

/// Starts a conversation with `model_id`, titled by its first `question` (which the chat then
/// sends); the conversation as listed.
#[server(prefix = "/api", endpoint = "conversations/start", input = Json, output = Json)]
pub async fn start_chat(model_id: String, question: String) -> Result<ConversationSummary, ApiError> {
    let (engine, user) = ssr::caller().await?;
    if !localbrain::catalog::is_valid_model_id(&model_id) {
        return Err(ApiError::BadRequest { error: "model_id must be a catalog model id".into() });
    }
    if question.trim().is_empty() {
        return Err(ApiError::BadRequest { error: "a conversation starts with a question".into() });
    }
    localbrain::store::conversations::create(engine.db(), user.id, &model_id, &question).await.map_err(ssr::internal)
}

/// What a conversation the caller does not have reads as.
pub fn not_found(id: i64) -> ApiError {
    ApiError::NotFound { error: format!("you have no conversation {id}") }
}
