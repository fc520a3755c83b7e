//! What a run writes to its row once no transfer writes it: a failure (its kind, words and
//! technical account), the bytes its partial really holds, and an installed model. Used by the
//! download's life (`life`), boot recovery and the engine; it uses nothing of theirs.

use super::error::TransferError;
use super::files;
use crate::catalog::ModelEntry;
use crate::status::DownloadStatus::{self, *};
use crate::store::Db;
use crate::store::downloads;
use std::path::Path;

/// Marks an active row failed with `error`'s kind and facts (what its words are made from when
/// it is read), the words as they are now and its technical account, its bytes what its
/// partial holds (after `base`, the bytes of a split model's parts in place).
pub(super) async fn record_failure(db: &Db, id: i64, partial: &Path, base: u64, error: &TransferError) {
    tracing::warn!(id, error = %error, "download failed");
    reconcile_bytes(db, id, partial, base, &[Pending, Downloading, Verifying]).await;
    let failure = error.failure();
    let (words, kind) = (failure.said().stopped(), failure.to_json());
    if let Err(e) = downloads::set_failed(db, id, &words, &error.to_string(), Some(&kind)).await {
        tracing::error!(id, error = %e, "cannot record failure");
    }
}

/// Sets the row's bytes to what the partial really holds once no runner writes it. A segmented
/// download's segments already say so (its file has the model's full length before its first
/// byte); a single stream's progress is the file's length. Both count after `base`, the bytes
/// of a split model's parts already in place ([`files::parts_in_place`]).
pub(super) async fn reconcile_bytes(db: &Db, id: i64, partial: &Path, base: u64, while_in: &[DownloadStatus]) {
    let row = match downloads::get_any_user(db, id).await {
        Ok(Some(row)) => row,
        Ok(None) => return,
        Err(e) => return tracing::error!(id, error = %e, "cannot read download row"),
    };
    let written = match (&row.segments, partial.exists()) {
        (Some(_), true) => Ok(true),
        (Some(_), false) => downloads::set_segments(db, id, base, None, while_in).await,
        (None, _) => downloads::set_bytes(db, id, base + files::len_or_zero(partial), while_in).await,
    };
    if let Err(e) = written {
        tracing::error!(id, error = %e, "cannot record progress");
    }
}

/// Records a verified file in `installed_models` (installed and checked now). A failure here
/// is logged, not fatal: the file is installed, the list then says "not checked yet".
/// For a split model, `model` is the whole: its size, and its first part's digest.
pub(super) async fn record_installed(db: &Db, model: &ModelEntry) {
    if let Err(e) = crate::store::installed::record_install(db, &model.id, model.size_bytes, &model.sha256).await {
        tracing::error!(model = %model.id, error = %e, "cannot record the installed model");
    }
}
