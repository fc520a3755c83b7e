//! Response headers (issue 16, item 2): the page's Content-Security-Policy names the nonce its
//! inline scripts carry, and allows what the page needs and no more; every other answer gets a
//! policy that allows nothing; nosniff, no-referrer and no framing on everything.

use super::harness::*;
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, HeaderMap};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

fn assert_common(headers: &HeaderMap, what: &str) {
    assert_eq!(header(headers, "x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header(headers, "referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header(headers, "x-frame-options"), "DENY", "{what}");
    assert!(header(headers, "content-security-policy").contains("frame-ancestors 'none'"), "{what}");
}

#[tokio::test]
async fn the_page_policy_names_its_nonce_and_everything_else_is_locked_down() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    let admin = s.admin().await;

    let page = s.http.get(format!("{}/settings", s.base)).header(COOKIE, &admin.cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_common(&headers, "the Settings page");
    let policy = header(&headers, CONTENT_SECURITY_POLICY.as_str()).to_string();
    let html = page.text().await.unwrap();
    let nonce = policy
        .split_once("'nonce-")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(nonce, _)| nonce.to_string())
        .unwrap_or_else(|| panic!("no nonce in {policy}"));
    assert!(nonce.len() >= 16, "a nonce of {} characters", nonce.len());
    // Every inline script carries the policy's nonce; none runs without one.
    let scripts: Vec<&str> = html.split("<script").skip(1).map(|s| &s[..s.find('>').unwrap_or(s.len())]).collect();
    assert!(!scripts.is_empty(), "the page hydrates from inline scripts");
    for attrs in &scripts {
        assert!(attrs.contains(&format!("nonce=\"{nonce}\"")), "a script without the nonce: <script{attrs}>");
    }
    for needed in
        ["'wasm-unsafe-eval'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "object-src 'none'"]
    {
        assert!(policy.contains(needed), "{needed} missing from {policy}");
    }
    // Inline style attributes only (the progress bar's width), and no eval but the WASM's.
    assert!(!policy.replace("style-src-attr 'unsafe-inline'", "").contains("unsafe-inline"), "{policy}");
    assert!(!policy.replace("'wasm-unsafe-eval'", "").contains("unsafe-eval"), "{policy}");
    // A new page, a new nonce.
    let again = s.http.get(format!("{}/settings", s.base)).header(COOKIE, &admin.cookie).send().await.unwrap();
    assert_ne!(header(again.headers(), CONTENT_SECURITY_POLICY.as_str()), policy);

    // The API, a failed login and a missing file: nothing may run or load.
    let api = s
        .http
        .post(format!("{}/api/downloads/list", s.base))
        .header(COOKIE, &admin.cookie)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    let login = s.http.get(format!("{}/login?token=nope", s.base)).send().await.unwrap();
    assert_eq!(login.status(), 400);
    for (what, headers) in [("the API", api.headers()), ("a failed login", login.headers())] {
        assert_common(headers, what);
        assert!(header(headers, "content-security-policy").starts_with("default-src 'none'"), "{what}");
    }
}
