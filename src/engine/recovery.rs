//! Boot recovery: after a crash or restart, rows left in an active status whose runner is gone
//! become paused (the user resumes them), with bytes set to what the partial really holds; and
//! partial files that no open row owns are deleted. A download another live process runs (its
//! claim renewed, `store::leases`) is left alone.
//!
//! Takeover: a running server adopts the active downloads whose runner died (another server on
//! the same database, killed or lost) and resumes them from their partial, if it shares their
//! models folder; if it does not, it pauses them with a note saying so.
use super::carriers::is_joined;
use super::{Engine, EngineError, files};
use crate::status::DownloadStatus::{self, *};
use crate::store::Db;
use crate::store::downloads::{self, DownloadRow};
use crate::store::leases::{self, SeenClaim};
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

/// What a server takes over: a download that was installing is paused instead (its runner may
/// have renamed the file already; a resume checks).
const ADOPTABLE: [DownloadStatus; 3] = [Pending, Downloading, Verifying];

/// The note on a download paused because its partial is in a models folder this server does
/// not see.
pub const NOT_HERE_NOTE: &str = "The localbrain server that was downloading this stopped, and its unfinished \
    file is in a models folder this server cannot see. Resume it on that server, or resume it here \
    to start again.";
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
        self.settle_stranded().await?;
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
            // Joined to another's transfer: it is stale when that transfer's runner is gone.
            Some(row) if is_joined(&row) => {
                let carrier = downloads::get_any_user(&self.db, row.carrier_id.unwrap_or_default()).await?;
                if let Some(carrier) = carrier.filter(|c| c.status.is_active()) {
                    self.pause_stale(&carrier).await?;
                }
                self.settle_stranded().await?;
                let now = downloads::get_any_user(&self.db, row.id).await?;
                Ok(now.is_some_and(|r| r.status == Paused))
            }
            Some(row) if row.status.is_active() => self.pause_stale(&row).await,
            _ => Ok(false),
        }
    }

    /// Pauses an active row no runner of this process owns, unless another process holds its
    /// partial's lock. Bytes are set to what the partial really holds. A joined row has no
    /// runner: it is settled with its carrier.
    async fn pause_stale(&self, row: &DownloadRow) -> Result<bool, EngineError> {
        let partial = Path::new(&row.partial_path);
        if is_joined(row)
            || self.runners.is_running(row.id)
            || files::is_locked_elsewhere(partial)
            || !self.is_abandoned(row, crate::time::now_ms())
        {
            return Ok(false);
        }
        if !downloads::set_status(&self.db, row.id, Paused, Some(crate::view::RESTART_NOTE)).await? {
            return Ok(false);
        }
        if let Some(dead) = &row.runner {
            leases::release(&self.db, row.id, dead).await?;
        }
        reconcile_bytes(&self.db, row.id, partial, &[Paused]).await;
        Ok(true)
    }

    /// Takes over the active downloads whose runner died: resumed here from their partial when
    /// this server shares their models folder, else paused with [`NOT_HERE_NOTE`]. Returns the
    /// ids resumed here. Run every heartbeat or two by `serve`; a download is won by one
    /// process only (a compare-and-set on the claim each read).
    pub async fn adopt_abandoned(self: &std::sync::Arc<Self>) -> Result<Vec<i64>, EngineError> {
        let now = crate::time::now_ms();
        let lease_ms = self.cfg.lease.as_millis() as i64;
        let mut adopted = Vec::new();
        for row in downloads::in_statuses_any_user(&self.db, &ADOPTABLE).await? {
            let partial = Path::new(&row.partial_path);
            if is_joined(&row)
                || self.runners.is_running(row.id)
                || !self.is_abandoned(&row, now)
                || files::is_locked_elsewhere(partial)
            {
                continue;
            }
            let seen = SeenClaim { runner: row.runner.clone(), lease_until: row.lease_until };
            if !leases::adopt(&self.db, row.id, &seen, &ADOPTABLE, &self.instance.id, &self.folder_id, lease_ms).await?
            {
                continue;
            }
            let shared = row.folder_id.as_deref().map_or_else(|| partial.exists(), |f| f == self.folder_id);
            if shared {
                tracing::info!(id = row.id, runner = ?row.runner, "taking over a download whose runner stopped");
                self.spawn_runner(row.id);
                adopted.push(row.id);
            } else {
                tracing::warn!(id = row.id, runner = ?row.runner, "a download whose runner stopped is in a models folder not shared with this server; pausing it");
                downloads::set_status(&self.db, row.id, Paused, Some(NOT_HERE_NOTE)).await?;
                leases::release(&self.db, row.id, &self.instance.id).await?;
            }
        }
        self.settle_stranded().await?;
        Ok(adopted)
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
