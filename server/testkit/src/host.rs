//! A real HTTP model host on 127.0.0.1 with switchable fault modes. It serves one or more files,
//! answering `Range: bytes=A-` and `bytes=A-B` and If-Range (against its ETag or Last-Modified)
//! like a CDN does, unless a mode tells it to misbehave: fail first, cut or stall the body, ignore
//! the range, start a 206 at the wrong byte, lie about the length, send a captive portal's page.
//! It can be slowed down (a pause between chunks) or held at a byte offset until released, so a
//! download stays observable without sleeps.
//!
//! Every request is logged in arrival order ([`Seen`]): what it asked for (and the `Via` of a
//! proxy it came through), the status, how many body bytes went out and whether the body is over. Any path that is not a file is a 404 (logged
//! too), except `/redirect/N`, a chain of N redirects ending at `/file`.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The ETag every file is served with unless [`Modes::etag`] says otherwise.
pub const ETAG: &str = "\"v1\"";

/// How a file is served; tests change it at any time. The pacing (`chunk`, `chunk_delay`,
/// `hold_at`) is read before every chunk, so it applies to bodies already on their way;
/// everything else is decided when a request arrives.
#[derive(Clone, Debug)]
pub struct Modes {
    pub honor_range: bool,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Send the body in pieces of this many bytes...
    pub chunk: usize,
    /// ...with this pause between pieces (a slow line).
    pub chunk_delay: Duration,
    /// Stop sending once the body reaches this file offset, until cleared (the connection stays
    /// open, nothing more is said).
    pub hold_at: Option<u64>,
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
            etag: Some(ETAG.into()),
            last_modified: None,
            chunk: 64 * 1024,
            chunk_delay: Duration::ZERO,
            hold_at: None,
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

/// One request as the host saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub accept_encoding: Option<String>,
    /// The `Via` header a forward proxy adds on its way through.
    pub via: Option<String>,
    /// The `Authorization` header, if one came (a hub token must never reach the CDN).
    pub authorization: Option<String>,
    pub status: u16,
    /// Body bytes handed to the connection.
    pub sent: u64,
    /// The body is over: fully sent, cut, or the client went away.
    pub ended: bool,
}

/// One file: its bytes, the paths it is served at, and how.
struct File {
    paths: Vec<String>,
    data: Arc<Vec<u8>>,
    modes: Mutex<Modes>,
}

struct Inner {
    files: Vec<File>,
    by_path: HashMap<String, usize>,
    seen: Mutex<Vec<Seen>>,
    /// Bodies being sent right now, and the most there ever were at once.
    in_flight: Mutex<(usize, usize)>,
}

