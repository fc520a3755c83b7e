//! Which catalog model this machine should run: a pure function of the catalog and the
//! [`HardwareProfile`], shared by the Settings card and `localbrain catalog` so both always
//! agree. Sizes are shown through [`crate::units`].

use crate::catalog::ModelEntry;
use crate::hardware::HardwareProfile;
use crate::units::{GIB, disk_margin, format_bytes, format_ram};
use serde::{Deserialize, Serialize};

/// The context (tokens) the KV cache is sized for: local runtimes start with about 4K unless
/// told otherwise, and the cache at a model's full 128K would dwarf its weights.
pub const DEFAULT_CONTEXT_TOKENS: u64 = 4096;

/// KV-cache bytes per token per billion parameters, for an f16 cache. Llama 3.1 8B needs
/// exactly 128 KiB per token (32 layers x 8 KV heads x 128 dims x K and V x 2 bytes), i.e.
/// 16 KiB per billion; other grouped-query models of 0.4B to 15B are within about 2x of that line.
pub const KV_BYTES_PER_TOKEN_PER_B_PARAMS: f64 = 16_384.0;

/// Share of installed RAM the weights plus KV cache may take; the rest is for the OS, the
/// runtime's scratch buffers and everything else the machine runs.
pub const RAM_BUDGET: f64 = 0.8;

/// The installed RAM assumed when neither the server nor the browser could say: the most
/// common laptop size. Only the pick uses it; verdicts do not rule anything out on a guess.
pub const ASSUMED_RAM_BYTES: u64 = 8 * GIB;

/// Whether a model fits, and if not, the first reason why (RAM before disk: disk can be freed,
/// RAM cannot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Fits the RAM (or the RAM is unknown) and the free disk (or the disk is unknown).
    Fits,
    /// Needs more RAM than the machine has.
    TooBigForRam,
    /// Fits the RAM but not the free disk (file plus [`disk_margin`]).
    NotEnoughDisk,
}

/// Where the RAM figure behind the verdicts came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RamSource {
    /// The server's own reading: the model runs there, so this decides when known.
    Server,
    /// Only the browser's `navigator.deviceMemory` (rounded down and capped, so a lower bound).
    Browser,
    /// Neither: RAM rules nothing out and the pick assumes [`ASSUMED_RAM_BYTES`].
    Unknown,
}

/// One model's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelFit {
    /// The catalog id.
    pub model_id: String,
    /// The verdict.
    pub fit: Fit,
    /// The verdict in plain words, e.g. "needs 8 GB RAM, this machine has 4 GB".
    pub reason: String,
}

/// The pick and every model's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The recommended model; `None` when nothing fits.
    pub model_id: Option<String>,
    /// One line, e.g. "fits 16 GB RAM, 4.7 GB on disk", or why nothing fits and which model is
    /// the smallest.
    pub reason: String,
    /// Where the RAM figure came from.
    pub ram_source: RamSource,
    /// One verdict per catalog model, in catalog order.
    pub fits: Vec<ModelFit>,
}

/// The f16 KV cache of `m` at [`DEFAULT_CONTEXT_TOKENS`] (or its own context, if shorter):
/// `params_b x` [`KV_BYTES_PER_TOKEN_PER_B_PARAMS`] `x tokens`.
pub fn kv_cache_bytes(m: &ModelEntry) -> u64 {
    let tokens = m.context_length.min(DEFAULT_CONTEXT_TOKENS) as f64;
    (m.params_b.max(0.0) * KV_BYTES_PER_TOKEN_PER_B_PARAMS * tokens).ceil() as u64
}

/// The installed RAM `m` needs, in bytes. The fit rule:
///
/// `needed = max(min_ram_gb GiB, (size_bytes + kv_cache_bytes) / 0.8)`
///
/// The catalog's `min_ram_gb` is the floor; the second term keeps the weights plus the KV cache
/// at the default context under [`RAM_BUDGET`] (80%) of RAM, so a catalog entry with a too-low
/// `min_ram_gb` still gets room for the OS and the context. It only grows with the file size,
/// the parameters and `min_ram_gb`. Compare a machine against it with [`ram_fits`].
pub fn ram_needed_bytes(m: &ModelEntry) -> u64 {
    let floor = u64::from(m.min_ram_gb).saturating_mul(GIB);
    let working = m.size_bytes.saturating_add(kv_cache_bytes(m));
    let budgeted = (working as f64 / RAM_BUDGET).ceil() as u64;
    floor.max(budgeted)
}

