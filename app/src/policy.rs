//! The page's Content-Security-Policy (issue 16, item 2), sent as a header with each rendered
//! page. It allows exactly what the page uses:
//! - scripts: Leptos's inline hydration scripts, which carry this response's nonce, and the
//!   `/pkg` module they import; `'wasm-unsafe-eval'` to compile the WASM;
//! - styles: the `/pkg` stylesheet, and inline style attributes (the progress bar's width is
//!   one; `style-src-attr` allows attributes only, never a `<style>` element);
//! - fetches to this server (server functions, the WASM file);
//! - nothing framed, no framing by others, no plugins, no `<base>`; forms post here only.
//!
//! Every other answer (the API, static files, the login pages) gets the server's
//! `default-src 'none'` policy (server/src/headers.rs).

use leptos::prelude::*;

/// The policy for a page whose inline scripts carry `nonce`.
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         style-src-attr 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Puts the page's policy on the response being rendered (server only: the header goes out
/// once the shell has rendered, before the body).
pub fn send_page_policy() {
    let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    if let Ok(value) = axum::http::HeaderValue::from_str(&page_policy(&nonce)) {
        response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, value);
    }
}
