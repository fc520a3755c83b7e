//! The model catalog: the GGUF models localbrain can download, with the hash and size that
//! prove a download is the right file.
//!
//! The shipped catalog is `catalog/models.toml`, embedded at build time; `LOCALBRAIN_CATALOG`
//! (read by the server, passed to [`Catalog::load`]) replaces it. Every way in goes through
//! [`Catalog::parse`], which validates every entry and names the bad one, so a typo or a
//! placeholder hash is refused at start instead of failing a multi-GB download later.
//! Catalog ids are the only way a request names a model ([`is_valid_model_id`]); no path on disk
//! is ever built from request text.

mod split;

use serde::{Deserialize, Serialize};
use split::validate_parts;
pub use split::{MAX_PARTS, Part, split_file_name, split_of_file_name};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The shipped catalog's text.
const EMBEDDED: &str = include_str!("catalog/models.toml");

/// Longest accepted model id. The id becomes a file name (`<id>.gguf`, plus the engine's
/// `.<download-id>.partial` suffix), and 255 bytes is the usual file-name limit.
pub const MAX_MODEL_ID_LEN: usize = 128;

/// One downloadable model: where to get it and how to recognise it. The schema other tools
/// write is in shared/DESIGN.md; unknown fields are refused so a misspelt key is caught.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// `[a-z0-9._-]+`, unique in the catalog; also the installed file name (`<id>.gguf`).
    pub id: String,
    /// Human name, e.g. "Qwen2.5 0.5B Instruct".
    pub name: String,
    /// Model family, e.g. "qwen2.5".
    pub family: String,
    /// Billions of parameters.
    pub params_b: f64,
    /// Quantisation, e.g. "Q4_K_M".
    pub quant: String,
    /// Primary download URL (http or https).
    pub url: String,
    /// More URLs serving the same bytes, tried in order after `url`.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// SHA-256 of the file, 64 lowercase hex characters.
    pub sha256: String,
    /// Exact file size in bytes.
    pub size_bytes: u64,
    /// Installed RAM in GiB the model needs at a ~4K context; the floor of
    /// [`crate::memory_rule::ram_needed_bytes`].
    pub min_ram_gb: u32,
    /// The model's maximum context, in tokens.
    pub context_length: u64,
    /// SPDX-style license name, e.g. "apache-2.0".
    pub license: String,
    /// The model's page (its card: what it is for, its license in full), shown beside it. Hub
    /// models have their repo's; a catalog entry may give one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// Higher is better; ranks models within what fits (ties broken by `params_b`, then `id`).
    pub quality: i64,
    /// What the model is for: chat (the default) or embeddings (search over documents, RAG).
    /// The chat pick is only ever a chat model; an embedding model is recommended beside it.
    #[serde(default, skip_serializing_if = "Purpose::is_chat")]
    pub purpose: Purpose,
    /// A model split into files (llama.cpp's `gguf-split`, `-00001-of-0000N.gguf`): every part in
    /// order, the first being `url` and `sha256`, `size_bytes` their sum. Empty for one file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    /// The KV cache one token of context takes, in bytes, as the model's header gives it (its
    /// layers, KV heads and head sizes; hub models have it). 0: estimated from `params_b`
    /// ([`crate::memory_rule::kv_cache_bytes`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kv_bytes_per_token: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a catalog model is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// It writes: the card's chat, `localbrain run`, `/v1/chat/completions`.
    #[default]
    Chat,
    /// It only turns text into vectors (`/v1/embeddings`); it cannot write a reply.
    Embedding,
}

impl Purpose {
    pub fn is_chat(&self) -> bool {
        *self == Purpose::Chat
    }
}

