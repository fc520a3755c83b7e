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
    #[error("the download is not waiting to try again")]
    NotWaiting,
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

/// Why a transfer failed or stopped trying. The text (`Display`) is the technical account: the
/// log line and the "Details" a person can open. What a person reads first comes from the one
/// words table, [`TransferError::said`] (words.rs).
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("cannot reach {host} ({})", chain(.source))]
    Unreachable {
        host: String,
        #[source]
        source: reqwest::Error,
    },
    /// A proxy variable holds something that is not a proxy address: reqwest would ignore it
    /// and go around the proxy the person set.
    #[error("the proxy setting {variable}={value:?} is not a proxy URL reqwest can use")]
    ProxySetting { variable: &'static str, value: String },
    /// The proxy in `variable` cannot be reached: its name does not resolve (`found` false), or
    /// nothing answers at its address.
    #[error("cannot reach the proxy {proxy} set in {variable} ({source})")]
    ProxyUnreachable {
        variable: &'static str,
        proxy: String,
        found: bool,
        #[source]
        source: io::Error,
    },
    #[error("{host} did not answer in time")]
    NoAnswer { host: String },
    #[error("the download from {host} stalled: no data for {secs} s")]
    Stalled { host: String, secs: u64 },
    #[error("the connection to {host} broke ({})", chain(.source))]
    Broken {
        host: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{host}'s answer ended early, at byte {at} of {size}")]
    EndedEarly { host: String, at: u64, size: u64 },
    /// A 408, 429 or 5xx.
    #[error("{host} is busy (it answered {status})")]
    Busy { host: String, status: reqwest::StatusCode },
    /// Any other status the transfer cannot use (401, 403, 404, 410...).
    #[error("{host} answered {status}")]
    Refused { status: reqwest::StatusCode, host: String },
    /// An HTML page where the model should be: a login, a licence, a portal or a rate limit.
    #[error("{host} sent a web page ({content_type}), not the model file")]
    WebPage { host: String, content_type: String },
    /// A short answer with status 200 where the model should be, whatever its type: a captive
    /// portal's sign-in page, a filter's notice. `bytes` is its Content-Length, or what came.
    #[error("{host} answered 200 with {bytes} bytes{}, not the catalog's {catalog}-byte file", content_type.as_ref().map(|t| format!(" of {t}")).unwrap_or_default())]
    NotTheModel { host: String, bytes: u64, catalog: u64, content_type: Option<String> },
    #[error("{host}'s file is {server} bytes but the catalog says {catalog}: it is a different file")]
    WrongSize { host: String, server: u64, catalog: u64 },
    #[error("{host} sent more than the catalog's {size} bytes: it is a different file")]
    TooLong { host: String, size: u64 },
    /// The server cannot continue this partial as asked; the transfer starts again from zero.
    #[error("{0}")]
    Restart(&'static str),
    #[error("SHA-256 mismatch: got {got}, expected {expected}")]
    Corrupt { got: String, expected: String },
    #[error("{0} is no longer in the catalog")]
    NotInCatalog(String),
    #[error("{last}; gave up after {tries} tries")]
    GaveUp { last: Box<TransferError>, tries: u32 },
    #[error("{what}: {source}")]
    File {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot record the download: {0}")]
    Record(#[source] StoreError),
    /// A task of the download panicked: a bug, told without its internals.
    #[error("the download stopped unexpectedly ({0})")]
    Crashed(String),
}

impl TransferError {
    /// A file error with what was being done.
    pub(super) fn file(what: &'static str) -> impl FnOnce(io::Error) -> TransferError {
        move |source| TransferError::File { what, source }
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
