//! The JSON API: every endpoint is a server function at a stable path under `/api`, taking and
//! returning JSON. The card calls these same functions. Every body resolves the caller from the
//! session and scopes what it touches to that user.
//!
//! Errors are an [`ApiError`]: its variant chooses the HTTP status (400 bad input, 401 no session,
//! 404 not found, 408 the body did not arrive in time, 409 wrong state, 421 a Host that is not this server, 429 busy, 503 no
//! memory for the model now, 507 not enough disk, 500 without details) and the body is `{"kind": "<variant>", "error": "<plain words>"}`.

mod chat;
mod conversations;
mod hub;
mod keys;
mod models;
pub use chat::*;
pub use conversations::*;
pub use hub::*;
pub use keys::*;
pub use models::*;

use leptos::prelude::*;
use leptos::server_fn::Encodes;
use leptos::server_fn::codec::JsonEncoding;
use localbrain::view::{CatalogView, DownloadView};
use serde::{Deserialize, Serialize};

/// An API error. The variant is what went wrong and chooses the HTTP status ([`ApiError::status`]);
/// `error` is plain words for the user. The UI can match on the variant: it travels in the body
/// as `"kind"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ApiError {
    /// The request is malformed or names something that cannot exist.
    BadRequest { error: String },
    /// No session: the caller has not signed in.
    NotSignedIn { error: String },
    /// Refused whoever asks (a cross-site request).
    Forbidden { error: String },
    /// Not there, or not the caller's (the two read the same).
    NotFound { error: String },
    /// The request's body did not arrive in time (the server's, for a stalled client).
    TimedOut { error: String },
    /// Not in a state that allows this.
    Conflict { error: String },
    /// The request body is bigger than the endpoint takes.
    TooLarge { error: String },
    /// The request's Host is not this server (DNS rebinding).
    Misdirected { error: String },
    /// Busy with other requests: try again shortly.
    Busy { error: String },
    /// Cannot be done now (no memory for the model, shutting down).
    Unavailable { error: String },
    /// Not enough free disk.
    NoDisk { error: String },
    /// A failure on the server: the words say only that, the log has the details.
    Internal { error: String },
    /// The browser's own: the call or its answer was lost on the way. The server never sends it.
    Unreachable { error: String },
}

impl ApiError {
    /// The HTTP status the server answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest { .. } => 400,
            ApiError::NotSignedIn { .. } => 401,
            ApiError::Forbidden { .. } => 403,
            ApiError::NotFound { .. } => 404,
            ApiError::TimedOut { .. } => 408,
            ApiError::Conflict { .. } => 409,
            ApiError::TooLarge { .. } => 413,
            ApiError::Misdirected { .. } => 421,
            ApiError::Busy { .. } => 429,
            ApiError::Unavailable { .. } => 503,
            ApiError::NoDisk { .. } => 507,
            ApiError::Internal { .. } | ApiError::Unreachable { .. } => 500,
        }
    }

    /// The plain words for the user.
    pub fn words(&self) -> &str {
        match self {
            ApiError::BadRequest { error }
            | ApiError::NotSignedIn { error }
            | ApiError::Forbidden { error }
            | ApiError::NotFound { error }
            | ApiError::Conflict { error }
            | ApiError::TimedOut { error }
            | ApiError::TooLarge { error }
            | ApiError::Misdirected { error }
            | ApiError::Busy { error }
            | ApiError::Unavailable { error }
            | ApiError::NoDisk { error }
            | ApiError::Internal { error }
            | ApiError::Unreachable { error } => error,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.words())
    }
}

impl std::error::Error for ApiError {}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        use ServerFnErrorErr::*;
        match value {
            // The request body did not parse: the caller's mistake.
            Args(e) | Deserialization(e) | MissingArg(e) => ApiError::BadRequest { error: format!("bad request: {e}") },
            Request(_) | Response(_) => ApiError::Unreachable { error: "cannot reach the localbrain server".into() },
            other => ApiError::Internal { error: other.to_string() },
        }
    }

    /// Encodes the error for its response, and sets that response's status from the variant:
    /// the one place every server function's error passes on its way out.
    fn ser(&self) -> bytes::Bytes {
        #[cfg(feature = "ssr")]
        ssr::set_status(self.status());
        <JsonEncoding as Encodes<ApiError>>::encode(self).unwrap_or_else(|_| {
            // Unreachable in practice: every variant is a string.
            bytes::Bytes::from_static(br#"{"kind":"internal","error":"the error could not be encoded"}"#)
        })
    }
}