impl ModelEntry {
    /// Every URL for the file, the primary first, then the mirrors in catalog order.
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.url.as_str()).chain(self.mirrors.iter().map(String::as_str))
    }

    /// The installed file name, `<id>.gguf`, or a split model's first part (what llama.cpp
    /// loads; it finds the others by name). Safe as a path component because the id was
    /// validated by [`is_valid_model_id`] when the catalog loaded.
    pub fn file_name(&self) -> String {
        self.file_names().swap_remove(0)
    }

    /// Every installed file, in order: `<id>.gguf`, or `<id>-00001-of-0000N.gguf` and on, the
    /// names llama.cpp's split loader derives from the first part's path.
    pub fn file_names(&self) -> Vec<String> {
        match self.parts.len() {
            0 | 1 => vec![format!("{}.gguf", self.id)],
            n => (1..=n).map(|k| split_file_name(&self.id, k, n)).collect(),
        }
    }

    /// What the engine fetches, one file at a time: the model itself, or each part as an entry
    /// of its own (its address, hash and size), in order.
    pub fn files(&self) -> Vec<ModelEntry> {
        if self.parts.len() < 2 {
            return vec![self.clone()];
        }
        let part = |p: &Part| ModelEntry {
            url: p.url.clone(),
            mirrors: Vec::new(),
            sha256: p.sha256.clone(),
            size_bytes: p.size_bytes,
            parts: Vec::new(),
            ..self.clone()
        };
        self.parts.iter().map(part).collect()
    }
}

/// A validated list of models, in catalog order, and the models this server resolved on Hugging
/// Face since (the hub shelf). Every clone shares one shelf: the engine's, the brain's and the
/// library's catalog see a hub model as soon as it is added, whoever added it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// The shipped (or `LOCALBRAIN_CATALOG`) models, in the order the file lists them.
    pub models: Vec<ModelEntry>,
    #[serde(skip)]
    hub: HubShelf,
}

/// The hub models known to this process (`crate::store::hub_models` keeps them across restarts).
#[derive(Clone, Debug, Default)]
struct HubShelf(std::sync::Arc<std::sync::RwLock<Vec<ModelEntry>>>);

impl HubShelf {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<ModelEntry>> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl PartialEq for HubShelf {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || *self.read() == *other.read()
    }
}

/// Why a catalog was refused. Entry numbers are 1-based: entry 3 is the third `[[models]]`.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The text is not TOML, or does not match the schema (a missing, misspelt or mistyped field).
    #[error("catalog is not valid TOML at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the problem.
        line: u32,
        /// 1-based column (in characters) of the problem.
        column: u32,
        /// The parser's description.
        message: String,
    },
    /// No `[[models]]` at all: there would be nothing to recommend.
    #[error("catalog has no models")]
    Empty,
    /// One field of one entry is invalid.
    #[error("catalog entry {index} ({id:?}): {field} {problem}")]
    Entry {
        /// 1-based position of the entry.
        index: u32,
        /// The entry's id as written (possibly the invalid thing itself).
        id: String,
        /// The offending field.
        field: &'static str,
        /// What is wrong, in plain words.
        problem: String,
    },
    /// Two entries share an id; the id names the installed file, so it must be unique.
    #[error("catalog entry {index} ({id:?}): id is already used by entry {first}")]
    DuplicateId {
        /// 1-based position of the second use.
        index: u32,
        /// The repeated id.
        id: String,
        /// 1-based position of the first use.
        first: u32,
    },
    /// A catalog file could not be read.
    #[error("could not read catalog {path}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// A catalog file was read but refused. The detail is part of the message (not a source)
    /// so a one-line log names both the file and the bad entry.
    #[error("catalog {path}: {detail}")]
    InFile {
        /// The file that was refused.
        path: PathBuf,
        /// What is wrong inside it.
        detail: Box<CatalogError>,
    },
}

impl Catalog {
    /// The shipped catalog. It is validated like any other (a unit test proves it passes), so
    /// this never panics in a build whose tests ran.
    pub fn embedded() -> Catalog {
        static EMBEDDED_CATALOG: OnceLock<Catalog> = OnceLock::new();
        EMBEDDED_CATALOG
            .get_or_init(|| Catalog::parse(EMBEDDED).unwrap_or_else(|e| panic!("the embedded catalog is invalid: {e}")))
            .clone()
    }

