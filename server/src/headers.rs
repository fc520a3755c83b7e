//! Security headers on every answer (issue 16, item 2):
//! - `X-Content-Type-Options: nosniff`: a browser takes each answer as the type it is sent as;
//! - `Referrer-Policy: no-referrer`: the login URL carries a token, and no page of ours tells
//!   another site where it was;
//! - `X-Frame-Options: DENY` beside CSP's `frame-ancestors 'none'`, for browsers that predate it;
//! - a Content-Security-Policy: pages send their own, with the nonce of their inline scripts
//!   (`app::policy`); everything else (the API, static files, the login pages) allows nothing
//!   to run or load.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The policy of every answer that is not a rendered page.
pub const LOCKED_DOWN: &str = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Adds the headers to each response; a page's own policy is kept.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(LOCKED_DOWN));
    }
    response
}
