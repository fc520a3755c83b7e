//! The hub's HTTP API, as huggingface_hub and llama.cpp call it (`server/testkit/HUB.md` has the shapes and
//! what the test host imitates):
//!
//! - `GET {endpoint}/api/models/{repo}/revision/{rev}`: the repo's commit (`sha`), its spelling,
//!   whether it is gated, its license;
//! - `GET {endpoint}/api/models/{repo}/tree/{commit}?recursive=true`: every file with its size and
//!   LFS SHA-256 (`lfs.oid`), in pages joined by `Link: <...>; rel="next"`;
//! - `HEAD {endpoint}/{repo}/resolve/{commit}/{file}`, not following the redirect: `X-Linked-Etag`
//!   (the LFS SHA-256) and `X-Linked-Size`, which must agree with the tree;
//! - `GET` of the same address with `Range`: a GGUF header's first bytes, through the CDN;
//! - `GET {endpoint}/api/models?search=Q&filter=gguf&sort=downloads&direction=-1&limit=20`.
//!
//! The token goes to the hub's own address only ([`HubSettings::is_hub_url`]); reqwest drops
//! `Authorization` on a redirect to another host (the CDN), and a test proves the CDN never sees it.

use super::settings::HubSettings;
use crate::hub::FoundView;
use reqwest::header::{self, HeaderMap};
use reqwest::{Response, StatusCode};
use serde::Deserialize;
use std::time::Duration;

/// Most pages of a tree listing followed (the hub pages at 1,000 files; a GGUF repo has dozens).
const MAX_TREE_PAGES: usize = 50;

/// Why the hub did not give what was asked, in words for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("this machine can't reach {host} (Hugging Face): check the connection, or set HF_ENDPOINT to a mirror")]
    Unreachable {
        host: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{host} (Hugging Face) is busy (HTTP {status}); try again in a minute")]
    Busy { host: String, status: u16 },
    #[error("there is no model {repo} on Hugging Face (check the spelling; a private repo needs HF_TOKEN)")]
    NotFound { repo: String },
    #[error("{repo} has no revision {revision:?}")]
    NoRevision { repo: String, revision: String },
    #[error(
        "this model needs you to accept its license on Hugging Face and a token: accept it at {page}, \
         then set HF_TOKEN (or run `huggingface-cli login`)"
    )]
    Gated { repo: String, page: String },
    #[error(
        "Hugging Face refused the token for {repo}: accept the model's license at {page} with the account \
         the token belongs to, or use another token"
    )]
    TokenRefused { repo: String, page: String },
    #[error("Hugging Face answered {what} with HTTP {status}")]
    Status { what: String, status: u16 },
    #[error("Hugging Face's answer to {what} is not what its API sends ({problem})")]
    BadAnswer { what: String, problem: String },
    #[error(
        "Hugging Face's download address for {file} disagrees with its file list ({what}: the list says {listed}, \
         the address says {told}); nothing was downloaded"
    )]
    Disagrees { file: String, what: &'static str, listed: String, told: String },
}

/// What `GET /api/models/{repo}/revision/{rev}` says.
#[derive(Clone, Debug, PartialEq)]
pub struct RepoInfo {
    /// `ORG/REPO` as the hub spells it.
    pub repo: String,
    /// The commit the revision is at.
    pub commit: String,
    pub gated: bool,
    pub license: Option<String>,
}

/// One file of a repo's tree.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeFile {
    pub path: String,
    pub size: u64,
    /// The content's SHA-256 (`lfs.oid`); `None` for a file kept in git itself (not LFS).
    pub sha256: Option<String>,
}

/// The hub, with the settings it was made from.
pub struct Hub {
    pub settings: HubSettings,
    /// Follows redirects (to the CDN for file bytes), dropping `Authorization` on another host.
    client: reqwest::Client,
    /// Does not follow them: the `resolve` answer's own headers are what is checked.
    no_redirect: reqwest::Client,
}

