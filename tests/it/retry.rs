//! The retry table: every failure a transfer meets and what `retry::classify` makes of it. The
//! errors are real reqwest errors from real loopback sockets (a closed port, a host that resets,
//! a certificate no root signed...), so the table breaks if a new reqwest, hyper or rustls
//! reports a cause in another way.

use localbrain::engine::retry::{Failure, Retry, classify};
use reqwest::StatusCode;
use std::time::Duration;
use testkit::{RawHost, SELF_SIGNED_CERT, Then, tls12_hello_with};

/// The error a GET of `url` ends with, whether it comes while sending or while reading the body.
async fn error_of(client: &reqwest::Client, url: &str) -> reqwest::Error {
    let mut resp = match client.get(url).send().await {
        Err(e) => return e,
        Ok(resp) => resp,
    };
    loop {
        match resp.chunk().await {
            Err(e) => return e,
            Ok(None) => panic!("{url}: answered {} and a whole body, no error", resp.status()),
            Ok(Some(_)) => {}
        }
    }
}

/// A host answering every request with `reply`, then doing `then`; its URL.
async fn raw(scheme: &str, reply: &[u8], then: Then) -> String {
    RawHost::start(reply.to_vec(), then).await.url(scheme, "/file")
}

/// A write that failed because the peer had gone.
#[derive(Debug)]
struct WriteFailed(std::io::Error);

impl std::fmt::Display for WriteFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cannot send the request")
    }
}

impl std::error::Error for WriteFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s = format!("{s}: {c}");
        cur = c.source();
    }
    s
}

#[tokio::test]
async fn each_failure_is_classified_by_its_cause() {
    use Retry::*;
    let client = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build().unwrap();
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(200)).build().unwrap();
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/file", l.local_addr().unwrap())
    };
    let http = |head: &str| head.replace('\n', "\r\n").into_bytes();
    let ok_page = |rest: &str| http(&format!("HTTP/1.1 200 OK\n{rest}"));
    let rows: Vec<(&str, Retry, &reqwest::Client, String)> = vec![
        ("connection refused (a closed port)", Transient, &client, closed_port),
        ("connection reset before an answer", Transient, &client, raw("http", b"", Then::Reset).await),
        ("connection closed before an answer", Transient, &client, raw("http", b"", Then::Close).await),
        ("no answer before the client's timeout", Transient, &impatient, raw("http", b"", Then::Hang).await),
        // RFC 6761: .invalid never resolves.
        ("DNS failure", Transient, &client, "http://localbrain-test.invalid/file".into()),
        (
            "body cut short of its Content-Length",
            Transient,
            &client,
            raw("http", &ok_page("Content-Length: 100\n\nten bytes."), Then::Close).await,
        ),
        (
            "connection reset in the middle of the body",
            Transient,
            &client,
            raw("http", &ok_page("Content-Length: 100\n\nten bytes."), Then::Reset).await,
        ),
        (
            "TLS: a certificate no root signed",
            Fatal,
            &client,
            raw("https", &tls12_hello_with(SELF_SIGNED_CERT), Then::WaitForClose).await,
        ),
        (
            "TLS: a certificate that is not one",
            Fatal,
            &client,
            raw("https", &tls12_hello_with(b"not a certificate"), Then::WaitForClose).await,
        ),
        (
            "TLS: plain HTTP on an https port",
            Fatal,
            &client,
            raw("https", &http("HTTP/1.1 400 Bad Request\n\n"), Then::WaitForClose).await,
        ),
        (
            "HTTP: an answer that is not HTTP",
            Fatal,
            &client,
            raw("http", b"SSH-2.0-OpenSSH_9.6\r\n", Then::WaitForClose).await,
        ),
        (
            "HTTP: a chunked body with a bad chunk size",
            Fatal,
            &client,
            raw("http", &ok_page("Transfer-Encoding: chunked\n\nzz\n"), Then::WaitForClose).await,
        ),
        (
            "a redirect loop",
            Fatal,
            &client,
            raw(
                "http",
                &http("HTTP/1.1 302 Found\nLocation: /file\nContent-Length: 0\nConnection: close\n\n"),
                Then::Close,
            )
            .await,
        ),
    ];
    let mut wrong = Vec::new();
    for (case, want, client, url) in &rows {
        let error = error_of(client, url).await;
        let got = classify(Failure::Error(&error));
        if got != *want {
            wrong.push(format!("{case}: {got:?}, expected {want:?} ({})", chain(&error)));
        }
    }
    // What a broken pipe leaves in a chain; a GET's one small write cannot be made to meet one.
    let broken_pipe = WriteFailed(std::io::ErrorKind::BrokenPipe.into());
    if classify(Failure::Error(&broken_pipe)) != Transient {
        wrong.push("broken pipe: expected Transient".into());
    }
    for (case, want, failure) in [
        ("no answer or no byte within the stall timeout", Transient, Failure::Stalled),
        ("a body that ended cleanly before its bytes", Transient, Failure::EndedEarly),
    ] {
        let got = classify(failure);
        if got != want {
            wrong.push(format!("{case}: {got:?}, expected {want:?}"));
        }
    }
    for (status, want) in [
        (400, Fatal),
        (401, Fatal),
        (403, Fatal),
        (404, Fatal),
        (410, Fatal),
        (408, Transient),
        (429, Transient),
        (500, Transient),
        (502, Transient),
        (503, Transient),
        (504, Transient),
    ] {
        let got = classify(Failure::Status(StatusCode::from_u16(status).unwrap()));
        if got != want {
            wrong.push(format!("status {status}: {got:?}, expected {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
}
