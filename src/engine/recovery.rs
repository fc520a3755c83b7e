//! Boot recovery: after a crash or restart no runner exists, so rows left in an active status
//! become paused (the user resumes them), with bytes set to what the partial really holds; and
//! partial files that no open row owns are deleted.

use super::{Engine, EngineError, files};
use crate::status::DownloadStatus::{self, *};
use crate::store::Db;
use crate::store::downloads::{self, DownloadRow};
use std::path::Path;

/// What recovery did, for the log and the tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recovered {
    /// Downloads that were active and are now paused.
    pub paused: Vec<i64>,
    /// Partial files removed because no open download owns them.
    pub orphans_removed: usize,
}

const ACTIVE: [DownloadStatus; 4] = [Pending, Downloading, Verifying, Installing];

impl Engine {
    /// Pauses every active row (any user) and removes orphaned partials. Run once at start,
    /// before any runner exists.
    pub async fn recover(&self) -> Result<Recovered, EngineError> {
        let mut out = Recovered::default();
        for row in downloads::in_statuses_any_user(&self.db, &ACTIVE).await? {
            if self.pause_stale(&row).await? {
                out.paused.push(row.id);
            }
        }
        let open: std::collections::HashSet<i64> =
            downloads::in_statuses_any_user(&self.db, &[Pending, Downloading, Paused, Verifying, Installing, Failed])
                .await?
                .into_iter()
                .map(|r| r.id)
                .collect();
        let dir = files::partial_dir(&self.cfg.models_dir);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let owned = files::download_id_of_partial(&name).is_some_and(|id| open.contains(&id));
                if !owned && !files::is_locked_elsewhere(&entry.path()) && entry.file_type().is_ok_and(|t| t.is_file())
                {
                    files::remove_if_exists(&entry.path())
                        .map_err(EngineError::io("cannot remove an orphaned partial"))?;
                    out.orphans_removed += 1;
                }
            }
        }
        Ok(out)
    }

    /// The CLI's recovery: only this user's open row of this model, if a dead process left it
    /// active. Leaves alone a download another live process is running.
    pub async fn recover_one(&self, user_id: i64, model_id: &str) -> Result<bool, EngineError> {
        match downloads::open_for(&self.db, user_id, model_id).await? {
            Some(row) if row.status.is_active() => self.pause_stale(&row).await,
            _ => Ok(false),
        }
    }

    /// Pauses an active row no runner of this process owns, unless another process holds its
    /// partial's lock. Bytes are set to what the partial really holds.
    async fn pause_stale(&self, row: &DownloadRow) -> Result<bool, EngineError> {
        let partial = Path::new(&row.partial_path);
        if self.runners.is_running(row.id) || files::is_locked_elsewhere(partial) {
            return Ok(false);
        }
        if !downloads::set_status(&self.db, row.id, Paused, Some(crate::view::RESTART_NOTE)).await? {
            return Ok(false);
        }
        reconcile_bytes(&self.db, row.id, partial, &[Paused]).await;
        Ok(true)
    }
}

/// Sets the row's bytes to what the partial really holds once no runner writes it. A segmented
/// download's segments already say so (its file has the model's full length before its first
/// byte); a single stream's progress is the file's length.
pub(super) async fn reconcile_bytes(db: &Db, id: i64, partial: &Path, while_in: &[DownloadStatus]) {
    let row = match downloads::get_any_user(db, id).await {
        Ok(Some(row)) => row,
        Ok(None) => return,
        Err(e) => return tracing::error!(id, error = %e, "cannot read download row"),
    };
    let written = match (&row.segments, partial.exists()) {
        (Some(_), true) => Ok(true),
        (Some(_), false) => downloads::set_segments(db, id, 0, None, while_in).await,
        (None, _) => downloads::set_bytes(db, id, files::len_or_zero(partial), while_in).await,
    };
    if let Err(e) = written {
        tracing::error!(id, error = %e, "cannot record progress");
    }
}
