//! A loopback host shaped like the Hugging Face hub, in front of a second loopback host shaped like
//! its CDN. What it imitates, and the sources of each shape, is in `../HUB.md`:
//!
//! - `GET /api/models?search=Q&filter=gguf&...`: a JSON array of `{id, downloads, likes,
//!   lastModified, gated, tags}`;
//! - `GET /api/models/ORG/REPO/revision/REV`: `{id, sha, gated, private, cardData: {license},
//!   siblings}`; an unknown repo is `401` with `X-Error-Code: RepoNotFound` (the hub does not say
//!   whether a private repo exists), an unknown revision `404` `RevisionNotFound`;
//! - `GET /api/models/ORG/REPO/tree/REV?recursive=true`: `[{type, oid, size, path, lfs: {oid,
//!   size, pointerSize}}]`, paged by `Link: <...>; rel="next"` when [`HubHost::set_page`] is set;
//! - `HEAD`/`GET /ORG/REPO/resolve/REV/PATH`: `302` to the CDN with `X-Repo-Commit`,
//!   `X-Linked-Etag` (the LFS SHA-256, quoted), `X-Linked-Size` and `ETag`; a gated repo's file
//!   without the right token is `401` with `X-Error-Code: GatedRepo`, a missing file `404`
//!   `EntryNotFound`.
//!
//! The CDN is a [`Fixture`] serving each file's bytes at `/cdn/SHA256` (Range, If-Range, fault
//! modes; with [`HubHost::set_url_lifetime`] the redirect's address carries `X-Amz-Expires`-style
//! `?expires=UNIX_MS` and the CDN answers it `403` once that time has passed, as the real one's
//! presigned URLs do after an hour), and logging every request's `Authorization`, so a test can
//! prove the token never went past the redirect. Repo names are matched case-insensitively, as on the hub.

use crate::host::{Fixture, sha256_hex};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};

/// The token the host accepts for gated repos.
pub const HUB_TOKEN: &str = "hf_localbraintesttoken0123456789abcdef";

/// One repo the host serves.
#[derive(Clone, Debug)]
pub struct HubRepo {
    /// `ORG/REPO`, canonical spelling.
    pub id: String,
    /// 40 hex: what `main` is at.
    pub commit: String,
    pub gated: bool,
    pub license: Option<String>,
    pub downloads: u64,
    pub files: Vec<HubFile>,
}

/// One file of a repo.
#[derive(Clone, Debug)]
pub struct HubFile {
    pub path: String,
    pub data: Arc<Vec<u8>>,
    /// The SHA-256 the tree lists (and `X-Linked-Etag` says); the data's own unless a test lies.
    pub listed_sha256: String,
    /// What `X-Linked-Etag` says instead of `listed_sha256`, for a resolve that disagrees.
    pub linked_etag: Option<String>,
}

impl HubFile {
    /// A file listed with its true SHA-256.
    pub fn new(path: &str, data: Arc<Vec<u8>>) -> HubFile {
        HubFile { path: path.to_string(), listed_sha256: sha256_hex(&data), data, linked_etag: None }
    }
}

impl HubRepo {
    /// An open repo at a commit made from its name.
    pub fn new(id: &str, files: Vec<HubFile>) -> HubRepo {
        let commit = sha256_hex(id.as_bytes())[..40].to_string();
        HubRepo { id: id.to_string(), commit, gated: false, license: Some("apache-2.0".into()), downloads: 1000, files }
    }
}

/// One request to the hub host.
#[derive(Clone, Debug, PartialEq)]
pub struct HubSeen {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub authorization: Option<String>,
    pub status: u16,
}

struct Inner {
    repos: Vec<HubRepo>,
    /// This host's own address, for the absolute `Link` of a paged tree (as the hub sends).
    base: Mutex<String>,
    cdn: String,
    seen: Mutex<Vec<HubSeen>>,
    /// Tree entries per page; `None` for one page.
    page: Mutex<Option<usize>>,
    /// Answer every API call with this status (a hub that is down).
    down: Mutex<Option<u16>>,
    /// How long a CDN address given by `resolve` works; `None`: forever.
    url_lifetime: Mutex<Option<std::time::Duration>>,
    /// Every CDN address `resolve` gave out, in order.
    issued: Mutex<Vec<String>>,
}

/// A running hub and its CDN.
#[derive(Clone)]
pub struct HubHost {
    inner: Arc<Inner>,
    /// `http://127.0.0.1:PORT`: what `HF_ENDPOINT` is set to.
    pub base: String,
    pub cdn: Fixture,
}

