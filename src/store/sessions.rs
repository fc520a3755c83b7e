//! Sign-in: one-time login links and browser sessions. Only SHA-256 digests of the secrets are
//! stored, so a leaked database opens no session. Secrets are 256 random bits, hex encoded.

use super::users::User;
use super::{Db, StoreError};
use crate::time::now_ms;
use sha2::{Digest, Sha256};

/// How long a login link works.
pub const LOGIN_TOKEN_TTL_MS: i64 = 15 * 60 * 1000;
/// How long a session lasts.
pub const SESSION_TTL_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// A secret handed to the user once (a login token or a session cookie value). Its `Debug`
/// never shows the value and it is never serialized.
pub struct Secret(String);

impl Secret {
    fn new() -> Result<Secret, StoreError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::CorruptRow(format!("no randomness: {e}")))?;
        Ok(Secret(hex(&bytes)))
    }

    /// The value, for the URL or the cookie.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What the database keeps of a secret: its SHA-256, hex encoded.
fn digest(secret: &str) -> String {
    format!("{:x}", Sha256::digest(secret.as_bytes()))
}

/// Lowercase hex of `bytes`, two digits each.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes a one-time login token for a user, valid for 15 minutes.
pub async fn create_login_token(db: &Db, user_id: i64) -> Result<Secret, StoreError> {
    let token = Secret::new()?;
    sqlx::query("INSERT INTO login_tokens (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
        .bind(digest(token.expose()))
        .bind(user_id)
        .bind(now_ms() + LOGIN_TOKEN_TTL_MS)
        .execute(&db.pool)
        .await?;
    Ok(token)
}

/// Spends a login token: the first use within its lifetime opens a session and returns its
/// secret; a used, expired or unknown token gives `None`. Single use holds under races: the
/// token is marked used by a conditional update that only one caller can win.
pub async fn redeem_login_token(db: &Db, token: &str) -> Result<Option<(User, Secret)>, StoreError> {
    let now = now_ms();
    let won: Option<(i64,)> = sqlx::query_as(
        "UPDATE login_tokens SET used_at = $1
         WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1
         RETURNING user_id",
    )
    .bind(now)
    .bind(digest(token))
    .fetch_optional(&db.pool)
    .await?;
    let Some((user_id,)) = won else { return Ok(None) };
    let session = Secret::new()?;
    sqlx::query("INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(digest(session.expose()))
        .bind(user_id)
        .bind(now)
        .bind(now + SESSION_TTL_MS)
        .execute(&db.pool)
        .await?;
    let user =
        user_by_id(db, user_id).await?.ok_or_else(|| StoreError::CorruptRow("token for a missing user".into()))?;
    Ok(Some((user, session)))
}

/// The user a session cookie belongs to, if the session exists and has not expired.
pub async fn user_for_session(db: &Db, session: &str) -> Result<Option<User>, StoreError> {
    Ok(sqlx::query_as::<_, User>(
        "SELECT u.id, u.name, u.role, u.created_at FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = $1 AND s.expires_at > $2",
    )
    .bind(digest(session))
    .bind(now_ms())
    .fetch_optional(&db.pool)
    .await?)
}

/// Ends a session; whether there was one.
pub async fn delete_session(db: &Db, session: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(digest(session)).execute(&db.pool).await?;
    Ok(done.rows_affected() > 0)
}

/// Ends every session of a user (signed out everywhere); how many there were.
pub async fn delete_user_sessions(db: &Db, user_id: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(&db.pool).await?;
    Ok(done.rows_affected())
}

async fn user_by_id(db: &Db, id: i64) -> Result<Option<User>, StoreError> {
    Ok(sqlx::query_as::<_, User>("SELECT id, name, role, created_at FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?)
}
