//! What a GGUF file's name says: its quant (`Q4_K_M`), whether it is one part of a split model
//! (`-00001-of-00003.gguf`), and what is not a model at all (a vision projector, an imatrix).
//!
//! The rule that matches a named quant to a file is llama.cpp's (`common/hf-cache.cpp`): the tag,
//! case-insensitive, followed by `.` or `-` in the file name, so `Q4_K_M` finds
//! `Model-Q4_K_M.gguf` and `IQ3_S-imat` finds `Model-IQ3_S-imat.gguf`.

/// Quants llama.cpp writes, best first: the order a tie between two that fit is broken in, and
/// the order the card lists them in. Bits per weight are approximate (llama.cpp's quantize table).
#[rustfmt::skip]
const QUANTS: &[(&str, f64)] = &[
    ("F32", 32.0), ("BF16", 16.0), ("F16", 16.0), ("Q8_0", 8.5), ("Q6_K", 6.56),
    ("Q5_K_M", 5.69), ("Q5_K_S", 5.54), ("Q5_1", 6.0), ("Q5_0", 5.5),
    ("Q4_K_M", 4.89), ("Q4_K_S", 4.58), ("IQ4_NL", 4.5), ("IQ4_XS", 4.25), ("Q4_1", 5.0), ("Q4_0", 4.5),
    ("MXFP4", 4.25), ("Q3_K_L", 4.27), ("Q3_K_M", 3.91), ("IQ3_M", 3.66), ("IQ3_S", 3.44), ("Q3_K_S", 3.5),
    ("IQ3_XS", 3.3), ("IQ3_XXS", 3.06), ("Q2_K_L", 3.0), ("Q2_K", 2.96), ("Q2_K_S", 2.7), ("IQ2_M", 2.7),
    ("IQ2_S", 2.5), ("IQ2_XS", 2.31), ("IQ2_XXS", 2.06), ("IQ1_M", 1.75), ("IQ1_S", 1.56),
    ("TQ2_0", 2.06), ("TQ1_0", 1.69),
];

/// The quant a file name carries (`"Qwen2.5-7B-Instruct-Q4_K_M.gguf"` -> `Q4_K_M`), upper case;
/// `None` when it names none this table knows. The last match wins (`Q8_0-Q4_K_M` is Q4_K_M,
/// as quantizers append).
pub fn quant_of(file_name: &str) -> Option<&'static str> {
    find_quant(file_name).map(|(_, q)| q)
}

/// What tells this file from the repo's others: the name from its quant on, less a split part's
/// suffix (`Model-IQ3_S-imat.gguf` -> `IQ3_S-imat`); the stem when it names no quant.
pub fn label_of(file_name: &str) -> String {
    let stem = file_stem(file_name);
    let stem = match split_part(file_name) {
        Some(_) => stem.rsplitn(4, '-').nth(3).unwrap_or(stem),
        None => stem,
    };
    match find_quant(file_name) {
        Some((start, _)) if start < stem.len() => stem[start..].to_string(),
        _ => stem.to_string(),
    }
}

