//! The words table (engine/words.rs): every way a download can fail, and the sentences a person
//! reads for it. Failures that come from the network are made for real on loopback (a refused
//! port, a name that does not resolve, a certificate no root signed); the rest are built from
//! their parts. A new `TransferError` variant does not compile here until it has a row.

use localbrain::engine::TransferError;
use localbrain::store::StoreError;
use reqwest::StatusCode;
use std::io;
use std::time::Duration;
use testkit::{RawHost, RefusingPort, SELF_SIGNED_CERT, Then, tls12_hello_with};

/// The error a real request to `url` ends with.
async fn failed_request(url: &str) -> reqwest::Error {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    client.get(url).send().await.expect_err("the request must fail")
}

/// Every variant by name, so the table cannot miss one.
fn variant(e: &TransferError) -> &'static str {
    use TransferError::*;
    match e {
        Unreachable { .. } => "Unreachable",
        ProxySetting { .. } => "ProxySetting",
        ProxyUnreachable { .. } => "ProxyUnreachable",
        NoAnswer { .. } => "NoAnswer",
        Stalled { .. } => "Stalled",
        Broken { .. } => "Broken",
        EndedEarly { .. } => "EndedEarly",
        Busy { .. } => "Busy",
        Refused { .. } => "Refused",
        WebPage { .. } => "WebPage",
        NotTheModel { .. } => "NotTheModel",
        WrongSize { .. } => "WrongSize",
        TooLong { .. } => "TooLong",
        Restart(_) => "Restart",
        Corrupt { .. } => "Corrupt",
        NotInCatalog(_) => "NotInCatalog",
        GaveUp { .. } => "GaveUp",
        File { .. } => "File",
        Record(_) => "Record",
        Crashed(_) => "Crashed",
    }
}

const EVERY_VARIANT: [&str; 20] = [
    "Unreachable",
    "ProxySetting",
    "ProxyUnreachable",
    "NoAnswer",
    "Stalled",
    "Broken",
    "EndedEarly",
    "Busy",
    "Refused",
    "WebPage",
    "NotTheModel",
    "WrongSize",
    "TooLong",
    "Restart",
    "Corrupt",
    "NotInCatalog",
    "GaveUp",
    "File",
    "Record",
    "Crashed",
];

