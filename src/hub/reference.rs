//! The ways a person names a model on Hugging Face, and the one local id each becomes.
//!
//! Accepted (`server/testkit/HUB.md` has where each form comes from):
//! - `hf.co/ORG/REPO` (ollama's form; the quant is then picked for this machine),
//! - `hf.co/ORG/REPO:QUANT` (ollama's and llama.cpp's `-hf` tag; case-insensitive: `q4_k_m`),
//! - `huggingface.co/ORG/REPO[:QUANT]`, with or without `https://` (a repo page's address),
//! - a file URL `https://huggingface.co/ORG/REPO/resolve/REV/FILE.gguf` (or `/blob/`, the page of
//!   the file), also on the configured endpoint's host (a mirror, the tests' loopback hub).
//!
//! A text that is none of these is not a hub reference ([`parse`] answers `None`) and is taken as
//! a catalog id. Every part is checked against what the hub itself allows, so nothing a request
//! sends reaches a URL or a file name unchecked; the installed model's id ([`HubRef::model_id`])
//! is derived from the repo and the quant only, never taken from the text.

use serde::{Deserialize, Serialize};

pub use crate::catalog::{HUB_ID_PREFIX as ID_PREFIX, is_hub_id};

/// A model on the hub, as a person named it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubRef {
    /// `ORG/REPO`, as written (the hub's names are case-insensitive; its answer gives the case).
    pub repo: String,
    /// What was named inside the repo.
    pub pick: Pick,
}

/// Which file of the repo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pick {
    /// The best quant for this machine.
    Best,
    /// This quant, upper case (`Q4_K_M`): the file whose name carries it.
    Quant(String),
    /// This file at this revision (a branch, a tag or a commit), from a file URL.
    File { revision: String, path: String },
}

/// Why a text that looks like a hub reference cannot be one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("{0:?} is not a Hugging Face repository: it should look like hf.co/ORG/REPO or hf.co/ORG/REPO:Q4_K_M")]
    NotARepo(String),
    #[error("{0:?} is not a name the hub allows (letters, digits, '.', '_' and '-', at most 96)")]
    BadName(String),
    #[error("{0:?} is not a quant name (like Q4_K_M, Q8_0 or IQ4_XS)")]
    BadQuant(String),
    #[error("{0:?} is not a GGUF file: localbrain runs .gguf files only")]
    NotGguf(String),
    #[error(
        "{0:?} is not a file address on the hub: it should look like https://huggingface.co/ORG/REPO/resolve/main/FILE.gguf"
    )]
    BadFileUrl(String),
}

/// Reads a hub reference; `None` when `text` is not one (then it is a catalog id). `endpoint_host`
/// is the configured hub's host (`HF_ENDPOINT`), whose file URLs are accepted beside huggingface.co's.
pub fn parse(text: &str, endpoint_host: Option<&str>) -> Option<Result<HubRef, RefError>> {
    let text = text.trim();
    let bare = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://")).unwrap_or(text);
    let (host, rest) = bare.split_once('/')?;
    let host = host.to_ascii_lowercase();
    let known = ["hf.co", "huggingface.co", "www.huggingface.co"].contains(&host.as_str())
        || endpoint_host.is_some_and(|h| h.eq_ignore_ascii_case(&host));
    if !known {
        return None;
    }
    // A page's address may carry a query (`?download=true`) or a fragment: neither names a file.
    let rest = rest.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/');
    Some(parse_path(rest, text))
}

