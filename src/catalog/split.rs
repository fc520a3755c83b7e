//! Split models (llama.cpp's `gguf-split`): a model in several files, `<name>-00001-of-0000N.gguf`
//! and on. A catalog entry lists its parts; each is fetched and verified on its own, and
//! installed under the name llama.cpp's split loader looks for beside the first part.

use super::{ModelEntry, check_sha256, check_url};
use serde::{Deserialize, Serialize};

/// One file of a split model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    pub url: String,
    /// SHA-256 of this part, 64 lowercase hex characters.
    pub sha256: String,
    pub size_bytes: u64,
}

/// Most parts a split model may have: llama.cpp names them with five digits.
pub const MAX_PARTS: usize = 99_999;

/// `<id>-0000k-of-0000n.gguf`: llama.cpp's `llama_split_path` format.
pub fn split_file_name(id: &str, k: usize, n: usize) -> String {
    format!("{id}-{k:05}-of-{n:05}.gguf")
}

/// The model id and part (k of n) a split model's installed file name holds, when it is one.
pub fn split_of_file_name(file_name: &str) -> Option<(&str, usize, usize)> {
    let stem = file_name.strip_suffix(".gguf")?;
    let (head, n) = stem.rsplit_once("-of-")?;
    let (id, k) = head.rsplit_once('-')?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(k) || !digits(n) {
        return None;
    }
    let (k, n): (usize, usize) = (k.parse().ok()?, n.parse().ok()?);
    (k >= 1 && k <= n && n >= 2).then_some((id, k, n))
}

/// A split model's parts: two or more, each a real address and digest, the first the entry's
/// own, their sizes adding up to the entry's.
pub(super) fn validate_parts(m: &ModelEntry) -> Result<(), (&'static str, String)> {
    if m.parts.is_empty() {
        return Ok(());
    }
    if m.parts.len() < 2 || m.parts.len() > MAX_PARTS {
        return Err(("parts", format!("a split model has 2 to {MAX_PARTS} parts, not {}", m.parts.len())));
    }
    for (i, p) in m.parts.iter().enumerate() {
        let at = |problem: String| ("parts", format!("part {}: {problem}", i + 1));
        check_url(&p.url).map_err(at)?;
        check_sha256(&p.sha256).map_err(|e| at(e.into()))?;
        if p.size_bytes == 0 {
            return Err(at("size_bytes must be greater than 0".into()));
        }
    }
    if m.parts[0].url != m.url || m.parts[0].sha256 != m.sha256 {
        return Err(("parts", "the first part must be the entry's own url and sha256".into()));
    }
    let sum: u64 = m.parts.iter().map(|p| p.size_bytes).sum();
    if sum != m.size_bytes {
        return Err(("size_bytes", format!("must be the parts' sum, {sum}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: [&str; 3] = [
        "6eb923e7d26e9cea28811e1a8e852009b21242fb157b26149d3b188f3a8c8653",
        "f2be3e1a239c12c9f3f01a962b11fb2807f8032fdb63b0a5502ea42ddef55e44",
        "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb",
    ];

    fn split_entry() -> ModelEntry {
        let parts: Vec<Part> = (0..3)
            .map(|i| Part {
                url: format!("https://example.com/m-{i}.gguf"),
                sha256: SHA[i].into(),
                size_bytes: 100 + i as u64,
            })
            .collect();
        ModelEntry {
            id: "m".into(),
            name: "M".into(),
            family: "llama".into(),
            params_b: 1.0,
            quant: "Q4_K_M".into(),
            url: parts[0].url.clone(),
            mirrors: vec![],
            sha256: parts[0].sha256.clone(),
            size_bytes: 303,
            min_ram_gb: 1,
            context_length: 4096,
            license: "mit".into(),
            page: None,
            quality: 1,
            purpose: Default::default(),
            parts,
            kv_bytes_per_token: 0,
        }
    }

    #[test]
    fn names_are_llama_cpps_and_read_back() {
        assert_eq!(split_file_name("m", 2, 3), "m-00002-of-00003.gguf");
        assert_eq!(split_of_file_name("hf--a--b--q4_k_m-00002-of-00003.gguf"), Some(("hf--a--b--q4_k_m", 2, 3)));
        for not in
            ["m.gguf", "m-00004-of-00003.gguf", "m-0001-of-00003.gguf", "m-00001-of-00001.gguf", "m-00001-of-00002.bin"]
        {
            assert_eq!(split_of_file_name(not), None, "{not}");
        }
        let m = split_entry();
        assert_eq!(m.file_name(), "m-00001-of-00003.gguf");
        assert_eq!(m.file_names().len(), 3);
        let files = m.files();
        assert_eq!(files.iter().map(|f| f.size_bytes).collect::<Vec<_>>(), [100, 101, 102]);
        assert!(files.iter().all(|f| f.parts.is_empty() && f.id == "m"));
        assert_eq!(files[2].sha256, SHA[2]);
    }

    #[test]
    fn parts_that_do_not_add_up_are_refused() {
        assert_eq!(validate_parts(&split_entry()), Ok(()));
        let mut m = split_entry();
        m.size_bytes = 300;
        assert!(validate_parts(&m).unwrap_err().1.contains("the parts' sum, 303"));
        let mut m = split_entry();
        m.parts.truncate(1);
        assert!(validate_parts(&m).unwrap_err().1.contains("2 to 99999 parts"));
        let mut m = split_entry();
        m.parts[1].sha256 = "0".repeat(64);
        assert!(validate_parts(&m).unwrap_err().1.starts_with("part 2: "));
        let mut m = split_entry();
        m.sha256 = SHA[1].into();
        assert!(validate_parts(&m).unwrap_err().1.contains("the first part must be"));
    }
}