/// Whether `ram_bytes` of RAM, as the OS reports it, covers `needed` installed bytes. An OS
/// reports 2-10% less than is installed (firmware, kernel and integrated-GPU reservations: an
/// "8 GB" laptop shows about 7.6 GB), so a reading within 10% below the need still fits.
pub fn ram_fits(needed: u64, ram_bytes: u64) -> bool {
    // Exact integer form of `ram >= 0.9 * needed`.
    u128::from(ram_bytes) * 10 >= u128::from(needed) * 9
}

/// Free disk `m` needs to download: its size plus [`disk_margin`].
pub fn disk_needed_bytes(m: &ModelEntry) -> u64 {
    m.size_bytes.saturating_add(disk_margin(m.size_bytes))
}

/// The highest-quality model that fits `hw`, with a one-line reason, and a verdict for every
/// model (catalog order).
///
/// - RAM: the server's total RAM decides when known ([`RamSource::Server`]); else the browser's
///   `deviceMemory` ([`RamSource::Browser`]); else RAM rules nothing out
///   ([`RamSource::Unknown`]) and the pick is the best model for a typical
///   [`ASSUMED_RAM_BYTES`] machine, so an unknown machine is never handed a 14B model.
/// - Disk: unknown free disk rules nothing out (the engine checks again before starting).
/// - Best: highest `quality`, then higher `params_b`, then the alphabetically first id.
/// - Nothing fits: `model_id` is `None` and the reason names the model needing the least RAM.
pub fn recommend(models: &[ModelEntry], hw: &HardwareProfile) -> Recommendation {
    let (ram, ram_source) = ram_reading(hw);
    let fits: Vec<ModelFit> = models.iter().map(|m| judge(m, ram, ram_source, hw.free_disk_bytes)).collect();
    let fitting: Vec<&ModelEntry> =
        models.iter().zip(&fits).filter(|(_, f)| f.fit == Fit::Fits).map(|(m, _)| m).collect();

    let pick = match ram_source {
        RamSource::Unknown => {
            let typical: Vec<&ModelEntry> =
                fitting.iter().copied().filter(|m| ram_fits(ram_needed_bytes(m), ASSUMED_RAM_BYTES)).collect();
            best(&typical).or_else(|| smallest(&fitting))
        }
        RamSource::Server | RamSource::Browser => best(&fitting),
    };

    let reason = match (pick, ram) {
        (Some(m), Some(ram)) => {
            let estimate = if ram_source == RamSource::Browser { " (browser estimate)" } else { "" };
            format!("fits {} RAM{estimate}, {} on disk", format_ram(ram), format_bytes(m.size_bytes))
        }
        (Some(m), None) => format!(
            "RAM unknown, so picked for a typical {} machine; {} on disk",
            format_ram(ASSUMED_RAM_BYTES),
            format_bytes(m.size_bytes)
        ),
        (None, _) => nothing_fits(models, ram, hw.free_disk_bytes),
    };

    Recommendation { model_id: pick.map(|m| m.id.clone()), reason, ram_source, fits }
}

/// The RAM that decides, and where it came from.
fn ram_reading(hw: &HardwareProfile) -> (Option<u64>, RamSource) {
    if let Some(total) = hw.total_ram_bytes.filter(|t| *t > 0) {
        return (Some(total), RamSource::Server);
    }
    match hw.device_memory_gb.filter(|g| g.is_finite() && *g > 0.0) {
        Some(gb) => (Some((gb * GIB as f64) as u64), RamSource::Browser),
        None => (None, RamSource::Unknown),
    }
}

