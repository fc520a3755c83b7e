//! Rows of `installed_models`: one per model file localbrain installed or checked, keyed by the
//! catalog id. The file on disk is the truth about what is installed; a row only says when it
//! came and what its last SHA-256 check found. A row whose size differs from the file's is stale
//! (the file was replaced by hand) and is read as "not checked yet".

use super::{Db, StoreError};
use crate::installed::Check;
use crate::time::now_ms;

/// An `installed_models` row.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct InstalledRow {
    pub model_id: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub installed_at: i64,
    pub verified_at: i64,
    pub state: String,
}

impl InstalledRow {
    /// What the row's check says about a file of `size` bytes: a row for another size is stale.
    pub fn check_for(&self, size: u64) -> Check {
        match self.state.as_str() {
            _ if self.size_bytes.max(0) as u64 != size => Check::NotChecked,
            "verified" => Check::Verified,
            "damaged" => Check::Damaged,
            _ => Check::NotChecked,
        }
    }
}

/// Records a freshly installed (or found intact) file: installed and verified now.
pub async fn record_install(db: &Db, model_id: &str, size: u64, sha256: &str) -> Result<(), StoreError> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO installed_models (model_id, size_bytes, sha256, installed_at, verified_at, state)
         VALUES ($1, $2, $3, $4, $4, 'verified')
         ON CONFLICT (model_id) DO UPDATE SET size_bytes = $2, sha256 = $3, installed_at = $4,
           verified_at = $4, state = 'verified'",
    )
    .bind(model_id)
    .bind(size as i64)
    .bind(sha256)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Records an on-demand check of a file that is already there. A file without a row gets one,
/// dated `installed_at` (its modification time); a row keeps its install time.
pub async fn record_check(
    db: &Db,
    model_id: &str,
    size: u64,
    sha256: &str,
    ok: bool,
    installed_at: i64,
) -> Result<InstalledRow, StoreError> {
    let state = if ok { "verified" } else { "damaged" };
    Ok(sqlx::query_as::<_, InstalledRow>(
        "INSERT INTO installed_models (model_id, size_bytes, sha256, installed_at, verified_at, state)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (model_id) DO UPDATE SET size_bytes = $2, sha256 = $3, verified_at = $5, state = $6
         RETURNING model_id, size_bytes, sha256, installed_at, verified_at, state",
    )
    .bind(model_id)
    .bind(size as i64)
    .bind(sha256)
    .bind(installed_at)
    .bind(now_ms())
    .bind(state)
    .fetch_one(&db.pool)
    .await?)
}

/// The row of one model, if it has one.
pub async fn get(db: &Db, model_id: &str) -> Result<Option<InstalledRow>, StoreError> {
    Ok(sqlx::query_as::<_, InstalledRow>(
        "SELECT model_id, size_bytes, sha256, installed_at, verified_at, state FROM installed_models
         WHERE model_id = $1",
    )
    .bind(model_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// Every row.
pub async fn all(db: &Db) -> Result<Vec<InstalledRow>, StoreError> {
    Ok(sqlx::query_as::<_, InstalledRow>(
        "SELECT model_id, size_bytes, sha256, installed_at, verified_at, state FROM installed_models",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// Forgets a model whose file was deleted, and marks the complete downloads that installed it
/// "removed", in one transaction.
pub async fn forget(db: &Db, model_id: &str) -> Result<(), StoreError> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("DELETE FROM installed_models WHERE model_id = $1").bind(model_id).execute(&mut *tx).await?;
    sqlx::query(
        "UPDATE model_downloads SET removed_at = $1
         WHERE model_id = $2 AND status = 'complete' AND removed_at IS NULL",
    )
    .bind(now_ms())
    .bind(model_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