    /// Parses and validates a catalog: the schema (unknown fields refused), then every entry
    /// (id charset and uniqueness, real-looking SHA-256, http(s) URLs, non-zero size, RAM and
    /// context, non-empty names). The error names the first bad entry and field.
    pub fn parse(toml_text: &str) -> Result<Catalog, CatalogError> {
        let catalog: Catalog = toml::from_str(toml_text).map_err(|e| syntax_error(toml_text, &e))?;
        catalog.validate()?;
        Ok(catalog)
    }

    /// The catalog to run with: `None` is the embedded one; `Some(path)` reads and validates
    /// that file (what `LOCALBRAIN_CATALOG` points at). Errors name the path.
    #[cfg(feature = "ssr")]
    pub fn load(path: Option<&std::path::Path>) -> Result<Catalog, CatalogError> {
        let Some(path) = path else {
            return Ok(Catalog::embedded());
        };
        let text =
            std::fs::read_to_string(path).map_err(|source| CatalogError::Read { path: path.to_owned(), source })?;
        Catalog::parse(&text).map_err(|detail| CatalogError::InFile { path: path.to_owned(), detail: Box::new(detail) })
    }

    /// A catalog of `models` as given, not validated: for writing a catalog file ([`Catalog::parse`]
    /// checks it when read).
    pub fn unchecked(models: Vec<ModelEntry>) -> Catalog {
        Catalog { models, hub: HubShelf::default() }
    }

    /// The model with this id, shipped or from the hub shelf.
    pub fn get(&self, id: &str) -> Option<ModelEntry> {
        if let Some(m) = self.models.iter().find(|m| m.id == id) {
            return Some(m.clone());
        }
        self.hub.read().iter().find(|m| m.id == id).cloned()
    }

    /// Every model: the shipped ones in catalog order, then the hub's in the order they came.
    pub fn all(&self) -> Vec<ModelEntry> {
        let mut all = self.models.clone();
        all.extend(self.hub.read().iter().cloned());
        all
    }

    /// The models resolved on the hub, in the order they came.
    pub fn hub_models(&self) -> Vec<ModelEntry> {
        self.hub.read().clone()
    }

    /// Puts a model resolved on the hub on the shelf (replacing one with its id: a newer commit),
    /// after the same checks a catalog entry gets; its id must be a hub id
    /// ([`is_hub_id`]), so it can never shadow a shipped model.
    pub fn add_hub(&self, entry: ModelEntry) -> Result<(), CatalogError> {
        let refuse = |field, problem: String| CatalogError::Entry { index: 0, id: entry.id.clone(), field, problem };
        if !is_hub_id(&entry.id) {
            return Err(refuse("id", format!("must start with {:?}", HUB_ID_PREFIX)));
        }
        validate_entry(&entry).map_err(|(field, problem)| refuse(field, problem))?;
        let mut shelf = self.hub.0.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        match shelf.iter_mut().find(|m| m.id == entry.id) {
            Some(old) => *old = entry,
            None => shelf.push(entry),
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), CatalogError> {
        if self.models.is_empty() {
            return Err(CatalogError::Empty);
        }
        for (i, m) in self.models.iter().enumerate() {
            let index = position(i);
            validate_entry(m).map_err(|(field, problem)| CatalogError::Entry {
                index,
                id: m.id.clone(),
                field,
                problem,
            })?;
            if is_hub_id(&m.id) {
                return Err(CatalogError::Entry {
                    index,
                    id: m.id.clone(),
                    field: "id",
                    problem: format!("must not start with {:?}: that is kept for Hugging Face models", HUB_ID_PREFIX),
                });
            }
            if let Some(first) = self.models[..i].iter().position(|o| o.id == m.id) {
                return Err(CatalogError::DuplicateId { index, id: m.id.clone(), first: position(first) });
            }
        }
        Ok(())
    }
}

/// 0-based slice index to the 1-based entry number users see.
fn position(i: usize) -> u32 {
    u32::try_from(i + 1).unwrap_or(u32::MAX)
}

/// The first part of every local id of a Hugging Face model: `hf--ORG--REPO--QUANT`
/// (made by the hub module's `model_id`). The hub forbids `--` in names, so such an id names exactly
/// one repo and quant; no shipped catalog entry may use the prefix.
pub const HUB_ID_PREFIX: &str = "hf--";

/// Whether `id` is the local id of a Hugging Face model.
pub fn is_hub_id(id: &str) -> bool {
    id.starts_with(HUB_ID_PREFIX)
}

/// Whether `id` may name a model: `[a-z0-9._-]+`, at most [`MAX_MODEL_ID_LEN`] characters,
/// not starting with '.' (which also rules out "." and ".."). The API checks request text
/// with this before anything touches disk, and the catalog requires it of every id, so a
/// model id can never climb out of the models folder or hide as a dot-file.
pub fn is_valid_model_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_MODEL_ID_LEN
        && !id.starts_with('.')
        && id.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
}

