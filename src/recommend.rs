//! Which catalog model this machine should run: a pure function of the catalog, the
//! [`HardwareProfile`] and the [`SpeedInputs`] (speeds measured here, what counts as usable),
//! shared by the Settings card and `localbrain catalog` so both always agree. Sizes are shown
//! through [`crate::units`], speeds come from [`crate::speed`].

use crate::catalog::ModelEntry;
use crate::hardware::HardwareProfile;
use crate::memory_rule::{gpu_room, ram_fits, ram_needed_bytes};
use crate::speed::{SpeedEstimate, SpeedInputs, estimates, tokens_per_second};
use crate::units::{GIB, disk_margin, format_bytes, format_ram};
use serde::{Deserialize, Serialize};

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
    /// Its speed here: measured, else predicted; `None` when neither is known.
    #[serde(default)]
    pub speed: Option<SpeedEstimate>,
    /// Fits, but generates slower than the usable speed: shown as "slow here", not hidden.
    #[serde(default)]
    pub slow: bool,
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
    /// The best embedding model that fits (for search over documents), recommended beside the
    /// chat pick; `None` when the catalog has none or none fits.
    #[serde(default)]
    pub embedding_id: Option<String>,
}

/// Free disk `m` needs to download: its size plus [`disk_margin`].
pub fn disk_needed_bytes(m: &ModelEntry) -> u64 {
    m.size_bytes.saturating_add(disk_margin(m.size_bytes))
}

/// [`recommend_with`] with nothing measured and the default usable speed.
pub fn recommend(models: &[ModelEntry], hw: &HardwareProfile) -> Recommendation {
    recommend_with(models, hw, &SpeedInputs::default())
}

/// The highest-quality model that fits `hw` and runs at a usable speed, with a one-line reason,
/// and a verdict for every model (catalog order).
///
/// - RAM: the server's total RAM decides when known ([`RamSource::Server`]); else the browser's
///   `deviceMemory` ([`RamSource::Browser`]); else RAM rules nothing out
///   ([`RamSource::Unknown`]) and the pick is the best model for a typical
///   [`ASSUMED_RAM_BYTES`] machine, so an unknown machine is never handed a 14B model.
/// - Disk: unknown free disk rules nothing out (the engine checks again before starting).
/// - Speed: a fitting model whose speed here (measured, else predicted) is below
///   `inputs.usable_tokens_per_second` is `slow`; the pick is among the others. When every
///   fitting model is slow, the fastest is picked and the reason says so. Unknown speed (no
///   bandwidth figure) rules nothing out.
/// - Best: highest `quality`, then higher `params_b`, then the alphabetically first id.
/// - Nothing fits: `model_id` is `None` and the reason names the model needing the least RAM.
pub fn recommend_with(models: &[ModelEntry], hw: &HardwareProfile, inputs: &SpeedInputs) -> Recommendation {
    let (ram, ram_source) = ram_reading(hw);
    let gpu = gpu_room(hw.gpu.as_ref());
    let usable = inputs.usable_tokens_per_second;
    let mut fits: Vec<ModelFit> =
        models.iter().map(|m| judge(m, Memory { ram, source: ram_source, gpu }, hw.free_disk_bytes)).collect();
    for ((f, speed), m) in fits.iter_mut().zip(estimates(models, hw, inputs)).zip(models) {
        // A writing speed means nothing for a model that does not write.
        let speed = speed.filter(|_| m.purpose.is_chat());
        f.slow = f.fit == Fit::Fits && speed.as_ref().is_some_and(|s| s.tokens_per_second < usable);
        f.speed = speed;
    }
    // The chat pick is made among chat models only: an embedding model cannot write a reply.
    let fitting: Vec<&ModelEntry> =
        models.iter().zip(&fits).filter(|(m, f)| f.fit == Fit::Fits && m.purpose.is_chat()).map(|(m, _)| m).collect();
    let embedding_id = best(
        &models
            .iter()
            .zip(&fits)
            .filter(|(m, f)| f.fit == Fit::Fits && !m.purpose.is_chat())
            .map(|(m, _)| m)
            .collect::<Vec<_>>(),
    )
    .map(|m| m.id.clone());
    // An unknown machine is picked for as if it were a typical one.
    let candidates: Vec<&ModelEntry> = match ram_source {
        RamSource::Unknown => {
            let typical: Vec<&ModelEntry> =
                fitting.iter().copied().filter(|m| ram_fits(ram_needed_bytes(m), ASSUMED_RAM_BYTES)).collect();
            if typical.is_empty() { smallest(&fitting).into_iter().collect() } else { typical }
        }
        RamSource::Server | RamSource::Browser => fitting.clone(),
    };
    let verdict = |m: &ModelEntry| &fits[models.iter().position(|x| x.id == m.id).unwrap_or(0)];
    let quick: Vec<&ModelEntry> = candidates.iter().copied().filter(|m| !verdict(m).slow).collect();
    let all_slow = quick.is_empty() && !candidates.is_empty();
    let pick = if all_slow { fastest(&candidates, &verdict) } else { best(&quick) };

    let mut reason = match (pick, ram) {
        (Some(m), Some(ram)) => {
            let estimate = if ram_source == RamSource::Browser { " (browser estimate)" } else { "" };
            let card = if gpu > 0 { format!(" + {} on the GPU", format_ram(gpu)) } else { String::new() };
            format!("fits {} RAM{estimate}{card}, {} on disk", format_ram(ram), format_bytes(m.size_bytes))
        }
        (Some(m), None) => format!(
            "RAM unknown, so picked for a typical {} machine; {} on disk",
            format_ram(ASSUMED_RAM_BYTES),
            format_bytes(m.size_bytes)
        ),
        (None, _) => {
            let chat: Vec<ModelEntry> = models.iter().filter(|m| m.purpose.is_chat()).cloned().collect();
            nothing_fits(&chat, ram, hw.free_disk_bytes)
        }
    };
    if let Some(speed) = pick.and_then(|m| verdict(m).speed.as_ref()) {
        let here = match speed.source {
            crate::speed::SpeedSource::Measured => {
                format!("measured {} here", tokens_per_second(speed.tokens_per_second))
            }
            crate::speed::SpeedSource::Predicted => {
                format!("about {} here", tokens_per_second(speed.tokens_per_second))
            }
        };
        reason = if all_slow {
            format!(
                "nothing that fits runs at {} here; this is the fastest, {here}; {reason}",
                tokens_per_second(usable)
            )
        } else {
            format!("{here}; {reason}")
        };
    }
    if let Some(pick) = pick.filter(|_| !all_slow) {
        reason.push_str(&passed_over(pick, &candidates, &verdict, usable));
    }

    Recommendation { model_id: pick.map(|m| m.id.clone()), reason, ram_source, fits, embedding_id }
}

