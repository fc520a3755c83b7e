//! A model host on 127.0.0.1 for the API tests: serves deterministic bytes per path, honours
//! `Range: bytes=N-` (206 + Content-Range) and If-Range against its ETag, and can be slowed
//! down (a pause between chunks) or held at a byte offset so a download stays observable.
//! Every request is logged, with how many body bytes went out and whether the body ended.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How one path is served; tests change it at any time (it is read per chunk).
#[derive(Clone, Debug)]
pub struct Knobs {
    /// Body pieces of this many bytes...
    pub chunk: usize,
    /// ...with this pause after each.
    pub chunk_delay: Duration,
    /// Stop sending once the body reaches this file offset, until cleared (the connection
    /// stays open, nothing more is said).
    pub hold_at: Option<u64>,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs { chunk: 64 * 1024, chunk_delay: Duration::ZERO, hold_at: None }
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub status: u16,
    /// Body bytes handed to the connection.
    pub sent: u64,
    /// The body stream is over: fully sent, or the client went away.
    pub ended: bool,
}

struct Inner {
    files: HashMap<String, Arc<Vec<u8>>>,
    knobs: Mutex<HashMap<String, Knobs>>,
    seen: Mutex<Vec<Seen>>,
}

/// A running fixture server (it lives as long as the test's runtime).
#[derive(Clone)]
pub struct Fixture {
    inner: Arc<Inner>,
    pub base: String,
}

/// The ETag every file is served with.
pub const ETAG: &str = "\"fixture-v1\"";

impl Fixture {
    /// Serves each `(path, bytes)`; any other path is a 404.
    pub async fn start(files: Vec<(&str, Vec<u8>)>) -> Fixture {
        let inner = Arc::new(Inner {
            files: files.into_iter().map(|(p, d)| (p.to_string(), Arc::new(d))).collect(),
            knobs: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(serve).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Fixture { inner, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Changes how `path` is served from now on.
    pub fn set(&self, path: &str, f: impl FnOnce(&mut Knobs)) {
        f(self.inner.knobs.lock().unwrap().entry(path.to_string()).or_default());
    }

    /// Every request so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// The requests for one path.
    pub fn requests(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }
}

/// SHA-256 as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic bytes that are no repeating pattern (xorshift), different per `seed`.
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

fn log(inner: &Inner, seen: Seen) -> usize {
    let mut all = inner.seen.lock().unwrap();
    all.push(seen);
    all.len() - 1
}

async fn serve(uri: Uri, State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let path = uri.path().to_string();
    let get = |k: header::HeaderName| headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (range, if_range) = (get(header::RANGE), get(header::IF_RANGE));
    let mut seen = Seen {
        path: path.clone(),
        range: range.clone(),
        if_range: if_range.clone(),
        status: 200,
        sent: 0,
        ended: false,
    };
    let Some(data) = inner.files.get(&path).cloned() else {
        seen.status = 404;
        seen.ended = true;
        log(&inner, seen);
        return StatusCode::NOT_FOUND.into_response();
    };
    let total = data.len() as u64;
    let from = range
        .as_deref()
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<u64>().ok());
    let validator_ok = if_range.as_deref().is_none_or(|v| v == ETAG);
    let mut start = 0;
    let mut status = StatusCode::OK;
    if let Some(from) = from
        && validator_ok
    {
        if from >= total {
            seen.status = 416;
            seen.ended = true;
            log(&inner, seen);
            return (StatusCode::RANGE_NOT_SATISFIABLE, [(header::CONTENT_RANGE, format!("bytes */{total}"))])
                .into_response();
        }
        status = StatusCode::PARTIAL_CONTENT;
        start = from;
    }
    seen.status = status.as_u16();
    let idx = log(&inner, seen);

    let mut resp_headers = HeaderMap::new();
    resp_headers.insert(header::ETAG, HeaderValue::from_static(ETAG));
    resp_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    resp_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(total - start));
    if status == StatusCode::PARTIAL_CONTENT {
        resp_headers.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{}/{total}", total - 1)).unwrap(),
        );
    }

    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let inner2 = inner.clone();
    tokio::spawn(async move {
        let ended = |inner: &Inner| inner.seen.lock().unwrap()[idx].ended = true;
        let mut pos = start as usize;
        while pos < data.len() {
            let knobs = inner2.knobs.lock().unwrap().get(&path).cloned().unwrap_or_default();
            if let Some(hold) = knobs.hold_at
                && pos as u64 >= hold
            {
                // Say nothing more until released, or until the client goes away.
                tokio::select! {
                    _ = tx.closed() => { ended(&inner2); return; }
                    _ = tokio::time::sleep(Duration::from_millis(20)) => continue,
                }
            }
            let mut end = (pos + knobs.chunk.max(1)).min(data.len());
            if let Some(hold) = knobs.hold_at {
                end = end.min(hold as usize);
            }
            if tx.send(Ok(data[pos..end].to_vec())).await.is_err() {
                ended(&inner2);
                return;
            }
            inner2.seen.lock().unwrap()[idx].sent += (end - pos) as u64;
            pos = end;
            if !knobs.chunk_delay.is_zero() {
                tokio::select! {
                    _ = tx.closed() => { ended(&inner2); return; }
                    _ = tokio::time::sleep(knobs.chunk_delay) => {}
                }
            }
        }
        ended(&inner2);
    });
    let mut resp = Response::new(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)));
    *resp.status_mut() = status;
    *resp.headers_mut() = resp_headers;
    resp
}
