//! The models on this machine: what is in the models folder (with its record, its GGUF facts and
//! whether something is using it), deleting one, checking one's SHA-256 again, and what the
//! unfinished downloads' partial files take. The API and the CLI (`localbrain models`, `rm`)
//! both come here.
//!
//! Contract:
//! - The folder is the truth about what is installed; `installed_models` rows only say when a
//!   file came and what its last check found. A `.gguf` file the catalog does not know is listed
//!   by file name, but only a catalog id is ever turned into a path (DESIGN.md): such a file
//!   cannot be deleted or checked from here.
//! - Delete is refused while the brain is generating with the model or a download of it is
//!   checking or installing the file. An idle loaded model is unloaded first; the brain's gate
//!   is held while the file goes, so no reply can load it half-way.
//! - Checking a file again is a job in the server's [`Checks`]: the request answers at once
//!   with the model's row showing the check's progress, and the job records what it found when
//!   it ends (a stopped check records nothing: the last result stands). Hashing streams the
//!   file on a blocking thread (never the whole file in memory).
//! - Deleting a model that is being checked stops the check first: the file is going, so its
//!   check has no use, and the person asked for the delete.
//! - Who may delete is decided by the caller (the API's admin check); nothing here knows users
//!   beyond naming the owners of unfinished downloads.

pub mod checks;

use crate::brain::{Brain, BrainError, gguf};
use crate::catalog::{Catalog, is_hub_id};
use crate::engine::files;
use crate::installed::{Check, CheckProgress, DiskModel, InUse, Leftover, ModelsView};
use crate::status::DownloadStatus::{self, *};
use crate::store::{Db, StoreError, downloads, installed, users};
use checks::{CheckJob, Checks};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Why a request about an installed model was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("there is no model called {0:?} in the catalog")]
    UnknownModel(String),
    #[error("{0} is not on this machine")]
    NotInstalled(String),
    #[error("{name} is answering a chat right now: delete it once the reply has finished")]
    Generating { name: String },
    #[error("a download of {name} is {status} it right now: try again once it has finished")]
    Installing { name: String, status: &'static str },
    #[error("{what}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The statuses of a download that is still running (its runner owns the row).
const ACTIVE: [DownloadStatus; 4] = [Pending, Downloading, Verifying, Installing];
/// Every status that still owns a partial file.
const UNFINISHED: [DownloadStatus; 6] = [Pending, Downloading, Paused, Verifying, Installing, Failed];

/// The models folder, its records, and (in the server) the brain that may be using a model.
pub struct Library<'a> {
    pub db: &'a Db,
    pub catalog: &'a Catalog,
    pub models_dir: &'a Path,
    /// The brain of this process; `None` in the CLI, which runs no model.
    pub brain: Option<&'a Brain>,
    /// The checks running in this process (the CLI's is empty: it runs none).
    pub checks: &'a Checks,
}

/// What a model's row needs besides its file: the records, the downloads that are running and
/// what the brain is doing.
struct Around {
    /// The checks running, seen before the records were read: a check leaves the registry only
    /// after recording, so a model not seen checking here has its newest record in `rows`.
    checking: HashMap<String, CheckProgress>,
    rows: HashMap<String, installed::InstalledRow>,
    active: Vec<downloads::DownloadRow>,
    loaded: Option<String>,
    generating: bool,
}

/// A `.gguf` file found in the folder.
struct Found {
    file_name: String,
    path: PathBuf,
    size: u64,
    modified_ms: Option<i64>,
}

