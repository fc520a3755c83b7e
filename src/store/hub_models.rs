//! Rows of `hub_models`: the models resolved on Hugging Face, each a catalog entry pinned to one
//! commit. Written once a reference resolves (before its download starts), read at start by
//! every process on the database so a hub model is a catalog model from then on.

use super::{Db, StoreError};
use crate::catalog::ModelEntry;
use crate::time::now_ms;

/// A hub model as the database keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct HubModelRow {
    pub entry: ModelEntry,
    /// How a person named it: `hf.co/ORG/REPO:QUANT`.
    pub reference: String,
    /// `ORG/REPO`, as the hub spells it.
    pub repo: String,
    /// The commit it is pinned to.
    pub revision: String,
    /// The file's path in the repo.
    pub file_path: String,
    /// The repo's page (its model card).
    pub card_url: String,
}

#[derive(sqlx::FromRow)]
struct SqlRow {
    reference: String,
    repo: String,
    revision: String,
    file_path: String,
    entry: String,
    card_url: String,
}

impl SqlRow {
    fn into_row(self) -> Result<HubModelRow, StoreError> {
        let entry = serde_json::from_str(&self.entry)
            .map_err(|e| StoreError::Corrupt(format!("hub model {} has an unreadable entry: {e}", self.repo)))?;
        Ok(HubModelRow {
            entry,
            reference: self.reference,
            repo: self.repo,
            revision: self.revision,
            file_path: self.file_path,
            card_url: self.card_url,
        })
    }
}

const COLUMNS: &str = "reference, repo, revision, file_path, entry, card_url";

/// Keeps a resolved model; a second resolution of the same id (a newer commit) replaces it.
pub async fn upsert(db: &Db, row: &HubModelRow) -> Result<(), StoreError> {
    let entry = serde_json::to_string(&row.entry).expect("a catalog entry always serializes");
    let now = now_ms();
    sqlx::query(
        "INSERT INTO hub_models (model_id, reference, repo, revision, file_path, entry, card_url, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
         ON CONFLICT (model_id) DO UPDATE SET reference = $2, repo = $3, revision = $4, file_path = $5,
           entry = $6, card_url = $7, updated_at = $8",
    )
    .bind(&row.entry.id)
    .bind(&row.reference)
    .bind(&row.repo)
    .bind(&row.revision)
    .bind(&row.file_path)
    .bind(entry)
    .bind(&row.card_url)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// One hub model by its local id.
pub async fn get(db: &Db, model_id: &str) -> Result<Option<HubModelRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM hub_models WHERE model_id = $1");
    let row = sqlx::query_as::<_, SqlRow>(&sql).bind(model_id).fetch_optional(&db.pool).await?;
    row.map(SqlRow::into_row).transpose()
}

/// Every hub model, oldest first.
pub async fn all(db: &Db) -> Result<Vec<HubModelRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM hub_models ORDER BY created_at, model_id");
    let rows = sqlx::query_as::<_, SqlRow>(&sql).fetch_all(&db.pool).await?;
    rows.into_iter().map(SqlRow::into_row).collect()
}
