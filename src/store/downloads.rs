//! Rows of `model_downloads`. Every status write is a compare-and-set: it names the statuses it
//! may come from (those that [`DownloadStatus::can_become`] the new one), so a write that lost a
//! race (a runner finishing after a cancel) changes nothing and says so.
//!
//! Queries a user can reach take the user's id and scope by it in SQL; the `*_any_user`
//! functions are for the engine and boot recovery only.

use super::{Db, StoreError};
use crate::status::DownloadStatus;
use crate::time::now_ms;
use crate::view::{DownloadView, percent};

/// A `model_downloads` row.
#[derive(Clone, Debug, PartialEq)]
pub struct DownloadRow {
    pub id: i64,
    pub user_id: i64,
    pub model_id: String,
    pub status: DownloadStatus,
    pub bytes_downloaded: u64,
    pub total_bytes: u64,
    pub sha256_expected: String,
    pub validator: Option<String>,
    pub target_path: String,
    pub partial_path: String,
    pub error: Option<String>,
    /// The technical account behind `error` (its causes), for "Details".
    pub error_detail: Option<String>,
    /// A failed row's kind and facts (`engine::Failure` as JSON), which its words are made from
    /// when it is read; `None` for rows failed before it was kept (their `error` stands).
    pub error_kind: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub paused_at: Option<i64>,
    pub completed_at: Option<i64>,
    /// Per-segment progress of a parallel download (see `engine::segments`); `None` for one
    /// stream.
    pub segments: Option<String>,
    /// When the model this download installed was deleted (complete rows only).
    pub removed_at: Option<i64>,
    /// The process running it, and how long its claim holds (`store::leases`).
    pub runner: Option<String>,
    pub lease_until: Option<i64>,
    /// The speed its runner last measured, bytes per second.
    pub speed_bps: Option<u64>,
    /// The models folder its partial is in (`engine::instance`).
    pub folder_id: Option<String>,
    /// The download whose transfer this one shares (`store::carriers`); `None` when it carries
    /// its own.
    pub carrier_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
pub(super) struct SqlRow {
    id: i64,
    user_id: i64,
    model_id: String,
    status: String,
    bytes_downloaded: i64,
    total_bytes: i64,
    sha256_expected: String,
    validator: Option<String>,
    target_path: String,
    partial_path: String,
    error: Option<String>,
    error_detail: Option<String>,
    error_kind: Option<String>,
    created_at: i64,
    updated_at: i64,
    paused_at: Option<i64>,
    completed_at: Option<i64>,
    segments: Option<String>,
    removed_at: Option<i64>,
    runner: Option<String>,
    lease_until: Option<i64>,
    speed_bps: Option<i64>,
    folder_id: Option<String>,
    carrier_id: Option<i64>,
}

impl SqlRow {
    pub(super) fn into_row(self) -> Result<DownloadRow, StoreError> {
        let status = DownloadStatus::parse(&self.status)
            .ok_or_else(|| StoreError::CorruptRow(format!("download {} has status {:?}", self.id, self.status)))?;
        Ok(DownloadRow {
            id: self.id,
            user_id: self.user_id,
            model_id: self.model_id,
            status,
            bytes_downloaded: self.bytes_downloaded.max(0) as u64,
            total_bytes: self.total_bytes.max(0) as u64,
            sha256_expected: self.sha256_expected,
            validator: self.validator,
            target_path: self.target_path,
            partial_path: self.partial_path,
            error: self.error,
            error_detail: self.error_detail,
            error_kind: self.error_kind,
            created_at: self.created_at,
            updated_at: self.updated_at,
            paused_at: self.paused_at,
            completed_at: self.completed_at,
            segments: self.segments,
            removed_at: self.removed_at,
            runner: self.runner,
            lease_until: self.lease_until,
            speed_bps: self.speed_bps.map(|s| s.max(0) as u64),
            folder_id: self.folder_id,
            carrier_id: self.carrier_id,
        })
    }
}

pub(super) const COLUMNS: &str = "id, user_id, model_id, status, bytes_downloaded, total_bytes, \
    sha256_expected, validator, target_path, partial_path, error, error_detail, error_kind, created_at, updated_at, \
    paused_at, completed_at, segments, removed_at, runner, lease_until, speed_bps, folder_id, carrier_id";

/// What a new download needs. The partial path is made from the row id once it exists.
#[derive(Clone, Debug)]
pub struct NewDownload<'a> {
    pub user_id: i64,
    pub model_id: &'a str,
    pub total_bytes: u64,
    pub sha256_expected: &'a str,
    pub target_path: &'a str,
    /// The process that will run it, claiming it in the same write (`store::leases`).
    pub claim: Option<Claim<'a>>,
    /// The running download of the same model it joins instead (`store::carriers`).
    pub carrier_id: Option<i64>,
}