/// One model's verdict and its reason in plain words.
fn judge(m: &ModelEntry, ram: Option<u64>, source: RamSource, free_disk: Option<u64>) -> ModelFit {
    let ram_need = ram_needed_bytes(m);
    let disk_need = disk_needed_bytes(m);
    let ram_ok = ram.is_none_or(|r| ram_fits(ram_need, r));
    let disk_ok = free_disk.is_none_or(|f| f >= disk_need);
    let have_ram = |r: u64| match source {
        RamSource::Browser => format!("the browser reports {}", format_ram(r)),
        _ => format!("this machine has {}", format_ram(r)),
    };
    let disk_short = |f: u64| format!("needs {} free disk, {} free", format_bytes(disk_need), format_bytes(f));

    let (fit, reason) = match (ram_ok, disk_ok, ram, free_disk) {
        (false, _, Some(r), free) => {
            let mut reason = format!("needs {} RAM, {}", format_ram(ram_need), have_ram(r));
            if let (false, Some(f)) = (disk_ok, free) {
                reason = format!("{reason}; also {}", disk_short(f));
            }
            (Fit::TooBigForRam, reason)
        }
        (true, false, _, Some(f)) => (Fit::NotEnoughDisk, disk_short(f)),
        _ => {
            let ram_note = match (ram, source) {
                (Some(r), RamSource::Browser) => format!("browser reports {}", format_ram(r)),
                (Some(r), _) => format!("{} here", format_ram(r)),
                (None, _) => "RAM unknown".to_string(),
            };
            let disk_note = match free_disk {
                Some(f) => format!("{} free", format_bytes(f)),
                None => "free space unknown".to_string(),
            };
            (
                Fit::Fits,
                format!(
                    "needs {} RAM ({ram_note}) and {} free disk ({disk_note})",
                    format_ram(ram_need),
                    format_bytes(disk_need)
                ),
            )
        }
    };
    ModelFit { model_id: m.id.clone(), fit, reason }
}

/// Highest quality, then more parameters, then the alphabetically first id (deterministic).
fn best<'a>(candidates: &[&'a ModelEntry]) -> Option<&'a ModelEntry> {
    candidates
        .iter()
        .copied()
        .max_by(|a, b| a.quality.cmp(&b.quality).then(a.params_b.total_cmp(&b.params_b)).then_with(|| b.id.cmp(&a.id)))
}

/// The model needing the least RAM, then the smallest file, then the first id.
fn smallest<'a>(candidates: &[&'a ModelEntry]) -> Option<&'a ModelEntry> {
    candidates.iter().copied().min_by_key(|m| (ram_needed_bytes(m), m.size_bytes, m.id.as_str()))
}

