//! The server's own refusals, outside any handler (a foreign Host), in the shape of the
//! family the path belongs to: `/v1` answers in OpenAI's shape ([`OpenAiError`]), `/api` as an
//! [`ApiError`], and the pages (sign-in, the app) as a short HTML page, the one `/login` uses.

use crate::openai::error::OpenAiError;
use app::api::ApiError;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Who asks, by path: each family parses errors its own way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `/v1/...`: OpenAI's clients.
    OpenAi,
    /// `/api/...`: the card and scripts, which read `{"kind", "error"}`.
    Api,
    /// Everything else: a person's browser.
    Page,
}

impl Family {
    /// The family of a request to `path`.
    pub fn of(path: &str) -> Family {
        if path.starts_with("/v1/") {
            Family::OpenAi
        } else if path.starts_with("/api/") {
            Family::Api
        } else {
            Family::Page
        }
    }
}

/// 421: the Host is not this server (DNS rebinding), in the family's shape.
pub fn unknown_host(family: Family) -> Response {
    let error = "unknown Host";
    match family {
        Family::OpenAi => {
            OpenAiError::new(StatusCode::MISDIRECTED_REQUEST, error, "invalid_request_error", None).into_response()
        }
        Family::Api => ApiError::Misdirected { error: error.into() }.into_response(),
        Family::Page => page(
            StatusCode::MISDIRECTED_REQUEST,
            "localbrain",
            "Unknown address",
            "<p>This server does not answer to that address (unknown Host). Open it by the address \
             localbrain printed when it started.</p>",
        ),
    }
}

/// A page that says why a request was refused: the window's `title`, the `heading`, and `body`
/// (HTML) under it.
pub fn page(status: StatusCode, title: &str, heading: &str, body: &str) -> Response {
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><main><h1>{heading}</h1>{body}</main></body></html>"
    );
    (status, Html(page)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fall_in_their_family() {
        assert_eq!(Family::of("/v1/chat/completions"), Family::OpenAi);
        assert_eq!(Family::of("/api/downloads/start"), Family::Api);
        assert_eq!(Family::of("/login"), Family::Page);
        assert_eq!(Family::of("/v1"), Family::Page, "only what is under /v1/ is the API");
    }
}