/// A claim written with the row's move to pending (a new download, a resume), so a pending
/// row always names the process that will run it: one killed before its runner started is
/// then seen to be gone, not waited for.
#[derive(Clone, Copy, Debug)]
pub struct Claim<'a> {
    pub runner: &'a str,
    pub folder_id: &'a str,
    pub lease_until: i64,
}

impl DownloadRow {
    /// The row as the UI shows it, with live speed and ETA from the engine's memory.
    pub fn to_view(&self, speed_bps: u64, eta_seconds: Option<u64>) -> DownloadView {
        DownloadView {
            id: self.id,
            model_id: self.model_id.clone(),
            status: self.status,
            bytes_downloaded: self.bytes_downloaded,
            total_bytes: self.total_bytes,
            percent: percent(self.bytes_downloaded, self.total_bytes),
            speed_bps,
            eta_seconds,
            error: self.error.clone(),
            error_detail: self.error_detail.clone(),
            paused_by: None,
            retrying: None,
            target_path: (self.status == DownloadStatus::Complete).then(|| self.target_path.clone()),
            created_at: self.created_at,
            updated_at: self.updated_at,
            paused_at: self.paused_at,
            completed_at: self.completed_at,
            removed_at: self.removed_at,
        }
    }
}

/// Inserts a pending download, or returns the user's open one for that model.
/// `partial_for(id)` names the partial file for the new row's id.
/// Returns the row and whether it was created. The unique partial index decides races.
pub async fn insert_or_get_open(
    db: &Db,
    new: &NewDownload<'_>,
    partial_for: impl Fn(i64) -> String,
) -> Result<(DownloadRow, bool), StoreError> {
    let mut tx = db.pool.begin().await?;
    let now = now_ms();
    let inserted: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO model_downloads
           (user_id, model_id, status, bytes_downloaded, total_bytes, sha256_expected,
            target_path, partial_path, created_at, updated_at)
         VALUES ($1, $2, 'pending', 0, $3, $4, $5, '', $6, $6)
         ON CONFLICT DO NOTHING
         RETURNING id",
    )
    .bind(new.user_id)
    .bind(new.model_id)
    .bind(new.total_bytes as i64)
    .bind(new.sha256_expected)
    .bind(new.target_path)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id,)) = inserted else {
        tx.rollback().await?;
        let open = open_for(db, new.user_id, new.model_id)
            .await?
            .ok_or_else(|| StoreError::CorruptRow("insert clashed but no open download was found".into()))?;
        return Ok((open, false));
    };
    sqlx::query(
        "UPDATE model_downloads SET partial_path = $1, runner = $2, folder_id = $3, lease_until = $4, carrier_id = $5
         WHERE id = $6",
    )
    .bind(partial_for(id))
    .bind(new.claim.map(|c| c.runner))
    .bind(new.claim.map(|c| c.folder_id))
    .bind(new.claim.map(|c| c.lease_until))
    .bind(new.carrier_id)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let row = get_any_user(db, id)
        .await?
        .ok_or_else(|| StoreError::CorruptRow(format!("download {id} vanished after insert")))?;
    Ok((row, true))
}

