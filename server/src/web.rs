//! The HTTP side: the axum router with the Leptos pages, the JSON API (server functions),
//! sign-in, and the request-hygiene layers.

use crate::openai::error::OpenAiError;
use crate::state::AppState;
use crate::{auth, headers};
use app::api::ApiError;
use app::api::ssr::{InternalError, RequestErrors};
use app::{App, shell};
use axum::{
    Router,
    body::Body,
    extract::{DefaultBodyLimit, Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use std::net::SocketAddr;
use std::time::Duration;
use tower_http::trace::TraceLayer;

/// API request bodies are tiny; anything bigger is refused before it is read.
const BODY_LIMIT: usize = 16 * 1024;
/// A chat request carries the conversation so far, a completion its prompt, an embeddings
/// request its inputs: room for long ones (the brain refuses what a context cannot hold anyway).
const CHAT_BODY_LIMIT: usize = 1024 * 1024;

/// The most a request to `path` may send.
fn body_limit(path: &str) -> usize {
    match path {
        "/api/chat" | "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings" => CHAT_BODY_LIMIT,
        _ => BODY_LIMIT,
    }
}

/// The whole app as a router, ready to serve (tests drive it the same way).
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let engine = state.engine.clone();
    let brain = state.brain.clone();
    let checks = state.checks.clone();
    Router::new()
        // The server functions (the JSON API) are routed by leptos_routes_with_context below,
        // with the engine, the brain and the model checks in their context.
        .route("/login", get(auth::login))
        .route("/api/logout", post(auth::logout))
        .nest("/v1", crate::openai::router(&state))
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(engine.clone());
                provide_context(brain.clone());
                provide_context(checks.clone());
            },
            {
                let options = state.leptos_options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn_with_state(state.clone(), auth::session_layer))
        .layer(middleware::from_fn_with_state(state.site.clone(), auth::hygiene_layer))
        .layer(middleware::from_fn_with_state(state.body_timeout, limit_body))
        .layer(DefaultBodyLimit::max(CHAT_BODY_LIMIT))
        .layer(middleware::from_fn(headers::security_headers))
        .layer(middleware::from_fn(log_internal_errors))
        .layer(TraceLayer::new_for_http())
        // Outermost: every layer and handler inside reads the client's address from here.
        .layer(middleware::from_fn_with_state(state.proxies.clone(), crate::proxies::client_address))
        .with_state(state)
}

/// Reads the body up front so an oversized one is a 413 with a JSON error, whether it announced
/// its length or came chunked (server functions would otherwise report it as a parse error),
/// and a body that does not arrive within `timeout` is a 408 (a client that announces a body
/// and never sends it would otherwise hold its connection for good).
async fn limit_body(State(timeout): State<Duration>, req: Request<Body>, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let limit = body_limit(parts.uri.path());
    // The /v1 API answers in OpenAI's shape, the rest in the app's.
    let openai = parts.uri.path().starts_with("/v1/");
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(Err(_)) => {
            let error = format!("request body too large (limit {} KiB)", limit / 1024);
            if openai {
                OpenAiError::new(StatusCode::PAYLOAD_TOO_LARGE, error, "invalid_request_error", None).into_response()
            } else {
                ApiError::TooLarge { error }.into_response()
            }
        }
        Err(_) => {
            tracing::warn!(path = parts.uri.path(), "request body did not arrive in time");
            let error = format!("the request body did not arrive within {} s", timeout.as_secs());
            let mut response = if openai {
                OpenAiError::new(StatusCode::REQUEST_TIMEOUT, error, "invalid_request_error", None).into_response()
            } else {
                ApiError::TimedOut { error }.into_response()
            };
            // The rest of the body may still be on its way: this connection is done.
            response
                .headers_mut()
                .insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
            response
        }
    }
}

/// Logs every internal error of a request once (STYLE.md §5), not where it happened: gives the
/// request its [`RequestErrors`] (server functions and layers note theirs there) and adds the
/// answer's [`InternalError`] to it; they are logged with the request when it is done.
async fn log_internal_errors(mut req: Request<Body>, next: Next) -> Response {
    let errors = RequestErrors::new(req.method().clone(), req.uri().path().to_string());
    req.extensions_mut().insert(errors.clone());
    let mut response = next.run(req).await;
    if let Some(InternalError(detail)) = response.extensions_mut().remove::<InternalError>() {
        errors.note(detail);
    }
    response
}

/// Leptos's settings: where the compiled site lives and what it is called.
/// The site folder defaults to the workspace's `target/site` (where cargo-leptos writes it),
/// so the binary serves its pages from any working directory; LEPTOS_SITE_ROOT overrides it.
pub fn leptos_options(addr: SocketAddr) -> LeptosOptions {
    let site_root = std::env::var("LEPTOS_SITE_ROOT")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/site").to_string());
    LeptosOptions::builder().output_name("localbrain").site_root(site_root).site_pkg_dir("pkg").site_addr(addr).build()
}
