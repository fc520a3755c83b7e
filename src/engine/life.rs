//! A download's life, above everything it uses: hash what is already there, hand the bytes to
//! one of the two transfers ([`SingleStream`] or [`Segmented`]), verify the SHA-256 computed
//! while streaming, install atomically, and write to the row how it ended. The engine's runner
//! calls [`run`]; nothing below imports this file.

use super::blocking::blocking;
use super::error::TransferError;
use super::files;
use super::job::{Job, Outcome};
use super::record::{reconcile_bytes, record_failure, record_installed};
use super::segmented::Segmented;
use super::single::SingleStream;
use crate::status::DownloadStatus::*;
use crate::store::downloads;
use std::sync::Arc;

/// Runs the download to its end and writes how it ended to the row.
pub(super) async fn run(job: &Arc<Job>) {
    let id = job.id;
    tracing::info!(id, model = %job.model.id, "download starting");
    let outcome = transfer(job).await;
    job.slot.live.lock().expect("live lock").idle();
    match outcome {
        Outcome::Done => tracing::info!(id, "download complete"),
        Outcome::Busy => tracing::warn!(id, "another localbrain process is downloading this; leaving it"),
        // Record the real progress for a paused row; cancel removes the file itself.
        Outcome::Stopped => {
            reconcile_bytes(&job.db, job.id, &job.partial, &[Paused]).await;
            tracing::info!(id, "download stopped");
        }
        Outcome::Failed { error, keep_partial } => fail(job, &error, keep_partial).await,
    }
}

/// Marks the row failed with `error`'s words, dropping the partial unless it is worth keeping.
async fn fail(job: &Job, error: &TransferError, keep_partial: bool) {
    if !keep_partial {
        let _ = files::remove_if_exists(&job.partial);
    }
    record_failure(&job.db, job.id, &job.partial, error).await;
}

async fn transfer(job: &Arc<Job>) -> Outcome {
    let size = job.model.size_bytes;
    // Already installed: one streaming hash, shown as verifying, decides whether anything
    // needs downloading.
    if files::len_or_zero(&job.target) == size {
        if !job.moved(Verifying).await {
            return Outcome::Stopped;
        }
        let (t, tok) = (job.target.clone(), job.cancel.clone());
        match blocking(move || files::hash_file(&t, &tok)).await {
            Ok(Some(hash)) if hash == job.model.sha256 => {
                let _ = downloads::set_bytes(&job.db, job.id, size, &[Verifying]).await;
                record_installed(&job.db, &job.model).await;
                return if job.moved(Complete).await { Outcome::Done } else { Outcome::Stopped };
            }
            Ok(None) => return Outcome::Stopped,
            Ok(Some(_)) | Err(_) => {
                tracing::info!(id = job.id, "installed file differs from the catalog; downloading it again");
            }
        }
    }

    // From pending, or from verifying a wrong installed file.
    if !job.moved(Downloading).await {
        return Outcome::Stopped;
    }
    if let Some(plan) = Segmented::plan(job) {
        match Segmented::run(job, plan).await {
            Ok(digest) => return verify_and_install(job, &digest).await,
            Err(Some(outcome)) => return outcome,
            // Handed over to one stream, the partial emptied.
            Err(None) => {}
        }
    } else if job.segments.is_some()
        && let Err(e) = Segmented::reset_to_one_stream(job).await
    {
        return Outcome::file("cannot reset the partial file")(e);
    }
    match SingleStream::run(job).await {
        Ok(digest) => verify_and_install(job, &digest).await,
        Err(outcome) => outcome,
    }
}

/// The end of every download: the hash computed while downloading decides, then the install.
async fn verify_and_install(job: &Job, digest: &str) -> Outcome {
    if !job.moved(Verifying).await {
        return Outcome::Stopped;
    }
    if digest != job.model.sha256 {
        let error = TransferError::Corrupt { got: digest.to_string(), expected: job.model.sha256.clone() };
        return Outcome::Failed { error, keep_partial: false };
    }
    // Under the slot's critical lock, so a cancel cannot slip in between the rename and
    // the row write.
    let _critical = job.slot.critical.lock().await;
    if job.cancel.is_cancelled() || !job.moved(Installing).await {
        return Outcome::Stopped;
    }
    let (p, t) = (job.partial.clone(), job.target.clone());
    if let Err(e) = blocking(move || files::install(&p, &t)).await {
        return Outcome::file("cannot install the model")(e);
    }
    record_installed(&job.db, &job.model).await;
    if job.moved(Complete).await { Outcome::Done } else { Outcome::Stopped }
}
