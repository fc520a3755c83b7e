//! API keys (issue 19): each user makes and revokes keys that programs send as
//! `Authorization: Bearer lb-…` to the OpenAI-compatible API. A key's secret is `lb-` and 256
//! random bits in hex, shown once; the table keeps only its SHA-256 ([`super::secrets`]) and its
//! first characters, so a copy of the database opens nothing. Revoking deletes the row, so a
//! revoked key fails on the very next request. Names are unique per user.

use super::secrets::{Secret, digest};
use super::users::User;
use super::{Db, StoreError, is_unique_violation};
pub use crate::keys::ApiKey;
use crate::keys::{KEY_PREFIX, NameError, SHOWN_CHARS, clean_name};
use crate::time::now_ms;

/// How stale a key's `last_used_at` may get before a request writes it again: a busy client
/// then writes once a minute, not on every request.
pub const TOUCH_AFTER_MS: i64 = 60_000;

/// Why a key was not made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    BadName(#[from] NameError),
    #[error("you already have a key called {name:?}: choose another name, or revoke that one first")]
    DuplicateName { name: String },
    #[error("cannot make the key")]
    Store(#[from] StoreError),
}

/// Makes a key called `name` (trimmed) for a user: the key as listed, and its secret, which
/// exists nowhere else from now on.
pub async fn create(db: &Db, user_id: i64, name: &str) -> Result<(ApiKey, Secret), KeyError> {
    let name = clean_name(name)?;
    let secret = Secret::with_prefix(KEY_PREFIX)?;
    let res = sqlx::query_as::<_, ApiKey>(
        "INSERT INTO api_keys (user_id, name, key_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5)
         RETURNING name, prefix, created_at, last_used_at",
    )
    .bind(user_id)
    .bind(name)
    .bind(digest(secret.expose()))
    .bind(&secret.expose()[..SHOWN_CHARS])
    .bind(now_ms())
    .fetch_one(&db.pool)
    .await;
    match res {
        Ok(key) => Ok((key, secret)),
        Err(e) if is_unique_violation(&e) => Err(KeyError::DuplicateName { name: name.to_string() }),
        Err(e) => Err(KeyError::Store(e.into())),
    }
}

/// A user's keys, oldest first.
pub async fn list(db: &Db, user_id: i64) -> Result<Vec<ApiKey>, StoreError> {
    Ok(sqlx::query_as::<_, ApiKey>(
        "SELECT name, prefix, created_at, last_used_at FROM api_keys WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(&db.pool)
    .await?)
}

/// Revokes a user's key by name (as typed, trimmed); whether there was one. The key fails from
/// the next request on.
pub async fn revoke(db: &Db, user_id: i64, name: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM api_keys WHERE user_id = $1 AND name = $2")
        .bind(user_id)
        .bind(name.trim())
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The user a key's secret belongs to; `None` for an unknown or revoked key. Records the use
/// when the last one recorded is [`TOUCH_AFTER_MS`] old or more.
pub async fn user_for_key(db: &Db, secret: &str) -> Result<Option<User>, StoreError> {
    let now = now_ms();
    let hash = digest(secret);
    let found: Option<(i64, String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT u.id, u.name, u.role, u.created_at, k.last_used_at FROM api_keys k JOIN users u ON u.id = k.user_id
         WHERE k.key_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(&db.pool)
    .await?;
    let Some((id, name, role, created_at, last_used_at)) = found else { return Ok(None) };
    if last_used_at.is_none_or(|t| now - t >= TOUCH_AFTER_MS) {
        // Conditional, so of two requests at once only one writes.
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $1 WHERE key_hash = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(now)
        .bind(&hash)
        .bind(now - TOUCH_AFTER_MS)
        .execute(&db.pool)
        .await?;
    }
    Ok(Some(User { id, name, role, created_at }))
}