impl HubHost {
    /// Serves `repos` (their files' bytes on a CDN host of their own).
    pub async fn start(repos: Vec<HubRepo>) -> HubHost {
        let mut blobs: Vec<(Vec<String>, Vec<u8>)> = Vec::new();
        for f in repos.iter().flat_map(|r| &r.files) {
            let path = format!("/cdn/{}", sha256_hex(&f.data));
            if !blobs.iter().any(|(p, _)| p[0] == path) {
                blobs.push((vec![path], f.data.as_ref().clone()));
            }
        }
        let cdn = Fixture::serve_paths(blobs).await;
        let inner = Arc::new(Inner {
            repos,
            base: Mutex::default(),
            cdn: cdn.base.clone(),
            seen: Mutex::default(),
            page: Mutex::default(),
            down: Mutex::default(),
            url_lifetime: Mutex::default(),
            issued: Mutex::default(),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        *inner.base.lock().unwrap() = base.clone();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        HubHost { inner, base, cdn }
    }

    /// Every request to the hub so far, in arrival order.
    pub fn seen(&self) -> Vec<HubSeen> {
        self.inner.seen.lock().unwrap().clone()
    }

    /// Pages the tree listing by `n` entries (`Link: rel="next"`).
    pub fn set_page(&self, n: Option<usize>) {
        *self.inner.page.lock().unwrap() = n;
    }

    /// Answers every request with `status` (`None`: back to normal).
    pub fn set_down(&self, status: Option<u16>) {
        *self.inner.down.lock().unwrap() = status;
    }

    /// Gives the CDN addresses `resolve` hands out a life of `lifetime` (`None`: they never expire).
    pub fn set_url_lifetime(&self, lifetime: Option<std::time::Duration>) {
        *self.inner.url_lifetime.lock().unwrap() = lifetime;
    }

    /// Every CDN address `resolve` gave out so far, in order.
    pub fn issued(&self) -> Vec<String> {
        self.inner.issued.lock().unwrap().clone()
    }

    /// The CDN path of `data`.
    pub fn cdn_path(data: &[u8]) -> String {
        format!("/cdn/{}", sha256_hex(data))
    }
}

async fn handle(method: Method, uri: Uri, State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let response = answer(&inner, &method, &uri, auth.as_deref());
    inner.seen.lock().unwrap().push(HubSeen {
        method: method.to_string(),
        target: uri.path_and_query().map_or_else(|| uri.path().to_string(), |p| p.to_string()),
        authorization: auth,
        status: response.status().as_u16(),
    });
    response
}

fn answer(inner: &Inner, method: &Method, uri: &Uri, auth: Option<&str>) -> Response {
    if let Some(status) = *inner.down.lock().unwrap() {
        return error(StatusCode::from_u16(status).unwrap(), None, "the hub is down");
    }
    let path = uri.path();
    let query = uri.query().unwrap_or_default();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let authorized = auth == Some(&format!("Bearer {HUB_TOKEN}"));
    match parts.as_slice() {
        ["api", "models"] => search(inner, query),
        ["api", "models", org, name, "revision", rev] => match find(inner, org, name) {
            None => error(StatusCode::UNAUTHORIZED, Some("RepoNotFound"), "Repository not found"),
            Some(r) if !at(r, rev) => error(StatusCode::NOT_FOUND, Some("RevisionNotFound"), "Invalid rev id"),
            Some(r) => json(&info(r)),
        },
        ["api", "models", org, name, "tree", rev] => match find(inner, org, name) {
            None => error(StatusCode::UNAUTHORIZED, Some("RepoNotFound"), "Repository not found"),
            Some(r) if !at(r, rev) => error(StatusCode::NOT_FOUND, Some("RevisionNotFound"), "Invalid rev id"),
            Some(r) => tree(inner, r, path, query),
        },
        [org, name, "resolve", rev, file @ ..] if !file.is_empty() => {
            let Some(r) = find(inner, org, name) else {
                return error(StatusCode::UNAUTHORIZED, Some("RepoNotFound"), "Repository not found");
            };
            if !at(r, &decode(rev)) {
                return error(StatusCode::NOT_FOUND, Some("RevisionNotFound"), "Invalid rev id");
            }
            if r.gated && !authorized {
                return error(
                    StatusCode::UNAUTHORIZED,
                    Some("GatedRepo"),
                    "Access to model is restricted. You must have access to it and be authenticated to access it.",
                );
            }
            let file_path: Vec<String> = file.iter().map(|s| decode(s)).collect();
            let file_path = file_path.join("/");
            let Some(f) = r.files.iter().find(|f| f.path == file_path) else {
                return error(StatusCode::NOT_FOUND, Some("EntryNotFound"), "Entry not found");
            };
            let etag = f.linked_etag.clone().unwrap_or_else(|| f.listed_sha256.clone());
            let mut location = format!("{}/cdn/{}", inner.cdn, sha256_hex(&f.data));
            if let Some(life) = *inner.url_lifetime.lock().unwrap() {
                location.push_str(&format!("?expires={}", localbrain::time::now_ms() + life.as_millis() as i64));
            }
            inner.issued.lock().unwrap().push(location.clone());
            let mut resp = Response::builder()
                .status(StatusCode::FOUND)
                .header(header::LOCATION, location)
                .header("x-repo-commit", &r.commit)
                .header("x-linked-etag", format!("\"{etag}\""))
                .header("x-linked-size", f.data.len().to_string())
                .header(header::ETAG, format!("\"{}\"", &sha256_hex(f.path.as_bytes())[..40]))
                .body(Body::empty())
                .unwrap();
            if method == Method::HEAD {
                resp.headers_mut().insert(header::CONTENT_LENGTH, "0".parse().unwrap());
            }
            resp
        }
        _ => error(StatusCode::NOT_FOUND, None, "Not found"),
    }
}

fn find<'a>(inner: &'a Inner, org: &str, name: &str) -> Option<&'a HubRepo> {
    let id = format!("{org}/{name}");
    inner.repos.iter().find(|r| r.id.eq_ignore_ascii_case(&id))
}