/// A running host (it lives as long as the test's runtime).
#[derive(Clone)]
pub struct Fixture {
    inner: Arc<Inner>,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Fixture {
    /// Serves `data` at `/file` and at `/mirror` (one file, one set of [`Modes`]).
    pub async fn start(data: Vec<u8>) -> Fixture {
        Self::launch(vec![(vec!["/file".into(), "/mirror".into()], data)]).await
    }

    /// Serves each `(path, bytes)` as a file of its own, with modes of its own.
    pub async fn serve(files: Vec<(&str, Vec<u8>)>) -> Fixture {
        Self::launch(files.into_iter().map(|(p, d)| (vec![p.to_string()], d)).collect()).await
    }

    /// Serves each file at every one of its paths, with modes of its own.
    pub async fn serve_paths(files: Vec<(Vec<String>, Vec<u8>)>) -> Fixture {
        Self::launch(files).await
    }

    async fn launch(files: Vec<(Vec<String>, Vec<u8>)>) -> Fixture {
        let files: Vec<File> = files
            .into_iter()
            .map(|(paths, data)| File { paths, data: Arc::new(data), modes: Mutex::new(Modes::default()) })
            .collect();
        let by_path = files.iter().enumerate().flat_map(|(i, f)| f.paths.iter().map(move |p| (p.clone(), i))).collect();
        let inner = Arc::new(Inner { files, by_path, seen: Mutex::new(Vec::new()), in_flight: Mutex::new((0, 0)) });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fixture { inner, base }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Changes how every file is served from now on.
    pub fn set(&self, f: impl Fn(&mut Modes)) {
        for file in &self.inner.files {
            f(&mut file.modes.lock().unwrap());
        }
    }

    /// Changes how the file at `path` is served from now on (at all its paths).
    pub fn set_path(&self, path: &str, f: impl FnOnce(&mut Modes)) {
        f(&mut self.file(path).modes.lock().unwrap());
    }

    fn file(&self, path: &str) -> &File {
        let i = self.inner.by_path.get(path).unwrap_or_else(|| panic!("the host serves no file at {path}"));
        &self.inner.files[*i]
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// The requests for one path.
    pub fn requests(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    /// Requests for the files themselves (redirects and 404s left out).
    pub fn file_requests(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| self.inner.by_path.contains_key(&s.path)).collect()
    }

    /// Body bytes sent over all requests.
    pub fn bytes_sent(&self) -> u64 {
        self.seen().iter().map(|s| s.sent).sum()
    }

    /// The most file bodies that were being sent at the same moment.
    pub fn max_in_flight(&self) -> usize {
        self.inner.in_flight.lock().unwrap().1
    }

    /// SHA-256 (lowercase hex) of the first file the host was given.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.inner.files[0].data)
    }
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// SHA-256 as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Deterministic bytes that are no repeating pattern a bug could match by accident (xorshift),
/// different per `seed`.
pub fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Logs a request; its index in the log.
fn log(inner: &Inner, path: &str, h: &HeaderMap, status: u16, sent: u64, ended: bool) -> usize {
    let get = |k: header::HeaderName| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut seen = inner.seen.lock().unwrap();
    seen.push(Seen {
        path: path.to_string(),
        range: get(header::RANGE),
        if_range: get(header::IF_RANGE),
        accept_encoding: get(header::ACCEPT_ENCODING),
        via: get(header::VIA),
        authorization: get(header::AUTHORIZATION),
        status,
        sent,
        ended,
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

async fn handle(uri: Uri, State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let path = uri.path();
    // A presigned address past its time is refused before anything else, as S3 and the hub's
    // CDN refuse one (`403`, an XML body saying so).
    let expires = uri.query().unwrap_or_default().split('&').find_map(|kv| kv.strip_prefix("expires="));
    if let Some(at) = expires.and_then(|t| t.parse::<i64>().ok())
        && localbrain::time::now_ms() > at
    {
        log(&inner, path, &headers, 403, 0, true);
        let body =
            "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
        return (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "application/xml")], body).into_response();
    }
    if let Some(&i) = inner.by_path.get(path) {
        return serve(inner.clone(), i, path, &headers);
    }
    if let Some(n) = path.strip_prefix("/redirect/").and_then(|n| n.parse::<u32>().ok()) {
        let to = if n <= 1 { "/file".to_string() } else { format!("/redirect/{}", n - 1) };
        log(&inner, path, &headers, 302, 0, true);
        return (StatusCode::FOUND, [(header::LOCATION, to)]).into_response();
    }
    log(&inner, path, &headers, 404, 0, true);
    StatusCode::NOT_FOUND.into_response()
}

fn serve(inner: Arc<Inner>, i: usize, path: &str, headers: &HeaderMap) -> Response {
    let file = &inner.files[i];
    let mut modes = file.modes.lock().unwrap().clone();
    if modes.fail_first > 0 {
        file.modes.lock().unwrap().fail_first -= 1;
        log(&inner, path, headers, modes.fail_status, 0, true);
        let mut r = StatusCode::from_u16(modes.fail_status).unwrap().into_response();
        if let Some(ra) = &modes.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_str(ra).unwrap());
        }
        return r;
    }
    if modes.html_error {
        let page = b"<html><body><h1>Access denied</h1></body></html>".to_vec();
        log(&inner, path, headers, 200, page.len() as u64, true);
        // A captive portal's page often comes chunked: no length to tell it from the file.
        let body = if modes.chunked {
            Body::from_stream(tokio_stream::iter([Ok::<_, std::io::Error>(page)]))
        } else {
            Body::from(page)
        };
        return ([(header::CONTENT_TYPE, "text/html")], body).into_response();
    }
    let total = file.data.len() as u64;
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
            log(&inner, path, headers, 416, 0, true);
            return (StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, format!("bytes */{total}"))])
                .into_response();
        }
        status = StatusCode::PARTIAL_CONTENT;
        start = if modes.wrong_start { 0 } else { from };
        stop = to.map_or(total, |t| (t + 1).min(total)).max(start + 1);
        file.modes.lock().unwrap().wrong_start = false;
    }
    let idx = log(&inner, path, headers, status.as_u16(), 0, false);
    let mut resp_headers = HeaderMap::new();
    if let Some(e) = &modes.etag {
        resp_headers.insert(header::ETAG, HeaderValue::from_str(e).unwrap());
    }
    if let Some(lm) = &modes.last_modified {
        resp_headers.insert(header::LAST_MODIFIED, HeaderValue::from_str(lm).unwrap());
    }
    if modes.honor_range {
        resp_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
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
        let mut m = file.modes.lock().unwrap();
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
        file.modes.lock().unwrap().stall_after = None;
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    tokio::spawn(send_body(inner.clone(), i, idx, (start as usize, stop as usize), cut, stall, tx));
    let mut resp = Response::new(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)));
    *resp.status_mut() = status;
    *resp.headers_mut() = resp_headers;
    resp
}

