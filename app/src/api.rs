//! The JSON API: every endpoint is a server function at a stable path under `/api`, taking and
//! returning JSON. The card calls these same functions. Every body resolves the caller from the
//! session and scopes what it touches to that user.
//!
//! Errors carry an HTTP status (400 bad input, 401 no session, 404 not found, 409 wrong state,
//! 429 busy, 503 no memory for the model now, 507 not enough disk) and the body
//! `{"error": "<plain words>"}`.

mod chat;
pub use chat::*;

use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use localbrain::view::{CatalogView, DownloadView};
use serde::{Deserialize, Serialize};

/// An API error: plain words for the user. The status travels in the HTTP response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)
    }
}

impl std::error::Error for ApiError {}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        use ServerFnErrorErr::*;
        match value {
            // The request body did not parse: the caller's mistake.
            Args(e) | Deserialization(e) | MissingArg(e) => {
                #[cfg(feature = "ssr")]
                ssr::set_status(400);
                ApiError { error: format!("bad request: {e}") }
            }
            Request(_) | Response(_) => ApiError { error: "cannot reach the localbrain server".into() },
            other => ApiError { error: other.to_string() },
        }
    }
}

/// The models, this machine, and the recommended pick.
#[server(prefix = "/api", endpoint = "catalog", input = server_fn::codec::Json, output = server_fn::codec::Json)]
pub async fn catalog() -> Result<CatalogView, ApiError> {
    let (engine, _user) = ssr::caller().await?;
    let models_dir = engine.models_dir().to_path_buf();
    let dir = models_dir.clone();
    let hardware = tokio::task::spawn_blocking(move || localbrain::hardware::detect(&dir))
        .await
        .map_err(|e| ssr::internal(e.to_string()))?;
    let models = engine.catalog().models.clone();
    let recommendation = localbrain::recommend::recommend(&models, &hardware);
    Ok(CatalogView { models, hardware, recommendation, models_dir: models_dir.display().to_string() })
}

/// Starts a download of a catalog model, or returns the caller's open one for it.
#[server(prefix = "/api", endpoint = "downloads/start", input = server_fn::codec::Json, output = server_fn::codec::Json)]
pub async fn start_download(model_id: String) -> Result<DownloadView, ApiError> {
    let (engine, user) = ssr::caller().await?;
    if !localbrain::catalog::is_valid_model_id(&model_id) {
        return Err(ssr::fail(400, "model_id must be a catalog model id (lowercase letters, digits, '.', '_' or '-')"));
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

/// Server-side plumbing of the API: who is calling, and errors with their HTTP status.
#[cfg(feature = "ssr")]
pub mod ssr {
    use super::ApiError;
    use leptos::prelude::*;
    use localbrain::brain::{Brain, BrainError, RuntimeError};
    use localbrain::engine::{Engine, EngineError};
    use std::sync::Arc;

    /// The signed-in user of a request, put in the request's extensions by the session layer.
    #[derive(Clone, Debug, PartialEq)]
    pub struct CurrentUser {
        pub id: i64,
        pub name: String,
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

    /// An error with its status.
    pub fn fail(code: u16, words: impl Into<String>) -> ApiError {
        set_status(code);
        ApiError { error: words.into() }
    }

    /// A 500: logged in full, told in short.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(%detail, "internal error");
        fail(500, "something went wrong on the server; see its log")
    }

    /// An engine error with the status the engine gives it.
    pub fn engine_error(e: EngineError) -> ApiError {
        match e.http_status() {
            500 => internal(e),
            code => fail(code, e.to_string()),
        }
    }

    /// The engine and the signed-in caller, or 401.
    pub async fn caller() -> Result<(Arc<Engine>, CurrentUser), ApiError> {
        let engine = use_context::<Arc<Engine>>().ok_or_else(|| internal("engine missing from context"))?;
        let user = leptos_axum::extract::<axum::Extension<CurrentUser>>()
            .await
            .map_err(|_| fail(401, "not signed in: open the login link that localbrain printed"))?;
        Ok((engine, user.0))
    }

    /// A brain error with its status: the brain's words, the status chosen here.
    pub fn brain_error(e: BrainError) -> ApiError {
        let code = match &e {
            BrainError::BadRequest(_)
            | BrainError::Runtime(RuntimeError::PromptTooLong { .. } | RuntimeError::NulInText) => 400,
            BrainError::UnknownModel(_) | BrainError::NotInstalled(_) => 404,
            BrainError::Unusable { .. } | BrainError::Runtime(RuntimeError::Template(_)) => 409,
            BrainError::Busy => 429,
            BrainError::TooBig { .. } | BrainError::LowMemory { .. } | BrainError::ShuttingDown => 503,
            BrainError::Io(_) | BrainError::Runtime(_) => return internal(e),
        };
        fail(code, e.to_string())
    }

    /// The brain and the signed-in caller, or 401.
    pub async fn brain_caller() -> Result<(Arc<Brain>, CurrentUser), ApiError> {
        let brain = use_context::<Arc<Brain>>().ok_or_else(|| internal("brain missing from context"))?;
        let (_, user) = caller().await?;
        Ok((brain, user))
    }

    /// The signed-in caller for server-side rendering; `None` when signed out.
    pub async fn current_user() -> Option<CurrentUser> {
        leptos_axum::extract::<axum::Extension<CurrentUser>>().await.ok().map(|e| e.0)
    }
}