/// The user's open (non-terminal) download of a model, if any.
pub async fn open_for(db: &Db, user_id: i64, model_id: &str) -> Result<Option<DownloadRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM model_downloads
         WHERE user_id = $1 AND model_id = $2 AND status NOT IN ('complete', 'cancelled')"
    );
    let row = sqlx::query_as::<_, SqlRow>(&sql).bind(user_id).bind(model_id).fetch_optional(&db.pool).await?;
    row.map(SqlRow::into_row).transpose()
}

/// How many downloads of a model are open, whoever owns them (what a cancel asks before it
/// removes a split model's parts in place).
pub async fn open_for_model(db: &Db, model_id: &str) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM model_downloads WHERE model_id = $1 AND status NOT IN ('complete', 'cancelled')",
    )
    .bind(model_id)
    .fetch_one(&db.pool)
    .await?;
    Ok(n)
}

/// One of the user's downloads; `None` also when it belongs to someone else.
pub async fn get(db: &Db, user_id: i64, id: i64) -> Result<Option<DownloadRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM model_downloads WHERE id = $1 AND user_id = $2");
    let row = sqlx::query_as::<_, SqlRow>(&sql).bind(id).bind(user_id).fetch_optional(&db.pool).await?;
    row.map(SqlRow::into_row).transpose()
}

/// A download whoever owns it. For the engine and boot recovery, never for a request.
pub async fn get_any_user(db: &Db, id: i64) -> Result<Option<DownloadRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM model_downloads WHERE id = $1");
    let row = sqlx::query_as::<_, SqlRow>(&sql).bind(id).fetch_optional(&db.pool).await?;
    row.map(SqlRow::into_row).transpose()
}

/// The user's downloads, newest first.
pub async fn list(db: &Db, user_id: i64) -> Result<Vec<DownloadRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM model_downloads WHERE user_id = $1 ORDER BY created_at DESC, id DESC");
    let rows = sqlx::query_as::<_, SqlRow>(&sql).bind(user_id).fetch_all(&db.pool).await?;
    rows.into_iter().map(SqlRow::into_row).collect()
}

/// Every row in the given statuses, any user. For boot recovery.
pub async fn in_statuses_any_user(db: &Db, statuses: &[DownloadStatus]) -> Result<Vec<DownloadRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM model_downloads WHERE status IN ({})", in_list(statuses));
    let rows = sqlx::query_as::<_, SqlRow>(&sql).fetch_all(&db.pool).await?;
    rows.into_iter().map(SqlRow::into_row).collect()
}

/// Moves a download to `to` if its current status allows it; returns whether the row changed.
/// `error` is stored with the move (cleared when `None`). Pause and completion stamp their times.
pub async fn set_status(db: &Db, id: i64, to: DownloadStatus, error: Option<&str>) -> Result<bool, StoreError> {
    Ok(move_to(db, id, to, error).await?.is_some())
}

/// Marks a download failed with the words a person reads, the technical `detail` behind them
/// and the failure's `kind` (what the words are made from when the row is read), if its status
/// allows it; returns whether the row changed.
pub async fn set_failed(db: &Db, id: i64, words: &str, detail: &str, kind: Option<&str>) -> Result<bool, StoreError> {
    let why = Why { detail: Some(detail), kind };
    Ok(write_status(db, id, DownloadStatus::Failed, Some(words), why, None).await?.is_some())
}

/// Pauses a download on localbrain's behalf (not the user's), keeping why as the row's kind so
/// the card decides on the value; returns whether the row changed.
pub async fn set_paused_by(db: &Db, id: i64, reason: crate::view::PauseReason) -> Result<bool, StoreError> {
    let kind = reason.to_kind();
    let why = Why { detail: None, kind: Some(&kind) };
    Ok(write_status(db, id, DownloadStatus::Paused, Some(reason.note()), why, None).await?.is_some())
}

/// What a failed row keeps beside its words.
#[derive(Clone, Copy, Default)]
struct Why<'a> {
    detail: Option<&'a str>,
    kind: Option<&'a str>,
}

