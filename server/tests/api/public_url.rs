//! A server behind a reverse proxy (issue 16, item 4): with `--public-url`, login links point at
//! the public address, requests for that host and from that origin are accepted, and the
//! session cookie is Secure when the public address is https.

use super::harness::*;
use reqwest::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use std::process::Stdio;

const PUBLIC: &str = "https://brain.example.com";

#[tokio::test]
async fn behind_a_proxy_links_hosts_origins_and_cookies_follow_the_public_url() {
    let host = model_host().await;
    let s = Server::start_with(&host, &[("LOCALBRAIN_PUBLIC_URL", "https://brain.example.com/")]).await;
    assert!(s.admin_link.starts_with(&format!("{PUBLIC}/login?token=")), "serve printed {}", s.admin_link);

    // `user add` reads the address the server recorded, without being told.
    let out = s
        .command()
        .env_remove("LOCALBRAIN_PUBLIC_URL")
        .args(["user", "add", "dave"])
        .stdin(Stdio::null())
        .output()
        .expect("run user add");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let link = stdout.lines().find(|l| l.contains("/login?token=")).expect("a login link").trim().to_string();
    assert!(link.starts_with(&format!("{PUBLIC}/login?token=")), "{link}");

    // The proxy forwards the public Host; the link works there and the cookie is Secure.
    let local_link = link.replacen(PUBLIC, &s.base, 1);
    let resp = s.http.get(&local_link).header(HOST, "brain.example.com").send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let cookie = resp.headers().get(SET_COOKIE).unwrap().to_str().unwrap().to_string();
    assert!(cookie.contains("; Secure"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();

    // A POST from the public origin is ours, whichever Host the proxy passes on; others are not.
    let post = |host: &str, origin: &str| {
        s.http
            .post(format!("{}/api/downloads/list", s.base))
            .header(HOST, host)
            .header(ORIGIN, origin)
            .header(COOKIE, &session)
            .header("content-type", "application/json")
            .body("{}")
            .send()
    };
    let port_host = format!("127.0.0.1:{}", s.port);
    assert_eq!(post("brain.example.com", PUBLIC).await.unwrap().status(), 200);
    assert_eq!(post(&port_host, PUBLIC).await.unwrap().status(), 200);
    assert_eq!(post("brain.example.com", "https://evil.example").await.unwrap().status(), 403);
    assert_eq!(post("brain.example.com", "http://brain.example.com").await.unwrap().status(), 403);
    // Another name is still refused (DNS rebinding).
    assert_eq!(post("evil.example", "https://evil.example").await.unwrap().status(), 421);
}