#[derive(Deserialize)]
struct InfoJson {
    id: Option<String>,
    sha: Option<String>,
    #[serde(default)]
    gated: serde_json::Value,
    #[serde(rename = "cardData", default)]
    card_data: Option<CardJson>,
}

#[derive(Deserialize)]
struct CardJson {
    license: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TreeJson {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    lfs: Option<LfsJson>,
}

#[derive(Deserialize)]
struct LfsJson {
    oid: String,
    size: u64,
}

#[derive(Deserialize)]
struct FoundJson {
    id: String,
    #[serde(default)]
    downloads: u64,
    #[serde(default)]
    likes: u64,
    #[serde(rename = "lastModified")]
    last_modified: Option<String>,
    #[serde(default)]
    gated: serde_json::Value,
}

impl Hub {
    /// A hub client for `settings`.
    pub fn new(settings: HubSettings) -> Hub {
        let build = |redirect| {
            reqwest::Client::builder()
                .redirect(redirect)
                .connect_timeout(Duration::from_secs(15))
                .timeout(Duration::from_secs(60))
                .user_agent(concat!("localbrain/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("a TLS client with default settings builds")
        };
        Hub {
            settings,
            client: build(reqwest::redirect::Policy::limited(10)),
            no_redirect: build(reqwest::redirect::Policy::none()),
        }
    }

    /// The repo's page on the hub.
    pub fn page(&self, repo: &str) -> String {
        format!("{}/{repo}", self.settings.endpoint)
    }

    /// The hub's download address of `path` at `commit` (it redirects to the CDN).
    pub fn resolve_url(&self, repo: &str, commit: &str, path: &str) -> String {
        let path: Vec<String> = path.split('/').map(escape).collect();
        format!("{}/{repo}/resolve/{commit}/{}", self.settings.endpoint, path.join("/"))
    }

    /// The repo at `revision` (a branch, a tag or a commit).
    pub async fn info(&self, repo: &str, revision: &str) -> Result<RepoInfo, HubError> {
        let url = format!("{}/api/models/{repo}/revision/{}", self.settings.endpoint, escape(revision));
        let resp = self.send(self.client.get(&url), &url).await?;
        let resp = self.check(resp, repo, Some(revision), "the repo's details")?;
        let info: InfoJson = json(resp, "the repo's details").await?;
        let bad = |problem: &str| HubError::BadAnswer { what: "the repo's details".into(), problem: problem.into() };
        let commit = info.sha.filter(|c| is_commit(c)).ok_or_else(|| bad("no 40-hex sha"))?;
        let license = info.card_data.and_then(|c| c.license).and_then(|l| match l {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Array(a) => a.first().and_then(|v| v.as_str()).map(str::to_string),
            _ => None,
        });
        Ok(RepoInfo {
            repo: info.id.unwrap_or_else(|| repo.to_string()),
            commit,
            gated: is_gated(&info.gated),
            license,
        })
    }

    /// Every file of the repo at `commit`, following the listing's pages.
    pub async fn tree(&self, repo: &str, commit: &str) -> Result<Vec<TreeFile>, HubError> {
        let mut url = format!("{}/api/models/{repo}/tree/{commit}?recursive=true", self.settings.endpoint);
        let mut files = Vec::new();
        for _ in 0..MAX_TREE_PAGES {
            let resp = self.send(self.client.get(&url), &url).await?;
            let resp = self.check(resp, repo, Some(commit), "the repo's file list")?;
            let next = next_page(resp.headers());
            let page: Vec<TreeJson> = json(resp, "the repo's file list").await?;
            files.extend(page.into_iter().filter(|e| e.kind == "file").map(|e| TreeFile {
                path: e.path,
                size: e.lfs.as_ref().map_or(e.size, |l| l.size),
                sha256: e.lfs.map(|l| l.oid.to_ascii_lowercase()).filter(|o| is_sha256(o)),
            }));
            match next {
                Some(n) if self.settings.is_hub_url(&n) => url = n,
                _ => return Ok(files),
            }
        }
        Ok(files)
    }

    /// Checks the `resolve` answer for `file` against what the tree listed: `X-Linked-Etag` (the
    /// LFS SHA-256) and `X-Linked-Size` must be the tree's, and `X-Repo-Commit`, when sent, the
    /// commit asked for. A header the hub did not send is not a disagreement.
    pub async fn check_resolve(&self, repo: &str, commit: &str, file: &TreeFile) -> Result<(), HubError> {
        let url = self.resolve_url(repo, commit, &file.path);
        let req = self.no_redirect.head(&url).header(header::ACCEPT_ENCODING, "identity");
        let resp = self.send(req, &url).await?;
        let resp =
            if resp.status().is_redirection() { resp } else { self.check(resp, repo, Some(commit), "the file")? };
        let h = resp.headers();
        let disagrees =
            |what, listed: String, told: String| HubError::Disagrees { file: file.path.clone(), what, listed, told };
        if let (Some(listed), Some(told)) = (&file.sha256, text(h, "x-linked-etag").map(unquote))
            && !told.eq_ignore_ascii_case(listed)
        {
            return Err(disagrees("SHA-256", listed.clone(), told));
        }
        if let Some(told) = text(h, "x-linked-size")
            && told.parse::<u64>().ok() != Some(file.size)
        {
            return Err(disagrees("size", file.size.to_string(), told));
        }
        if let Some(told) = text(h, "x-repo-commit")
            && !told.eq_ignore_ascii_case(commit)
        {
            return Err(disagrees("commit", commit.to_string(), told));
        }
        Ok(())
    }

    /// The first `len` bytes of `file` at `commit` (through the CDN), for reading its header.
    pub async fn first_bytes(&self, repo: &str, commit: &str, path: &str, len: u64) -> Result<Vec<u8>, HubError> {
        let url = self.resolve_url(repo, commit, path);
        let req = self.client.get(&url).header(header::RANGE, format!("bytes=0-{}", len.saturating_sub(1)));
        let resp = self.send(req, &url).await?;
        let resp = self.check(resp, repo, Some(commit), "the file's first bytes")?;
        let what = "the file's first bytes";
        let mut bytes = Vec::new();
        let mut resp = resp;
        // A host that ignores Range sends the whole file: stop reading once there is enough.
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.unreachable(&url, e))? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 >= len {
                bytes.truncate(len as usize);
                return Ok(bytes);
            }
        }
        if bytes.is_empty() {
            return Err(HubError::BadAnswer { what: what.into(), problem: "an empty body".into() });
        }
        Ok(bytes)
    }