/// [`set_status`] that returns the row as the write left it (`UPDATE ... RETURNING`, one round
/// trip), or `None` when its status did not allow the move.
pub async fn move_to(
    db: &Db,
    id: i64,
    to: DownloadStatus,
    error: Option<&str>,
) -> Result<Option<DownloadRow>, StoreError> {
    write_status(db, id, to, error, Why::default(), None).await
}

/// A resume: back to pending with the error cleared, claimed by the process that will run it
/// in the same write; `None` when its status did not allow the move.
pub async fn resume_claimed(db: &Db, id: i64, claim: &Claim<'_>) -> Result<Option<DownloadRow>, StoreError> {
    write_status(db, id, DownloadStatus::Pending, None, Why::default(), Some(claim)).await
}

/// The one status write: a compare-and-set from the statuses that may become `to`.
async fn write_status(
    db: &Db,
    id: i64,
    to: DownloadStatus,
    error: Option<&str>,
    why: Why<'_>,
    claim: Option<&Claim<'_>>,
) -> Result<Option<DownloadRow>, StoreError> {
    let from: Vec<DownloadStatus> = DownloadStatus::ALL.into_iter().filter(|s| s.can_become(to)).collect();
    if from.is_empty() {
        return Ok(None);
    }
    let now = now_ms();
    let stamp = match to {
        DownloadStatus::Paused => ", paused_at = $4",
        DownloadStatus::Complete => ", completed_at = $4",
        _ => "",
    };
    let claimed = if claim.is_some() { ", runner = $7, folder_id = $8, lease_until = $9" } else { "" };
    let sql = format!(
        "UPDATE model_downloads SET status = $1, error = $2, error_detail = $5, error_kind = $6, updated_at = $4{stamp}{claimed}
         WHERE id = $3 AND status IN ({}) RETURNING {COLUMNS}",
        in_list(&from)
    );
    let mut query = sqlx::query_as::<_, SqlRow>(&sql)
        .bind(to.as_str())
        .bind(error)
        .bind(id)
        .bind(now)
        .bind(why.detail)
        .bind(why.kind);
    if let Some(c) = claim {
        query = query.bind(c.runner).bind(c.folder_id).bind(c.lease_until);
    }
    let row = query.fetch_optional(&db.pool).await?;
    row.map(SqlRow::into_row).transpose()
}

/// Records bytes on disk, only while the row is still being downloaded (or was just paused by
/// boot recovery, which reconciles the count to the partial's length).
pub async fn set_bytes(db: &Db, id: i64, bytes: u64, while_in: &[DownloadStatus]) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE model_downloads SET bytes_downloaded = $1, updated_at = $2
         WHERE id = $3 AND status IN ({})",
        in_list(while_in)
    );
    let done = sqlx::query(&sql).bind(bytes as i64).bind(now_ms()).bind(id).execute(&db.pool).await?;
    Ok(done.rows_affected() == 1)
}

/// Records a parallel download's per-segment progress and its total in one write, so the row
/// never holds one without the other; `None` makes it a single-stream row again.
pub async fn set_segments(
    db: &Db,
    id: i64,
    bytes: u64,
    segments: Option<&str>,
    while_in: &[DownloadStatus],
) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE model_downloads SET bytes_downloaded = $1, segments = $2, updated_at = $3
         WHERE id = $4 AND status IN ({})",
        in_list(while_in)
    );
    let done = sqlx::query(&sql).bind(bytes as i64).bind(segments).bind(now_ms()).bind(id).execute(&db.pool).await?;
    Ok(done.rows_affected() == 1)
}

/// Stores the ETag or Last-Modified that a resume sends back as If-Range.
pub async fn set_validator(db: &Db, id: i64, validator: Option<&str>) -> Result<(), StoreError> {
    sqlx::query("UPDATE model_downloads SET validator = $1 WHERE id = $2")
        .bind(validator)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// `'a', 'b'` for an SQL IN list. Only ever built from enum names, never from input.
pub(super) fn in_list(statuses: &[DownloadStatus]) -> String {
    statuses.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ")
}
