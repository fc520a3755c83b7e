//! What a request to the brain can be told. Messages are plain words for the user; the HTTP
//! edge chooses the status codes.

use super::RuntimeError;
use super::gguf::GgufError;
use std::sync::Arc;

/// A refused or failed request to the brain. Messages are plain words for the person.
#[derive(Debug, thiserror::Error)]
pub enum BrainError {
    #[error("there is no model called {0:?} in the catalog")]
    UnknownModel(String),
    #[error("{0} is not installed: download it first (`localbrain download {0}`)")]
    NotInstalled(String),
    #[error("{model_id} is installed, but its file is not a model localbrain can run: {source}")]
    Unusable { model_id: String, source: Arc<GgufError> },
    #[error("{name} needs about {needed} of memory and this machine has {ram}: pick a smaller model")]
    TooBig { name: String, needed: String, ram: String },
    #[error(
        "{name} needs about {needed} of free memory and only {available} is free right now: close some programs and try again"
    )]
    LowMemory { name: String, needed: String, available: String },
    #[error("the brain is busy answering other messages: try again shortly")]
    Busy,
    #[error("{0}")]
    BadRequest(String),
    #[error("the brain is shutting down")]
    ShuttingDown,
    #[error("cannot read the models folder")]
    Io(#[source] std::io::Error),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}
