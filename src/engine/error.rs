//! What the engine's callers (the API, the CLI) can be told, each with its HTTP status.

use crate::status::DownloadStatus;
use crate::store::StoreError;

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
    #[error("file error: {0}")]
    Io(String),
}

impl EngineError {
    /// The HTTP status the API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            EngineError::UnknownModel(_) => 400,
            EngineError::NotFound => 404,
            EngineError::WrongState { .. } => 409,
            EngineError::NotEnoughDisk { .. } => 507,
            EngineError::Store(_) | EngineError::Io(_) => 500,
        }
    }
}
