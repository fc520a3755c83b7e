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
    tracing::info!(id, model = %job.whole.id, parts = job.whole.parts.len(), "download starting");
    // The bytes before the file it ended on: a split model's parts in place.
    let (outcome, base) = if job.whole.parts.is_empty() { (transfer(job, false).await, 0) } else { parts(job).await };
    job.slot.live.lock().expect("live lock").idle();
    match outcome {
        Outcome::Done => tracing::info!(id, "download complete"),
        Outcome::Busy => tracing::warn!(id, "another localbrain process is downloading this; leaving it"),
        // Record the real progress for a paused row; cancel removes the file itself.
        Outcome::Stopped => {
            reconcile_bytes(&job.db, job.id, &job.partial, base, &[Paused]).await;
            tracing::info!(id, "download stopped");
        }
        Outcome::Failed { error, keep_partial } => fail(job, base, &error, keep_partial).await,
    }
}

/// Marks the row failed with `error`'s words, dropping the partial unless it is worth keeping.
async fn fail(job: &Job, base: u64, error: &TransferError, keep_partial: bool) {
    if !keep_partial {
        let _ = files::remove_if_exists(&job.partial);
    }
    record_failure(&job.db, job.id, &job.partial, base, error).await;
}

/// A split model: each part in turn through the download's one partial, installed under its
/// own name once its SHA-256 matched, the first part last (so a first part in place means the
/// whole model is). The row stays downloading between parts, its bytes counting the whole; only
/// the first part's install verifies-installs-completes it, as for one file. Returns how it
/// ended and the bytes of the parts before the one it ended on.
async fn parts(job: &Arc<Job>) -> (Outcome, u64) {
    if !job.moved(Downloading).await {
        return (Outcome::Stopped, 0);
    }
    let order = files::install_order(&job.cfg.models_dir, &job.whole);
    let last = order.len() - 1;
    // The row's segments and validator are those of the part the partial holds: the first one
    // not in place.
    let (mut segments, mut validator) = (job.segments.clone(), job.validator());
    for (i, (file, target, base)) in order.into_iter().enumerate() {
        let in_place = files::len_or_zero(&target) == file.size_bytes;
        let (s, v) = if in_place { (None, None) } else { (segments.take(), validator.take()) };
        let part = Arc::new(job.for_file(file, target, base, s, v));
        if i == last {
            return (transfer(&part, true).await, base);
        }
        if let Err(outcome) = part_in_place(&part, in_place).await {
            return (outcome, base);
        }
    }
    unreachable!("a split model has a first part, installed last")
}

/// Puts one part (not the first) in place: one already there is hashed, a wrong one fetched again.
async fn part_in_place(part: &Arc<Job>, in_place: bool) -> Result<(), Outcome> {
    let size = part.model.size_bytes;
    if in_place {
        match target_matches(part).await {
            Some(true) => {
                part.record(size, true).await;
                return Ok(());
            }
            None => return Err(Outcome::Stopped),
            Some(false) => {
                tracing::info!(id = part.id, part = %part.target.display(), "a part in place differs; downloading it again");
                let t = part.target.clone();
                blocking(move || files::remove_if_exists(&t))
                    .await
                    .map_err(Outcome::file("cannot remove a wrong part"))?;
            }
        }
    }
    let digest = fetch(part).await?;
    if digest != part.model.sha256 {
        let error = TransferError::Corrupt { got: digest, expected: part.model.sha256.clone() };
        return Err(Outcome::Failed { error, keep_partial: false });
    }
    // Under the critical lock, as the model's install: a cancel lands before the rename or
    // after it, and then removes the part too.
    let _critical = part.slot.critical.lock().await;
    if part.cancel.is_cancelled() {
        return Err(Outcome::Stopped);
    }
    let (p, t) = (part.partial.clone(), part.target.clone());
    blocking(move || files::install(&p, &t)).await.map_err(Outcome::file("cannot install a part of the model"))?;
    // The next part starts from an empty partial: the row's segments and validator were this one's.
    let cleared = downloads::set_segments(&part.db, part.id, part.base + size, None, &[Downloading]).await;
    let unvalidated = downloads::set_validator(&part.db, part.id, None).await;
    if let Err(e) = cleared.and(unvalidated) {
        return Err(Outcome::kept(TransferError::Record(e)));
    }
    part.slot.record(part.base + size);
    Ok(())
}

/// One file to its install: the model, or a split model's first part (`started`: the row is
/// downloading already, the other parts in place).
async fn transfer(job: &Arc<Job>, started: bool) -> Outcome {
    let size = job.model.size_bytes;
    let mut downloading = started;
    // Already installed: one streaming hash, shown as verifying, decides whether anything
    // needs downloading.
    if files::len_or_zero(&job.target) == size {
        if !job.moved(Verifying).await {
            return Outcome::Stopped;
        }
        downloading = false;
        match target_matches(job).await {
            Some(true) => {
                let _ = downloads::set_bytes(&job.db, job.id, job.base + size, &[Verifying]).await;
                record_installed(&job.db, &job.whole).await;
                return if job.moved(Complete).await { Outcome::Done } else { Outcome::Stopped };
            }
            None => return Outcome::Stopped,
            Some(false) => {
                tracing::info!(id = job.id, "installed file differs from the catalog; downloading it again");
            }
        }
    }

    // From pending, or from verifying a wrong installed file.
    if !downloading && !job.moved(Downloading).await {
        return Outcome::Stopped;
    }
    match fetch(job).await {
        Ok(digest) => verify_and_install(job, &digest).await,
        Err(outcome) => outcome,
    }
}

/// Whether the file already at the job's target is the one it fetches (one streaming hash; a
/// file that cannot be read is not); `None` when cancelled meanwhile.
async fn target_matches(job: &Job) -> Option<bool> {
    let (t, tok) = (job.target.clone(), job.cancel.clone());
    match blocking(move || files::hash_file(&t, &tok)).await {
        Ok(Some(hash)) => Some(hash == job.model.sha256),
        Ok(None) => None,
        Err(_) => Some(false),
    }
}

/// The file's bytes into the partial, by one of the two transfers: the SHA-256 computed while
/// streaming, or how it ended otherwise.
async fn fetch(job: &Arc<Job>) -> Result<String, Outcome> {
    if let Some(plan) = Segmented::plan(job) {
        match Segmented::run(job, plan).await {
            Ok(digest) => return Ok(digest),
            Err(Some(outcome)) => return Err(outcome),
            // Handed over to one stream, the partial emptied.
            Err(None) => {}
        }
    } else if job.segments.is_some()
        && let Err(e) = Segmented::reset_to_one_stream(job).await
    {
        return Err(Outcome::file("cannot reset the partial file")(e));
    }
    SingleStream::run(job).await
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
    record_installed(&job.db, &job.whole).await;
    if job.moved(Complete).await { Outcome::Done } else { Outcome::Stopped }
}