/// The signed-in person's name; `None` when signed out (not an error: the page asks before it
/// knows, to show "Signed in as" and Sign out only to someone who is).
#[server(prefix = "/api", endpoint = "me", input = server_fn::codec::Json, output = server_fn::codec::Json)]
pub async fn whoami() -> Result<Option<String>, ApiError> {
    Ok(ssr::current_user().await.map(|u| u.name))
}

/// The models, this machine (with its measured memory speed), the speeds measured here, and
/// the recommended pick.
#[server(prefix = "/api", endpoint = "catalog", input = server_fn::codec::Json, output = server_fn::codec::Json)]
pub async fn catalog() -> Result<CatalogView, ApiError> {
    let (engine, _user) = ssr::caller().await?;
    let models_dir = engine.models_dir().to_path_buf();
    // The brain's settings know the generation threads and the machine file: the memory speed
    // is read from there (measured the first time), the speeds replies recorded too.
    let brain = ssr::brain()?.config().clone();
    let (hardware, speed) = tokio::task::spawn_blocking(move || (brain.hardware(false), brain.speed_inputs()))
        .await
        .map_err(ssr::internal)?;
    // The shipped models, then the Hugging Face ones kept in the database: read again each
    // time, since another process on it (`localbrain download hf.co/...`, a second server) may
    // have added one since this one started.
    if let Err(e) = localbrain::hub::shelf::load(engine.db(), engine.catalog()).await {
        tracing::warn!(error = %e, "cannot read the Hugging Face models kept");
    }
    let models = engine.catalog().all();
    let recommendation = localbrain::recommend::recommend_with(&models, &hardware, &speed);
    Ok(CatalogView { models, hardware, recommendation, speed, models_dir: models_dir.display().to_string() })
}

/// Starts a download of a catalog model, or returns the caller's open one for it. `model_id` may
/// be a Hugging Face reference (`hf.co/ORG/REPO[:QUANT]`, a file's address): it is resolved and
/// pinned first (`hub/repo` shows what it would pick).
#[server(prefix = "/api", endpoint = "downloads/start", input = server_fn::codec::Json, output = server_fn::codec::Json)]
pub async fn start_download(model_id: String) -> Result<DownloadView, ApiError> {
    let (engine, user) = ssr::caller().await?;
    let settings = engine.config().hub.clone().ok_or_else(|| ssr::internal("the hub's settings are not set"))?;
    let model_id = match localbrain::hub::shelf::name(&model_id, &settings) {
        Ok(localbrain::hub::shelf::Named::Id(id)) => id,
        Ok(localbrain::hub::shelf::Named::Hub(r)) => hub::on_hub::adopt(&engine, &r).await?,
        Err(e) => return Err(ApiError::BadRequest { error: e.to_string() }),
    };
    if !localbrain::catalog::is_valid_model_id(&model_id) {
        return Err(ApiError::BadRequest {
            error: "model_id must be a catalog model id (lowercase letters, digits, '.', '_' or '-')".into(),
        });
    }
    engine.start(user.id, &model_id).await.map_err(ssr::engine_error)
}

/// One of the caller's downloads.
#[server(prefix = "/api", endpoint = "downloads/get", input = server_fn::codec::Json, output = server_fn::codec::Json)]
pub async fn get_download(id: i64) -> Result<DownloadView, ApiError> {
    let (engine, user) = ssr::caller().await?;
    engine.get(user.id, id).await.map_err(ssr::engine_error)
}

/// The caller's downloads, newest first.
#[server(prefix = "/api", endpoint = "downloads/list", input = server_fn::codec::Json, output = server_fn::codec::Json)]
pub async fn list_downloads() -> Result<Vec<DownloadView>, ApiError> {
    let (engine, user) = ssr::caller().await?;
    engine.list(user.id).await.map_err(ssr::engine_error)
}