/// "nothing in the catalog fits …; the smallest is …": names what was known and the model
/// needing the least RAM, so the user knows what it would take.
fn nothing_fits(models: &[ModelEntry], ram: Option<u64>, free_disk: Option<u64>) -> String {
    let all: Vec<&ModelEntry> = models.iter().collect();
    let Some(small) = smallest(&all) else {
        return "the catalog has no models".to_string();
    };
    let machine =
        [ram.map(|r| format!("{} RAM", format_ram(r))), free_disk.map(|f| format!("{} free disk", format_bytes(f)))]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" and ");
    format!(
        "nothing in the catalog fits {machine}; the smallest is {} ({}), which needs {} RAM and {} free disk",
        small.name,
        small.id,
        format_ram(ram_needed_bytes(small)),
        format_bytes(disk_needed_bytes(small))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    const TB: u64 = 1_000_000_000_000;

    fn server(ram_gib: f64, free_disk: Option<u64>) -> HardwareProfile {
        HardwareProfile {
            total_ram_bytes: Some((ram_gib * GIB as f64) as u64),
            free_disk_bytes: free_disk,
            ..Default::default()
        }
    }

    fn model(id: &str, quality: i64, params_b: f64, size_bytes: u64, min_ram_gb: u32) -> ModelEntry {
        ModelEntry {
            id: id.into(),
            name: format!("Model {id}"),
            family: "test".into(),
            params_b,
            quant: "Q4_K_M".into(),
            url: format!("https://example.com/{id}.gguf"),
            mirrors: vec![],
            sha256: "6eb923e7d26e9cea28811e1a8e852009b21242fb157b26149d3b188f3a8c8653".into(),
            size_bytes,
            min_ram_gb,
            context_length: 32768,
            license: "mit".into(),
            quality,
        }
    }

    fn fit_of<'a>(r: &'a Recommendation, id: &str) -> &'a ModelFit {
        r.fits.iter().find(|f| f.model_id == id).unwrap()
    }

    /// The shipped catalog on machines of each common size, with plenty of disk. The RAM is
    /// given both as installed (N GiB) and as an OS reports it (7% less); the pick is the same.
    #[test]
    fn picks_for_common_machine_sizes() {
        let catalog = Catalog::embedded();
        let table: &[(u32, &str)] = &[
            (1, "qwen2.5-0.5b-instruct-q4_k_m"),
            (2, "llama-3.2-1b-instruct-q4_k_m"),
            (4, "llama-3.2-3b-instruct-q4_k_m"),
            (6, "gemma-3-4b-it-q4_k_m"),
            (8, "llama-3.1-8b-instruct-q4_k_m"),
            (12, "gemma-2-9b-it-q4_k_m"),
            (16, "qwen3-14b-q4_k_m"),
            (32, "qwen3-14b-q4_k_m"),
            (64, "qwen3-14b-q4_k_m"),
        ];
        for &(gb, want) in table {
            for reported in [f64::from(gb), f64::from(gb) * 0.93] {
                let r = recommend(&catalog.models, &server(reported, Some(TB)));
                assert_eq!(r.model_id.as_deref(), Some(want), "{reported} GiB: {}", r.reason);
                assert_eq!(r.ram_source, RamSource::Server);
                assert_eq!(r.fits.len(), catalog.models.len());
                assert!(r.reason.starts_with("fits "), "{}", r.reason);
                assert!(r.reason.ends_with(" on disk"), "{}", r.reason);
                // Every verdict agrees with the rule, and no fitting model outranks the pick.
                let picked = catalog.get(want).unwrap();
                for (m, f) in catalog.models.iter().zip(&r.fits) {
                    assert_eq!(f.model_id, m.id);
                    let ram = (reported * GIB as f64) as u64;
                    let expected = if ram_fits(ram_needed_bytes(m), ram) { Fit::Fits } else { Fit::TooBigForRam };
                    assert_eq!(f.fit, expected, "{gb} GB, {}: {}", m.id, f.reason);
                    if f.fit == Fit::Fits {
                        assert!(m.quality <= picked.quality, "{} outranks {want}", m.id);
                    }
                }
            }
        }
        let r = recommend(&catalog.models, &server(16.0, Some(TB)));
        assert_eq!(r.reason, "fits 16 GB RAM, 9.0 GB on disk");
        assert_eq!(
            fit_of(&r, "qwen2.5-7b-instruct-q4_k_m").reason,
            "needs 8 GB RAM (16 GB here) and 5.0 GB free disk (1000.0 GB free)"
        );
        let r = recommend(&catalog.models, &server(4.0, Some(TB)));
        assert_eq!(fit_of(&r, "qwen2.5-7b-instruct-q4_k_m").reason, "needs 8 GB RAM, this machine has 4 GB");
    }

    #[test]
    fn too_little_disk_for_the_best_ram_fit_falls_back() {
        let catalog = Catalog::embedded();
        // 16 GB RAM would pick qwen3-14b (9.0 GB + margin), but only 8 GB of disk is free.
        let r = recommend(&catalog.models, &server(16.0, Some(8_000_000_000)));
        assert_eq!(r.model_id.as_deref(), Some("gemma-2-9b-it-q4_k_m"), "{}", r.reason);
        assert_eq!(r.reason, "fits 16 GB RAM, 5.8 GB on disk");
        let big = fit_of(&r, "qwen3-14b-q4_k_m");
        assert_eq!(big.fit, Fit::NotEnoughDisk);
        assert_eq!(big.reason, "needs 9.5 GB free disk, 8.0 GB free");
        assert_eq!(fit_of(&r, "qwen2.5-14b-instruct-q4_k_m").fit, Fit::NotEnoughDisk);

        // RAM is judged first; a model short of both says both.
        let r = recommend(&catalog.models, &server(4.0, Some(1_000_000_000)));
        let f = fit_of(&r, "qwen3-14b-q4_k_m");
        assert_eq!(f.fit, Fit::TooBigForRam);
        assert_eq!(f.reason, "needs 16 GB RAM, this machine has 4 GB; also needs 9.5 GB free disk, 1.0 GB free");
        assert_eq!(r.model_id.as_deref(), Some("qwen2.5-0.5b-instruct-q4_k_m"), "{}", r.reason);
    }

    #[test]
    fn nothing_fits_names_the_smallest_model() {
        let catalog = Catalog::embedded();
        let cases: &[(HardwareProfile, &str)] = &[
            (
                server(0.5, Some(TB)),
                "nothing in the catalog fits 512 MB RAM and 1000.0 GB free disk; the smallest is \
                 SmolLM2 360M Instruct (smollm2-360m-instruct-q8_0), which needs 1 GB RAM and 655 MB free disk",
            ),
            (
                server(64.0, Some(100_000_000)),
                "nothing in the catalog fits 64 GB RAM and 100 MB free disk; the smallest is \
                 SmolLM2 360M Instruct (smollm2-360m-instruct-q8_0), which needs 1 GB RAM and 655 MB free disk",
            ),
            (
                HardwareProfile { free_disk_bytes: Some(1), ..Default::default() },
                "nothing in the catalog fits 1 B free disk; the smallest is \
                 SmolLM2 360M Instruct (smollm2-360m-instruct-q8_0), which needs 1 GB RAM and 655 MB free disk",
            ),
        ];
        for (hw, want) in cases {
            let r = recommend(&catalog.models, hw);
            assert_eq!(r.model_id, None);
            assert_eq!(r.reason, *want);
            assert!(r.fits.iter().all(|f| f.fit != Fit::Fits));
        }
        let r = recommend(&[], &server(16.0, None));
        assert_eq!((r.model_id, r.reason.as_str()), (None, "the catalog has no models"));
    }

    #[test]
    fn browser_device_memory_is_the_fallback() {
        let catalog = Catalog::embedded();
        // (server GiB, deviceMemory GB, RAM source, pick)
        type Case = (Option<f64>, Option<f64>, RamSource, Option<&'static str>);
        let cases: &[Case] = &[
            (None, Some(8.0), RamSource::Browser, Some("llama-3.1-8b-instruct-q4_k_m")),
            (None, Some(16.0), RamSource::Browser, Some("qwen3-14b-q4_k_m")),
            (None, Some(4.0), RamSource::Browser, Some("llama-3.2-3b-instruct-q4_k_m")),
            (None, Some(0.5), RamSource::Browser, None),
            // The server's reading wins when both are known: the model runs there.
            (Some(4.0), Some(16.0), RamSource::Server, Some("llama-3.2-3b-instruct-q4_k_m")),
            (Some(64.0), Some(8.0), RamSource::Server, Some("qwen3-14b-q4_k_m")),
            // Nonsense browser values count as unknown.
            (None, Some(f64::NAN), RamSource::Unknown, Some("llama-3.1-8b-instruct-q4_k_m")),
            (None, Some(0.0), RamSource::Unknown, Some("llama-3.1-8b-instruct-q4_k_m")),
        ];
        for &(server_gib, device, source, want) in cases {
            let hw = HardwareProfile {
                total_ram_bytes: server_gib.map(|g| (g * GIB as f64) as u64),
                device_memory_gb: device,
                free_disk_bytes: Some(TB),
                ..Default::default()
            };
            let r = recommend(&catalog.models, &hw);
            assert_eq!(r.ram_source, source, "{server_gib:?}/{device:?}");
            assert_eq!(r.model_id.as_deref(), want, "{server_gib:?}/{device:?}: {}", r.reason);
        }
        let hw = HardwareProfile { device_memory_gb: Some(8.0), ..Default::default() };
        let r = recommend(&catalog.models, &hw);
        assert_eq!(r.reason, "fits 8 GB RAM (browser estimate), 4.9 GB on disk");
        assert_eq!(fit_of(&r, "qwen3-14b-q4_k_m").reason, "needs 16 GB RAM, the browser reports 8 GB");
    }

    #[test]
    fn unknown_ram_rules_nothing_out_but_picks_for_a_typical_machine() {
        let catalog = Catalog::embedded();
        let r = recommend(&catalog.models, &HardwareProfile::default());
        assert_eq!(r.ram_source, RamSource::Unknown);
        assert_eq!(r.model_id.as_deref(), Some("llama-3.1-8b-instruct-q4_k_m"));
        assert_eq!(r.reason, "RAM unknown, so picked for a typical 8 GB machine; 4.9 GB on disk");
        assert!(r.fits.iter().all(|f| f.fit == Fit::Fits));
        assert_eq!(
            fit_of(&r, "qwen3-14b-q4_k_m").reason,
            "needs 16 GB RAM (RAM unknown) and 9.5 GB free disk (free space unknown)"
        );

        // Disk still counts when known.
        let hw = HardwareProfile { free_disk_bytes: Some(3_000_000_000), ..Default::default() };
        let r = recommend(&catalog.models, &hw);
        assert_eq!(r.model_id.as_deref(), Some("gemma-3-4b-it-q4_k_m"), "{}", r.reason);

        // Nothing within the typical size: the smallest candidate, not the biggest.
        let models = [model("huge", 2, 70.0, 40_000_000_000, 48), model("big", 1, 30.0, 20_000_000_000, 24)];
        let r = recommend(&models, &HardwareProfile::default());
        assert_eq!(r.model_id.as_deref(), Some("big"));
    }

    #[test]
    fn a_catalog_with_one_model() {
        let models = [model("only", 5, 3.0, 2_000_000_000, 4)];
        let cases: &[(HardwareProfile, Option<&str>, Fit)] = &[
            (server(4.0, Some(TB)), Some("only"), Fit::Fits),
            (server(3.0, Some(TB)), None, Fit::TooBigForRam),
            (server(4.0, Some(2_000_000_000)), None, Fit::NotEnoughDisk),
            (HardwareProfile::default(), Some("only"), Fit::Fits),
        ];
        for (hw, want, fit) in cases {
            let r = recommend(&models, hw);
            assert_eq!(r.model_id.as_deref(), *want, "{hw:?}: {}", r.reason);
            assert_eq!(r.fits.len(), 1);
            assert_eq!(r.fits[0].fit, *fit);
            if want.is_none() {
                assert!(r.reason.contains("the smallest is Model only (only)"), "{}", r.reason);
            }
        }
    }

    #[test]
    fn ties_break_on_params_then_id() {
        let cases: &[(&[ModelEntry], &str)] = &[
            (&[model("a", 5, 3.0, 1_000_000, 1), model("b", 7, 1.0, 1_000_000, 1)], "b"),
            (&[model("a", 5, 3.0, 1_000_000, 1), model("b", 5, 7.0, 1_000_000, 1)], "b"),
            (&[model("b", 5, 7.0, 1_000_000, 1), model("a", 5, 3.0, 1_000_000, 1)], "b"),
            (&[model("b", 5, 3.0, 1_000_000, 1), model("a", 5, 3.0, 1_000_000, 1)], "a"),
            (&[model("a", 5, 3.0, 1_000_000, 1), model("b", 5, 3.0, 1_000_000, 1)], "a"),
        ];
        for (models, want) in cases {
            let r = recommend(models, &server(64.0, Some(TB)));
            assert_eq!(r.model_id.as_deref(), Some(*want), "{models:?}");
        }
    }

    #[test]
    fn ram_rule() {
        // min_ram_gb is the floor when the weights are small ...
        let m = model("m", 1, 8.0, 4_920_739_168, 8);
        assert_eq!(kv_cache_bytes(&m), 8 * 16_384 * 4096);
        assert_eq!(ram_needed_bytes(&m), 8 * GIB);
        // ... and the 80% rule wins when min_ram_gb is too low: (4 GB + 0.5 GiB) / 0.8.
        let m = model("m", 1, 8.0, 4_000_000_000, 1);
        let want = ((4_000_000_000u64 + (512 << 20)) as f64 / 0.8).ceil() as u64;
        assert_eq!(ram_needed_bytes(&m), want);
        // A short context caps the cache.
        let short = ModelEntry { context_length: 1024, ..m.clone() };
        assert_eq!(kv_cache_bytes(&short), kv_cache_bytes(&m) / 4);
        // Monotone in size, parameters and the floor.
        let bigger = [
            ModelEntry { size_bytes: m.size_bytes + 1_000_000, ..m.clone() },
            ModelEntry { params_b: 9.0, ..m.clone() },
            ModelEntry { min_ram_gb: 16, ..m.clone() },
        ];
        for b in &bigger {
            assert!(ram_needed_bytes(b) > ram_needed_bytes(&m), "{b:?}");
        }
        // Reported RAM within 10% below the need fits.
        let cases = [
            (8 * GIB, 8 * GIB, true),
            (8 * GIB, 8 * GIB * 93 / 100, true),
            (10 * GIB, 9 * GIB, true),
            (10 * GIB, 9 * GIB - 1, false),
            (8 * GIB, 4 * GIB, false),
            (8 * GIB, 64 * GIB, true),
            (0, 0, true),
        ];
        for (needed, ram, ok) in cases {
            assert_eq!(ram_fits(needed, ram), ok, "{needed} in {ram}");
        }
    }

    #[test]
    fn wire_names_are_snake_case() {
        let r = Recommendation {
            model_id: None,
            reason: "r".into(),
            ram_source: RamSource::Browser,
            fits: vec![ModelFit { model_id: "m".into(), fit: Fit::TooBigForRam, reason: "x".into() }],
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"model_id":null,"reason":"r","ram_source":"browser","fits":[{"model_id":"m","fit":"too_big_for_ram","reason":"x"}]}"#
        );
        assert_eq!(serde_json::from_str::<Recommendation>(&json).unwrap(), r);
        assert_eq!(serde_json::to_string(&Fit::NotEnoughDisk).unwrap(), r#""not_enough_disk""#);
    }
}
