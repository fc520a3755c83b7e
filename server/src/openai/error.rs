//! Errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with the status
//! codes its clients turn into their exception classes (401 `AuthenticationError`, 404
//! `NotFoundError`, 429 `RateLimitError`...).

use app::api::ssr::InternalError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use localbrain::brain::{BrainError, ErrorKind};
use serde::Serialize;

/// How long a client told "the queue is full" should wait before asking again, in seconds,
/// when the brain gives no estimate of its own.
const RETRY_AFTER_SECONDS: u32 = 5;

/// A refused request, as an OpenAI client expects it.
#[derive(Debug)]
pub struct OpenAiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    /// Seconds for `Retry-After` on a 429; [`RETRY_AFTER_SECONDS`] when not set.
    pub retry_after: Option<u64>,
    /// What went wrong inside, for the log only, when it says more than `message`.
    pub detail: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

/// The `error` object. Also the payload of an `error` event mid-stream.
#[derive(Serialize)]
pub struct Detail<'a> {
    pub message: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub param: Option<&'a str>,
    pub code: Option<&'a str>,
}

impl OpenAiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message, "invalid_request_error", None)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message, "invalid_request_error", Some("invalid_api_key"))
    }

    pub fn not_found(message: impl Into<String>, code: &'static str) -> Self {
        Self::new(StatusCode::NOT_FOUND, message, "invalid_request_error", Some(code))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message, "server_error", None)
    }

    pub fn new(status: StatusCode, message: impl Into<String>, kind: &'static str, code: Option<&'static str>) -> Self {
        OpenAiError { status, message: message.into(), kind, code, retry_after: None, detail: None }
    }

    /// Too many wrong API keys from one address: refused for `wait`.
    pub fn too_many_bad_keys(wait: std::time::Duration) -> Self {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many requests with API keys that are not valid here came from this address: \
                 try again in {minutes} min with a valid key"
            ),
            "rate_limit_error",
            Some("too_many_bad_keys"),
        );
        e.retry_after = Some(wait.as_secs().max(1));
        e
    }

    /// The same error, with what went wrong inside for the log.
    pub fn because(mut self, detail: impl std::fmt::Display) -> Self {
        self.detail = Some(detail.to_string());
        self
    }

    /// The `error` object alone.
    pub fn detail(&self) -> Detail<'_> {
        Detail { message: &self.message, kind: self.kind, param: None, code: self.code }
    }

    /// What the brain refused, with the status that says why.
    pub fn from_brain(e: BrainError) -> Self {
        let message = e.to_string();
        let retry_after = e.retry_after().map(|wait| wait.as_secs().max(1));
        let mut answer = match e.kind() {
            ErrorKind::BadRequest => Self::bad_request(message),
            ErrorKind::NotFound => {
                let id = e.missing_model().unwrap_or_default();
                Self::not_found(
                    format!(
                        "the model {id:?} is not installed here: download it in the Settings card or run \
                         `localbrain download {id}` on the server (GET /v1/models lists what is installed)"
                    ),
                    "model_not_found",
                )
            }
            ErrorKind::Unusable => {
                Self::new(StatusCode::CONFLICT, message, "invalid_request_error", Some("model_unusable"))
            }
            ErrorKind::Busy => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, message, "rate_limit_error", Some("queue_full"))
            }
            ErrorKind::NoMemory => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, message, "server_error", Some("insufficient_memory"))
            }
            ErrorKind::ShuttingDown => Self::new(StatusCode::SERVICE_UNAVAILABLE, message, "server_error", None),
            ErrorKind::Internal => Self::internal(message).because(format!("a chat completion failed: {}", causes(&e))),
        };
        answer.retry_after = retry_after;
        answer
    }
}

/// An error and its sources on one line, for the log: "what failed: why: why".
fn causes(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(Body { error: self.detail() })).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            let seconds = self.retry_after.unwrap_or(u64::from(RETRY_AFTER_SECONDS));
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            // Logged once, by the server's error layer.
            let detail = self.detail.unwrap_or(self.message);
            response = InternalError(detail).on(response);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy() -> BrainError {
        BrainError::Busy { waiting: 3, slots: 2, retry_after: std::time::Duration::from_millis(12_400) }
    }

    #[test]
    fn the_brains_refusals_get_openais_statuses() {
        let too_big = BrainError::TooBig { name: "Big".into(), needed: "90 GB".into(), ram: "24 GB".into() };
        let low = BrainError::LowMemory { name: "Big".into(), needed: "9 GB".into(), available: "2 GB".into() };
        for (e, status, code) in [
            (busy(), 429, Some("queue_full")),
            (too_big, 503, Some("insufficient_memory")),
            (low, 503, Some("insufficient_memory")),
            (BrainError::NotInstalled("m".into()), 404, Some("model_not_found")),
            (BrainError::UnknownModel("m".into()), 404, Some("model_not_found")),
            (BrainError::BadRequest("no".into()), 400, None),
        ] {
            let e = OpenAiError::from_brain(e);
            assert_eq!((e.status.as_u16(), e.code), (status, code), "{}", e.message);
        }
        // The brain's estimate, not a constant.
        let r = OpenAiError::from_brain(busy()).into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "12");
        let e = OpenAiError::from_brain(busy());
        assert!(e.message.contains("(3 waiting, 2 written at a time): try again in about 12 s"), "{}", e.message);
        let r = OpenAiError::unauthorized("no").into_response();
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    #[test]
    fn only_a_500_carries_its_detail_to_the_error_layer() {
        let broken = BrainError::Io(std::io::Error::other("disk on fire"));
        let r = OpenAiError::from_brain(broken).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let detail = &r.extensions().get::<InternalError>().expect("the detail for the log").0;
        assert!(detail.starts_with("a chat completion failed: ") && detail.contains("disk on fire"), "{detail}");
        let low = BrainError::LowMemory { name: "Big".into(), needed: "9 GB".into(), available: "2 GB".into() };
        let r = OpenAiError::from_brain(low).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.extensions().get::<InternalError>().is_none(), "a refusal for memory is not a failure");
    }
}