/// Where in the stem the quant starts, and which it is.
fn find_quant(file_name: &str) -> Option<(usize, &'static str)> {
    let stem = file_stem(file_name).to_ascii_uppercase();
    let mut found: Option<(usize, &'static str)> = None;
    for (q, _) in QUANTS {
        let mut from = 0;
        while let Some(at) = stem[from..].find(q) {
            let start = from + at;
            let end = start + q.len();
            let before = start == 0 || matches!(stem.as_bytes()[start - 1], b'-' | b'.' | b'_');
            let after = end == stem.len() || matches!(stem.as_bytes()[end], b'-' | b'.');
            // The last place wins, and the longest name at one place (Q2_K_L holds Q2_K, but
            // followed by '_', which `after` refuses anyway).
            if before && after && found.is_none_or(|(s, f)| start > s || (start == s && q.len() > f.len())) {
                found = Some((start, q));
            }
            from = start + 1;
        }
    }
    found
}

/// Whether the file carries the tag `quant` as llama.cpp matches it: the tag, case-insensitive,
/// then `.` or `-`.
pub fn carries(file_name: &str, quant: &str) -> bool {
    let name = file_name.rsplit('/').next().unwrap_or(file_name).to_ascii_uppercase();
    let tag = quant.to_ascii_uppercase();
    name.match_indices(&tag).any(|(at, _)| {
        let before = at == 0 || matches!(name.as_bytes()[at - 1], b'-' | b'.' | b'_');
        matches!(name.as_bytes().get(at + tag.len()), Some(b'.' | b'-')) && before
    })
}

/// Approximate bits per weight of a quant; `None` for one this table does not know.
pub fn bits_per_weight(quant: &str) -> Option<f64> {
    QUANTS.iter().find(|(q, _)| q.eq_ignore_ascii_case(quant)).map(|(_, b)| *b)
}

/// A rank for a quant, higher is better (more bits keep more of the model); unknown ones rank lowest.
pub fn rank(quant: &str) -> i64 {
    QUANTS.iter().position(|(q, _)| q.eq_ignore_ascii_case(quant)).map_or(0, |i| (QUANTS.len() - i) as i64)
}

/// Part `n` of `of` of a split model (`Model-Q4_K_M-00001-of-00003.gguf` -> `(1, 3)`).
pub fn split_part(file_name: &str) -> Option<(u32, u32)> {
    let stem = file_stem(file_name);
    let (head, of) = stem.rsplit_once("-of-")?;
    let (_, n) = head.rsplit_once('-')?;
    let parse =
        |s: &str| (s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u32>().ok()).flatten();
    let (n, of) = (parse(n)?, parse(of)?);
    (n >= 1 && n <= of).then_some((n, of))
}

/// Whether a `.gguf` file is not itself a model to chat with: a vision projector (`mmproj`), an
/// importance matrix, a draft or MTP head. llama.cpp's pick skips the same.
pub fn is_auxiliary(file_name: &str) -> bool {
    let name = file_name.rsplit('/').next().unwrap_or(file_name).to_ascii_lowercase();
    ["mmproj", "imatrix", "-mtp", ".mtp"].iter().any(|w| name.contains(w))
}

/// Billions of parameters a file name states (`-135M-`, `7B`, `0.5B`, `8x7B` counts 56); `None`
/// when it states none.
pub fn params_b_of(file_name: &str) -> Option<f64> {
    let stem = file_stem(file_name).to_ascii_uppercase();
    stem.split(['-', '_', ' '])
        .filter_map(|word| {
            let (experts, word) = match word.split_once('X') {
                Some((e, w)) if e.parse::<u32>().is_ok() => (e.parse::<f64>().ok()?, w),
                _ => (1.0, word),
            };
            let (number, scale) = if let Some(n) = word.strip_suffix('B') {
                (n, 1.0)
            } else if let Some(n) = word.strip_suffix('M') {
                (n, 0.001)
            } else {
                return None;
            };
            let n: f64 = number.parse().ok()?;
            (n > 0.0 && n.is_finite()).then_some(experts * n * scale)
        })
        .next_back()
}

fn file_stem(file_name: &str) -> &str {
    let name = file_name.rsplit('/').next().unwrap_or(file_name);
    name.strip_suffix(".gguf").or_else(|| name.strip_suffix(".GGUF")).unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quant_is_read_from_names_as_quantizers_write_them() {
        assert_eq!(quant_of("Qwen2.5-7B-Instruct-Q4_K_M.gguf"), Some("Q4_K_M"));
        assert_eq!(quant_of("SmolLM2-135M-Instruct.Q4_1.gguf"), Some("Q4_1"));
        assert_eq!(quant_of("model-iq4_xs.gguf"), Some("IQ4_XS"));
        assert_eq!(quant_of("Llama-3-8B-Q2_K_L.gguf"), Some("Q2_K_L"));
        assert_eq!(quant_of("x-IQ3_S-imat.gguf"), Some("IQ3_S"));
        assert_eq!(quant_of("gemma-f16.gguf"), Some("F16"));
        assert_eq!(quant_of("Q4_K_M/Model-Q4_K_M-00001-of-00002.gguf"), Some("Q4_K_M"));
        assert_eq!(quant_of("model.gguf"), None);
        assert_eq!(label_of("Model-IQ3_S-imat.gguf"), "IQ3_S-imat");
        assert_eq!(label_of("Model-Q4_K_M-00001-of-00002.gguf"), "Q4_K_M");
        assert_eq!(label_of("sub/model.gguf"), "model");
    }

    #[test]
    fn a_named_quant_matches_as_llama_cpp_matches_it() {
        assert!(carries("Model-Q4_K_M.gguf", "q4_k_m"));
        assert!(carries("Model-IQ3_S-imat.gguf", "IQ3_S-imat"));
        assert!(!carries("Model-Q4_K_M.gguf", "Q4_K"));
        assert!(!carries("Model-IQ4_XS.gguf", "Q4_XS"));
    }

    #[test]
    fn split_parts_auxiliary_files_and_sizes_are_told_apart() {
        assert_eq!(split_part("Model-Q4_K_M-00001-of-00003.gguf"), Some((1, 3)));
        assert_eq!(split_part("Model-Q4_K_M-00004-of-00003.gguf"), None);
        assert_eq!(split_part("Model-Q4_K_M.gguf"), None);
        assert!(is_auxiliary("mmproj-model-f16.gguf") && !is_auxiliary("Model-Q4_K_M.gguf"));
        assert_eq!(params_b_of("SmolLM2-135M-Instruct.Q4_1.gguf"), Some(0.135));
        assert_eq!(params_b_of("Qwen2.5-0.5B-Instruct-Q4_K_M.gguf"), Some(0.5));
        assert_eq!(params_b_of("Mixtral-8x7B-v0.1.Q4_0.gguf"), Some(56.0));
        assert_eq!(params_b_of("model.gguf"), None);
        assert!(rank("Q8_0") > rank("Q4_K_M") && rank("Q4_K_M") > rank("Q2_K") && rank("weird") == 0);
    }
}