impl Library<'_> {
    /// Everything the "Models on this machine" section shows, for a caller (`user_id`); an
    /// admin sees every user's unfinished downloads.
    pub async fn view(&self, user_id: i64, is_admin: bool) -> Result<ModelsView, LibraryError> {
        let models = self.models().await?;
        let (mut leftovers, partial_bytes) = self.leftovers().await?;
        if !is_admin {
            let own: Vec<i64> = downloads::list(self.db, user_id).await?.iter().map(|r| r.id).collect();
            leftovers.retain(|l| own.contains(&l.id));
        }
        let dir = self.models_dir.to_path_buf();
        let free_bytes = tokio::task::spawn_blocking(move || crate::disk::free_space(&dir).ok()).await.ok().flatten();
        Ok(ModelsView {
            models_bytes: models.iter().map(|m| m.size_bytes).sum(),
            models,
            leftovers,
            partial_bytes,
            free_bytes,
            is_admin,
        })
    }

    /// The `.gguf` files in the models folder, catalog models first by name, then others. A
    /// split model's parts are one row, named by its first part, their sizes added up.
    pub async fn models(&self) -> Result<Vec<DiskModel>, LibraryError> {
        let dir = self.models_dir.to_path_buf();
        let found = tokio::task::spawn_blocking(move || scan(&dir))
            .await
            .map_err(|e| LibraryError::Io { what: "cannot read the models folder", source: std::io::Error::other(e) })?
            .map_err(|source| LibraryError::Io { what: "cannot read the models folder", source })?;
        // A hub model another process (`localbrain download`) installed is kept in the database
        // but not yet on this process's shelf.
        let unknown_hub_model = |f: &Found| {
            let id = model_id_of(&f.file_name);
            is_hub_id(id) && self.catalog.get(id).is_none()
        };
        if found.iter().any(unknown_hub_model)
            && let Err(e) = crate::hub::shelf::load(self.db, self.catalog).await
        {
            tracing::warn!(error = %e, "cannot read the Hugging Face models kept");
        }
        let found = self.fold_parts(found);
        let around = self.around(None).await?;
        let mut out = Vec::with_capacity(found.len());
        for f in found {
            out.push(self.row(f, &around).await);
        }
        out.sort_by(|a, b| (a.model_id.is_none(), &a.name).cmp(&(b.model_id.is_none(), &b.name)));
        Ok(out)
    }

    /// The files with a catalog split model's later parts folded into its first part's row
    /// (they are that model; without their first part they are an unfinished download's).
    fn fold_parts(&self, found: Vec<Found>) -> Vec<Found> {
        let split = |f: &Found| {
            let (id, k, n) = crate::catalog::split_of_file_name(&f.file_name)?;
            self.catalog.get(id).filter(|m| m.parts.len() == n).map(|m| (m.id, k))
        };
        let (mut firsts, mut later) = (Vec::new(), Vec::new());
        for f in found {
            match split(&f) {
                Some((id, k)) if k > 1 => later.push((id, f.size)),
                _ => firsts.push(f),
            }
        }
        for f in &mut firsts {
            if let Some((id, 1)) = split(f) {
                f.size += later.iter().filter(|(of, _)| *of == id).map(|(_, size)| size).sum::<u64>();
            }
        }
        firsts
    }

    /// The row of one installed catalog model, as [`Library::models`] lists it.
    pub async fn model(&self, model_id: &str) -> Result<DiskModel, LibraryError> {
        let entry = self.catalog.get(model_id).ok_or_else(|| LibraryError::UnknownModel(model_id.to_string()))?;
        let path = files::model_path(self.models_dir, &entry);
        let meta = installed_file(&path).ok_or_else(|| LibraryError::NotInstalled(entry.id.clone()))?;
        let around = self.around(Some(&entry.id)).await?;
        let size = files::model_paths(self.models_dir, &entry).iter().map(|p| files::len_or_zero(p)).sum();
        let found = Found { file_name: entry.file_name(), size, modified_ms: modified_ms(&meta), path };
        Ok(self.row(found, &around).await)
    }

    /// What the rows of every model (or of one) need, the running checks read first.
    async fn around(&self, only: Option<&str>) -> Result<Around, LibraryError> {
        let checking = self.checks.running();
        let rows = match only {
            Some(id) => installed::get(self.db, id).await?.into_iter().collect(),
            None => installed::all(self.db).await?,
        };
        Ok(Around {
            checking,
            rows: rows.into_iter().map(|r| (r.model_id.clone(), r)).collect(),
            active: downloads::in_statuses_any_user(self.db, &ACTIVE).await?,
            loaded: self.brain.and_then(Brain::loaded_model),
            generating: self.brain.is_some_and(Brain::is_busy),
        })
    }

    /// A file's row: its record, facts, what is using it and the check running on it.
    async fn row(&self, f: Found, around: &Around) -> DiskModel {
        let entry = self.catalog.get(model_id_of(&f.file_name)).filter(|e| e.file_name() == f.file_name);
        let model_id = entry.as_ref().map(|e| e.id.clone());
        let row = model_id.as_ref().and_then(|id| around.rows.get(id));
        let (facts, problem) = self.facts(model_id.as_deref(), &f.path).await;
        let in_use = model_id.as_deref().and_then(|id| {
            let downloading = around.active.iter().filter(|d| d.model_id == id).map(|d| d.status);
            in_use(around.loaded.as_deref() == Some(id), around.generating, downloading)
        });
        DiskModel {
            name: entry.as_ref().map_or_else(|| f.file_name.clone(), |e| e.name.clone()),
            license: entry.as_ref().map(|e| e.license.clone()),
            page: entry.and_then(|e| e.page),
            file_name: f.file_name,
            size_bytes: f.size,
            installed_at: row.map(|r| r.installed_at).or(f.modified_ms),
            verified_at: row.filter(|r| r.check_for(f.size) != Check::NotChecked).map(|r| r.verified_at),
            check: row.map_or(Check::NotChecked, |r| r.check_for(f.size)),
            facts,
            problem,
            in_use,
            checking: model_id.as_deref().and_then(|id| around.checking.get(id).copied()),
            model_id,
        }
    }

    /// The header's facts, or why the file cannot run. The brain's cache answers for catalog
    /// models when there is a brain; otherwise the header is read here.
    async fn facts(&self, model_id: Option<&str>, path: &Path) -> (Option<crate::chat::ModelFacts>, Option<String>) {
        if let (Some(brain), Some(id)) = (self.brain, model_id) {
            return match brain.check(id).await {
                Ok(h) => (Some(h.facts.clone()), None),
                Err(e) => (None, Some(e.to_string())),
            };
        }
        let path = path.to_path_buf();
        match tokio::task::spawn_blocking(move || gguf::read(&path)).await {
            Ok(Ok(h)) => (Some(h.facts), None),
            Ok(Err(e)) => (None, Some(format!("not a model localbrain can run: {e}"))),
            Err(e) => (None, Some(format!("cannot read the file: {e}"))),
        }
    }

    /// Deletes an installed catalog model's file and its record; the downloads that installed
    /// it then read "removed".
    pub async fn remove(&self, model_id: &str) -> Result<(), LibraryError> {
        let entry = self.catalog.get(model_id).ok_or_else(|| LibraryError::UnknownModel(model_id.to_string()))?;
        // The first part first: a split model without it is no longer installed.
        let paths = files::model_paths(self.models_dir, &entry);
        if !paths[0].is_file() {
            return Err(LibraryError::NotInstalled(entry.id.clone()));
        }
        let active = downloads::in_statuses_any_user(self.db, &[Verifying, Installing]).await?;
        if let Some(d) = active.iter().find(|d| d.model_id == entry.id) {
            let status = if d.status == Verifying { "checking" } else { "installing" };
            return Err(LibraryError::Installing { name: entry.name.clone(), status });
        }
        // Held until the file is gone: no reply loads the model meanwhile.
        let _gate = match self.brain.map(|b| b.let_go(&entry.id)).transpose() {
            Ok(gate) => gate,
            Err(BrainError::InUse(_)) => return Err(LibraryError::Generating { name: entry.name.clone() }),
            Err(e) => {
                return Err(LibraryError::Io { what: "cannot unload the model", source: std::io::Error::other(e) });
            }
        };
        // The file is going: a check of it would only record a file that is no longer there.
        self.checks.stop(&entry.id).await;
        tokio::task::spawn_blocking(move || paths.iter().try_for_each(|p| files::remove_if_exists(p)))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|source| LibraryError::Io { what: "cannot delete the model file", source })?;
        installed::forget(self.db, &entry.id).await?;
        tracing::info!(model = %entry.id, "model deleted");
        Ok(())
    }

    /// Starts checking an installed catalog model's file again, or joins the check of it that
    /// runs, and answers at once: its row, showing how far the check has got. The check hashes
    /// the file on a blocking thread and records what it found: verified, or damaged when the
    /// SHA-256 or size is not the catalog's.
    pub async fn reverify(&self, model_id: &str) -> Result<DiskModel, LibraryError> {
        let entry = self.catalog.get(model_id).ok_or_else(|| LibraryError::UnknownModel(model_id.to_string()))?;
        let paths = files::model_paths(self.models_dir, &entry);
        installed_file(&paths[0]).ok_or_else(|| LibraryError::NotInstalled(entry.id.clone()))?;
        let on_disk = paths.iter().map(|p| files::len_or_zero(p)).sum();
        let files = entry.files().into_iter().zip(paths).map(|(f, path)| (path, f.sha256, f.size_bytes)).collect();
        let check = Recheck { db: self.db.clone(), model_id: entry.id.clone(), files };
        self.checks.start(&entry.id, on_disk, |job| check.run(job));
        self.model(&entry.id).await
    }

    /// Stops the check of a model, if one runs (what it would have recorded is not: the last
    /// result stands), and answers its row.
    pub async fn stop_check(&self, model_id: &str) -> Result<DiskModel, LibraryError> {
        let entry = self.catalog.get(model_id).ok_or_else(|| LibraryError::UnknownModel(model_id.to_string()))?;
        self.checks.stop(&entry.id).await;
        self.model(&entry.id).await
    }

    /// Every unfinished download (any user) with what its partial holds, and their sum.
    pub async fn leftovers(&self) -> Result<(Vec<Leftover>, u64), LibraryError> {
        let rows = downloads::in_statuses_any_user(self.db, &UNFINISHED).await?;
        let names: HashMap<i64, String> = users::all(self.db).await?.into_iter().map(|u| (u.id, u.name)).collect();
        let mut out: Vec<Leftover> = rows
            .into_iter()
            .map(|r| Leftover {
                id: r.id,
                name: self.catalog.get(&r.model_id).map_or_else(|| r.model_id.clone(), |e| e.name.clone()),
                user_name: names.get(&r.user_id).cloned().unwrap_or_default(),
                status: r.status,
                bytes_on_disk: allocated(Path::new(&r.partial_path)),
                model_id: r.model_id,
            })
            .collect();
        out.sort_by_key(|l| l.id);
        let total = out.iter().map(|l| l.bytes_on_disk).sum();
        Ok((out, total))
    }
}