/// Checks one entry; `Err((field, problem))` for the first problem found.
fn validate_entry(m: &ModelEntry) -> Result<(), (&'static str, String)> {
    if !is_valid_model_id(&m.id) {
        return Err((
            "id",
            format!(
                "must be 1 to {MAX_MODEL_ID_LEN} characters of a-z, 0-9, '.', '_' or '-', \
                 not starting with '.'"
            ),
        ));
    }
    for (field, value) in [("name", &m.name), ("family", &m.family), ("quant", &m.quant), ("license", &m.license)] {
        if value.trim().is_empty() {
            return Err((field, "must not be empty".into()));
        }
    }
    if !(m.params_b.is_finite() && m.params_b > 0.0) {
        return Err(("params_b", "must be a positive number".into()));
    }
    check_url(&m.url).map_err(|p| ("url", p))?;
    for mirror in &m.mirrors {
        check_url(mirror).map_err(|p| ("mirrors", p))?;
    }
    // Shown as a link: http(s) only, like the file's own address.
    if let Some(page) = &m.page {
        check_url(page).map_err(|p| ("page", p))?;
    }
    check_sha256(&m.sha256).map_err(|p| ("sha256", p.into()))?;
    if m.size_bytes == 0 {
        return Err(("size_bytes", "must be greater than 0".into()));
    }
    if m.min_ram_gb == 0 {
        return Err(("min_ram_gb", "must be greater than 0".into()));
    }
    if m.context_length == 0 {
        return Err(("context_length", "must be greater than 0".into()));
    }
    validate_parts(m)
}

/// An absolute http(s) URL with a host and no whitespace. The engine's HTTP client does the
/// full parse; this catches the catalog mistakes (a bare path, `ftp://`, a pasted space).
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?} must start with https:// or http://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?} contains whitespace"));
    }
    Ok(())
}

/// SHA-256 of zero bytes: what a hash of an empty or missing file gives, never a model.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A real digest: 64 lowercase hex characters, and not a placeholder. Placeholders are
/// repeating patterns ("000…", "deadbeef"×8, "0123456789abcdef"×4) or digests using fewer than
/// 8 distinct hex digits; a real SHA-256 has that little variety with probability about 1e-19.
fn check_sha256(hash: &str) -> Result<(), &'static str> {
    let b = hash.as_bytes();
    if b.len() != 64 || !b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("must be 64 lowercase hex characters");
    }
    let repeats = (1..=32).filter(|p| 64 % p == 0).any(|p| b.iter().enumerate().all(|(i, c)| *c == b[i % p]));
    let mut seen = [false; 256];
    b.iter().for_each(|c| seen[usize::from(*c)] = true);
    let distinct = seen.iter().filter(|s| **s).count();
    if repeats || distinct < 8 {
        return Err("is a placeholder (a repeating or low-variety pattern), not a real hash");
    }
    if hash == EMPTY_SHA256 {
        return Err("is the SHA-256 of an empty file, not of a model");
    }
    Ok(())
}

