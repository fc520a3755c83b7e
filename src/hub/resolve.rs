//! A hub reference to a pinned, checked catalog entry, before any model byte is downloaded:
//!
//! 1. the revision (`main`, or the file URL's) to a commit, through the repo's details;
//! 2. the repo's files at that commit, with sizes and LFS SHA-256s;
//! 3. the quant: the one named, the file named, or the pick (the catalog's own rule and speed
//!    prediction over every quant of the repo, [`crate::recommend::recommend_with`]);
//! 4. the chosen file's GGUF header, from its first bytes (a Range request): an architecture this
//!    llama.cpp cannot run, or a model this machine's RAM cannot hold, is refused now, not after
//!    5 GB; the header's parameters and context feed the memory rule;
//! 5. the `resolve` answer's `X-Linked-Etag` / `X-Linked-Size` against the tree.
//!
//! The entry's URL is the hub's `resolve` address at the commit and its digest the LFS SHA-256:
//! the engine verifies the download against it like any catalog model, and a mismatch installs
//! nothing. A split model (`-00001-of-0000N.gguf`) is one entry with every part, each with its
//! own address and SHA-256, each checked on its `resolve` answer.

use super::client::{Hub, HubError, RepoInfo, TreeFile};
use super::quant;
use super::reference::{HubRef, Pick, model_id};
use super::{QuantView, RepoView};
use crate::brain::gguf::{self, GgufError, Header};
use crate::catalog::{ModelEntry, Part};
use crate::hardware::HardwareProfile;
use crate::recommend::{Fit, recommend_with};
use crate::speed::SpeedInputs;
use crate::store::hub_models::HubModelRow;

/// The first bytes asked for a header, then more while it runs on (a big vocabulary takes a few
/// MB), up to the last size.
const HEADER_READS: [u64; 3] = [1 << 20, 8 << 20, 48 << 20];

/// Why a reference resolved to nothing to download, in words for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error("{repo} has no GGUF model file (localbrain runs GGUF files; it has: {files})")]
    NoGguf { repo: String, files: String },
    #[error("{repo} has no {quant} file; it has {available}")]
    NoQuant { repo: String, quant: String, available: String },
    #[error("{repo} has no file {file}; its GGUF files are {available}")]
    NoFile { repo: String, file: String, available: String },
    #[error("{file} is part 1 of {parts} of a split model, but the repo lacks part {missing}")]
    PartMissing { file: String, parts: u32, missing: u32 },
    #[error("{file} on Hugging Face has no SHA-256 to check it against (it is not stored with Git LFS)")]
    NoHash { file: String },
    #[error("{file} cannot run here: {source}")]
    Header {
        file: String,
        #[source]
        source: GgufError,
    },
    #[error("{file} does not fit this machine: {reason}")]
    TooBig { file: String, reason: String },
}

/// A reference resolved: the entry to download, kept as its row, and the repo's quants as shown.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolved {
    pub row: HubModelRow,
    pub repo: RepoView,
}

/// One GGUF model of the repo: a single file, or the first part of a split one.
struct Candidate<'a> {
    file: &'a TreeFile,
    label: String,
    /// A split model's parts in order, `file` the first; empty for one file.
    parts: Vec<&'a TreeFile>,
}

impl Candidate<'_> {
    /// The bytes of the whole model.
    fn size(&self) -> u64 {
        if self.parts.is_empty() { self.file.size } else { self.parts.iter().map(|p| p.size).sum() }
    }

    /// Every file to download and check.
    fn files(&self) -> Vec<&TreeFile> {
        if self.parts.is_empty() { vec![self.file] } else { self.parts.clone() }
    }
}