/// Whether `rev` names the repo's one commit (`main` or its hash).
fn at(r: &HubRepo, rev: &str) -> bool {
    rev == "main" || rev == r.commit
}

fn info(r: &HubRepo) -> serde_json::Value {
    serde_json::json!({
        "_id": "0123456789abcdef01234567",
        "id": r.id,
        "modelId": r.id,
        "sha": r.commit,
        "private": false,
        "gated": if r.gated { serde_json::json!("manual") } else { serde_json::json!(false) },
        "downloads": r.downloads,
        "tags": ["gguf"],
        "cardData": { "license": r.license },
        "siblings": r.files.iter().map(|f| serde_json::json!({ "rfilename": f.path })).collect::<Vec<_>>(),
        "lastModified": "2026-11-30T12:00:00.000Z",
    })
}

fn tree(inner: &Inner, r: &HubRepo, path: &str, query: &str) -> Response {
    let mut entries: Vec<serde_json::Value> = vec![serde_json::json!({
        "type": "file", "oid": "0123456789abcdef0123456789abcdef01234567", "size": 1519, "path": ".gitattributes"
    })];
    entries.extend(r.files.iter().map(|f| {
        serde_json::json!({
            "type": "file",
            "oid": &sha256_hex(f.path.as_bytes())[..40],
            "size": f.data.len(),
            "path": f.path,
            "lfs": { "oid": f.listed_sha256, "size": f.data.len(), "pointerSize": 134 },
        })
    }));
    let page = *inner.page.lock().unwrap();
    let Some(n) = page else { return json(&serde_json::Value::Array(entries)) };
    let cursor: usize =
        query.split('&').find_map(|kv| kv.strip_prefix("cursor=")).and_then(|c| c.parse().ok()).unwrap_or(0);
    let chunk: Vec<serde_json::Value> = entries.iter().skip(cursor).take(n).cloned().collect();
    let mut resp = json(&serde_json::Value::Array(chunk));
    if cursor + n < entries.len() {
        let base = inner.base.lock().unwrap().clone();
        let next = format!("<{base}{path}?recursive=true&cursor={}>; rel=\"next\"", cursor + n);
        resp.headers_mut().insert(header::LINK, next.parse().unwrap());
    }
    resp
}

fn search(inner: &Inner, query: &str) -> Response {
    let q = query.split('&').find_map(|kv| kv.strip_prefix("search=")).map(decode).unwrap_or_default().to_lowercase();
    let found: Vec<serde_json::Value> = inner
        .repos
        .iter()
        .filter(|r| r.id.to_lowercase().contains(&q))
        .map(|r| {
            serde_json::json!({
                "_id": "0123456789abcdef01234567",
                "id": r.id,
                "likes": r.downloads / 10,
                "downloads": r.downloads,
                "lastModified": "2026-11-30T12:00:00.000Z",
                "gated": if r.gated { serde_json::json!("manual") } else { serde_json::json!(false) },
                "tags": ["gguf"],
            })
        })
        .collect();
    json(&serde_json::Value::Array(found))
}

fn json(v: &serde_json::Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], v.to_string()).into_response()
}

fn error(status: StatusCode, code: Option<&str>, message: &str) -> Response {
    let mut resp =
        (status, [(header::CONTENT_TYPE, "application/json")], serde_json::json!({ "error": message }).to_string())
            .into_response();
    if let Some(code) = code {
        resp.headers_mut().insert("x-error-code", code.parse().unwrap());
    }
    resp
}

/// `%XX` decoded (the test host's own paths are ASCII).
fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if let Some(byte) =
            (b[i] == b'%').then(|| s.get(i + 1..i + 3)).flatten().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
