//! Kept conversations (issue 27): each user's chats in the card, so a reload or a restart shows
//! them again. Every query names the user: another user's conversation reads as absent. A
//! conversation is written whole, in one transaction, so a reader never sees half a turn.

use super::{Db, StoreError};
use crate::chat::{ChatMessage, Role};
use crate::conversation::{Conversation, ConversationSummary, LISTED, title_of};
use crate::time::now_ms;

/// Starts a conversation for `user_id` with `model_id`, titled by its first question.
pub async fn create(db: &Db, user_id: i64, model_id: &str, question: &str) -> Result<ConversationSummary, StoreError> {
    let now = now_ms();
    Ok(sqlx::query_as::<_, ConversationSummary>(
        "INSERT INTO conversations (user_id, model_id, title, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
         RETURNING id, model_id, title, updated_at",
    )
    .bind(user_id)
    .bind(model_id)
    .bind(title_of(question))
    .bind(now)
    .fetch_one(&db.pool)
    .await?)
}

/// A user's latest conversations, the most recent first.
pub async fn list(db: &Db, user_id: i64) -> Result<Vec<ConversationSummary>, StoreError> {
    Ok(sqlx::query_as::<_, ConversationSummary>(
        "SELECT id, model_id, title, updated_at FROM conversations WHERE user_id = $1
         ORDER BY updated_at DESC, id DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(LISTED as i64)
    .fetch_all(&db.pool)
    .await?)
}

/// A user's conversation `id` with its messages; `None` when there is none of theirs.
pub async fn get(db: &Db, user_id: i64, id: i64) -> Result<Option<Conversation>, StoreError> {
    let Some(summary) = sqlx::query_as::<_, ConversationSummary>(
        "SELECT id, model_id, title, updated_at FROM conversations WHERE id = $1 AND user_id = $2",
    )
    .bind(id)
    .bind(user_id)
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(None);
    };
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT role, content FROM conversation_messages WHERE conversation_id = $1 ORDER BY position")
            .bind(id)
            .fetch_all(&db.pool)
            .await?;
    let messages = rows
        .into_iter()
        .map(|(role, content)| {
            let role = Role::parse(&role).ok_or_else(|| StoreError::CorruptRow(format!("message role {role:?}")))?;
            Ok(ChatMessage::new(role, content))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(Conversation { summary, messages }))
}

/// Marks a user's conversation `id` as the one in use now (reopened), so a reload shows it;
/// `false` when there is none of theirs.
pub async fn touch(db: &Db, user_id: i64, id: i64) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE conversations SET updated_at = $1 WHERE id = $2 AND user_id = $3")
        .bind(now_ms())
        .bind(id)
        .bind(user_id)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Writes a user's conversation `id` as `messages`, held with `model_id` now; `false` when
/// there is none of theirs.
pub async fn save(
    db: &Db,
    user_id: i64,
    id: i64,
    model_id: &str,
    messages: &[ChatMessage],
) -> Result<bool, StoreError> {
    let mut tx = db.pool.begin().await?;
    let owned = sqlx::query("UPDATE conversations SET model_id = $1, updated_at = $2 WHERE id = $3 AND user_id = $4")
        .bind(model_id)
        .bind(now_ms())
        .bind(id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    if owned.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM conversation_messages WHERE conversation_id = $1").bind(id).execute(&mut *tx).await?;
    for (position, m) in messages.iter().enumerate() {
        sqlx::query(
            "INSERT INTO conversation_messages (conversation_id, position, role, content) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(position as i64)
        .bind(m.role.as_str())
        .bind(&m.content)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}
