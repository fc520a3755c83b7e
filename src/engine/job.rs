//! One download's run, as a value: [`Job`] carries what every part of the transfer needs (the
//! id, the model, its files, the validator, the cancel token, the pacer, the settings) and
//! runs the download's life: hash what is already there, hand the bytes to one of the two
//! transfers ([`SingleStream`](super::single::SingleStream) or
//! [`Segmented`](super::segmented::Segmented)), verify the SHA-256 computed while streaming, and
//! install atomically. See DESIGN.md "The download engine".

use super::error::TransferError;
use super::runners::Slot;
use super::segmented::Segmented;
use super::single::SingleStream;
use super::{EngineConfig, files, pace::Pacer};
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
    pub model: ModelEntry,
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
    /// Runs the download to its end and writes how it ended to the row.
    pub(super) async fn run(self: &Arc<Self>) {
        let id = self.id;
        tracing::info!(id, model = %self.model.id, "download starting");
        let outcome = self.transfer().await;
        self.slot.live.lock().expect("live lock").idle();
        match outcome {
            Outcome::Done => tracing::info!(id, "download complete"),
            Outcome::Busy => tracing::warn!(id, "another localbrain process is downloading this; leaving it"),
            // Record the real progress for a paused row; cancel removes the file itself.
            Outcome::Stopped => {
                super::recovery::reconcile_bytes(&self.db, self.id, &self.partial, &[Paused]).await;
                tracing::info!(id, "download stopped");
            }
            Outcome::Failed { error, keep_partial } => self.fail(&error, keep_partial).await,
        }
    }

    /// Marks the row failed with `error`'s words, dropping the partial unless it is worth keeping.
    pub(super) async fn fail(&self, error: &TransferError, keep_partial: bool) {
        if !keep_partial {
            let _ = files::remove_if_exists(&self.partial);
        }
        record_failure(&self.db, self.id, &self.partial, error).await;
    }

    async fn transfer(self: &Arc<Self>) -> Outcome {
        let size = self.model.size_bytes;
        // Already installed: one streaming hash, shown as verifying, decides whether anything
        // needs downloading.
        if files::len_or_zero(&self.target) == size {
            if !self.moved(Verifying).await {
                return Outcome::Stopped;
            }
            let (t, tok) = (self.target.clone(), self.cancel.clone());
            match blocking(move || files::hash_file(&t, &tok)).await {
                Ok(Some(hash)) if hash == self.model.sha256 => {
                    let _ = downloads::set_bytes(&self.db, self.id, size, &[Verifying]).await;
                    record_installed(&self.db, &self.model).await;
                    return if self.moved(Complete).await { Outcome::Done } else { Outcome::Stopped };
                }
                Ok(None) => return Outcome::Stopped,
                Ok(Some(_)) | Err(_) => {
                    tracing::info!(id = self.id, "installed file differs from the catalog; downloading it again");
                }
            }
        }

        // From pending, or from verifying a wrong installed file.
        if !self.moved(Downloading).await {
            return Outcome::Stopped;
        }
        if let Some(plan) = Segmented::plan(self) {
            match Segmented::run(self, plan).await {
                Ok(digest) => return self.verify_and_install(&digest).await,
                Err(Some(outcome)) => return outcome,
                // Handed over to one stream, the partial emptied.
                Err(None) => {}
            }
        } else if self.segments.is_some()
            && let Err(e) = Segmented::reset_to_one_stream(self).await
        {
            return Outcome::file("cannot reset the partial file")(e);
        }
        match SingleStream::run(self).await {
            Ok(digest) => self.verify_and_install(&digest).await,
            Err(outcome) => outcome,
        }
    }

    /// The end of every download: the hash computed while downloading decides, then the install.
    async fn verify_and_install(&self, digest: &str) -> Outcome {
        if !self.moved(Verifying).await {
            return Outcome::Stopped;
        }
        if digest != self.model.sha256 {
            let error = TransferError::Corrupt { got: digest.to_string(), expected: self.model.sha256.clone() };
            return Outcome::Failed { error, keep_partial: false };
        }
        // Under the slot's critical lock, so a cancel cannot slip in between the rename and
        // the row write.
        let _critical = self.slot.critical.lock().await;
        if self.cancel.is_cancelled() || !self.moved(Installing).await {
            return Outcome::Stopped;
        }
        let (p, t) = (self.partial.clone(), self.target.clone());
        if let Err(e) = blocking(move || files::install(&p, &t)).await {
            return Outcome::file("cannot install the model")(e);
        }
        record_installed(&self.db, &self.model).await;
        if self.moved(Complete).await { Outcome::Done } else { Outcome::Stopped }
    }

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

    /// Live progress always; the row only when `persist`.
    pub(super) async fn record(&self, bytes: u64, persist: bool) {
        self.slot.record(bytes);
        if persist {
            let _ = downloads::set_bytes(&self.db, self.id, bytes, &[Downloading]).await;
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

/// Marks an active row failed with `error`'s kind and facts (what its words are made from when
/// it is read), the words as they are now and its technical account, its bytes what its
/// partial holds.
pub(super) async fn record_failure(db: &Db, id: i64, partial: &std::path::Path, error: &TransferError) {
    tracing::warn!(id, error = %error, "download failed");
    super::recovery::reconcile_bytes(db, id, partial, &[Pending, Downloading, Verifying]).await;
    let failure = error.failure();
    let (words, kind) = (failure.said().stopped(), failure.to_json());
    if let Err(e) = downloads::set_failed(db, id, &words, &error.to_string(), Some(&kind)).await {
        tracing::error!(id, error = %e, "cannot record failure");
    }
}

/// Runs blocking file work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(std::io::Error::other)?
}

/// Records a verified file in `installed_models` (installed and checked now). A failure here
/// is logged, not fatal: the file is installed, the list then says "not checked yet".
async fn record_installed(db: &Db, model: &ModelEntry) {
    if let Err(e) = crate::store::installed::record_install(db, &model.id, model.size_bytes, &model.sha256).await {
        tracing::error!(model = %model.id, error = %e, "cannot record the installed model");
    }
}