/// Resolves `r` on `hub` for a machine `hw` with speeds `speed`.
pub async fn resolve(
    hub: &Hub,
    r: &HubRef,
    hw: &HardwareProfile,
    speed: &SpeedInputs,
) -> Result<Resolved, ResolveError> {
    let revision = match &r.pick {
        Pick::File { revision, .. } => revision.as_str(),
        _ => "main",
    };
    let info = hub.info(&r.repo, revision).await?;
    if info.gated && hub.settings.token.is_none() {
        return Err(HubError::Gated { repo: info.repo.clone(), page: hub.page(&info.repo) }.into());
    }
    let tree = hub.tree(&info.repo, &info.commit).await?;
    let candidates = candidates(&tree)?;
    if candidates.is_empty() {
        let files: Vec<&str> = tree.iter().take(12).map(|f| f.path.as_str()).collect();
        return Err(ResolveError::NoGguf { repo: info.repo, files: list_or_none(&files) });
    }
    let available = || list_or_none(&candidates.iter().map(|c| c.label.as_str()).collect::<Vec<_>>());
    let named: Option<&Candidate> = match &r.pick {
        Pick::Best => None,
        Pick::Quant(q) => {
            // One file before a split one of the same quant.
            let found =
                candidates.iter().filter(|c| quant::carries(&c.file.path, q)).min_by_key(|c| !c.parts.is_empty());
            Some(found.ok_or_else(|| ResolveError::NoQuant {
                repo: info.repo.clone(),
                quant: q.clone(),
                available: available(),
            })?)
        }
        Pick::File { path, .. } => {
            let found = candidates.iter().find(|c| c.file.path == *path || c.parts.iter().any(|p| p.path == *path));
            Some(found.ok_or_else(|| ResolveError::NoFile {
                repo: info.repo.clone(),
                file: path.clone(),
                available: available(),
            })?)
        }
    };
    let whole: Vec<&Candidate> = candidates.iter().collect();
    let first = named.unwrap_or(whole[0]);
    // The repo's quants share one model: its parameters and context, read once. A split
    // model's first part lists only its own tensors: its count is scaled to the whole.
    let header = header_of(hub, &info, first.file).await?;
    let params = header.facts.parameters as f64 * first.size() as f64 / first.file.size.max(1) as f64;
    let entries: Vec<ModelEntry> =
        whole.iter().map(|c| entry_for(hub, &info, c, &header, params)).collect::<Result<_, _>>()?;
    let rec = recommend_with(&entries, hw, speed);
    let chosen_id = match named {
        Some(c) => model_id(&info.repo, &c.label),
        None => match &rec.model_id {
            Some(id) => id.clone(),
            None => return Err(ResolveError::TooBig { file: info.repo.clone(), reason: rec.reason }),
        },
    };
    let at = entries.iter().position(|e| e.id == chosen_id).unwrap_or(0);
    let (entry, chosen) = (entries[at].clone(), whole[at]);
    if let Some(fit) = rec.fits.get(at).filter(|f| f.fit == Fit::TooBigForRam) {
        return Err(ResolveError::TooBig { file: chosen.file.path.clone(), reason: fit.reason.clone() });
    }
    if chosen.file.path != first.file.path {
        // The architecture check is of the file that will be downloaded.
        header_of(hub, &info, chosen.file).await?;
    }
    for file in chosen.files() {
        hub.check_resolve(&info.repo, &info.commit, file).await?;
    }
    let quants = whole
        .iter()
        .zip(&entries)
        .zip(rec.fits)
        .map(|((c, e), fit)| QuantView {
            model_id: e.id.clone(),
            quant: c.label.clone(),
            file: c.file.path.clone(),
            size_bytes: c.size(),
            picked: e.id == entry.id,
            fit,
        })
        .collect();
    let card_url = hub.page(&info.repo);
    let reason = match named {
        Some(_) => format!("{} as asked", chosen.label),
        None => format!("{}: {}", chosen.label, rec.reason),
    };
    let repo = RepoView {
        repo: info.repo.clone(),
        revision: info.commit.clone(),
        card_url: card_url.clone(),
        license: info.license.clone(),
        quants,
        reason,
    };
    let row = HubModelRow {
        reference: format!("hf.co/{}:{}", info.repo, chosen.label),
        repo: info.repo.clone(),
        revision: info.commit.clone(),
        file_path: chosen.file.path.clone(),
        card_url,
        entry,
    };
    Ok(Resolved { row, repo })
}

