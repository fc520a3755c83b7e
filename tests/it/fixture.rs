//! A real HTTP file server on 127.0.0.1 with switchable fault modes, for the engine tests.
//! It serves one file at `/file` (and `/mirror`), answering Range and If-Range like a CDN does,
//! unless a mode tells it to misbehave. Every request is logged so tests can assert what the
//! engine asked for. Below HTTP, [`RawHost`] answers with bytes no well-behaved server sends.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How the server behaves; tests change it between requests.
#[derive(Clone, Debug)]
pub struct Modes {
    pub honor_range: bool,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Send the body in pieces of this many bytes...
    pub chunk: usize,
    /// ...with this pause between pieces (a slow line).
    pub chunk_delay: Duration,
    /// Answer this many requests with `fail_status` first.
    pub fail_first: u32,
    pub fail_status: u16,
    pub retry_after: Option<String>,
    /// Close the connection after this many body bytes (of each of the next `cut_times` requests).
    pub cut_after: Option<u64>,
    pub cut_times: u32,
    /// Send this many body bytes, then hang without closing (once).
    pub stall_after: Option<u64>,
    /// Answer the next ranged request with a 206 starting at byte 0 (a broken proxy).
    pub wrong_start: bool,
    /// Once a cut happens, answer every later request with `fail_status`.
    pub fail_after_cut: bool,
    /// No Content-Length: a chunked body (the file's, or the `html_error` page's).
    pub chunked: bool,
    /// Announce this length instead of the real one.
    pub lie_length: Option<u64>,
    /// Serve an HTML error page with status 200.
    pub html_error: bool,
}

impl Default for Modes {
    fn default() -> Self {
        Modes {
            honor_range: true,
            etag: Some("\"v1\"".into()),
            last_modified: None,
            chunk: 64 * 1024,
            chunk_delay: Duration::ZERO,
            fail_first: 0,
            fail_status: 503,
            retry_after: None,
            cut_after: None,
            cut_times: 0,
            stall_after: None,
            wrong_start: false,
            fail_after_cut: false,
            chunked: false,
            lie_length: None,
            html_error: false,
        }
    }
}

/// What one request asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub accept_encoding: Option<String>,
    pub status: u16,
    /// Body bytes the server sent for it.
    pub sent: u64,
}

struct Inner {
    data: Arc<Vec<u8>>,
    modes: Mutex<Modes>,
    seen: Mutex<Vec<Seen>>,
    /// Bodies being sent right now, and the most there ever were at once.
    in_flight: Mutex<(usize, usize)>,
}

/// A running fixture server.
#[derive(Clone)]
pub struct Fixture {
    inner: Arc<Inner>,
    pub base: String,
}

