//! Catalogs for tests, written from [`Catalog`] and [`ModelEntry`] themselves (serialized with
//! `toml`), so a test catalog always has the schema the product parses. Every text written here
//! still goes through [`Catalog::parse`] where the product reads it, validation included.

use crate::{SMOL, SMOL_SHA256, SMOL_SIZE};
use localbrain::catalog::{Catalog, ModelEntry};
use std::path::Path;

/// A test entry for a file with these facts: `urls[0]` is the URL, the rest are mirrors. The
/// other fields are plausible and small (a 0.1B model that fits in 1 GB).
pub fn entry(id: &str, urls: &[String], size: u64, sha256: &str) -> ModelEntry {
    let (url, mirrors) = urls.split_first().expect("at least one URL");
    ModelEntry {
        id: id.to_string(),
        name: format!("Test model {id}"),
        family: "test".into(),
        params_b: 0.1,
        quant: "Q4_K_M".into(),
        url: url.clone(),
        mirrors: mirrors.to_vec(),
        sha256: sha256.to_string(),
        size_bytes: size,
        min_ram_gb: 1,
        context_length: 4096,
        license: "apache-2.0".into(),
        page: None,
        quality: 1,
        purpose: Default::default(),
        parts: Vec::new(),
        kv_bytes_per_token: 0,
    }
}

/// The real test model ([`crate::test_model_path`]) with its real facts, served at `url`.
pub fn smol_entry(url: &str) -> ModelEntry {
    ModelEntry {
        name: "SmolLM2 135M Instruct".into(),
        family: "smollm2".into(),
        params_b: 0.135,
        quant: "Q4_1".into(),
        context_length: 8192,
        ..entry(SMOL, &[url.to_string()], SMOL_SIZE, SMOL_SHA256)
    }
}

/// The catalog file's text for `models`, in this order.
pub fn to_toml(models: impl IntoIterator<Item = ModelEntry>) -> String {
    toml::to_string(&Catalog::unchecked(models.into_iter().collect())).expect("a catalog serializes to TOML")
}

/// A one-model catalog's text: [`entry`] as a file.
pub fn catalog_toml(id: &str, urls: &[String], size: u64, sha256: &str) -> String {
    to_toml([entry(id, urls, size, sha256)])
}

/// Writes the catalog of `models` to `path` (what LOCALBRAIN_CATALOG points at).
pub fn write(path: &Path, models: impl IntoIterator<Item = ModelEntry>) {
    std::fs::write(path, to_toml(models)).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
