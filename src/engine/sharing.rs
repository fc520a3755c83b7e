//! The engine among other processes on one database (issue 17): whether a row's runner is
//! gone, waiting for another process's runner to let go, the heartbeat that keeps a claim and
//! hears of pauses, the wake-up that PostgreSQL's NOTIFY brings, and the view of a download
//! another process runs.

use super::runners::Slot;
use super::{Engine, EngineError};
use crate::status::DownloadStatus;
use crate::store::downloads::{self, DownloadRow};
use crate::store::leases;
use crate::view::DownloadView;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

impl Engine {
    /// This process's claim on a download it is about to run, for the write that makes the
    /// row pending.
    pub(super) fn claim(&self) -> downloads::Claim<'_> {
        downloads::Claim {
            runner: &self.instance.id,
            folder_id: &self.folder_id,
            lease_until: crate::time::now_ms() + self.cfg.lease.as_millis() as i64,
        }
    }

    /// Waits (up to a lease and a heartbeat) until no other process runs the download; the row
    /// as it then is. A runner that died does not hold the wait up: its claim is abandoned.
    pub(super) async fn let_go_elsewhere(&self, id: i64) -> Result<Option<DownloadRow>, EngineError> {
        let deadline = Instant::now() + self.cfg.lease + self.cfg.heartbeat;
        loop {
            let Some(row) = downloads::get_any_user(&self.db, id).await? else { return Ok(None) };
            let elsewhere = row.runner.as_deref().is_some_and(|r| r != self.instance.id);
            if !elsewhere || self.is_abandoned(&row, crate::time::now_ms()) || Instant::now() >= deadline {
                return Ok(Some(row));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Whether the process that ran an active row is gone: its claim (if any) is not renewed.
    /// A runner on this host is looked up by its pid; one elsewhere is gone when its lease ran
    /// out. A row nobody claimed is abandoned once it has not changed for a lease.
    pub(super) fn is_abandoned(&self, row: &DownloadRow, now: i64) -> bool {
        let lease_ms = self.cfg.lease.as_millis() as i64;
        match row.runner.as_deref() {
            None => row.updated_at < now - lease_ms,
            Some(runner) => match self.instance.has_stopped(runner) {
                Some(stopped) => stopped,
                None => row.lease_until.is_none_or(|until| until < now),
            },
        }
    }

    /// Wakes this process's runners when another process announces a change to their row
    /// (PostgreSQL's NOTIFY; `store::control`), so a pause from anywhere stops the transfer at
    /// once instead of at the next heartbeat. Runs for as long as the process; `serve` and
    /// `download` spawn it. Returns at once on SQLite.
    pub async fn listen_for_changes(self: Arc<Self>) {
        let runners = self.runners.clone();
        crate::store::control::listen(&self.db, move |id| {
            if let Some(slot) = runners.find(id) {
                slot.nudge.notify_one();
            }
        })
        .await;
    }

    /// The view of a row no runner of this process has: the bytes and speed its runner (in
    /// another process) last wrote, while that runner's claim holds.
    pub(super) fn view_from_row(&self, row: &DownloadRow) -> DownloadView {
        // A joined row's speed and lease are its carrier's, copied by the carrier's heartbeat.
        let live = row.status == DownloadStatus::Downloading
            && (row.runner.as_deref().is_some_and(|r| r != self.instance.id) || row.carrier_id.is_some())
            && row.lease_until.is_some_and(|until| until > crate::time::now_ms());
        let speed = if live { row.speed_bps.unwrap_or(0) } else { 0 };
        let eta = (speed > 0).then(|| row.total_bytes.saturating_sub(row.bytes_downloaded).div_ceil(speed));
        row.to_view(speed, eta)
    }

    /// Every `heartbeat` while the runner works: renews its claim and writes its speed, and
    /// stops the transfer when the row says another process paused or cancelled it, or took
    /// it over.
    pub(super) async fn heartbeat(&self, id: i64, slot: &Slot, token: &CancellationToken) {
        let lease_ms = self.cfg.lease.as_millis() as i64;
        let mut every = tokio::time::interval(self.cfg.heartbeat);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = slot.nudge.notified() => {}
            }
            let (speed, bytes) = {
                let live = slot.live.lock().expect("live lock");
                (live.speed_bps(Instant::now()), live.bytes)
            };
            let stop = match leases::renew(&self.db, id, &self.instance.id, lease_ms, speed).await {
                Ok(Some(status)) => {
                    // The downloads that joined this transfer see its progress too; once it is
                    // paused or cancelled they wait for the hand-off instead (`carriers`).
                    if status.is_active()
                        && let Err(e) = crate::store::carriers::mirror(&self.db, id, bytes).await
                    {
                        tracing::warn!(id, error = %e, "cannot bring the downloads sharing this transfer in step");
                    }
                    matches!(status, DownloadStatus::Paused | DownloadStatus::Cancelled).then_some(status.as_str())
                }
                Ok(None) => Some("taken over"),
                Err(e) => {
                    tracing::warn!(id, error = %e, "cannot renew the download's claim");
                    None
                }
            };
            if let Some(why) = stop
                && !token.is_cancelled()
            {
                tracing::info!(id, status = why, "stopped by another localbrain process");
                token.cancel();
            }
        }
    }
}