fn parse_path(rest: &str, text: &str) -> Result<HubRef, RefError> {
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [org, repo_quant] => {
            let (repo, quant) = match repo_quant.split_once(':') {
                Some((r, q)) => (r, Some(q)),
                None => (*repo_quant, None),
            };
            let repo = repo_id(org, repo)?;
            let pick = match quant {
                None => Pick::Best,
                Some(q) => Pick::Quant(quant_name(q)?),
            };
            Ok(HubRef { repo, pick })
        }
        [org, repo, kind, revision, path @ ..] if matches!(*kind, "resolve" | "blob") && !path.is_empty() => {
            let repo = repo_id(org, repo)?;
            let revision = percent_decode(revision).ok_or_else(|| RefError::BadFileUrl(text.to_string()))?;
            if !is_revision(&revision) {
                return Err(RefError::BadFileUrl(text.to_string()));
            }
            let mut segments = Vec::with_capacity(path.len());
            for segment in path {
                let s = percent_decode(segment).ok_or_else(|| RefError::BadFileUrl(text.to_string()))?;
                if !is_path_segment(&s) {
                    return Err(RefError::BadFileUrl(text.to_string()));
                }
                segments.push(s);
            }
            let path = segments.join("/");
            if !path.to_ascii_lowercase().ends_with(".gguf") {
                return Err(RefError::NotGguf(path));
            }
            Ok(HubRef { repo, pick: Pick::File { revision, path } })
        }
        _ => Err(RefError::NotARepo(text.to_string())),
    }
}

impl HubRef {
    /// How a person would write it again: `hf.co/ORG/REPO[:QUANT]`, or the file's path.
    pub fn display(&self) -> String {
        match &self.pick {
            Pick::Best => format!("hf.co/{}", self.repo),
            Pick::Quant(q) => format!("hf.co/{}:{q}", self.repo),
            Pick::File { revision, path } => format!("hf.co/{}/resolve/{revision}/{path}", self.repo),
        }
    }
}

/// The local id of `repo`'s model in quant `quant` (or, for a file without one, the file's name):
/// `hf--org--repo--q4_k_m`, a valid catalog id ([`crate::catalog::is_valid_model_id`]). One that
/// would be too long is cut and ends in a short hash of the whole, so it stays unique.
pub fn model_id(repo: &str, quant_or_file: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| match c.to_ascii_lowercase() {
                c @ ('a'..='z' | '0'..='9' | '.' | '_') => c,
                _ => '-',
            })
            .collect()
    };
    let (org, name) = repo.split_once('/').unwrap_or(("", repo));
    let stem = quant_or_file.strip_suffix(".gguf").unwrap_or(quant_or_file);
    let stem = stem.rsplit('/').next().unwrap_or(stem);
    let id = format!("{ID_PREFIX}{}--{}--{}", clean(org), clean(name), clean(stem));
    let max = crate::catalog::MAX_MODEL_ID_LEN;
    if id.len() <= max {
        return id;
    }
    // FNV-1a: a stable, dependency-free hash (no security rests on it; the id only has to differ).
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{}-{hash:016x}", &id[..max - 17])
}

/// `ORG/REPO` after checking both names.
fn repo_id(org: &str, repo: &str) -> Result<String, RefError> {
    for name in [org, repo] {
        if !is_name(name) {
            return Err(RefError::BadName(name.to_string()));
        }
    }
    Ok(format!("{org}/{repo}"))
}

/// The hub's rule for a user, organisation or repo name (huggingface_hub `validate_repo_id`):
/// letters, digits, `.`, `_`, `-`; no `--` or `..`; not starting or ending with `.` or `-`.
fn is_name(name: &str) -> bool {
    (1..=96).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.contains("--")
        && !name.contains("..")
        && !name.starts_with(['.', '-'])
        && !name.ends_with(['.', '-'])
}

/// A quant tag as written (`q4_k_m`, `IQ4_XS`, `Q4_K_M-imat`), upper-cased.
fn quant_name(q: &str) -> Result<String, RefError> {
    let ok = (1..=32).contains(&q.len())
        && q.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && q.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
    if ok { Ok(q.to_ascii_uppercase()) } else { Err(RefError::BadQuant(q.to_string())) }
}

/// A branch, tag or commit: one path segment once decoded may still hold `/` (`refs/pr/1`).
fn is_revision(rev: &str) -> bool {
    (1..=200).contains(&rev.len()) && rev.split('/').all(is_path_segment)
}

/// One segment of a file's path in a repo: printable, no `..`, no `\`.
fn is_path_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s != "."
        && s != ".."
        && s.chars().all(|c| !c.is_control() && c != '\\' && c != '/')
}