/// Pauses one of the caller's downloads.
#[server(prefix = "/api", endpoint = "downloads/pause", input = server_fn::codec::Json, output = server_fn::codec::Json)]
pub async fn pause_download(id: i64) -> Result<DownloadView, ApiError> {
    let (engine, user) = ssr::caller().await?;
    engine.pause(user.id, id).await.map_err(ssr::engine_error)
}

/// Resumes (or retries) one of the caller's downloads.
#[server(prefix = "/api", endpoint = "downloads/resume", input = server_fn::codec::Json, output = server_fn::codec::Json)]
pub async fn resume_download(id: i64) -> Result<DownloadView, ApiError> {
    let (engine, user) = ssr::caller().await?;
    engine.resume(user.id, id).await.map_err(ssr::engine_error)
}

/// Cancels one of the caller's downloads and removes its partial file.
#[server(prefix = "/api", endpoint = "downloads/cancel", input = server_fn::codec::Json, output = server_fn::codec::Json)]
pub async fn cancel_download(id: i64) -> Result<DownloadView, ApiError> {
    let (engine, user) = ssr::caller().await?;
    engine.cancel(user.id, id).await.map_err(ssr::engine_error)
}

/// Ends the wait before the next try of one of the caller's downloads ("Try now").
#[server(prefix = "/api", endpoint = "downloads/try_now", input = server_fn::codec::Json, output = server_fn::codec::Json)]
pub async fn try_download_now(id: i64) -> Result<DownloadView, ApiError> {
    let (engine, user) = ssr::caller().await?;
    engine.try_now(user.id, id).await.map_err(ssr::engine_error)
}

/// Server-side plumbing of the API: who is calling, and the core's errors as [`ApiError`]s.
#[cfg(feature = "ssr")]
pub mod ssr {
    use super::ApiError;
    use leptos::prelude::*;
    use localbrain::brain::{Brain, BrainError, ErrorKind};
    use localbrain::engine::{Engine, EngineError};
    use std::sync::Arc;

    /// The signed-in user of a request, put in the request's extensions by the session layer.
    #[derive(Clone, Debug, PartialEq)]
    pub struct CurrentUser {
        pub id: i64,
        pub name: String,
        /// Admins may delete installed models and remove anyone's unfinished download.
        pub is_admin: bool,
    }

    /// Sets the HTTP status of an API response. A server function called while rendering a
    /// page leaves the page's status alone: the page shows the error in words instead.
    pub fn set_status(code: u16) {
        let is_api_call =
            use_context::<axum::http::request::Parts>().is_some_and(|parts| parts.uri.path().starts_with("/api/"));
        if let (true, Some(opts), Ok(status)) =
            (is_api_call, use_context::<leptos_axum::ResponseOptions>(), axum::http::StatusCode::from_u16(code))
        {
            opts.set_status(status);
        }
    }

    /// The server's own refusals outside the server functions (a body too large, a foreign
    /// Origin) answer in the same shape and through the same status match.
    impl axum::response::IntoResponse for ApiError {
        fn into_response(self) -> axum::response::Response {
            let status = axum::http::StatusCode::from_u16(self.status())
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
            (status, axum::Json(self)).into_response()
        }
    }

