//! Users. Sign-in (login links, sessions) builds on these rows.

use super::{Db, StoreError, is_unique_violation};
use crate::time::now_ms;

/// A user row. Nothing secret lives here.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub created_at: i64,
}

/// The name of the local admin that the CLI's downloads belong to.
pub const ADMIN_NAME: &str = "admin";

/// Creates a user; `Ok(None)` when the name is taken.
pub async fn create(db: &Db, name: &str, role: &str) -> Result<Option<User>, StoreError> {
    let res = sqlx::query_as::<_, User>(
        "INSERT INTO users (name, role, created_at) VALUES ($1, $2, $3)
         RETURNING id, name, role, created_at",
    )
    .bind(name)
    .bind(role)
    .bind(now_ms())
    .fetch_one(&db.pool)
    .await;
    match res {
        Ok(u) => Ok(Some(u)),
        Err(e) if is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Finds a user by name.
pub async fn by_name(db: &Db, name: &str) -> Result<Option<User>, StoreError> {
    Ok(sqlx::query_as::<_, User>("SELECT id, name, role, created_at FROM users WHERE name = $1")
        .bind(name)
        .fetch_optional(&db.pool)
        .await?)
}

/// How many users exist (0 on a first run).
pub async fn count(db: &Db) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users").fetch_one(&db.pool).await?;
    Ok(n)
}

/// The local admin, created if missing. Returns the user and whether it was just made.
/// Safe under a race: a second creator finds the first one's row.
pub async fn ensure_admin(db: &Db) -> Result<(User, bool), StoreError> {
    if let Some(u) = by_name(db, ADMIN_NAME).await? {
        return Ok((u, false));
    }
    match create(db, ADMIN_NAME, "admin").await? {
        Some(u) => Ok((u, true)),
        None => {
            let u = by_name(db, ADMIN_NAME)
                .await?
                .ok_or_else(|| StoreError::CorruptRow("admin vanished right after a name clash".into()))?;
            Ok((u, false))
        }
    }
}

/// Every user, by id (few: names for the admin's list of unfinished downloads).
pub async fn all(db: &Db) -> Result<Vec<User>, StoreError> {
    Ok(sqlx::query_as::<_, User>("SELECT id, name, role, created_at FROM users ORDER BY id")
        .fetch_all(&db.pool)
        .await?)
}