    /// GGUF repos matching `query`, most downloaded first (at most 20).
    pub async fn search(&self, query: &str) -> Result<Vec<FoundView>, HubError> {
        let url = format!(
            "{}/api/models?search={}&filter=gguf&sort=downloads&direction=-1&limit=20",
            self.settings.endpoint,
            escape(query.trim())
        );
        let resp = self.send(self.client.get(&url), &url).await?;
        let resp = self.check(resp, "", None, "the search")?;
        let found: Vec<FoundJson> = json(resp, "the search").await?;
        Ok(found
            .into_iter()
            .map(|f| FoundView {
                repo: f.id,
                downloads: f.downloads,
                likes: f.likes,
                updated_at: f.last_modified.as_deref().and_then(parse_rfc3339_ms),
                gated: is_gated(&f.gated),
            })
            .collect())
    }

    /// Sends `req`, with the token when `url` is the hub's own.
    async fn send(&self, mut req: reqwest::RequestBuilder, url: &str) -> Result<Response, HubError> {
        if let Some(token) = self.settings.token.as_ref().filter(|_| self.settings.is_hub_url(url)) {
            req = req.bearer_auth(token.secret());
        }
        req.send().await.map_err(|e| self.unreachable(url, e))
    }

    fn unreachable(&self, url: &str, source: reqwest::Error) -> HubError {
        let host = reqwest::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
        HubError::Unreachable { host, source }
    }