#[tokio::test]
async fn every_failure_says_what_happened_and_what_to_do() {
    use TransferError::*;
    let host = || "huggingface.co".to_string();
    let refusing = RefusingPort::new();
    let refused = refusing.url("/m.gguf");
    let bad_cert = RawHost::start(tls12_hello_with(SELF_SIGNED_CERT), Then::WaitForClose).await;
    let unreachable = |source| Unreachable { host: host(), source };
    let status = |code| StatusCode::from_u16(code).unwrap();
    let offline = ["This machine can't reach huggingface.co", "Check the internet connection"];

    let table: Vec<(TransferError, Vec<&str>)> = vec![
        (unreachable(failed_request("http://nowhere.invalid/m.gguf").await), offline.to_vec()),
        (unreachable(failed_request(&refused).await), vec!["huggingface.co refused the connection", "firewall"]),
        (
            unreachable(failed_request(&bad_cert.url("https", "/m.gguf")).await),
            vec!["certificate is not trusted", "intercepting"],
        ),
        (
            ProxySetting { variable: "HTTPS_PROXY", value: "ftp://proxy:21".into() },
            vec!["proxy setting HTTPS_PROXY", "\"ftp://proxy:21\"", "not a proxy address", "remove it"],
        ),
        (
            ProxyUnreachable {
                variable: "ALL_PROXY",
                proxy: "http://u:secret@proxy.invalid:3128".into(),
                found: false,
                source: io::Error::other("failed to lookup address information"),
            },
            vec!["proxy http://u:***@proxy.invalid:3128 (set in ALL_PROXY) can't be found", "remove the setting"],
        ),
        (
            ProxyUnreachable {
                variable: "HTTP_PROXY",
                proxy: "http://127.0.0.1:9".into(),
                found: true,
                source: io::ErrorKind::ConnectionRefused.into(),
            },
            vec!["proxy http://127.0.0.1:9 (set in HTTP_PROXY) refused the connection"],
        ),
        (NoAnswer { host: host() }, vec!["huggingface.co did not answer in time"]),
        (Stalled { host: host(), secs: 30 }, vec!["stalled", "30 s", "kept"]),
        (Broken { host: host(), source: failed_request(&refused).await }, vec!["connection to huggingface.co broke"]),
        (EndedEarly { host: host(), at: 5, size: 10 }, vec!["connection to huggingface.co broke"]),
        (Busy { host: host(), status: status(503) }, vec!["huggingface.co is busy", "503", "few minutes"]),
        (Refused { host: host(), status: status(401) }, vec!["wants a login", "licence", "401"]),
        (Refused { host: host(), status: status(403) }, vec!["refuses to send this model", "licence", "403"]),
        (
            Refused { host: host(), status: status(404) },
            vec!["no longer has this file", "404", "catalog needs an update"],
        ),
        (
            Refused { host: host(), status: status(410) },
            vec!["has removed this file", "410", "catalog needs an update"],
        ),
        (Refused { host: host(), status: status(451) }, vec!["refused to send the file", "451"]),
        (
            WebPage { host: host(), content_type: "text/html".into() },
            vec!["sent a web page, not the model", "login", "limiting requests"],
        ),
        (
            NotTheModel { host: host(), bytes: 48, catalog: 5678, content_type: Some("text/plain".into()) },
            vec!["page of its own instead of the model", "48 bytes", "sign in"],
        ),
        (WrongSize { host: host(), server: 1234, catalog: 5678 }, vec!["different file", "1234", "5678"]),
        (TooLong { host: host(), size: 5678 }, vec!["different file", "5678"]),
        (Restart("the server resumed at the wrong place"), vec!["start over", "wrong place"]),
        (Corrupt { got: "a".repeat(64), expected: "b".repeat(64) }, vec!["corrupt", "nothing was installed"]),
        (NotInCatalog("gone-7b".into()), vec!["gone-7b is no longer in the catalog", "another model"]),
        (
            GaveUp { last: Box::new(unreachable(failed_request("http://nowhere.invalid/m.gguf").await)), tries: 9 },
            offline.to_vec(),
        ),
        (File { what: "cannot write the download", source: io::Error::from_raw_os_error(28) }, vec!["disk is full"]),
        (
            File { what: "cannot open the partial file", source: io::Error::from(io::ErrorKind::PermissionDenied) },
            vec!["could not use the model's file", "cannot open the partial file", "models folder"],
        ),
        (Record(StoreError::CorruptRow("x".into())), vec!["could not record the download"]),
        (Crashed("a panic".into()), vec!["stopped unexpectedly", "server's log"]),
    ];

    let mut seen: Vec<&str> = table.iter().map(|(e, _)| variant(e)).collect();
    seen.sort();
    seen.dedup();
    let mut every = EVERY_VARIANT.to_vec();
    every.sort();
    assert_eq!(seen, every, "the table must hold every TransferError variant");

    for (error, expected) in &table {
        let said = error.said();
        let words = said.stopped();
        println!("{:<12} {words}", variant(error));
        for piece in expected {
            assert!(words.contains(piece), "{}: {words:?} should say {piece:?}", variant(error));
        }
        assert!(!said.what.ends_with('.') && said.todo.ends_with('.'), "{}: sentence shape: {words:?}", variant(error));
        // The technical account stays behind "Details".
        for noise in ["error sending request", "hyper", "tcp connect error", "Custom {", "os error"] {
            assert!(!words.contains(noise), "{}: {words:?} shows {noise:?}", variant(error));
        }
        assert!(!error.to_string().is_empty());
    }
}