/// Sends `data[start..stop]` of file `i` for request `idx`, as the modes say, until it is all
/// sent, cut (after `cut` body bytes) or the client goes away. After `stall` body bytes it says
/// nothing more.
async fn send_body(
    inner: Arc<Inner>,
    i: usize,
    idx: usize,
    (start, stop): (usize, usize),
    cut: Option<u64>,
    stall: Option<u64>,
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
) {
    let _sending = InFlight::enter(&inner);
    let file = &inner.files[i];
    let ended = || inner.seen.lock().unwrap()[idx].ended = true;
    let mut pos = start;
    let mut sent = 0u64;
    while pos < stop {
        if let Some(c) = cut
            && sent >= c
        {
            // Let hyper flush what was sent before it tears the connection down.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = tx.send(Err(std::io::Error::other("cut"))).await;
            ended();
            return;
        }
        let live = file.modes.lock().unwrap().clone();
        if stall.is_some_and(|s| sent >= s) || live.hold_at.is_some_and(|h| pos as u64 >= h) {
            // Say nothing more until released, or until the client goes away.
            tokio::select! {
                _ = tx.closed() => { ended(); return; }
                _ = tokio::time::sleep(Duration::from_millis(20)) => continue,
            }
        }
        // The pause comes before a chunk, so the body ends with its last send.
        if pos > start && !live.chunk_delay.is_zero() {
            tokio::select! {
                _ = tx.closed() => { ended(); return; }
                _ = tokio::time::sleep(live.chunk_delay) => {}
            }
        }
        let mut end = (pos + live.chunk.max(1)).min(stop);
        if let Some(c) = cut {
            end = end.min(pos + (c - sent) as usize);
        }
        if let Some(s) = stall {
            end = end.min(pos + (s - sent) as usize);
        }
        if let Some(h) = live.hold_at {
            end = end.min(h as usize);
        }
        if tx.send(Ok(file.data[pos..end].to_vec())).await.is_err() {
            ended();
            return;
        }
        inner.seen.lock().unwrap()[idx].sent += (end - pos) as u64;
        sent += (end - pos) as u64;
        pos = end;
    }
    ended();
}
