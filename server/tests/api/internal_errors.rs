//! A failure inside the server is logged once, with the request it failed (method and path),
//! by the server's error layer (STYLE.md §5), and answered in its family's shape: a page for
//! the login link, `{"kind": "internal", ...}` for the API, with no details in either.

use super::guesses::plain;
use super::harness::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn an_internal_error_is_logged_once_with_its_request() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    let alice = s.admin().await;

    // A server function whose table is gone.
    s.execute("drop table model_downloads").await;
    let list = s.call(Some(&alice), "downloads/list", json!({})).await;
    assert_eq!((list.status, list.json["kind"].as_str()), (500, Some("internal")), "{}", list.text);

    // The login link, and a sign-out whose session lookup (in a layer) and delete both fail.
    let link = s.user_add_link("bob");
    s.execute("drop table login_tokens").await;
    s.execute("drop table sessions").await;
    let login = s.http.get(&link).send().await.unwrap();
    assert_eq!(login.status().as_u16(), 500);
    let kind = login.headers()["content-type"].to_str().unwrap().to_string();
    let page = login.text().await.unwrap();
    assert!(kind.starts_with("text/html") && page.contains("<h1>Cannot sign in</h1>"), "{kind}: {page}");
    let out = s.call(Some(&alice), "logout", json!({})).await;
    assert_eq!((out.status, out.json["kind"].as_str()), (500, Some("internal")), "{}", out.text);

    // Each failure on one line, with the words "internal error" and its request's path.
    let logged = |what: &str, path: &str| {
        let log = plain(&s.log_text());
        let lines: Vec<&str> = log.lines().filter(|l| l.contains("internal error") && l.contains(what)).collect();
        lines.len() == 1 && lines[0].contains(&format!("path={path} "))
    };
    let all = [
        ("model_downloads", "/api/downloads/list"),
        ("login failed", "/login"),
        ("session lookup failed", "/api/logout"),
        ("sign-out failed", "/api/logout"),
    ];
    // A request's errors are logged when it is done, which may be just after its answer.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !all.iter().all(|(what, path)| logged(what, path)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for (what, path) in all {
        assert!(logged(what, path), "{what}: once, with path={path}\n{}", plain(&s.log_text()));
    }
}
