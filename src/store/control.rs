//! Word to the process running a download that its row changed (a pause or cancel from another
//! process), so it need not wait for its next heartbeat (issue 17). On PostgreSQL: `NOTIFY` on
//! one channel with the download's id, and a `LISTEN`ing connection per process. SQLite has no
//! such thing; there the heartbeat's read of the row is the only way, within a second.

use super::{Backend, Db, StoreError};
use sqlx::postgres::PgListener;
use std::time::Duration;

const CHANNEL: &str = "localbrain_downloads";

/// Tells every listening process that download `id` changed. Nothing on SQLite.
pub async fn announce(db: &Db, id: i64) -> Result<(), StoreError> {
    if db.backend == Backend::Postgres {
        sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(id.to_string()).execute(&db.pool).await?;
    }
    Ok(())
}

/// Calls `changed(id)` for every download another process announces, for as long as the
/// process runs; reconnects after a lost connection. Returns at once on SQLite.
pub async fn listen(db: &Db, changed: impl Fn(i64)) {
    if db.backend != Backend::Postgres {
        return;
    }
    loop {
        match PgListener::connect(&db.url.0).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => loop {
                    // `recv` reconnects by itself; an error here is a connection it could not
                    // get back, and the outer loop tries again.
                    match listener.recv().await {
                        Ok(note) => {
                            if let Ok(id) = note.payload().parse() {
                                changed(id);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "lost the database's notifications; the heartbeat still works");
                            break;
                        }
                    }
                },
                Err(e) => tracing::warn!(error = %e, "cannot LISTEN for download changes"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot open a connection to LISTEN for download changes"),
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