/// One check of an installed model, as its job runs it: everything it needs is its own.
struct Recheck {
    db: Db,
    model_id: String,
    /// Each file (one, or a split model's parts in order) with the catalog's digest and size.
    files: Vec<(PathBuf, String, u64)>,
}

impl Recheck {
    /// Hashes the file and records what it found, unless stopped first; a failure is logged
    /// (nobody waits for the answer) and the last result stands.
    async fn run(self, job: CheckJob) {
        let model = self.model_id.clone();
        match self.hash_and_record(&job).await {
            Ok(true) => {}
            Ok(false) => tracing::info!(model = %model, "model check stopped"),
            Err(e) => {
                let cause = std::error::Error::source(&e).map(ToString::to_string);
                tracing::warn!(model = %model, error = %e, cause = ?cause, "model check failed");
            }
        }
    }

    /// True when it recorded a result; false when stopped. A split model is recorded as one:
    /// its parts' sizes added up, its first part's digest, good only when every part is.
    async fn hash_and_record(self, job: &CheckJob) -> Result<bool, LibraryError> {
        let read_error = |source| LibraryError::Io { what: "cannot read the model file", source };
        let (files, done, stop) = (self.files.clone(), job.done.clone(), job.stop.clone());
        let hashed = tokio::task::spawn_blocking(move || {
            let mut out = Vec::with_capacity(files.len());
            for (path, _, _) in &files {
                let meta = std::fs::metadata(path)?;
                let Some(digest) = files::hash_file_counting(path, &stop, &done)? else { return Ok(None) };
                out.push((digest, meta));
            }
            Ok::<_, std::io::Error>(Some(out))
        })
        .await
        .map_err(|e| read_error(std::io::Error::other(e)))?
        .map_err(read_error)?;
        // Stopped while hashing, or just after: the one who stopped it was told nothing changes.
        let Some(hashed) = hashed.filter(|_| !job.stop.is_cancelled()) else { return Ok(false) };
        let mut ok = true;
        for ((digest, meta), (path, sha256, size)) in hashed.iter().zip(&self.files) {
            if *digest != *sha256 || meta.len() != *size {
                ok = false;
                tracing::warn!(model = %self.model_id, file = %path.display(), got = %digest, expected = %sha256, "installed model is damaged");
            }
        }
        let (digest, first) = (&hashed[0].0, &hashed[0].1);
        let len = hashed.iter().map(|(_, m)| m.len()).sum();
        let installed_at = modified_ms(first).unwrap_or_else(crate::time::now_ms);
        installed::record_check(&self.db, &self.model_id, len, digest, ok, installed_at).await?;
        Ok(true)
    }
}

