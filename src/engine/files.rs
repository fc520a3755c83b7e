//! The files a download touches: the partial in `<models>/.partial/`, the installed model, and
//! the free space around them. Everything here blocks; callers run it in `spawn_blocking`.

use crate::catalog::ModelEntry;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;

/// Reads are this big: large enough that syscalls cost nothing next to hashing.
pub const READ_CHUNK: usize = 4 << 20;

/// The folder partial files live in, inside the models folder (same filesystem, so the final
/// rename is atomic).
pub fn partial_dir(models_dir: &Path) -> PathBuf {
    models_dir.join(".partial")
}

/// `<models>/.partial/<model-id>.<download-id>.partial`: named by the download that carries the
/// transfer. Downloads of one model share its carrier's file (`store::carriers`); when the
/// transfer is handed on, the file is renamed to its new carrier's name, so a partial always
/// names the row that owns it.
pub fn partial_path(models_dir: &Path, model_id: &str, download_id: i64) -> PathBuf {
    partial_dir(models_dir).join(format!("{model_id}.{download_id}.partial"))
}

/// The download id in a partial file's name, if it is one of ours.
pub fn download_id_of_partial(file_name: &str) -> Option<i64> {
    let stem = file_name.strip_suffix(".partial")?;
    let (_, id) = stem.rsplit_once('.')?;
    id.parse().ok()
}

/// Where a model is installed.
pub fn target_path(models_dir: &Path, model_id: &str) -> PathBuf {
    models_dir.join(format!("{model_id}.gguf"))
}

/// Where a model is installed: its file, or a split model's first part (what llama.cpp opens;
/// it finds the other parts beside it by name).
pub fn model_path(models_dir: &Path, model: &ModelEntry) -> PathBuf {
    models_dir.join(model.file_name())
}

/// Every file of a model as installed, in order (one, or each part of a split model).
pub fn model_paths(models_dir: &Path, model: &ModelEntry) -> Vec<PathBuf> {
    model.file_names().into_iter().map(|name| models_dir.join(name)).collect()
}

/// A split model's parts after the first, with where each installs and the bytes before it,
/// then the first: the order a download installs them in, so a first part in place means
/// every part is in place, verified.
pub fn install_order(models_dir: &Path, model: &ModelEntry) -> Vec<(ModelEntry, PathBuf, u64)> {
    let mut files: Vec<(ModelEntry, PathBuf)> = model.files().into_iter().zip(model_paths(models_dir, model)).collect();
    files.rotate_left(1);
    let mut base = 0;
    files
        .into_iter()
        .map(|(file, path)| {
            let before = base;
            base += file.size_bytes;
            (file, path, before)
        })
        .collect()
}

/// The bytes of a split model's parts in place at their size, in install order up to the first
/// missing one (the first part left out): what its download counts as done before its
/// partial's bytes, the part the partial holds being the next. 0 for one file.
pub fn parts_in_place(models_dir: &Path, model: &ModelEntry) -> u64 {
    let mut order = install_order(models_dir, model);
    order.pop();
    order
        .iter()
        .take_while(|(file, path, _)| len_or_zero(path) == file.size_bytes)
        .map(|(file, _, _)| file.size_bytes)
        .sum()
}

/// Length of a file, 0 when it does not exist.
pub fn len_or_zero(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Hashes the first `len` bytes of `file` in large reads. `None` when cancelled; an error when
/// the file is shorter than `len`.
pub fn hash_prefix(file: &mut File, len: u64, token: &CancellationToken) -> io::Result<Option<Sha256>> {
    hash_prefix_counting(file, len, token, &AtomicU64::new(0))
}

/// [`hash_prefix`], adding each read's length to `done` as it goes (what a check shows as its
/// progress).
fn hash_prefix_counting(
    file: &mut File,
    len: u64,
    token: &CancellationToken,
    done: &AtomicU64,
) -> io::Result<Option<Sha256>> {
    use std::io::Seek;
    file.seek(io::SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut left = len;
    while left > 0 {
        if token.is_cancelled() {
            return Ok(None);
        }
        let want = left.min(READ_CHUNK as u64) as usize;
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than expected"));
        }
        hasher.update(&buf[..n]);
        done.fetch_add(n as u64, Ordering::Relaxed);
        left -= n as u64;
    }
    Ok(Some(hasher))
}

/// SHA-256 of a whole file as lowercase hex; `None` when cancelled.
pub fn hash_file(path: &Path, token: &CancellationToken) -> io::Result<Option<String>> {
    hash_file_counting(path, token, &AtomicU64::new(0))
}

/// [`hash_file`], adding the bytes hashed so far to `done`.
pub fn hash_file_counting(path: &Path, token: &CancellationToken, done: &AtomicU64) -> io::Result<Option<String>> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    Ok(hash_prefix_counting(&mut f, len, token, done)?.map(|h| hex(&h.finalize())))
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Opens (creating) the partial for read and write without truncating it.
pub fn open_partial(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)
}

