//! Guessing at login links (issue 16, item 5): failed attempts are logged per client address
//! (never the token) and, past the limit, refused with 429 and Retry-After, valid link or not.

use super::harness::*;

#[tokio::test]
async fn failed_login_attempts_are_logged_and_limited_per_address() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    let get = |path: String| {
        let (http, base) = (s.http.clone(), s.base.clone());
        async move { http.get(format!("{base}{path}")).send().await.expect("GET /login") }
    };
    const LIMIT: usize = 10;
    for i in 0..LIMIT {
        let resp = get(format!("/login?token=guess-number-{i}")).await;
        assert_eq!(resp.status().as_u16(), 400, "attempt {i} is refused as a bad link");
    }
    let refused = get("/login?token=guess-number-11".into()).await;
    assert_eq!(refused.status().as_u16(), 429, "past the limit");
    let wait: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&wait), "Retry-After {wait}");
    assert!(refused.text().await.unwrap().contains("Too many attempts"));
    // While limited even a real link is refused: checking it would be one more guess.
    let real = s.user_add_link("carol");
    let path = &real[real.find("/login").unwrap()..];
    assert_eq!(get(path.to_string()).await.status().as_u16(), 429);

    let log = plain(&s.log_text());
    let failures = log.lines().filter(|l| l.contains("failed login attempt")).count();
    assert_eq!(failures, LIMIT, "each failure is logged once:\n{log}");
    assert!(log.contains("client=127.0.0.1"), "the log names the address:\n{log}");
    assert!(log.contains("too many failed attempts"), "{log}");
    assert!(!log.contains("guess-number-"), "tokens are never logged");
}

/// Behind a listed proxy each client has its own count, by the address the proxy forwards; a
/// client talking to the server directly cannot pick an address with the same header.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_count() {
    let host = model_host().await;
    let behind = Server::start_with(&host, &[("LOCALBRAIN_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let direct = Server::start(&host).await;
    let login = |s: &Server, client: &str, i: usize| {
        let request = s.http.get(format!("{}/login?token=guess-{i}", s.base)).header("x-forwarded-for", client);
        async move { request.send().await.expect("GET /login").status().as_u16() }
    };
    for i in 0..10 {
        assert_eq!(login(&behind, "198.51.100.1, 203.0.113.5", i).await, 400);
    }
    assert_eq!(login(&behind, "203.0.113.5", 10).await, 429, "this client used up its tries");
    // Only the rightmost address counts: what the client wrote to its left is not believed.
    assert_eq!(login(&behind, "203.0.113.5, 203.0.113.5", 11).await, 429);
    assert_eq!(login(&behind, "203.0.113.6", 12).await, 400, "the next client has its own");
    let log = plain(&behind.log_text());
    assert!(log.contains("client=203.0.113.5"), "the log names the client, not the proxy:\n{log}");
    assert!(!log.contains("client=198.51.100.1"), "{log}");

    // Not a listed proxy: the header is ignored, and every try counts against the real address.
    for i in 0..10 {
        assert_eq!(login(&direct, &format!("203.0.113.{i}"), i).await, 400);
    }
    assert_eq!(login(&direct, "203.0.113.99", 10).await, 429);
    assert!(!plain(&direct.log_text()).contains("client=203.0.113."));
}

/// The log without its terminal colours (escape sequences `ESC [ ... m`).
pub(crate) fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
