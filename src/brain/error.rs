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
    #[error(
        "the brain is busy with other replies ({waiting} waiting, {slots} written at a time): try again in about {} s",
        retry_after.as_secs().max(1)
    )]
    Busy { waiting: usize, slots: u32, retry_after: std::time::Duration },
    #[error("{0} is answering a message right now: try again when it is done")]
    InUse(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the brain is shutting down")]
    ShuttingDown,
    #[error("cannot read the models folder")]
    Io(#[source] std::io::Error),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// What sort of refusal a [`BrainError`] is: each HTTP edge (the card's API, the OpenAI API)
/// turns this into its own status and shape, so the two can never disagree on a class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong (a bad field, a prompt too long for the model).
    BadRequest,
    /// The model is not in the catalog or not installed.
    NotFound,
    /// The model is installed but its file cannot be run.
    Unusable,
    /// The queue is full.
    Busy,
    /// The model does not fit in memory, now or ever.
    NoMemory,
    /// The server is stopping.
    ShuttingDown,
    /// Our fault: the disk or the runtime failed.
    Internal,
}

impl BrainError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            BrainError::BadRequest(_)
            | BrainError::Runtime(
                RuntimeError::PromptTooLong { .. }
                | RuntimeError::NulInText
                | RuntimeError::BadInput(_)
                | RuntimeError::NotForEmbedding(_)
                | RuntimeError::NotForChat,
            ) => ErrorKind::BadRequest,
            BrainError::UnknownModel(_) | BrainError::NotInstalled(_) => ErrorKind::NotFound,
            BrainError::Unusable { .. } | BrainError::Runtime(RuntimeError::Template(_)) => ErrorKind::Unusable,
            BrainError::Busy { .. } | BrainError::InUse(_) => ErrorKind::Busy,
            BrainError::TooBig { .. } | BrainError::LowMemory { .. } => ErrorKind::NoMemory,
            BrainError::ShuttingDown | BrainError::Runtime(RuntimeError::Cancelled) => ErrorKind::ShuttingDown,
            BrainError::Io(_) | BrainError::Runtime(_) => ErrorKind::Internal,
        }
    }

    /// How long a refused caller should wait before asking again, when the brain knows.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            BrainError::Busy { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The id of the model asked for, when the model is what was not found.
    pub fn missing_model(&self) -> Option<&str> {
        match self {
            BrainError::UnknownModel(id) | BrainError::NotInstalled(id) => Some(id),
            _ => None,
        }
    }
}
