//! Sign-in: one-time login links and browser sessions. Only SHA-256 digests of the secrets are
//! stored, so a leaked database opens no session. Secrets are 256 random bits, hex encoded
//! ([`super::secrets`]).
//!
//! A session ends when it has not been used for [`SessionRules::idle`], when
//! [`SessionRules::max`] has passed since sign-in (however much it is used), at sign-out, and
//! when `localbrain user logout` ends all of its user's. A new login link opens a new session
//! and leaves the others' clocks alone. Ended rows are swept ([`sweep`]).
//!
//! Hand-written rather than `tower-sessions` (weighed for issue 16): its sqlx stores key each
//! record by the session id itself, so a copy of the database would open sessions, where this
//! table holds only digests; they keep a serialized record per session where all we need is a
//! user id; and nothing in them finds a user's sessions, which `localbrain user logout` needs.

pub use super::secrets::Secret;
use super::secrets::digest;
use super::users::User;
use super::{Db, StoreError};
use crate::time::now_ms;
use std::time::Duration;

/// How long a login link works.
pub const LOGIN_TOKEN_TTL_MS: i64 = 15 * 60 * 1000;
/// When sessions end. The rules are read on every request, so shorter settings apply to
/// sessions already open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRules {
    /// A session not used for this long ends.
    pub idle: Duration,
    /// A session ends this long after sign-in.
    pub max: Duration,
}

impl Default for SessionRules {
    /// A week idle, a month in all.
    fn default() -> SessionRules {
        SessionRules { idle: Duration::from_secs(7 * 86_400), max: Duration::from_secs(30 * 86_400) }
    }
}

impl SessionRules {
    fn idle_ms(&self) -> i64 {
        ms(self.idle)
    }

    fn max_ms(&self) -> i64 {
        ms(self.max)
    }

    /// How stale a session's `last_seen_at` may get before a request writes it again. Writing
    /// on every request would put the card's poll (one a second) on the database; the idle
    /// clock needs to be right only to a fraction of itself.
    fn touch_after_ms(&self) -> i64 {
        (self.idle_ms() / 4).min(60_000)
    }

    /// How often ended sessions and spent login links are swept away.
    pub fn sweep_every(&self) -> Duration {
        self.idle.min(self.max).clamp(Duration::from_secs(1), Duration::from_secs(3600))
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
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
pub async fn redeem_login_token(
    db: &Db,
    token: &str,
    rules: &SessionRules,
) -> Result<Option<(User, Secret)>, StoreError> {
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
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $3, $4)",
    )
    .bind(digest(session.expose()))
    .bind(user_id)
    .bind(now)
    .bind(now.saturating_add(rules.max_ms()))
    .execute(&db.pool)
    .await?;
    let user =
        user_by_id(db, user_id).await?.ok_or_else(|| StoreError::CorruptRow("token for a missing user".into()))?;
    Ok(Some((user, session)))
}

/// The user a session cookie belongs to, if the session exists and has not ended under
/// `rules`; using it restarts its idle clock.
pub async fn user_for_session(db: &Db, session: &str, rules: &SessionRules) -> Result<Option<User>, StoreError> {
    let now = now_ms();
    let hash = digest(session);
    let found: Option<(i64, String, String, i64, i64)> = sqlx::query_as(
        "SELECT u.id, u.name, u.role, u.created_at, s.last_seen_at FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.created_at > $3 AND s.last_seen_at > $4",
    )
    .bind(&hash)
    .bind(now)
    .bind(now.saturating_sub(rules.max_ms()))
    .bind(now.saturating_sub(rules.idle_ms()))
    .fetch_optional(&db.pool)
    .await?;
    let Some((id, name, role, created_at, last_seen_at)) = found else { return Ok(None) };
    if now - last_seen_at >= rules.touch_after_ms() {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2 AND last_seen_at < $1")
            .bind(now)
            .bind(&hash)
            .execute(&db.pool)
            .await?;
    }
    Ok(Some(User { id, name, role, created_at }))
}

/// What [`sweep`] removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub sessions: u64,
    pub login_tokens: u64,
}

/// Deletes the sessions that have ended under `rules` and the login links that can no longer
/// be used (expired; used ones once they would have expired), so the tables hold only what
/// still opens something.
pub async fn sweep(db: &Db, rules: &SessionRules) -> Result<Swept, StoreError> {
    let now = now_ms();
    let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR created_at <= $2 OR last_seen_at <= $3")
        .bind(now)
        .bind(now.saturating_sub(rules.max_ms()))
        .bind(now.saturating_sub(rules.idle_ms()))
        .execute(&db.pool)
        .await?
        .rows_affected();
    let login_tokens = sqlx::query("DELETE FROM login_tokens WHERE expires_at <= $1")
        .bind(now)
        .execute(&db.pool)
        .await?
        .rows_affected();
    Ok(Swept { sessions, login_tokens })
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