/// `%XX` escapes decoded; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> HubRef {
        parse(text, Some("127.0.0.1:9")).expect("a hub reference").expect("a good one")
    }

    #[test]
    fn each_form_reads_as_its_repo_and_pick() {
        let repo = "bartowski/SmolLM2-135M-Instruct-GGUF";
        assert_eq!(ok("hf.co/bartowski/SmolLM2-135M-Instruct-GGUF"), HubRef { repo: repo.into(), pick: Pick::Best });
        assert_eq!(ok(" hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:q4_k_m ").pick, Pick::Quant("Q4_K_M".into()));
        assert_eq!(ok("https://huggingface.co/bartowski/SmolLM2-135M-Instruct-GGUF/").pick, Pick::Best);
        assert_eq!(ok("huggingface.co/bartowski/SmolLM2-135M-Instruct-GGUF:IQ4_XS").pick, Pick::Quant("IQ4_XS".into()));
        let file = Pick::File { revision: "main".into(), path: "SmolLM2-135M-Instruct-Q4_K_M.gguf".into() };
        assert_eq!(
            ok("https://huggingface.co/bartowski/SmolLM2-135M-Instruct-GGUF/resolve/main/SmolLM2-135M-Instruct-Q4_K_M.gguf?download=true").pick,
            file
        );
        assert_eq!(ok("https://huggingface.co/bartowski/SmolLM2-135M-Instruct-GGUF/blob/main/SmolLM2-135M-Instruct-Q4_K_M.gguf").pick, file);
        let nested = ok("http://127.0.0.1:9/org/repo/resolve/refs%2Fpr%2F1/sub/x-Q8_0.gguf");
        assert_eq!(nested.pick, Pick::File { revision: "refs/pr/1".into(), path: "sub/x-Q8_0.gguf".into() });
    }

    #[test]
    fn a_catalog_id_or_another_host_is_not_a_hub_reference() {
        for text in ["qwen2.5-0.5b-instruct-q4_k_m", "smollm2", "https://example.com/org/repo", "hf.co", ""] {
            assert_eq!(parse(text, None), None, "{text}");
        }
    }

    #[test]
    fn bad_parts_are_refused_with_their_reason() {
        let err = |t: &str| parse(t, None).unwrap().unwrap_err();
        assert!(matches!(err("hf.co/just-a-repo"), RefError::NotARepo(_)));
        assert!(matches!(err("hf.co/org/re--po"), RefError::BadName(_)));
        assert!(matches!(err("hf.co/../etc"), RefError::BadName(_)));
        assert!(matches!(err("hf.co/org/repo:Q4 K"), RefError::BadQuant(_)));
        assert!(matches!(err("hf.co/org/repo:"), RefError::BadQuant(_)));
        assert!(matches!(err("https://huggingface.co/org/repo/resolve/main/README.md"), RefError::NotGguf(_)));
        assert!(matches!(
            err("https://huggingface.co/org/repo/resolve/main/..%2F..%2Fx.gguf"),
            RefError::BadFileUrl(_)
        ));
        assert!(matches!(err("https://huggingface.co/org/repo/resolve/main/%zz.gguf"), RefError::BadFileUrl(_)));
        assert!(matches!(err("https://huggingface.co/org/repo/tree/main/x.gguf"), RefError::NotARepo(_)));
    }

    #[test]
    fn the_local_id_is_a_valid_catalog_id_unique_per_repo_and_quant() {
        let id = model_id("bartowski/SmolLM2-135M-Instruct-GGUF", "Q4_K_M");
        assert_eq!(id, "hf--bartowski--smollm2-135m-instruct-gguf--q4_k_m");
        assert!(crate::catalog::is_valid_model_id(&id) && is_hub_id(&id));
        assert_ne!(model_id("a-b/c", "Q8_0"), model_id("a/b-c", "Q8_0"));
        assert_eq!(model_id("org/repo", "sub/My File.gguf"), "hf--org--repo--my-file");
        let long = model_id(&format!("{}/{}", "o".repeat(96), "r".repeat(96)), "Q4_K_M");
        assert!(long.len() <= crate::catalog::MAX_MODEL_ID_LEN && crate::catalog::is_valid_model_id(&long));
        assert_ne!(long, model_id(&format!("{}/{}", "o".repeat(96), "r".repeat(96)), "Q8_0"));
    }
}