/// The catalog id a model file's name holds: `<id>.gguf`, or a split model's part's.
fn model_id_of(file_name: &str) -> &str {
    match crate::catalog::split_of_file_name(file_name) {
        Some((id, _, _)) => id,
        None => file_name.strip_suffix(".gguf").unwrap_or(file_name),
    }
}

/// The metadata of an installed model's file; `None` when there is no such regular file.
fn installed_file(path: &Path) -> Option<std::fs::Metadata> {
    std::fs::metadata(path).ok().filter(std::fs::Metadata::is_file)
}

/// What makes a model "in use", the most binding reason first.
fn in_use(loaded: bool, generating: bool, downloads: impl Iterator<Item = DownloadStatus>) -> Option<InUse> {
    let downloads: Vec<DownloadStatus> = downloads.collect();
    if loaded && generating {
        Some(InUse::Generating)
    } else if downloads.iter().any(|s| matches!(s, Verifying | Installing)) {
        Some(InUse::Installing)
    } else if !downloads.is_empty() {
        Some(InUse::Downloading)
    } else if loaded {
        Some(InUse::Loaded)
    } else {
        None
    }
}

/// The regular `*.gguf` files directly in `dir` (the `.partial` folder is not one), by name.
fn scan(dir: &Path) -> std::io::Result<Vec<Found>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Ok(file_name) = entry.file_name().into_string() else { continue };
        if !file_name.ends_with(".gguf") || file_name.starts_with('.') {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_file() {
            out.push(Found { path: entry.path(), size: meta.len(), modified_ms: modified_ms(&meta), file_name });
        }
    }
    out.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(out)
}

fn modified_ms(meta: &std::fs::Metadata) -> Option<i64> {
    let since = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}

/// Disk space a file takes: its allocated blocks (a preallocated partial takes its full size
/// at once; a sparse one less), never more than its length; 0 when it is missing.
fn allocated(path: &Path) -> u64 {
    let Ok(meta) = std::fs::metadata(path) else { return 0 };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.len().min(meta.blocks() * 512)
    }
    #[cfg(not(unix))]
    {
        meta.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generating_outranks_a_download_which_outranks_loaded() {
        assert_eq!(in_use(true, true, [Downloading].into_iter()), Some(InUse::Generating));
        assert_eq!(in_use(false, true, [Verifying].into_iter()), Some(InUse::Installing));
        assert_eq!(in_use(true, false, [Paused; 0].into_iter()), Some(InUse::Loaded));
        assert_eq!(in_use(true, false, [Downloading].into_iter()), Some(InUse::Downloading));
        assert_eq!(in_use(false, true, [Paused; 0].into_iter()), None);
    }
}