/// Turns a TOML/serde error into a one-line message with its position.
fn syntax_error(text: &str, e: &toml::de::Error) -> CatalogError {
    let (line, column) = match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            (line, column)
        }
        None => (1, 1),
    };
    CatalogError::Syntax {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
        message: e.message().trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid entry; each failure test changes one line of it.
    const GOOD: &str = r#"
[[models]]
id = "tiny-model-q4_k_m"
name = "Tiny Model"
family = "tiny"
params_b = 0.5
quant = "Q4_K_M"
url = "https://example.com/tiny.gguf"
mirrors = ["http://mirror.example.org/tiny.gguf"]
sha256 = "6eb923e7d26e9cea28811e1a8e852009b21242fb157b26149d3b188f3a8c8653"
size_bytes = 1000
min_ram_gb = 1
context_length = 4096
license = "mit"
page = "https://example.com/tiny"
quality = 1
"#;

    /// `GOOD` with the line starting with `key =` replaced by `line` (or removed when empty).
    fn with_line(key: &str, line: &str) -> String {
        let prefix = format!("{key} =");
        GOOD.lines()
            .filter_map(|l| if l.starts_with(&prefix) { (!line.is_empty()).then_some(line) } else { Some(l) })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn shipped_catalog_loads_with_real_hashes() {
        let c = Catalog::parse(EMBEDDED).expect("embedded catalog is valid");
        assert_eq!(c, Catalog::embedded());
        assert_eq!(c.models.len(), 18);
        for m in &c.models {
            // Validation already refuses placeholders; restate it here so the shipped file can
            // never regress into one silently.
            assert_eq!(check_sha256(&m.sha256), Ok(()), "{}", m.id);
            assert!(m.url.starts_with("https://huggingface.co/"), "{}", m.id);
            // A url is pinned to a full 40-hex commit, or uses main where only a prefix is known.
            let rev = m.url.split("/resolve/").nth(1).and_then(|r| r.split('/').next()).unwrap_or("");
            assert!(
                rev == "main" || (rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())),
                "{}: {rev}",
                m.id
            );
            assert!(m.url.ends_with(".gguf"), "{}", m.id);
        }
        let mut qualities: Vec<i64> = c.models.iter().map(|m| m.quality).collect();
        qualities.sort_unstable();
        qualities.dedup();
        assert_eq!(qualities.len(), c.models.len(), "quality values are distinct");
    }

    #[test]
    fn shipped_quality_follows_params_then_newer_family() {
        let c = Catalog::embedded();
        let mut by_quality: Vec<&ModelEntry> = c.models.iter().collect();
        by_quality.sort_by_key(|m| m.quality);
        for pair in by_quality.windows(2) {
            assert!(pair[0].params_b <= pair[1].params_b, "{} vs {}", pair[0].id, pair[1].id);
        }
        let q = |id: &str| c.get(id).unwrap().quality;
        // One embedding model, so the card can recommend one beside the chat pick.
        let embedders: Vec<&str> =
            c.models.iter().filter(|m| m.purpose == Purpose::Embedding).map(|m| m.id.as_str()).collect();
        assert_eq!(embedders, ["nomic-embed-text-v1.5-q8_0"]);
        assert!(q("phi-4-mini-instruct-q4_k_m") > q("phi-3.5-mini-instruct-q4_k_m"));
        assert!(q("qwen3-14b-q4_k_m") > q("qwen2.5-14b-instruct-q4_k_m"));
    }

    #[test]
    fn good_entry_parses_and_helpers_work() {
        let c = Catalog::parse(GOOD).unwrap();
        let m = c.get("tiny-model-q4_k_m").unwrap();
        assert_eq!(m.file_name(), "tiny-model-q4_k_m.gguf");
        assert_eq!(
            m.urls().collect::<Vec<_>>(),
            ["https://example.com/tiny.gguf", "http://mirror.example.org/tiny.gguf"]
        );
        assert!(c.get("nope").is_none());
        // mirrors and page are optional.
        let c = Catalog::parse(&with_line("mirrors", "")).unwrap();
        assert!(c.models[0].mirrors.is_empty());
        assert_eq!(c.models[0].page.as_deref(), Some("https://example.com/tiny"));
        assert_eq!(Catalog::parse(&with_line("page", "")).unwrap().models[0].page, None);
    }

    #[test]
    fn each_invalid_field_is_refused_naming_entry_and_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("id", r#"id = "Tiny""#, r#"catalog entry 1 ("Tiny"): id must be"#),
            ("id", r#"id = "../etc""#, r#"catalog entry 1 ("../etc"): id must be"#),
            ("id", r#"id = ".hidden""#, r#"catalog entry 1 (".hidden"): id must be"#),
            ("id", r#"id = """#, r#"catalog entry 1 (""): id must be"#),
            ("name", r#"name = " ""#, r#"catalog entry 1 ("tiny-model-q4_k_m"): name must not be empty"#),
            ("family", r#"family = """#, "family must not be empty"),
            ("quant", r#"quant = """#, "quant must not be empty"),
            ("license", r#"license = """#, "license must not be empty"),
            ("params_b", "params_b = 0.0", "params_b must be a positive number"),
            ("params_b", "params_b = nan", "params_b must be a positive number"),
            (
                "url",
                r#"url = "ftp://example.com/x.gguf""#,
                r#"url "ftp://example.com/x.gguf" must start with https:// or http://"#,
            ),
            ("url", r#"url = "/models/x.gguf""#, "url \"/models/x.gguf\" must start with"),
            ("url", r#"url = "https:///x.gguf""#, "url \"https:///x.gguf\" has no host"),
            ("url", r#"url = "https://example.com/a b.gguf""#, "contains whitespace"),
            (
                "mirrors",
                r#"mirrors = ["file:///tmp/x.gguf"]"#,
                r#"catalog entry 1 ("tiny-model-q4_k_m"): mirrors "file:///tmp/x.gguf" must start with"#,
            ),
            (
                "sha256",
                r#"sha256 = "abc""#,
                r#"catalog entry 1 ("tiny-model-q4_k_m"): sha256 must be 64 lowercase hex characters"#,
            ),
            (
                "sha256",
                &format!(r#"sha256 = "{}""#, "6EB923E7D26E9CEA28811E1A8E852009B21242FB157B26149D3B188F3A8C8653"),
                "sha256 must be 64 lowercase hex characters",
            ),
            ("sha256", &format!(r#"sha256 = "{}g""#, "0".repeat(63)), "sha256 must be 64 lowercase hex characters"),
            ("sha256", &format!(r#"sha256 = "{}""#, "0".repeat(64)), "sha256 is a placeholder"),
            ("sha256", &format!(r#"sha256 = "{}""#, "f".repeat(64)), "sha256 is a placeholder"),
            ("sha256", &format!(r#"sha256 = "{}""#, "deadbeef".repeat(8)), "sha256 is a placeholder"),
            ("sha256", &format!(r#"sha256 = "{}""#, "0123456789abcdef".repeat(4)), "sha256 is a placeholder"),
            (
                "sha256",
                &format!(r#"sha256 = "{}""#, "6eb923e7d26e9cea28811e1a8e852009".repeat(2)),
                "sha256 is a placeholder",
            ),
            ("sha256", &format!(r#"sha256 = "{}""#, "1234".repeat(15) + "4321"), "sha256 is a placeholder"),
            ("sha256", &format!(r#"sha256 = "{EMPTY_SHA256}""#), "sha256 is the SHA-256 of an empty file"),
            (
                "size_bytes",
                "size_bytes = 0",
                r#"catalog entry 1 ("tiny-model-q4_k_m"): size_bytes must be greater than 0"#,
            ),
            // A link in the page: never javascript: or a file.
            ("page", r#"page = "javascript:alert(1)""#, r#"page "javascript:alert(1)" must start with https://"#),
            ("min_ram_gb", "min_ram_gb = 0", "min_ram_gb must be greater than 0"),
            ("context_length", "context_length = 0", "context_length must be greater than 0"),
        ];
        for (key, line, want) in cases {
            let text = with_line(key, line);
            let err = Catalog::parse(&text).expect_err(line).to_string();
            assert!(err.contains(want), "{line}: got {err:?}, want it to contain {want:?}");
            assert!(err.starts_with("catalog entry 1 ("), "{line}: {err}");
        }
    }

    #[test]
    fn schema_errors_give_the_position() {
        let cases: &[(String, &str)] = &[
            (with_line("sha256", r#"sha265 = "x""#), "unknown field `sha265`"),
            (with_line("size_bytes", ""), "missing field `size_bytes`"),
            (with_line("size_bytes", "size_bytes = -1"), "line "),
            (with_line("quality", r#"quality = "high""#), "line 16"),
            ("models = 3".to_string(), "line 1"),
            (GOOD.replace("[[models]]", "[[model]]"), "unknown field `model`"),
            ("[[models]\n".to_string(), "not valid TOML"),
        ];
        for (text, want) in cases {
            let err = Catalog::parse(text).expect_err(text);
            assert!(matches!(err, CatalogError::Syntax { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(msg.starts_with("catalog is not valid TOML at line "), "{msg}");
            assert!(msg.contains(want), "got {msg:?}, want {want:?}");
            assert!(!msg.contains('\n'), "one line: {msg:?}");
        }
        let err = Catalog::parse(&with_line("sha256", r#"sha265 = "x""#)).unwrap_err();
        assert!(matches!(err, CatalogError::Syntax { line: 10, column: 1, .. }), "{err:?}");
    }

    #[test]
    fn empty_catalog_and_duplicates_are_refused() {
        for text in ["", "models = []", "# nothing\n"] {
            let err = Catalog::parse(text).unwrap_err();
            assert!(matches!(err, CatalogError::Empty | CatalogError::Syntax { .. }), "{text:?}: {err:?}");
        }
        assert_eq!(Catalog::parse("models = []").unwrap_err().to_string(), "catalog has no models");

        let second = GOOD.replace("quality = 1", "quality = 2");
        let text = format!("{GOOD}\n{}\n{second}", GOOD.replace("tiny-model-q4_k_m", "other"));
        let err = Catalog::parse(&text).unwrap_err().to_string();
        assert_eq!(err, r#"catalog entry 3 ("tiny-model-q4_k_m"): id is already used by entry 1"#);

        // A bad later entry is named by its own position and id.
        let bad = GOOD.replace("tiny-model-q4_k_m", "foo").replace("size_bytes = 1000", "size_bytes = 0");
        let err = Catalog::parse(&format!("{GOOD}\n{bad}")).unwrap_err().to_string();
        assert_eq!(err, r#"catalog entry 2 ("foo"): size_bytes must be greater than 0"#);
    }

    #[test]
    fn model_ids() {
        let cases = [
            ("qwen2.5-0.5b-instruct-q4_k_m", true),
            ("a", true),
            ("0", true),
            ("a..b", true),
            ("-starts-with-dash", true),
            (&"a".repeat(MAX_MODEL_ID_LEN), true),
            (&"a".repeat(MAX_MODEL_ID_LEN + 1), false),
            ("", false),
            (".", false),
            ("..", false),
            (".hidden", false),
            ("../x", false),
            ("a/b", false),
            ("a\\b", false),
            ("Upper", false),
            ("sp ace", false),
            ("nul\0", false),
            ("é", false),
            ("x.gguf?", false),
        ];
        for (id, ok) in cases {
            assert_eq!(is_valid_model_id(id), ok, "{id:?}");
        }
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn load_reads_files_and_names_the_path() {
        assert_eq!(Catalog::load(None).unwrap(), Catalog::embedded());

        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(&good, GOOD).unwrap();
        assert_eq!(Catalog::load(Some(&good)).unwrap().models[0].id, "tiny-model-q4_k_m");

        let missing = dir.path().join("missing.toml");
        let err = Catalog::load(Some(&missing)).unwrap_err();
        assert!(matches!(err, CatalogError::Read { .. }));
        assert!(err.to_string().contains("missing.toml"), "{err}");
        assert!(std::error::Error::source(&err).is_some(), "the io error is the source");

        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, GOOD.replace("size_bytes = 1000", "size_bytes = 0")).unwrap();
        let err = Catalog::load(Some(&bad)).unwrap_err().to_string();
        assert!(err.starts_with("catalog "), "{err}");
        assert!(err.contains("bad.toml"), "{err}");
        assert!(
            err.ends_with(r#": catalog entry 1 ("tiny-model-q4_k_m"): size_bytes must be greater than 0"#),
            "{err}"
        );
    }
}