    /// The answer if it is a success, else why not: gated, not found, a refused token, busy.
    fn check(&self, resp: Response, repo: &str, revision: Option<&str>, what: &str) -> Result<Response, HubError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let code = text(resp.headers(), "x-error-code").unwrap_or_default();
        let page = self.page(repo);
        let has_token = self.settings.token.is_some();
        Err(match (status, code.as_str()) {
            (_, "GatedRepo") if has_token => HubError::TokenRefused { repo: repo.into(), page },
            (_, "GatedRepo") => HubError::Gated { repo: repo.into(), page },
            (_, "RevisionNotFound") => {
                HubError::NoRevision { repo: repo.into(), revision: revision.unwrap_or_default().into() }
            }
            (StatusCode::NOT_FOUND, _) | (_, "RepoNotFound") => HubError::NotFound { repo: repo.into() },
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) if has_token => {
                HubError::TokenRefused { repo: repo.into(), page }
            }
            (StatusCode::UNAUTHORIZED, _) => HubError::NotFound { repo: repo.into() },
            (StatusCode::FORBIDDEN, _) => HubError::Gated { repo: repo.into(), page },
            (s, _) if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
                HubError::Busy { host: self.settings.host().to_string(), status: s.as_u16() }
            }
            (s, _) => HubError::Status { what: what.into(), status: s.as_u16() },
        })
    }
}

async fn json<T: serde::de::DeserializeOwned>(resp: Response, what: &str) -> Result<T, HubError> {
    let bad = |problem: String| HubError::BadAnswer { what: what.into(), problem };
    let bytes = resp.bytes().await.map_err(|e| bad(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))
}

fn text(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_string())
}

fn unquote(s: String) -> String {
    s.trim_start_matches("W/").trim_matches('"').to_string()
}

/// The `rel="next"` address of a `Link` header.
fn next_page(h: &HeaderMap) -> Option<String> {
    let link = text(h, "link")?;
    link.split(',').find(|part| part.contains("rel=\"next\"")).and_then(|part| {
        let start = part.find('<')? + 1;
        let end = part.find('>')?;
        part.get(start..end).map(str::to_string)
    })
}

/// `gated` is `false`, or `"auto"` / `"manual"` (the kind of approval).
fn is_gated(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::String(s) => !s.is_empty() && s != "false",
        _ => false,
    }
}

pub(crate) fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Percent-escapes what is not safe in one path segment or query value.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `2024-11-02T10:20:30.000Z` as Unix milliseconds.
fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let time = time.split(['+']).next()?;
    let mut t = time.split(':');
    let (h, min) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
    let sec: f64 = t.next().unwrap_or("0").parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + min * 60) as f64 * 1000.0 + sec * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_dates_and_gates_read_as_the_hub_writes_them() {
        let mut h = HeaderMap::new();
        h.insert("link", r#"<https://huggingface.co/api/models/a/b/tree/c?cursor=xyz>; rel="next""#.parse().unwrap());
        assert_eq!(next_page(&h).as_deref(), Some("https://huggingface.co/api/models/a/b/tree/c?cursor=xyz"));
        assert_eq!(parse_rfc3339_ms("1970-01-02T00:00:01.500Z"), Some(86_401_500));
        assert_eq!(parse_rfc3339_ms("2024-03-01T00:00:00.000Z"), Some(1_709_251_200_000));
        assert!(is_gated(&serde_json::json!("manual")) && !is_gated(&serde_json::json!(false)));
        assert_eq!(escape("refs/pr/1"), "refs%2Fpr%2F1");
        assert_eq!(unquote("\"abc\"".into()), "abc");
    }
}
