//! One transfer per model, shared by every user downloading it (issue 17): the first download
//! of a model carries the transfer (its runner, its partial); one started while it runs joins
//! it (`carrier_id`) and has no runner and no partial of its own. The carrier's runner copies
//! its status, bytes and speed to the joined rows every heartbeat ([`mirror`]). When the
//! carrier's own user pauses or cancels, the transfer and its partial go to the oldest joined
//! row ([`hand_over`]), so it stops only when the last user lets it go.

use super::downloads::{COLUMNS, Claim, DownloadRow, SqlRow, in_list};
use super::{Db, StoreError};
use crate::status::DownloadStatus::{self, *};
use crate::time::now_ms;

const ACTIVE: [DownloadStatus; 4] = [Pending, Downloading, Verifying, Installing];

/// The running download of `model_id` into the models folder `folder_id` that carries its own
/// transfer, the oldest if several do (two that started alone before this existed).
pub async fn running_for(db: &Db, model_id: &str, folder_id: &str) -> Result<Option<DownloadRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM model_downloads
         WHERE model_id = $1 AND folder_id = $2 AND carrier_id IS NULL AND status IN ({})
         ORDER BY created_at, id LIMIT 1",
        in_list(&ACTIVE)
    );
    let row = sqlx::query_as::<_, SqlRow>(&sql).bind(model_id).bind(folder_id).fetch_optional(&db.pool).await?;
    row.map(SqlRow::into_row).transpose()
}

/// A paused or failed download joins `carrier_id`'s transfer: pending, with no runner and no
/// bytes of its own. `None` when its status did not allow it.
pub async fn rejoin(db: &Db, id: i64, carrier_id: i64) -> Result<Option<DownloadRow>, StoreError> {
    let sql = format!(
        "UPDATE model_downloads SET status = 'pending', error = NULL, error_detail = NULL, error_kind = NULL, carrier_id = $1,
           runner = NULL, lease_until = NULL, speed_bps = NULL, bytes_downloaded = 0, segments = NULL,
           validator = NULL, updated_at = $2
         WHERE id = $3 AND status IN ('paused', 'failed') RETURNING {COLUMNS}"
    );
    let row =
        sqlx::query_as::<_, SqlRow>(&sql).bind(carrier_id).bind(now_ms()).bind(id).fetch_optional(&db.pool).await?;
    row.map(SqlRow::into_row).transpose()
}

/// A joined download that was paused or cancelled leaves the shared transfer: it holds no bytes
/// of its own, so its row says 0.
pub async fn leave(db: &Db, id: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE model_downloads SET carrier_id = NULL, bytes_downloaded = 0, speed_bps = NULL, lease_until = NULL
         WHERE id = $1 AND carrier_id IS NOT NULL AND status IN ('paused', 'cancelled')",
    )
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Copies the carrier's state to the active downloads that share its transfer; the number of
/// rows written. `live_bytes` is the carrier's runner's count, newer than its row's. While the
/// carrier is active they follow it step by step; when it ends they end the same way (complete,
/// or failed with its words). A carrier that stopped without handing its transfer on (its
/// process shut down or died) leaves them paused, with its note, and no longer joined.
pub async fn mirror(db: &Db, carrier_id: i64, live_bytes: u64) -> Result<u64, StoreError> {
    let active = in_list(&ACTIVE);
    let sql = format!(
        "UPDATE model_downloads AS f SET
           status = CASE WHEN c.status = 'cancelled' THEN 'paused' ELSE c.status END,
           bytes_downloaded = CASE
             WHEN c.status = 'complete' THEN c.total_bytes
             WHEN c.status NOT IN ({active}) THEN 0
             WHEN $2 > c.bytes_downloaded THEN $2 ELSE c.bytes_downloaded END,
           speed_bps = CASE WHEN c.status IN ({active}) THEN c.speed_bps ELSE NULL END,
           lease_until = CASE WHEN c.status IN ({active}) THEN c.lease_until ELSE NULL END,
           error = CASE WHEN c.status IN ('failed', 'paused') THEN c.error ELSE NULL END,
           error_detail = CASE WHEN c.status IN ('failed', 'paused') THEN c.error_detail ELSE NULL END,
           error_kind = CASE WHEN c.status IN ('failed', 'paused') THEN c.error_kind ELSE NULL END,
           paused_at = CASE WHEN c.status IN ('paused', 'cancelled') THEN $3 ELSE f.paused_at END,
           completed_at = CASE WHEN c.status = 'complete' THEN $3 ELSE f.completed_at END,
           carrier_id = CASE WHEN c.status IN ({active}) THEN f.carrier_id ELSE NULL END,
           updated_at = $3
         FROM model_downloads AS c
         WHERE c.id = $1 AND f.carrier_id = $1 AND f.status IN ({active})"
    );
    let done = sqlx::query(&sql).bind(carrier_id).bind(live_bytes as i64).bind(now_ms()).execute(&db.pool).await?;
    Ok(done.rows_affected())
}

