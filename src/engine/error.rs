//! The engine's errors. [`EngineError`] is what a request to the engine (the API, the CLI) can
//! be told; [`TransferError`] is why a download failed, the words its row keeps. Both keep their
//! sources, so callers match variants; the HTTP edge (the app's `ApiError`) chooses the status codes.

use crate::status::DownloadStatus;
use crate::store::StoreError;
use std::io;

/// A refused or failed request to the engine. Messages are plain words for the user.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("there is no model called {0:?} in the catalog")]
    UnknownModel(String),
    #[error("download not found")]
    NotFound,
    #[error("cannot {action} a download that is {status}")]
    WrongState { action: &'static str, status: DownloadStatus },
    #[error("not enough disk space: needs {needed} free, {available} available")]
    NotEnoughDisk { needed: String, available: String },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

impl EngineError {
    pub(super) fn io(what: &'static str) -> impl FnOnce(io::Error) -> EngineError {
        move |source| EngineError::Io { what, source }
    }
}

/// Why a transfer failed or stopped trying. The text is what the download's row shows.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("cannot reach the download server ({})", chain(.0))]
    Unreachable(#[source] reqwest::Error),
    #[error("the download server did not answer in time")]
    NoAnswer,
    #[error("the download stalled: no data for {secs} s")]
    Stalled { secs: u64 },
    #[error("the connection broke ({})", chain(.0))]
    Broken(#[source] reqwest::Error),
    #[error("the server's answer ended early, at byte {at} of {size}")]
    EndedEarly { at: u64, size: u64 },
    /// A 408, 429 or 5xx.
    #[error("the download server is busy ({0})")]
    Busy(reqwest::StatusCode),
    /// Any other status the transfer cannot use (401, 403, 404, 410...).
    #[error("the download server answered {status} for {host}")]
    Refused { status: reqwest::StatusCode, host: String },
    #[error("the server's file is {server} bytes but the catalog says {catalog}: it is a different file")]
    WrongSize { server: u64, catalog: u64 },
    #[error("the server sent more than the catalog's {size} bytes: it is a different file")]
    TooLong { size: u64 },
    /// The server cannot continue this partial as asked; the transfer starts again from zero.
    #[error("{0}")]
    Restart(&'static str),
    #[error(
        "the downloaded file is corrupt: its SHA-256 fingerprint does not match the catalog, so nothing was installed (got {got}, expected {expected})"
    )]
    Corrupt { got: String, expected: String },
    #[error("{0} is no longer in the catalog")]
    NotInCatalog(String),
    #[error("{last}; gave up after {tries} tries (the partial download is kept)")]
    GaveUp { last: Box<TransferError>, tries: u32 },
    /// A file operation failed; a full disk is told as such.
    #[error("{}", file_words(what, source))]
    File {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot record the download: {0}")]
    Record(#[source] StoreError),
    /// A task of the download panicked: a bug, told without its internals.
    #[error("the download stopped unexpectedly ({0}); try again")]
    Crashed(String),
}

impl TransferError {
    /// A file error with what was being done.
    pub(super) fn file(what: &'static str) -> impl FnOnce(io::Error) -> TransferError {
        move |source| TransferError::File { what, source }
    }
}

fn file_words(what: &str, e: &io::Error) -> String {
    if super::files::is_disk_full(e) {
        "disk full: free some space and try again (the partial download is kept)".to_string()
    } else {
        format!("{what}: {e}")
    }
}

/// An error with its causes, which is where reqwest says what really happened.
pub(super) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