/// ". Qwen3 14B fits but would run at about 2 tokens/s (and 5 more under 8 tokens/s)": why the
/// better models that fit were passed over; empty when none was.
fn passed_over<'a>(
    pick: &ModelEntry,
    candidates: &[&'a ModelEntry],
    verdict: &impl Fn(&ModelEntry) -> &'a ModelFit,
    usable: f64,
) -> String {
    let better_slow: Vec<&ModelEntry> = candidates
        .iter()
        .copied()
        .filter(|m| verdict(m).slow && (m.quality, m.params_b) > (pick.quality, pick.params_b))
        .collect();
    let Some(top) = best(&better_slow) else { return String::new() };
    let speed = verdict(top).speed.as_ref().map_or(0.0, |s| s.tokens_per_second);
    let mut words = format!(". {} fits but would run at about {}", top.name, tokens_per_second(speed));
    if better_slow.len() > 1 {
        words.push_str(&format!(" ({} more under {})", better_slow.len() - 1, tokens_per_second(usable)));
    }
    words
}

/// The fastest candidate (ties: the better one).
fn fastest<'a, 'f>(
    candidates: &[&'a ModelEntry],
    verdict: &impl Fn(&ModelEntry) -> &'f ModelFit,
) -> Option<&'a ModelEntry> {
    let speed = |m: &ModelEntry| verdict(m).speed.as_ref().map_or(0.0, |s| s.tokens_per_second);
    candidates.iter().copied().max_by(|a, b| speed(a).total_cmp(&speed(b)).then(a.quality.cmp(&b.quality)))
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

/// The memory a model may take: the RAM that decides, where its figure came from, and the room
/// on a GPU of its own whose layers leave the RAM ([`gpu_room`], 0 without one).
#[derive(Clone, Copy)]
struct Memory {
    ram: Option<u64>,
    source: RamSource,
    gpu: u64,
}

/// One model's verdict and its reason in plain words.
fn judge(m: &ModelEntry, memory: Memory, free_disk: Option<u64>) -> ModelFit {
    let Memory { ram, source, gpu } = memory;
    let ram_need = ram_needed_bytes(m);
    let disk_need = disk_needed_bytes(m);
    let ram_ok = ram.is_none_or(|r| ram_fits(ram_need, r.saturating_add(gpu)));
    let disk_ok = free_disk.is_none_or(|f| f >= disk_need);
    let card = if gpu > 0 { format!(" and {} on the GPU", format_ram(gpu)) } else { String::new() };
    let have_ram = |r: u64| match source {
        RamSource::Browser => format!("the browser reports {}{card}", format_ram(r)),
        _ => format!("this machine has {}{card}", format_ram(r)),
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
                (Some(r), RamSource::Browser) => format!("browser reports {}{card}", format_ram(r)),
                (Some(r), _) => format!("{} here{card}", format_ram(r)),
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
    ModelFit { model_id: m.id.clone(), fit, reason, speed: None, slow: false }
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
    use crate::hardware::{Gpu, Simd};
    use crate::speed::{
        DEFAULT_EFFICIENCY, EFFICIENCY_RANGE, MeasuredSpeed, SpeedInputs, efficiency, estimates, predict_generation,
    };

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
            page: None,
            quality,
            purpose: Default::default(),
            parts: Vec::new(),
            kv_bytes_per_token: 0,
        }
    }

    /// A machine as the server measures it: RAM (GiB), cores, SIMD, generation threads, memory
    /// bandwidth (GB/s) and a GPU.
    fn machine(ram_gib: f64, cores: u32, simd: Simd, threads: u32, gbps: f64, gpu: Option<Gpu>) -> HardwareProfile {
        HardwareProfile {
            cpu_cores: Some(cores),
            simd: Some(simd),
            threads: Some(threads),
            memory_bandwidth_gbps: Some(gbps),
            gpu,
            ..server(ram_gib, Some(TB))
        }
    }

    // The x86-64 machines below are AVX2 ones: the per-thread figure the 2026-11-30 Xeon was
    // measured at (`speed::decode_gflops_per_thread`), so a 1-thread server stays bound by its
    // arithmetic for big models, as that one was.

    fn card(name: &str, gib: u64, unified: bool, used: bool) -> Option<Gpu> {
        Some(Gpu { name: name.into(), memory_bytes: Some(gib * GIB), unified, used })
    }

    fn measured(id: &str, tps: f64) -> MeasuredSpeed {
        MeasuredSpeed { model_id: id.into(), tokens_per_second: tps }
    }

    /// The predictor on fixed machines against the shipped catalog: what fits memory AND writes
    /// at a usable speed. Expected picks follow from speed.rs's formula and constants.
    #[test]
    fn picks_what_runs_well_on_common_machines() {
        let catalog = Catalog::embedded();
        let default = SpeedInputs::default();
        let at = |usable: f64, measured: Vec<MeasuredSpeed>| SpeedInputs { measured, usable_tokens_per_second: usable };
        // (what, machine, inputs, pick, the start of the reason)
        let table: Vec<(&str, HardwareProfile, SpeedInputs, &str, &str)> = vec![
            (
                "laptop, 8 GB, 4 cores, 30 GB/s: the 8B fits but is slow",
                machine(8.0, 4, Simd::Avx2, 3, 30.0, None),
                default.clone(),
                "llama-3.2-3b-instruct-q4_k_m",
                "about 8 tokens/s here; fits 8 GB RAM, 2.0 GB on disk. Llama 3.1 8B Instruct fits but would \
                 run at about 3 tokens/s (5 more under 8 tokens/s)",
            ),
            (
                "2-core server, 24 GB, 1 thread at 14 GB/s: not the 14B",
                machine(24.0, 2, Simd::Avx2, 1, 14.0, None),
                default.clone(),
                "gemma-3-1b-it-q4_k_m",
                "about 9 tokens/s here; fits 24 GB RAM, 806 MB on disk. Qwen3 14B fits but would run at \
                 about 0.6 tokens/s (13 more under 8 tokens/s)",
            ),
            (
                "the same server, content with 4 tokens/s",
                machine(24.0, 2, Simd::Avx2, 1, 14.0, None),
                at(4.0, vec![]),
                "smollm2-1.7b-instruct-q4_k_m",
                "about 5 tokens/s here; fits 24 GB RAM, 1.1 GB on disk. Qwen3 14B fits",
            ),
            (
                "the same server after Llama 3.2 3B ran at 9 tokens/s: measured beats predicted",
                machine(24.0, 2, Simd::Avx2, 1, 14.0, None),
                at(8.0, vec![measured("llama-3.2-3b-instruct-q4_k_m", 9.0)]),
                "llama-3.2-3b-instruct-q4_k_m",
                "measured 9 tokens/s here; fits 24 GB RAM, 2.0 GB on disk. Qwen3 14B fits",
            ),
            (
                "16-core desktop, 64 GB, 60 GB/s, a 24 GB GPU that runs the model",
                machine(64.0, 16, Simd::Avx2, 15, 60.0, card("NVIDIA GeForce RTX 4090", 24, false, true)),
                default.clone(),
                "qwen3-14b-q4_k_m",
                "about 26 tokens/s here; fits 64 GB RAM + 22.8 GB on the GPU, 9.0 GB on disk",
            ),
            (
                "the same desktop, GPU seen but not used by this build",
                machine(64.0, 16, Simd::Avx2, 15, 60.0, card("NVIDIA GeForce RTX 4090", 24, false, false)),
                default.clone(),
                "gemma-2-9b-it-q4_k_m",
                "about 8 tokens/s here; fits 64 GB RAM, 5.8 GB on disk. Qwen3 14B fits but would run at about \
                 5 tokens/s (1 more under 8 tokens/s)",
            ),
            (
                "Apple M2, 16 GB unified at 100 GB/s",
                machine(16.0, 8, Simd::Neon, 7, 100.0, card("Apple M2 GPU", 16, true, true)),
                default.clone(),
                "qwen3-14b-q4_k_m",
                "about 8 tokens/s here; fits 16 GB RAM, 9.0 GB on disk",
            ),
            (
                "single-board computer, 4 GB at 5 GB/s",
                machine(4.0, 4, Simd::Neon, 3, 5.0, None),
                default.clone(),
                "qwen2.5-0.5b-instruct-q4_k_m",
                "about 9 tokens/s here; fits 4 GB RAM, 398 MB on disk. Llama 3.2 3B Instruct fits but would \
                 run at about 1 token/s (4 more under 8 tokens/s)",
            ),
            (
                "4 GB at 2 GB/s: nothing is quick, the fastest is picked",
                machine(4.0, 4, Simd::Basic, 3, 2.0, None),
                default.clone(),
                "smollm2-360m-instruct-q8_0",
                "nothing that fits runs at 8 tokens/s here; this is the fastest, about 4 tokens/s here; \
                 fits 4 GB RAM, 386 MB on disk",
            ),
        ];
        for (what, hw, inputs, want, reason) in table {
            let r = recommend_with(&catalog.models, &hw, &inputs);
            assert_eq!(r.model_id.as_deref(), Some(want), "{what}: {}", r.reason);
            assert!(r.reason.starts_with(reason), "{what}:\n{}\nwanted it to start\n{reason}", r.reason);
            for (m, f) in catalog.models.iter().zip(&r.fits) {
                // An embedding model writes no tokens: it has no writing speed.
                if !m.purpose.is_chat() {
                    assert!(f.speed.is_none() && !f.slow, "{what}: {}", m.id);
                    continue;
                }
                let speed = f.speed.as_ref().expect("a speed for every chat model when the bandwidth is known");
                assert!(speed.tokens_per_second > 0.0, "{what}: {}", m.id);
                assert!(speed.prompt_tokens_per_second.is_some_and(|p| p > 0.0), "{what}: {}", m.id);
                // Slow is exactly "fits, and below the usable speed"; the pick is never slow
                // unless nothing is quick.
                assert_eq!(
                    f.slow,
                    f.fit == Fit::Fits && speed.tokens_per_second < inputs.usable_tokens_per_second,
                    "{what}: {}",
                    m.id
                );
            }
        }
    }

    #[test]
    fn speeds_fall_with_size_and_rise_with_bandwidth() {
        let catalog = Catalog::embedded();
        // 16 threads: reading the weights, not the arithmetic, is the limit for every model.
        let slow = machine(24.0, 16, Simd::Avx2, 16, 14.0, None);
        let fast = machine(24.0, 16, Simd::Avx2, 16, 28.0, None);
        let inputs = SpeedInputs::default();
        let (a, b) = (estimates(&catalog.models, &slow, &inputs), estimates(&catalog.models, &fast, &inputs));
        for ((m, x), y) in catalog.models.iter().zip(&a).zip(&b) {
            let (x, y) = (x.as_ref().unwrap(), y.as_ref().unwrap());
            assert!(y.tokens_per_second > x.tokens_per_second, "{}", m.id);
            // Less than twice: the per-token overhead does not shrink with the bandwidth.
            assert!(y.tokens_per_second < 2.0 * x.tokens_per_second, "{}", m.id);
            for (n, z) in catalog.models.iter().zip(&a) {
                if n.size_bytes > m.size_bytes {
                    assert!(z.as_ref().unwrap().tokens_per_second < x.tokens_per_second, "{} vs {}", n.id, m.id);
                }
            }
        }
        // One thread: the arithmetic is the limit for big models, so more bandwidth does not
        // help them and more threads do.
        let one = machine(24.0, 2, Simd::Avx2, 1, 14.0, None);
        let one_fast = machine(24.0, 2, Simd::Avx2, 1, 28.0, None);
        let two = machine(24.0, 2, Simd::Avx2, 2, 14.0, None);
        let speed = |hw: &HardwareProfile| {
            estimates(&catalog.models, hw, &inputs).last().cloned().flatten().unwrap().tokens_per_second
        };
        assert_eq!(speed(&one), speed(&one_fast));
        assert!(speed(&two) > 1.9 * speed(&one), "{} vs {}", speed(&two), speed(&one));
        // No bandwidth figure (the browser before the server answers): no speed, no verdicts.
        let r = recommend_with(&catalog.models, &server(24.0, Some(TB)), &inputs);
        assert!(r.fits.iter().all(|f| f.speed.is_none() && !f.slow));
        assert_eq!(r.model_id.as_deref(), Some("qwen3-14b-q4_k_m"));
    }

    #[test]
    fn a_measured_run_recalibrates_only_from_a_big_enough_model() {
        let catalog = Catalog::embedded();
        let hw = machine(24.0, 2, Simd::Avx2, 1, 14.0, None);
        assert_eq!(efficiency(&catalog.models, &hw, &[]), DEFAULT_EFFICIENCY);
        // A 3B model at 5 tokens/s: solved so that its prediction equals its measurement.
        let eff = efficiency(&catalog.models, &hw, &[measured("llama-3.2-3b-instruct-q4_k_m", 5.0)]);
        let m = catalog.get("llama-3.2-3b-instruct-q4_k_m").unwrap();
        let predicted = predict_generation(&m, &hw, eff).unwrap();
        assert!((predicted - 5.0).abs() < 1e-9, "{predicted}");
        assert!(eff > DEFAULT_EFFICIENCY, "{eff}");
        // The biggest measured model decides; a small one (partly cached, overhead-bound) does not.
        let both = [measured("smollm2-360m-instruct-q8_0", 500.0), measured("llama-3.2-3b-instruct-q4_k_m", 5.0)];
        assert_eq!(efficiency(&catalog.models, &hw, &both), eff);
        let tiny = ModelEntry { size_bytes: 98_362_432, ..model("tiny", 1, 0.135, 98_362_432, 1) };
        assert_eq!(efficiency(&[tiny], &hw, &[measured("tiny", 170.0)]), DEFAULT_EFFICIENCY);
        // An absurd run is held inside the range.
        let (lo, hi) = EFFICIENCY_RANGE;
        assert_eq!(efficiency(&catalog.models, &hw, &[measured("qwen3-14b-q4_k_m", 0.01)]), lo);
        assert_eq!(efficiency(&catalog.models, &hw, &[measured("qwen3-14b-q4_k_m", 5000.0)]), hi);
        // A run on the GPU says nothing about the CPU's efficiency.
        let gpu = machine(64.0, 16, Simd::Avx2, 15, 60.0, card("RTX", 24, false, true));
        assert_eq!(efficiency(&catalog.models, &gpu, &[measured("qwen3-14b-q4_k_m", 40.0)]), DEFAULT_EFFICIENCY);
    }

    #[test]
    fn speeds_read_as_plain_words() {
        let words =
            |tps, source| SpeedEstimate { tokens_per_second: tps, prompt_tokens_per_second: None, source }.words();
        use crate::speed::SpeedSource::{Measured, Predicted};
        assert_eq!(words(9.4, Predicted), "~9 tokens/s here");
        assert_eq!(words(7.9, Predicted), "~7 tokens/s here");
        assert_eq!(words(10.6, Predicted), "~11 tokens/s here");
        assert_eq!(words(12.2, Measured), "measured 12 tokens/s");
        assert_eq!(words(1.2, Predicted), "~1 token/s here");
        assert_eq!(words(0.44, Predicted), "~0.4 tokens/s here");
        assert_eq!(words(181.3, Measured), "measured 181 tokens/s");
    }

    fn fit_of<'a>(r: &'a Recommendation, id: &str) -> &'a ModelFit {
        r.fits.iter().find(|f| f.model_id == id).unwrap()
    }

    /// The brain puts the layers that fit a card of its own there, and they leave the RAM: a
    /// model too big for the RAM alone fits the RAM and the card together.
    #[test]
    fn a_card_s_memory_counts_beside_the_ram() {
        let catalog = Catalog::embedded();
        let laptop = |gpu| HardwareProfile { gpu, ..server(8.0, Some(TB)) };
        let alone = recommend(&catalog.models, &laptop(None));
        let fit = fit_of(&alone, "qwen3-14b-q4_k_m");
        assert_eq!(fit.fit, Fit::TooBigForRam, "{}", fit.reason);
        assert!(fit.reason.starts_with("needs 16 GB RAM, this machine has 8 GB"), "{}", fit.reason);

        let with_card = recommend(&catalog.models, &laptop(card("NVIDIA GeForce RTX 4060", 8, false, true)));
        let fit = fit_of(&with_card, "qwen3-14b-q4_k_m");
        assert_eq!(fit.fit, Fit::Fits, "{}", fit.reason);
        assert!(fit.reason.contains("(8 GB here and 7.5 GB on the GPU)"), "{}", fit.reason);
        assert!(with_card.reason.contains("fits 8 GB RAM + 7.5 GB on the GPU"), "{}", with_card.reason);

        // Not used (a CPU build, --gpu-layers 0), or the RAM itself (Apple silicon): no more room.
        for gpu in [card("NVIDIA GeForce RTX 4060", 8, false, false), card("Apple M2 GPU", 8, true, true)] {
            let r = recommend(&catalog.models, &laptop(gpu));
            assert_eq!(fit_of(&r, "qwen3-14b-q4_k_m").fit, Fit::TooBigForRam);
        }
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
    fn the_chat_pick_is_a_chat_model_and_an_embedding_model_is_named_beside_it() {
        let catalog = Catalog::embedded();
        let embedder = "nomic-embed-text-v1.5-q8_0";
        for ram in [0.75, 1.0, 4.0, 16.0, 64.0] {
            let r = recommend(&catalog.models, &server(ram, Some(TB)));
            assert_ne!(r.model_id.as_deref(), Some(embedder), "{ram} GiB: {}", r.reason);
            if let Some(id) = &r.model_id {
                assert!(catalog.get(id).unwrap().purpose.is_chat(), "{ram} GiB: {id}");
            }
            // The embedding model is small: wherever it fits it is named, chat pick or not.
            let fits = fit_of(&r, embedder).fit == Fit::Fits;
            assert_eq!(r.embedding_id.as_deref(), fits.then_some(embedder), "{ram} GiB");
        }
        assert_eq!(recommend(&catalog.models, &server(16.0, Some(TB))).embedding_id.as_deref(), Some(embedder));
        // Only chat models: no embedding recommendation.
        let chat: Vec<ModelEntry> = catalog.models.iter().filter(|m| m.purpose.is_chat()).cloned().collect();
        assert_eq!(recommend(&chat, &server(16.0, Some(TB))).embedding_id, None);
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
    fn wire_names_are_snake_case() {
        let r = Recommendation {
            model_id: None,
            reason: "r".into(),
            ram_source: RamSource::Browser,
            fits: vec![ModelFit {
                model_id: "m".into(),
                fit: Fit::TooBigForRam,
                reason: "x".into(),
                speed: Some(SpeedEstimate {
                    tokens_per_second: 2.5,
                    prompt_tokens_per_second: None,
                    source: crate::speed::SpeedSource::Measured,
                }),
                slow: false,
            }],
            embedding_id: None,
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"model_id":null,"reason":"r","ram_source":"browser","fits":[{"model_id":"m","fit":"too_big_for_ram","reason":"x","speed":{"tokens_per_second":2.5,"prompt_tokens_per_second":null,"source":"measured"},"slow":false}],"embedding_id":null}"#
        );
        assert_eq!(serde_json::from_str::<Recommendation>(&json).unwrap(), r);
        assert_eq!(serde_json::to_string(&Fit::NotEnoughDisk).unwrap(), r#""not_enough_disk""#);
    }
}