/// The active downloads sharing `carrier_id`'s transfer, oldest first.
pub async fn followers(db: &Db, carrier_id: i64) -> Result<Vec<DownloadRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM model_downloads WHERE carrier_id = $1 AND status IN ({}) ORDER BY created_at, id",
        in_list(&ACTIVE)
    );
    let rows = sqlx::query_as::<_, SqlRow>(&sql).bind(carrier_id).fetch_all(&db.pool).await?;
    rows.into_iter().map(SqlRow::into_row).collect()
}

/// Hands `from`'s transfer (its `bytes`, segments and validator; its partial is already renamed
/// to `to`'s) to `to`, one of its followers, claimed for the process that will run it: `to`
/// carries it from now on, the other followers join `to`, and `from` holds nothing. One
/// transaction; false (nothing written) when `to` no longer follows `from` (its user stopped it).
pub async fn hand_over(
    db: &Db,
    from: &DownloadRow,
    bytes: u64,
    to: i64,
    claim: &Claim<'_>,
) -> Result<bool, StoreError> {
    let active = in_list(&ACTIVE);
    let now = now_ms();
    let mut tx = db.pool.begin().await?;
    let taken = sqlx::query(&format!(
        "UPDATE model_downloads SET carrier_id = NULL, status = 'pending', error = NULL, error_detail = NULL, error_kind = NULL,
           bytes_downloaded = $1, segments = $2, validator = $3, runner = $4, folder_id = $5, lease_until = $6,
           speed_bps = NULL, updated_at = $7
         WHERE id = $8 AND carrier_id = $9 AND status IN ({active})"
    ))
    .bind(bytes as i64)
    .bind(&from.segments)
    .bind(&from.validator)
    .bind(claim.runner)
    .bind(claim.folder_id)
    .bind(claim.lease_until)
    .bind(now)
    .bind(to)
    .bind(from.id)
    .execute(&mut *tx)
    .await?;
    if taken.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query(&format!("UPDATE model_downloads SET carrier_id = $1 WHERE carrier_id = $2 AND status IN ({active})"))
        .bind(to)
        .bind(from.id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE model_downloads SET bytes_downloaded = 0, segments = NULL, validator = NULL, updated_at = $1
         WHERE id = $2",
    )
    .bind(now)
    .bind(from.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Carriers that stopped while active downloads still follow them. Settled ([`mirror`]) once
/// their runner has let go without handing the transfer on, or died: the caller decides, since
/// a runner that is stopping hands it on before it lets go.
pub async fn stranded(db: &Db) -> Result<Vec<DownloadRow>, StoreError> {
    let active = in_list(&ACTIVE);
    let columns = COLUMNS.split(", ").map(|c| format!("c.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT DISTINCT {columns} FROM model_downloads f JOIN model_downloads c ON c.id = f.carrier_id
         WHERE f.status IN ({active}) AND c.status NOT IN ({active})"
    );
    let rows = sqlx::query_as::<_, SqlRow>(&sql).fetch_all(&db.pool).await?;
    rows.into_iter().map(SqlRow::into_row).collect()
}
