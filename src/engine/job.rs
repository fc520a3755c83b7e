//! One download's run, as a value: [`Job`] carries what every part of the transfer needs (the
//! id, the model, its files, the validator, the cancel token, the pacer, the settings), and how
//! a run ended ([`Outcome`]). The two transfers (`single`, `segmented`) and their HTTP (`http`)
//! work on it; the download's life that picks between them is `life`, above them all. See
//! DESIGN.md "The download engine".

use super::config::EngineConfig;
use super::error::TransferError;
use super::pace::Pacer;
use super::runners::Slot;
use crate::catalog::ModelEntry;
use crate::status::DownloadStatus::{self, *};
use crate::store::Db;
use crate::store::downloads;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// How a run ended, for the bookkeeping after it.
pub(super) enum Outcome {
    /// Installed (or found installed) and marked complete.
    Done,
    /// Paused or cancelled by someone else, who already wrote the row.
    Stopped,
    /// Another process holds the partial's lock and is downloading it: its row, not ours.
    Busy,
    /// Failed: why, and whether the partial is worth keeping.
    Failed { error: TransferError, keep_partial: bool },
}

impl Outcome {
    /// A failure that keeps the partial (everything but a wrong file).
    pub(super) fn kept(error: TransferError) -> Outcome {
        Outcome::Failed { error, keep_partial: true }
    }

    /// A failed file operation, the partial kept: `map_err(Outcome::file("cannot ..."))`.
    pub(super) fn file(what: &'static str) -> impl FnOnce(std::io::Error) -> Outcome {
        move |source| Outcome::kept(TransferError::File { what, source })
    }
}

/// One download's context, shared by its transfer and (behind an `Arc`) its connections.
pub(super) struct Job {
    pub id: i64,
    pub db: Db,
    pub client: reqwest::Client,
    pub cfg: EngineConfig,
    pub pacer: Option<Arc<Pacer>>,
    /// The proxy variables the client was built under: what a request's failure may be about.
    pub proxies: Arc<crate::proxy::ProxyVars>,
    /// What this job fetches: the model, or one part of a split model (`life` runs a job per
    /// part, in turn, over the download's one partial).
    pub model: ModelEntry,
    /// The model the download installs (`model` itself for one file).
    pub whole: ModelEntry,
    /// The bytes of the whole model installed before this file: its parts already in place.
    /// Progress on the row and live is `base` plus this file's.
    pub base: u64,
    pub partial: PathBuf,
    pub target: PathBuf,
    /// The row's saved segments, if it is a segmented download.
    pub segments: Option<String>,
    /// Sent as If-Range: the ETag or Last-Modified of the file the partial's bytes came from.
    pub validator: Mutex<Option<String>>,
    pub cancel: CancellationToken,
    pub slot: Arc<Slot>,
}

impl Job {
    /// A compare-and-set status move; false when someone else moved the row first.
    pub(super) async fn moved(&self, to: DownloadStatus) -> bool {
        match downloads::set_status(&self.db, self.id, to, None).await {
            Ok(moved) => moved,
            Err(e) => {
                tracing::error!(id = self.id, error = %e, "cannot write status");
                false
            }
        }
    }

    /// Live progress always; the row only when `persist`. `bytes` are this file's.
    pub(super) async fn record(&self, bytes: u64, persist: bool) {
        self.slot.record(self.base + bytes);
        if persist {
            let _ = downloads::set_bytes(&self.db, self.id, self.base + bytes, &[Downloading]).await;
        }
    }

    /// The job of one file of the download: a part of a split model at `target`, after `base`
    /// bytes of it, resuming from `segments` and `validator` (the row's, when they are this
    /// part's).
    pub(super) fn for_file(
        &self,
        file: ModelEntry,
        target: PathBuf,
        base: u64,
        segments: Option<String>,
        validator: Option<String>,
    ) -> Job {
        Job {
            id: self.id,
            db: self.db.clone(),
            client: self.client.clone(),
            cfg: self.cfg.clone(),
            pacer: self.pacer.clone(),
            proxies: self.proxies.clone(),
            model: file,
            whole: self.whole.clone(),
            base,
            partial: self.partial.clone(),
            target,
            segments,
            validator: Mutex::new(validator),
            cancel: self.cancel.clone(),
            slot: self.slot.clone(),
        }
    }

    /// The validator to send as If-Range.
    pub(super) fn validator(&self) -> Option<String> {
        self.validator.lock().expect("validator lock").clone()
    }

    /// Remembers a new validator, on the row too when it changed.
    pub(super) async fn set_validator(&self, new: Option<String>) {
        let changed = {
            let mut v = self.validator.lock().expect("validator lock");
            let changed = *v != new;
            *v = new.clone();
            changed
        };
        if changed {
            let _ = downloads::set_validator(&self.db, self.id, new.as_deref()).await;
        }
    }
}
