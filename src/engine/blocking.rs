//! Blocking file work (opening, hashing, renaming) run off the async threads: one helper every
//! part of the engine uses, at the bottom of its imports.

/// Runs blocking file work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(std::io::Error::other)?
}
