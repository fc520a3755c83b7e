//! One transfer per model (issue 17; the rows are `store::carriers`). A download started or
//! resumed while another download of the same model runs into the same models folder joins it
//! instead of fetching the model again: it has no runner and no partial of its own, and the
//! carrier's heartbeat keeps it in step (status, bytes, speed). Each user keeps their own row
//! and their own Pause and Cancel. When the carrier's user pauses or cancels, its runner hands
//! the transfer, partial and all, to the oldest joined download and starts that one's runner,
//! which resumes from the partial (a new Range request, no byte fetched twice): the transfer
//! stops only when the last user lets it go. Across processes the same holds through the rows.

use super::{Engine, EngineError, files, job};
use crate::status::DownloadStatus::*;
use crate::store::carriers;
use crate::store::downloads::{self, DownloadRow};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

impl Engine {
    /// The running download a new or resumed download of `model_id` joins, if any.
    pub(super) async fn carrier_for(&self, model_id: &str) -> Result<Option<DownloadRow>, EngineError> {
        Ok(carriers::running_for(&self.db, model_id, &self.folder_id).await?)
    }

    /// Brings a download that just joined `carrier_id` in step with it at once. A carrier that
    /// ended the moment before leaves it complete (the model is installed) or, if it failed or
    /// stopped, on its own: then it runs its own transfer.
    pub(super) async fn settle_join(self: &Arc<Self>, id: i64, carrier_id: i64) -> Result<DownloadRow, EngineError> {
        // A carrier running here knows bytes its row will only hear of at the next write.
        let live = self.runners.find(carrier_id).map_or(0, |slot| slot.live.lock().expect("live lock").bytes);
        carriers::mirror(&self.db, carrier_id, live).await?;
        let row = downloads::get_any_user(&self.db, id).await?.ok_or(EngineError::NotFound)?;
        if row.carrier_id.is_some() || !matches!(row.status, Paused | Failed) {
            return Ok(row);
        }
        let slot = self.runners.slot(id);
        let _critical = slot.critical.lock().await;
        match downloads::resume_claimed(&self.db, id, &self.claim()).await? {
            Some(row) => {
                self.spawn_runner(id);
                Ok(row)
            }
            None => Ok(downloads::get_any_user(&self.db, id).await?.ok_or(EngineError::NotFound)?),
        }
    }

    /// What a carrier's runner does when its transfer has ended: a transfer its own user
    /// stopped goes on for the downloads that joined it ([`Engine::hand_off`]); otherwise they
    /// end as it ended (complete, failed), or are paused with it when this process shuts down.
    pub(super) async fn after_transfer(self: &Arc<Self>, id: i64) {
        let Some(row) = self.row_or_log(id).await else { return };
        let stopped_by_user = matches!(row.status, Paused | Cancelled) && !self.stopping.load(Ordering::SeqCst);
        if stopped_by_user {
            match self.hand_off(&row).await {
                Ok(Some(_)) => return,
                Ok(None) => {}
                Err(e) => tracing::error!(id, error = %e, "cannot hand the shared transfer on"),
            }
        }
        if let Err(e) = carriers::mirror(&self.db, id, 0).await {
            tracing::error!(id, error = %e, "cannot bring the downloads sharing this transfer in step");
        }
    }

    /// Hands a stopped carrier's transfer to the oldest download that joined it: its partial is
    /// renamed to that download's name, the rows are rewritten in one transaction, and its
    /// runner starts here (this process has the partial). The download it went to, if any.
    async fn hand_off(self: &Arc<Self>, row: &DownloadRow) -> Result<Option<i64>, EngineError> {
        for next in carriers::followers(&self.db, row.id).await? {
            let (from, to) = (PathBuf::from(&row.partial_path), PathBuf::from(&next.partial_path));
            let (f, t) = (from.clone(), to.clone());
            let moved = job::blocking(move || files::rename_if_exists(&f, &t))
                .await
                .map_err(EngineError::io("cannot hand the partial file on"))?;
            // A single stream's progress is its file's length; segments say it themselves.
            let bytes = if row.segments.is_some() { row.bytes_downloaded } else { files::len_or_zero(&to) };
            if carriers::hand_over(&self.db, row, bytes, next.id, &self.claim()).await? {
                tracing::info!(from = row.id, to = next.id, bytes, "handed the shared transfer on");
                self.spawn_runner(next.id);
                return Ok(Some(next.id));
            }
            // Its user stopped it meanwhile: the file goes back, and the next one is tried.
            if moved {
                job::blocking(move || std::fs::rename(&to, &from))
                    .await
                    .map_err(EngineError::io("cannot take the partial file back"))?;
            }
        }
        Ok(None)
    }

    /// Ends downloads left joined to a carrier that stopped without handing its transfer on
    /// (its process died): paused, no longer joined, so their users can resume them. A carrier
    /// whose runner still holds its claim is left alone: that runner is handing it on.
    pub(super) async fn settle_stranded(&self) -> Result<(), EngineError> {
        let now = crate::time::now_ms();
        for carrier in carriers::stranded(&self.db).await? {
            let let_go = match carrier.runner.as_deref() {
                None => true,
                Some(runner) => self
                    .instance
                    .has_stopped(runner)
                    .unwrap_or_else(|| carrier.lease_until.is_none_or(|until| until < now)),
            };
            if let_go {
                let n = carriers::mirror(&self.db, carrier.id, 0).await?;
                tracing::info!(carrier = carrier.id, settled = n, "downloads that shared a stopped transfer settled");
            }
        }
        Ok(())
    }

    /// A joined download that its user paused or cancelled leaves the shared transfer; the row
    /// as it then is.
    pub(super) async fn leave_shared(&self, row: DownloadRow) -> Result<DownloadRow, EngineError> {
        if row.carrier_id.is_none() || !matches!(row.status, Paused | Cancelled) {
            return Ok(row);
        }
        carriers::leave(&self.db, row.id).await?;
        Ok(downloads::get_any_user(&self.db, row.id).await?.unwrap_or(row))
    }
}

/// Whether a row is one that joined another's transfer and has no runner of its own.
pub(super) fn is_joined(row: &DownloadRow) -> bool {
    row.carrier_id.is_some() && row.status.is_active()
}