/// Makes the partial `size` bytes long with its blocks reserved, so a parallel download can
/// write any segment anywhere and the disk cannot fill up halfway. Filesystems without
/// `fallocate` get a sparse file of that length instead (the disk check before the start still
/// guards them), as do systems other than Linux.
#[cfg(target_os = "linux")]
pub fn preallocate(file: &File, size: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = i64::try_from(size).map_err(io::Error::other)?;
    // SAFETY: the descriptor is open for the whole call; fallocate touches no memory of ours.
    if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => file.set_len(size),
        _ => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn preallocate(file: &File, size: u64) -> io::Result<()> {
    file.set_len(size)
}

/// Starts one of the threads that write and hash a download, at a lower CPU priority (nice 10):
/// when the cores are busy, the server's answers to the card come first and the download takes
/// what is left. The priority is advisory: on failure the thread keeps the normal one.
pub fn spawn_low_priority<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> io::Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new().name(name.into()).spawn(move || {
        lower_this_threads_priority();
        work()
    })
}

/// Linux sets a nice value per thread; elsewhere the thread keeps the normal priority.
#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // SAFETY: plain syscalls on the calling thread's own id; no memory of ours is touched.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}

/// Bytes written between two [`start_writeback`] calls.
pub const WRITEBACK_EVERY: u64 = 32 << 20;

/// Asks the kernel to start writing `len` bytes at `offset` to disk now, without waiting for
/// them. Done as the download goes, the fsync before the install finds almost nothing left to
/// write (measured: 1.1 s -> 0.02 s for 2 GiB here), and dirty memory does not pile up to
/// gigabytes on a slow disk. Advisory: an error changes nothing but the timing, so it is
/// ignored; other systems than Linux leave writeback to the kernel.
#[cfg(target_os = "linux")]
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else { return };
    // SAFETY: the descriptor is open for the whole call; sync_file_range touches no memory of ours.
    unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
}

#[cfg(not(target_os = "linux"))]
pub fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// Takes the process-wide exclusive lock on an open partial; `WouldBlock` when another process
/// holds it. The lock goes with the file handle.
pub fn try_lock(file: &File) -> io::Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// True when another process holds the lock on the partial at `path` (a live download).
pub fn is_locked_elsewhere(path: &Path) -> bool {
    match File::open(path) {
        Ok(f) => matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// Installs a verified partial: fsync the file, rename it over the target (atomic on one
/// filesystem: there is never a moment without a file, and no unlink first), fsync the folder
/// so the rename survives a power cut.
pub fn install(partial: &Path, target: &Path) -> io::Result<()> {
    File::open(partial)?.sync_all()?;
    fs::rename(partial, target)?;
    if let Some(dir) = target.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Renames a file; whether it existed (a missing file is not an error).
pub fn rename_if_exists(from: &Path, to: &Path) -> io::Result<bool> {
    match fs::rename(from, to) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes a file; a missing file is fine.
pub fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// True when an I/O error means the disk is full.
pub fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names_carry_the_download_id() {
        let p = partial_path(Path::new("/m"), "qwen2.5-0.5b.q4", 42);
        assert_eq!(p, Path::new("/m/.partial/qwen2.5-0.5b.q4.42.partial"));
        assert_eq!(download_id_of_partial("qwen2.5-0.5b.q4.42.partial"), Some(42));
        assert_eq!(download_id_of_partial("notes.txt"), None);
        assert_eq!(download_id_of_partial("x.y.partial"), None);
    }

    #[test]
    fn hashing_a_prefix_matches_hashing_those_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..10_000_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&p, &data).unwrap();
        let token = CancellationToken::new();
        let mut f = File::open(&p).unwrap();
        let h = hash_prefix(&mut f, 6_000_000, &token).unwrap().unwrap();
        assert_eq!(hex(&h.finalize()), hex(&Sha256::digest(&data[..6_000_000])));
        let done = AtomicU64::new(0);
        assert_eq!(hash_file_counting(&p, &token, &done).unwrap().unwrap(), hex(&Sha256::digest(&data)));
        assert_eq!(done.into_inner(), data.len() as u64, "every byte hashed is counted");
        assert!(hash_prefix(&mut f, 20_000_000, &token).is_err());
        token.cancel();
        assert!(hash_file(&p, &token).unwrap().is_none());
    }

    #[test]
    fn install_replaces_the_target_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join(".partial").join("m.1.partial");
        let target = dir.path().join("m.gguf");
        fs::create_dir_all(partial.parent().unwrap()).unwrap();
        fs::write(&target, b"old").unwrap();
        fs::write(&partial, b"new").unwrap();
        install(&partial, &target).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert!(!partial.exists());
    }
}
