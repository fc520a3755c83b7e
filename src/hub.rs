//! Models from Hugging Face: any GGUF on the hub, named as people name them, resolved through the
//! hub's API to one commit, and verified by the hub's own LFS SHA-256.
//!
//! A resolved model becomes a catalog entry ([`crate::catalog::ModelEntry`]) whose URL is the
//! hub's `resolve` address at the pinned commit and whose digest is the file's LFS SHA-256, so the
//! download engine fetches it (resume, segments, verify, install, kill -9 safety) exactly as it
//! fetches a shipped model. The `resolve` address redirects to the CDN, whose signed URLs expire:
//! because the entry keeps the hub's address, every resume (and every restart) asks the hub again.
//!
//! - [`reference`]: the forms a person writes, and the local id each becomes (WASM-safe).
//! - [`quant`]: what a file name says (quant, split part, auxiliary files) (WASM-safe).
//! - `settings` (`crate::hub_settings`, below the engine): `HF_ENDPOINT`, `HF_TOKEN` / `$HF_HOME/token`.
//! - `client`: the hub's API (repo info, tree, `resolve` headers, a header's first bytes, search).
//! - `resolve`: a reference to a pinned, checked entry, and the quant pick.
//! - `shelf`: where resolved models are kept (the catalog's hub shelf, `hub_models`), and the one
//!   way a person's text becomes a model id.

pub mod quant;
pub mod reference;

#[cfg(feature = "ssr")]
pub mod client;
#[cfg(feature = "ssr")]
pub mod resolve;
/// The hub's settings live below the engine, which sends the token (`crate::hub_settings`).
#[cfg(feature = "ssr")]
pub use crate::hub_settings as settings;
#[cfg(feature = "ssr")]
pub mod shelf;

use serde::{Deserialize, Serialize};

/// One quant of a repo, as the card and `localbrain` list them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantView {
    /// The local id it installs as.
    pub model_id: String,
    /// `Q4_K_M`, or the file's name when it names no quant.
    pub quant: String,
    /// The file in the repo.
    pub file: String,
    pub size_bytes: u64,
    /// The verdict of the memory rule and the speed prediction, as for a catalog model.
    pub fit: crate::recommend::ModelFit,
    /// The quant the pick chose.
    pub picked: bool,
}

/// A repo's GGUF quants, resolved at one commit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepoView {
    /// `ORG/REPO`, as the hub spells it.
    pub repo: String,
    /// The commit everything here is pinned to.
    pub revision: String,
    /// The repo's page.
    pub card_url: String,
    pub license: Option<String>,
    /// Every quant, best first.
    pub quants: Vec<QuantView>,
    /// Why the pick chose what it chose, in one line.
    pub reason: String,
}

/// One search result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoundView {
    /// `ORG/REPO`.
    pub repo: String,
    pub downloads: u64,
    pub likes: u64,
    /// Unix milliseconds of the last change, when the hub said.
    pub updated_at: Option<i64>,
    /// Whether its files need an accepted license and a token.
    pub gated: bool,
}
