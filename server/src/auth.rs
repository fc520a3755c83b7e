//! Sign-in and request hygiene, as axum middleware and routes:
//! - `GET /login?token=T` spends a one-time link and sets the session cookie; failed attempts
//!   are logged and limited per client address;
//! - `POST /api/logout` ends the caller's session (the cookie stops working at once);
//! - every request gets its signed-in user (if any) as an extension, from the cookie;
//! - state-changing requests from a foreign Origin are refused (403);
//! - a Host header that is not this server's is refused (DNS rebinding, 421).

use crate::guesses::Guesses;
use crate::openai::error::OpenAiError;
use crate::refusal::{Family, page, unknown_host};
use crate::site::Site;
use app::api::ApiError;
use app::api::ssr::{CurrentUser, InternalError, RequestErrors};
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use localbrain::store::Db;
use localbrain::store::sessions::{self, SessionRules};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "lb_session";

/// Query of `/login`.
#[derive(serde::Deserialize)]
pub struct LoginQuery {
    token: Option<String>,
}

/// `GET /login?token=T`: a valid unused token opens a session and goes to /settings. Failed
/// attempts are counted per client address and logged (never the token); an address with too
/// many is refused for a while (`guesses`).
pub async fn login(
    State(db): State<Db>,
    State(guesses): State<Arc<Guesses>>,
    State(rules): State<SessionRules>,
    State(site): State<Site>,
    Query(q): Query<LoginQuery>,
    req: Request,
) -> Response {
    let client = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if let Some(ip) = client
        && let Err(wait) = guesses.check(ip, Instant::now())
    {
        tracing::warn!(client = %ip, "login link refused: too many failed attempts from this address");
        return too_many_attempts(wait);
    }
    let failed = |why: &str| {
        if let Some(ip) = client {
            let failures = guesses.failed(ip, Instant::now());
            tracing::warn!(client = %ip, failures, reason = why, "failed login attempt");
        }
        login_refused(why)
    };
    let Some(token) = q.token.filter(|t| !t.is_empty() && t.len() <= 128) else {
        return failed("This link has no login token.");
    };
    match sessions::redeem_login_token(&db, &token, &rules).await {
        Ok(Some((user, session))) => {
            tracing::info!(user = %user.name, "signed in");
            let max_age = rules.max.as_secs();
            // Secure when people reach the server over https (a proxy in front of it).
            let secure = if site.is_https() { "; Secure" } else { "" };
            let cookie =
                format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}", session.expose());
            ([(header::SET_COOKIE, cookie)], Redirect::to("/settings")).into_response()
        }
        Ok(None) => failed("This login link has expired or was already used."),
        Err(e) => InternalError(format!("login failed: {e}")).on(page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Sign in",
            "Cannot sign in",
            "<p>Sign-in failed on the server; see its log.</p>",
        )),
    }
}

/// The answer of a sign-out: `{"signed_out": true}`.
#[derive(serde::Serialize)]
struct SignedOut {
    signed_out: bool,
}

/// `POST /api/logout`: ends the caller's session at once and clears the cookie. A form (the
/// page's Sign out button) is sent back to /settings; an API caller gets `{"signed_out": true}`,
/// or 401 when it had no session.
pub async fn logout(State(db): State<Db>, headers: HeaderMap) -> Response {
    let ended = match cookie(&headers, COOKIE) {
        Some(secret) => match sessions::delete_session(&db, &secret).await {
            Ok(ended) => ended,
            Err(e) => {
                let answer = ApiError::Internal { error: "sign-out failed; see the server log".into() };
                return InternalError(format!("sign-out failed: {e}")).on(answer.into_response());
            }
        },
        None => false,
    };
    if ended {
        tracing::info!("signed out");
    }
    let clear = [(header::SET_COOKIE, format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"))];
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        (clear, Redirect::to("/settings")).into_response()
    } else if ended {
        (clear, axum::Json(SignedOut { signed_out: true })).into_response()
    } else {
        ApiError::NotSignedIn { error: "not signed in".into() }.into_response()
    }
}

/// 429 with Retry-After: the address has had too many failed attempts lately.
fn too_many_attempts(wait: Duration) -> Response {
    let minutes = wait.as_secs().div_ceil(60).max(1);
    let body = format!(
        "<p>Too many login links that did not work came from this address. Try again in {minutes} min, \
         with a fresh link: on the server run <code>localbrain user login NAME</code>.</p>"
    );
    let retry_after = wait.as_secs().max(1).to_string();
    let page = page(StatusCode::TOO_MANY_REQUESTS, "Sign in", "Too many attempts", &body);
    ([(header::RETRY_AFTER, retry_after)], page).into_response()
}

fn login_refused(why: &str) -> Response {
    let body =
        format!("<p>{why}</p><p>Ask for a new link: on the server run <code>localbrain user login NAME</code>.</p>");
    page(StatusCode::BAD_REQUEST, "Sign in", "Cannot sign in", &body)
}

/// Puts the signed-in user into the request's extensions.
pub async fn session_layer(
    State(db): State<Db>,
    State(rules): State<SessionRules>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(secret) = cookie(req.headers(), COOKIE) {
        match sessions::user_for_session(&db, &secret, &rules).await {
            Ok(Some(u)) => {
                req.extensions_mut().insert(CurrentUser { id: u.id, is_admin: u.role == "admin", name: u.name });
            }
            Ok(None) => {}
            Err(e) => {
                if let Some(errors) = req.extensions().get::<RequestErrors>() {
                    errors.note(format!("session lookup failed: {e}"));
                }
            }
        }
    }
    next.run(req).await
}

/// Refuses a foreign Host (DNS rebinding) and a foreign Origin on state-changing requests.
pub async fn hygiene_layer(State(site): State<Site>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    // The /v1 API's clients parse errors in OpenAI's shape.
    let family = Family::of(req.uri().path());
    let openai = family == Family::OpenAi;
    if !site.host_allowed(host) {
        return unknown_host(family);
    }
    if req.method() != Method::GET
        && req.method() != Method::HEAD
        && let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok())
        && !site.origin_allowed(origin, host, headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()))
        && !(openai && site.cors_allows(origin))
    {
        let error = "cross-site request refused";
        return if openai {
            let hint =
                format!("{error}: start the server with --cors-origin {origin} to let pages from it call the API");
            OpenAiError::new(StatusCode::FORBIDDEN, hint, "invalid_request_error", Some("origin_not_allowed"))
                .into_response()
        } else {
            ApiError::Forbidden { error: error.into() }.into_response()
        };
    }
    next.run(req).await
}

/// A cookie's value from the Cookie headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; lb_session=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&h, "lb_session").as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "zzz"), None);
    }
}