/// The repo's GGUF models, best quant first: single files and split ones (by their first part,
/// with every part); vision projectors and other auxiliary files left out. A split model with a
/// part missing from the tree is refused, naming it.
fn candidates(tree: &[TreeFile]) -> Result<Vec<Candidate<'_>>, ResolveError> {
    let mut out = Vec::new();
    for f in tree.iter().filter(|f| f.path.to_ascii_lowercase().ends_with(".gguf") && !quant::is_auxiliary(&f.path)) {
        let label = quant::label_of(&f.path);
        match quant::split_part(&f.path) {
            Some((1, n)) if n > 1 => {
                let prefix = &f.path[..f.path.len() - "-00001-of-00000.gguf".len()];
                let mut parts = Vec::with_capacity(n as usize);
                for k in 1..=n {
                    let name = crate::catalog::split_file_name(prefix, k as usize, n as usize);
                    match tree.iter().find(|t| t.path.eq_ignore_ascii_case(&name)) {
                        Some(t) => parts.push(t),
                        None => return Err(ResolveError::PartMissing { file: f.path.clone(), parts: n, missing: k }),
                    }
                }
                out.push(Candidate { file: f, label, parts });
            }
            Some(_) => {}
            None => out.push(Candidate { file: f, label, parts: Vec::new() }),
        }
    }
    out.sort_by(|a, b| {
        let rank = |c: &Candidate| quant::rank(quant::quant_of(&c.file.path).unwrap_or(""));
        rank(b).cmp(&rank(a)).then_with(|| a.file.path.cmp(&b.file.path))
    });
    Ok(out)
}

/// The header of `file`, from as few of its first bytes as hold it.
async fn header_of(hub: &Hub, info: &RepoInfo, file: &TreeFile) -> Result<Header, ResolveError> {
    let refuse = |source| ResolveError::Header { file: file.path.clone(), source };
    for len in HEADER_READS {
        let bytes = hub.first_bytes(&info.repo, &info.commit, &file.path, len.min(file.size)).await?;
        match gguf::read_prefix(&bytes, file.size) {
            Ok(Some(header)) => return Ok(header),
            Ok(None) if (bytes.len() as u64) < len.min(file.size) => {
                // The host sent less than asked: it will not send more.
                return Err(refuse(GgufError::Truncated { needed: len, actual: bytes.len() as u64 }));
            }
            Ok(None) => continue,
            Err(e) => return Err(refuse(e)),
        }
    }
    Err(refuse(GgufError::Malformed("the header is larger than 48 MiB")))
}

/// The catalog entry for `c`, with the facts of `header` (the repo's model, of `params`
/// parameters).
fn entry_for(
    hub: &Hub,
    info: &RepoInfo,
    c: &Candidate,
    header: &Header,
    params: f64,
) -> Result<ModelEntry, ResolveError> {
    let hash = |f: &TreeFile| f.sha256.clone().ok_or_else(|| ResolveError::NoHash { file: f.path.clone() });
    let sha256 = hash(c.file)?;
    let parts = c
        .parts
        .iter()
        .map(|p| {
            Ok(Part { url: hub.resolve_url(&info.repo, &info.commit, &p.path), sha256: hash(p)?, size_bytes: p.size })
        })
        .collect::<Result<Vec<Part>, ResolveError>>()?;
    let facts = &header.facts;
    let params_b = if params < 1.0 { quant::params_b_of(&c.file.path).unwrap_or(0.001) } else { params / 1e9 };
    let short = info.repo.rsplit('/').next().unwrap_or(&info.repo);
    Ok(ModelEntry {
        id: model_id(&info.repo, &c.label),
        name: format!(
            "{} {}",
            facts.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| short.to_string()),
            c.label
        ),
        family: facts.architecture.clone(),
        params_b: params_b.max(0.001),
        quant: c.label.clone(),
        url: hub.resolve_url(&info.repo, &info.commit, &c.file.path),
        mirrors: Vec::new(),
        sha256,
        size_bytes: c.size(),
        // The rule's second term (the file and its KV cache in 80% of RAM) decides for hub models.
        min_ram_gb: 1,
        context_length: if facts.context_length == 0 { 4096 } else { facts.context_length },
        license: info.license.clone().unwrap_or_else(|| "see the model's page".to_string()),
        page: Some(hub.page(&info.repo)),
        quality: quant::rank(quant::quant_of(&c.file.path).unwrap_or("")),
        purpose: Default::default(),
        parts,
        kv_bytes_per_token: header.layout.kv_bytes_per_token,
    })
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() { "no files".to_string() } else { items.join(", ") }
}