impl Fixture {
    /// Serves `data` on a fresh port.
    pub async fn start(data: Vec<u8>) -> Fixture {
        let inner = Arc::new(Inner {
            data: Arc::new(data),
            modes: Mutex::new(Modes::default()),
            seen: Mutex::new(Vec::new()),
            in_flight: Mutex::new((0, 0)),
        });
        let app = Router::new()
            .route("/file", get(serve))
            .route("/mirror", get(serve))
            .route("/missing", get(missing))
            .route("/redirect/{n}", get(redirect))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fixture { inner, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn set(&self, f: impl FnOnce(&mut Modes)) {
        f(&mut self.inner.modes.lock().unwrap());
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// Requests for the file itself (redirects and 404 routes left out).
    pub fn file_requests(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == "/file" || s.path == "/mirror").collect()
    }

    /// Body bytes sent over all requests.
    pub fn bytes_sent(&self) -> u64 {
        self.seen().iter().map(|s| s.sent).sum()
    }

    /// The most file bodies that were being sent at the same moment.
    pub fn max_in_flight(&self) -> usize {
        self.inner.in_flight.lock().unwrap().1
    }

    pub fn sha256(&self) -> String {
        hex(&Sha256::digest(&*self.inner.data))
    }
}

/// A one-model catalog (the schema in DESIGN.md) for a file served here: `urls[0]` is the URL,
/// the rest are mirrors.
pub fn catalog_toml(id: &str, urls: &[String], size: u64, sha256: &str) -> String {
    let (url, mirrors) = urls.split_first().expect("at least one URL");
    let mirrors: Vec<String> = mirrors.iter().map(|m| format!("{m:?}")).collect();
    format!(
        r#"[[models]]
id = "{id}"
name = "Test model {id}"
family = "test"
params_b = 0.1
quant = "Q4_K_M"
url = "{url}"
mirrors = [{}]
sha256 = "{sha256}"
size_bytes = {size}
min_ram_gb = 1
context_length = 4096
license = "apache-2.0"
quality = 1
"#,
        mirrors.join(", ")
    )
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Deterministic test bytes that are not a repeating pattern a bug could match by accident.
pub fn test_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn missing(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> StatusCode {
    log(&inner, "/missing".into(), &headers, 404, 0);
    StatusCode::NOT_FOUND
}

async fn redirect(Path(n): Path<u32>, State(inner): State<Arc<Inner>>) -> Response {
    let to = if n <= 1 { "/file".to_string() } else { format!("/redirect/{}", n - 1) };
    log(&inner, format!("/redirect/{n}"), &HeaderMap::new(), 302, 0);
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

fn log(inner: &Inner, path: String, h: &HeaderMap, status: u16, sent: u64) -> usize {
    let get = |k: header::HeaderName| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut seen = inner.seen.lock().unwrap();
    seen.push(Seen {
        path,
        range: get(header::RANGE),
        if_range: get(header::IF_RANGE),
        accept_encoding: get(header::ACCEPT_ENCODING),
        status,
        sent,
    });
    seen.len() - 1
}

/// Counts a body as in flight while it lives.
struct InFlight(Arc<Inner>);

impl InFlight {
    fn enter(inner: &Arc<Inner>) -> InFlight {
        let mut f = inner.in_flight.lock().unwrap();
        f.0 += 1;
        f.1 = f.1.max(f.0);
        InFlight(inner.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.lock().unwrap().0 -= 1;
    }
}

fn add_sent(inner: &Inner, idx: usize, n: u64) {
    inner.seen.lock().unwrap()[idx].sent += n;
}

async fn serve(uri: axum::http::Uri, State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let path = uri.path().to_string();
    let mut modes = inner.modes.lock().unwrap().clone();
    if modes.fail_first > 0 {
        inner.modes.lock().unwrap().fail_first -= 1;
        log(&inner, path, &headers, modes.fail_status, 0);
        let mut r = StatusCode::from_u16(modes.fail_status).unwrap().into_response();
        if let Some(ra) = &modes.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_str(ra).unwrap());
        }
        return r;
    }
    if modes.html_error {
        let page = b"<html><body><h1>Access denied</h1></body></html>".to_vec();
        let idx = log(&inner, path, &headers, 200, page.len() as u64);
        let _ = idx;
        // A captive portal's page often comes chunked: no length to tell it from the file.
        let body = if modes.chunked {
            Body::from_stream(tokio_stream::iter([Ok::<_, std::io::Error>(page)]))
        } else {
            Body::from(page)
        };
        return ([(header::CONTENT_TYPE, "text/html")], body).into_response();
    }
    let data = inner.data.clone();
    let total = data.len() as u64;
    let validator_ok = match headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(v) => Some(v) == modes.etag.as_deref() || Some(v) == modes.last_modified.as_deref(),
    };
    // `bytes=A-` or `bytes=A-B` (B inclusive), as the engine sends them.
    let requested = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| {
            Some((a.parse::<u64>().ok()?, if b.is_empty() { None } else { Some(b.parse::<u64>().ok()?) }))
        });
    let mut status = StatusCode::OK;
    let mut start = 0;
    let mut stop = total;
    if let Some((from, to)) = requested
        && modes.honor_range
        && validator_ok
    {
        if from >= total {
            log(&inner, path, &headers, 416, 0);
            return (StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, format!("bytes */{total}"))])
                .into_response();
        }
        status = StatusCode::PARTIAL_CONTENT;
        start = if modes.wrong_start { 0 } else { from };
        stop = to.map_or(total, |t| (t + 1).min(total)).max(start + 1);
        inner.modes.lock().unwrap().wrong_start = false;
    }
    let idx = log(&inner, path, &headers, status.as_u16(), 0);
    let mut resp_headers = HeaderMap::new();
    if let Some(e) = &modes.etag {
        resp_headers.insert(header::ETAG, HeaderValue::from_str(e).unwrap());
    }
    if let Some(lm) = &modes.last_modified {
        resp_headers.insert(header::LAST_MODIFIED, HeaderValue::from_str(lm).unwrap());
    }
    if status == StatusCode::PARTIAL_CONTENT {
        resp_headers.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{}/{total}", stop - 1)).unwrap(),
        );
    }
    let len = modes.lie_length.unwrap_or(stop - start);
    if !modes.chunked {
        resp_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    let cut = if modes.cut_times > 0 {
        let mut m = inner.modes.lock().unwrap();
        m.cut_times -= 1;
        if modes.fail_after_cut {
            m.fail_first = u32::MAX;
        }
        modes.cut_after
    } else {
        None
    };
    let stall = modes.stall_after.take();
    if stall.is_some() {
        inner.modes.lock().unwrap().stall_after = None;
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let inner2 = inner.clone();
    tokio::spawn(async move {
        let _sending = InFlight::enter(&inner2);
        let mut pos = start as usize;
        let mut sent = 0u64;
        while pos < stop as usize {
            let mut end = (pos + modes.chunk).min(stop as usize);
            if let Some(c) = cut {
                if sent >= c {
                    // Let hyper flush what was sent before it tears the connection down.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let _ = tx.send(Err(std::io::Error::other("cut"))).await;
                    return;
                }
                end = end.min(pos + (c - sent) as usize);
            }
            if let Some(s) = stall
                && sent >= s
            {
                // Hold the connection open with nothing more to say.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            if let Some(s) = stall {
                end = end.min(pos + (s - sent) as usize);
            }
            // The pause comes before a chunk, so the body ends with its last send.
            if pos > start as usize && !modes.chunk_delay.is_zero() {
                tokio::time::sleep(modes.chunk_delay).await;
            }
            if tx.send(Ok(data[pos..end].to_vec())).await.is_err() {
                return;
            }
            add_sent(&inner2, idx, (end - pos) as u64);
            sent += (end - pos) as u64;
            pos = end;
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = resp_headers;
    resp
}

/// What a [`RawHost`] does once it has read a request and written its reply.
#[derive(Clone, Copy, Debug)]
pub enum Then {
    /// Keeps the connection open until the client hangs up.
    WaitForClose,
    /// Closes cleanly (a FIN).
    Close,
    /// Closes with a TCP reset (SO_LINGER 0).
    Reset,
    /// Keeps the connection open and says nothing more.
    Hang,
}

/// A loopback host below HTTP: on every connection it reads one request (an HTTP head or a TLS
/// ClientHello), writes `reply` as it is, then does what [`Then`] says. Counts connections.
#[derive(Clone)]
pub struct RawHost {
    pub addr: std::net::SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl RawHost {
    pub async fn start(reply: Vec<u8>, then: Then) -> RawHost {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(answer_raw(stream, reply.clone(), then));
            }
        });
        RawHost { addr, connections }
    }

    /// `scheme://addr/path`.
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn answer_raw(mut stream: TcpStream, reply: Vec<u8>, then: Then) {
    read_request(&mut stream).await;
    let _ = stream.write_all(&reply).await;
    match then {
        Then::WaitForClose => {
            let mut buf = [0u8; 4096];
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        }
        // The whole request was read, so the kernel closes with a FIN, not a reset.
        Then::Close => {}
        Then::Reset => {
            let _ = stream.set_zero_linger();
        }
        Then::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
    }
}

/// Reads one request: an HTTP head up to its blank line, or one whole TLS record (a ClientHello).
async fn read_request(stream: &mut TcpStream) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let whole = match got.first() {
            Some(0x16) => got.len() >= 5 && got.len() >= 5 + u16::from_be_bytes([got[3], got[4]]) as usize,
            _ => got.windows(4).any(|w| w == b"\r\n\r\n"),
        };
        if whole {
            return;
        }
        match stream.read(&mut buf).await {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
}

/// A self-signed certificate for localhost and 127.0.0.1, good until 2126 (`openssl req -x509
/// -newkey ec -addext basicConstraints=critical,CA:FALSE`): no root signed it, so every client
/// refuses it (rustls: UnknownIssuer).
pub const SELF_SIGNED_CERT: &[u8] = include_bytes!("data/localhost-self-signed.der");

/// A TLS 1.2 server's first flight presenting `cert`: ServerHello (ECDHE-ECDSA with AES-128-GCM),
/// Certificate, ServerKeyExchange (a well-formed x25519 share with a signature nobody could
/// check), ServerHelloDone. A client checks the certificate chain before that signature, so this
/// is all a [`RawHost`] needs to show a client a bad certificate, without a TLS library.
pub fn tls12_hello_with(cert: &[u8]) -> Vec<u8> {
    fn len3(n: usize) -> [u8; 3] {
        let b = (n as u32).to_be_bytes();
        [b[1], b[2], b[3]]
    }
    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        [&[kind][..], &len3(body.len()), body].concat()
    }
    let mut hello = vec![0x03, 0x03];
    hello.extend([0x42; 32]); // the server random (not the TLS 1.3 downgrade marker)
    hello.push(0); // no session id
    hello.extend([0xC0, 0x2B]); // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    hello.push(0); // no compression
    hello.extend([0, 0]); // no extensions
    let certs = [&len3(cert.len() + 3)[..], &len3(cert.len()), cert].concat();
    let mut kx = vec![3, 0x00, 0x1D, 32]; // a named curve, x25519, a 32-byte share
    kx.extend([0x11; 32]);
    kx.extend([0x04, 0x03, 0, 8]); // ecdsa_secp256r1_sha256, an 8-byte signature
    kx.extend([0; 8]);
    let flight = [message(2, &hello), message(11, &certs), message(12, &kx), message(14, &[])].concat();
    [&[0x16, 0x03, 0x03][..], &(flight.len() as u16).to_be_bytes(), &flight].concat()
}