    /// A 500: told in short, noted in full for the log ([`RequestErrors`]).
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        note(request_errors().as_ref(), detail.to_string());
        ApiError::Internal { error: "something went wrong on the server; see its log".into() }
    }

    /// The [`RequestErrors`] of the request a server function is answering.
    pub fn request_errors() -> Option<RequestErrors> {
        use_context::<axum::http::request::Parts>().and_then(|p| p.extensions.get::<RequestErrors>().cloned())
    }

    /// Notes `detail` for the log with `errors`' request. Without one (outside a request: a test
    /// calling an inner function) there is no request to log it with, so it is logged here.
    pub fn note(errors: Option<&RequestErrors>, detail: String) {
        match errors {
            Some(errors) => errors.note(detail),
            None => tracing::error!(%detail, "internal error"),
        }
    }

    /// A failure inside the server, in full, for its log only: the answer says just that
    /// something went wrong. An answer built outside the server functions carries it in its
    /// extensions ([`InternalError::on`]) for the server's error layer to log.
    #[derive(Clone, Debug)]
    pub struct InternalError(pub String);

    impl InternalError {
        /// `response`, carrying this error for the log.
        pub fn on(self, mut response: axum::response::Response) -> axum::response::Response {
            response.extensions_mut().insert(self);
            response
        }
    }

    /// The internal errors of one request, each logged once with the request. The server's error
    /// layer puts one in every request's extensions (a server function reaches it through the
    /// request's parts, a layer through the request), adds the answer's [`InternalError`], and
    /// what was noted is logged when the last copy goes: for a page that streams on after its
    /// headers, once the page is done.
    #[derive(Clone, Debug)]
    pub struct RequestErrors(std::sync::Arc<Noted>);

    #[derive(Debug)]
    struct Noted {
        method: axum::http::Method,
        path: String,
        errors: std::sync::Mutex<Vec<String>>,
    }

    impl RequestErrors {
        /// The record of a request to `path`.
        pub fn new(method: axum::http::Method, path: String) -> Self {
            RequestErrors(std::sync::Arc::new(Noted { method, path, errors: Default::default() }))
        }

        /// Notes `detail` for the log.
        pub fn note(&self, detail: String) {
            self.0.errors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(detail);
        }
    }

    impl Drop for Noted {
        fn drop(&mut self) {
            let errors = self.errors.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
            for error in errors.drain(..) {
                tracing::error!(method = %self.method, path = %self.path, %error, "internal error");
            }
        }
    }

    /// An engine error as the API tells it: the engine's words, the variant chosen here.
    pub fn engine_error(e: EngineError) -> ApiError {
        let error = e.to_string();
        match e {
            EngineError::UnknownModel(_) => ApiError::BadRequest { error },
            EngineError::NotFound => ApiError::NotFound { error },
            EngineError::WrongState { .. } | EngineError::NotWaiting => ApiError::Conflict { error },
            EngineError::NotEnoughDisk { .. } => ApiError::NoDisk { error },
            EngineError::Store(_) | EngineError::Io { .. } => internal(e),
        }
    }

    /// The engine and the signed-in caller, or 401.
    pub async fn caller() -> Result<(Arc<Engine>, CurrentUser), ApiError> {
        let engine = use_context::<Arc<Engine>>().ok_or_else(|| internal("engine missing from context"))?;
        let user = leptos_axum::extract::<axum::Extension<CurrentUser>>().await.map_err(|_| ApiError::NotSignedIn {
            error: "not signed in: open the login link that localbrain printed".into(),
        })?;
        Ok((engine, user.0))
    }

    /// A brain error as the API tells it: the brain's words, the variant chosen here.
    pub fn brain_error(e: BrainError) -> ApiError {
        let error = e.to_string();
        match e.kind() {
            ErrorKind::BadRequest => ApiError::BadRequest { error },
            ErrorKind::NotFound => ApiError::NotFound { error },
            ErrorKind::Unusable => ApiError::Conflict { error },
            ErrorKind::Busy => ApiError::Busy { error },
            ErrorKind::NoMemory | ErrorKind::ShuttingDown => ApiError::Unavailable { error },
            ErrorKind::Internal => internal(e),
        }
    }

    /// The brain and the signed-in caller, or 401.
    pub async fn brain_caller() -> Result<(Arc<Brain>, CurrentUser), ApiError> {
        let brain = brain()?;
        let (_, user) = caller().await?;
        Ok((brain, user))
    }

    /// The brain of this server.
    pub fn brain() -> Result<Arc<Brain>, ApiError> {
        use_context::<Arc<Brain>>().ok_or_else(|| internal("brain missing from context"))
    }

    /// The signed-in caller for server-side rendering; `None` when signed out.
    pub async fn current_user() -> Option<CurrentUser> {
        leptos_axum::extract::<axum::Extension<CurrentUser>>().await.ok().map(|e| e.0)
    }
}
