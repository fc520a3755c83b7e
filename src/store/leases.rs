//! Who runs a download when several processes share the database (issue 17): the `runner`
//! column names the process (`engine::instance`), and `lease_until` how long its claim holds
//! unless renewed. A runner renews its lease every second, writing its measured speed with it,
//! and reads back the row's status: a pause or cancel written by any process reaches it there.
//! A row whose runner stopped renewing is taken over ([`adopt`]) by a compare-and-set on what
//! the taker read, so two processes never both win it.

use super::downloads::in_list;
use super::{Db, StoreError};
use crate::status::DownloadStatus;
use crate::time::now_ms;

/// Claims a download for `runner` before its transfer starts: won when nobody holds it, the
/// claim is already `runner`'s, or the holder's lease has run out.
pub async fn claim(db: &Db, id: i64, runner: &str, folder_id: &str, lease_ms: i64) -> Result<bool, StoreError> {
    let now = now_ms();
    let done = sqlx::query(
        "UPDATE model_downloads SET runner = $1, lease_until = $2, folder_id = $3, speed_bps = NULL
         WHERE id = $4 AND (runner IS NULL OR runner = $1 OR lease_until < $5)",
    )
    .bind(runner)
    .bind(now + lease_ms)
    .bind(folder_id)
    .bind(id)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Renews `runner`'s lease and records its speed; the row's status as it stands, or `None`
/// when the claim is no longer `runner`'s (another process took the download over).
pub async fn renew(
    db: &Db,
    id: i64,
    runner: &str,
    lease_ms: i64,
    speed_bps: u64,
) -> Result<Option<DownloadStatus>, StoreError> {
    let status: Option<(String,)> = sqlx::query_as(
        "UPDATE model_downloads SET lease_until = $1, speed_bps = $2 WHERE id = $3 AND runner = $4 RETURNING status",
    )
    .bind(now_ms() + lease_ms)
    .bind(speed_bps as i64)
    .bind(id)
    .bind(runner)
    .fetch_optional(&db.pool)
    .await?;
    Ok(status.and_then(|(s,)| DownloadStatus::parse(&s)))
}

/// Lets go of a download `runner` held: its transfer has stopped and its files are closed.
pub async fn release(db: &Db, id: i64, runner: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE model_downloads SET runner = NULL, lease_until = NULL, speed_bps = NULL WHERE id = $1 AND runner = $2",
    )
    .bind(id)
    .bind(runner)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// What a taker read of an abandoned row: the claim it saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenClaim {
    pub runner: Option<String>,
    pub lease_until: Option<i64>,
}

/// Takes an abandoned download over for `runner`, back to pending for a new transfer, if its
/// claim is still the one `seen` and it is still in one of `from`: whether it was won.
pub async fn adopt(
    db: &Db,
    id: i64,
    seen: &SeenClaim,
    from: &[DownloadStatus],
    runner: &str,
    folder_id: &str,
    lease_ms: i64,
) -> Result<bool, StoreError> {
    let now = now_ms();
    let sql = format!(
        "UPDATE model_downloads SET runner = $1, lease_until = $2, folder_id = $3, speed_bps = NULL,
           status = 'pending', updated_at = $4
         WHERE id = $5 AND status IN ({}) AND COALESCE(runner, '') = $6 AND COALESCE(lease_until, -1) = $7",
        in_list(from)
    );
    let done = sqlx::query(&sql)
        .bind(runner)
        .bind(now + lease_ms)
        .bind(folder_id)
        .bind(now)
        .bind(id)
        .bind(seen.runner.as_deref().unwrap_or(""))
        .bind(seen.lease_until.unwrap_or(-1))
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() == 1)
}
