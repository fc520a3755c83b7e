//! How fast a model would write on this machine, before it is downloaded: a prediction from
//! the machine's measured memory bandwidth, replaced by the real figure once the model has run.
//!
//! Generating a token reads (roughly) every weight once, so on a CPU the speed is bounded by
//! memory bandwidth over the model's size. Per token:
//!
//! `seconds = TOKEN_OVERHEAD_SECONDS + size_bytes / (efficiency x bandwidth)`
//!
//! - `bandwidth`: [`HardwareProfile::memory_bandwidth_gbps`], measured with the threads
//!   generation uses ([`crate::hardware::bandwidth`]); a GPU's when the model runs on one.
//! - `efficiency`: the share of that bandwidth llama.cpp turns into weight reads. Default
//!   [`DEFAULT_EFFICIENCY`]; recalibrated from a measured run of a model big enough to be
//!   bandwidth-bound ([`CALIBRATION_MIN_BYTES`]), see [`efficiency`].
//! - the overhead: what a token costs besides reading weights (building the compute graph,
//!   sampling, threads meeting). It dominates tiny models, which the bandwidth term alone would
//!   over-predict several times.
//!
//! Prompt reading is compute-bound: `threads x GFLOPS per thread (by SIMD level) / (2 x params)`.
//!
//! Where the constants come from (BENCHMARKS.md, "Predicted speed"): on this machine kind
//! (2-core Xeon, AVX-512, 1 generation thread) SmolLM2-135M Q4_1 (98 MB) generates at 140-180
//! tokens/s idle and 50 under a parallel build, with 9-16 GB/s measured. 98 MB at 14 GB/s is
//! 7 ms a token, so that model runs at about the bandwidth bound (helped by a large L3), which
//! leaves room for at most about 1 ms of overhead and an efficiency near 1 for one thread. Many
//! threads reach less of what a bandwidth test reads (llama.cpp's CPU decode commonly lands at
//! 60-80% of it), so the default is 0.8 and a measured run of a real model corrects it.
//!
//! Pure: the card runs it in the browser, the server and the terminal run it natively, and all
//! agree. Wire types are `f64`/`u64`, never `usize`.

use crate::catalog::ModelEntry;
use crate::hardware::{HardwareProfile, Simd};
use crate::units::MIB;
use serde::{Deserialize, Serialize};

/// Share of the measured bandwidth a generation turns into weight reads, until a run says.
pub const DEFAULT_EFFICIENCY: f64 = 0.8;
/// What a token costs besides reading the weights, in seconds.
pub const TOKEN_OVERHEAD_SECONDS: f64 = 0.001;
/// Speed below which a model counts as too slow to use: about reading speed for short
/// replies. A setting (`--usable-speed`).
pub const DEFAULT_USABLE_TOKENS_PER_SECOND: f64 = 8.0;
/// Smallest model whose measured run recalibrates the efficiency: smaller ones run partly from
/// a large CPU cache and are overhead-bound, so they would say nothing about big models.
pub const CALIBRATION_MIN_BYTES: u64 = 256 * MIB;
/// The efficiency a calibration may set, so one odd run cannot make every prediction absurd.
pub const EFFICIENCY_RANGE: (f64, f64) = (0.2, 1.5);
/// A discrete GPU's memory bandwidth when it runs the model, in GB/s: a low figure for cards
/// people run models on (an RTX 3060 has 360, a 4090 1008), since the driver does not say.
pub const GPU_BANDWIDTH_GBPS: f64 = 300.0;

/// Prompt-reading GFLOPS one thread gets, by SIMD level. AVX2 is this machine kind's figure
/// (SmolLM2-135M read ~280 tokens/s of prompt per thread: 2 x 0.135 GFLOP x 280 = 75, rounded
/// down for bigger models' less cache-friendly matrices); the bundled llama.cpp is built for
/// AVX2, so AVX-512 gains little; NEON and plain SSE are scaled by vector width.
pub fn prompt_gflops_per_thread(simd: Simd) -> f64 {
    match simd {
        Simd::Avx512 | Simd::Avx2 => 60.0,
        Simd::Neon => 40.0,
        Simd::Basic => 15.0,
    }
}

/// A model's measured generation speed on this machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasuredSpeed {
    pub model_id: String,
    /// Tokens generated per second (the middle of its recent runs).
    pub tokens_per_second: f64,
}

/// What the recommendation needs beyond the catalog and the machine: the speeds measured
/// here, and what counts as fast enough.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeedInputs {
    pub measured: Vec<MeasuredSpeed>,
    /// Models predicted below this are "slow here" and not recommended when a faster one fits.
    pub usable_tokens_per_second: f64,
}

impl Default for SpeedInputs {
    fn default() -> Self {
        SpeedInputs { measured: Vec::new(), usable_tokens_per_second: DEFAULT_USABLE_TOKENS_PER_SECOND }
    }
}

/// Whether a speed was measured here or predicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeedSource {
    Predicted,
    Measured,
}

/// A model's speed on this machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeedEstimate {
    /// Tokens generated per second.
    pub tokens_per_second: f64,
    /// Prompt tokens read per second (predicted; `None` without the CPU's facts).
    pub prompt_tokens_per_second: Option<f64>,
    pub source: SpeedSource,
}

impl SpeedEstimate {
    /// "~9 tokens/s here" or "measured 12 tokens/s".
    pub fn words(&self) -> String {
        match self.source {
            SpeedSource::Predicted => format!("~{} here", tokens_per_second(self.tokens_per_second)),
            SpeedSource::Measured => format!("measured {}", tokens_per_second(self.tokens_per_second)),
        }
    }
}

/// "9 tokens/s", "1 token/s", "0.4 tokens/s", "180 tokens/s": whole numbers people can read.
pub fn tokens_per_second(tps: f64) -> String {
    if tps < 0.95 {
        format!("{tps:.1} tokens/s")
    } else if tps.round() == 1.0 {
        "1 token/s".to_string()
    } else {
        format!("{:.0} tokens/s", tps.round())
    }
}

/// Where a model would run, and how fast that memory reads (bytes/s).
fn bandwidth_for(m: &ModelEntry, hw: &HardwareProfile) -> Option<(f64, bool)> {
    if let Some(gpu) = hw.gpu.as_ref().filter(|g| g.used && !g.unified) {
        let fits = gpu.memory_bytes.is_some_and(|mem| crate::recommend::ram_needed_bytes(m) as f64 <= mem as f64 * 0.9);
        if fits {
            return Some((GPU_BANDWIDTH_GBPS * 1e9, true));
        }
    }
    // Unified memory: the GPU reads the same RAM the measurement read.
    let gbps = hw.memory_bandwidth_gbps.filter(|g| g.is_finite() && *g > 0.0)?;
    Some((gbps * 1e9, false))
}

/// Predicted generation tokens/s of `m` at `efficiency`; `None` without a bandwidth figure.
pub fn predict_generation(m: &ModelEntry, hw: &HardwareProfile, efficiency: f64) -> Option<f64> {
    let (bandwidth, _) = bandwidth_for(m, hw)?;
    Some(1.0 / (TOKEN_OVERHEAD_SECONDS + m.size_bytes as f64 / (efficiency * bandwidth)))
}

/// Predicted prompt tokens/s of `m`: threads x per-thread GFLOPS over 2 x parameters.
pub fn predict_prompt(m: &ModelEntry, hw: &HardwareProfile) -> Option<f64> {
    let threads = hw.threads.or(hw.cpu_cores)?;
    let per_thread = prompt_gflops_per_thread(hw.simd?);
    let flops_per_token = 2.0 * m.params_b * 1e9;
    (flops_per_token > 0.0).then(|| f64::from(threads.max(1)) * per_thread * 1e9 / flops_per_token)
}

/// The efficiency for this machine: solved from the measured run of the biggest model that is
/// at least [`CALIBRATION_MIN_BYTES`] and runs on the CPU, so that its prediction equals its
/// measurement; [`DEFAULT_EFFICIENCY`] when there is none. Clamped to [`EFFICIENCY_RANGE`].
pub fn efficiency(models: &[ModelEntry], hw: &HardwareProfile, measured: &[MeasuredSpeed]) -> f64 {
    let biggest = measured
        .iter()
        .filter(|s| s.tokens_per_second.is_finite() && s.tokens_per_second > 0.0)
        .filter_map(|s| models.iter().find(|m| m.id == s.model_id).map(|m| (m, s.tokens_per_second)))
        .filter(|(m, _)| m.size_bytes >= CALIBRATION_MIN_BYTES)
        .filter_map(|(m, tps)| bandwidth_for(m, hw).filter(|(_, gpu)| !gpu).map(|(bw, _)| (m, tps, bw)))
        .max_by_key(|(m, _, _)| m.size_bytes);
    let Some((m, tps, bandwidth)) = biggest else { return DEFAULT_EFFICIENCY };
    // 1/tps = overhead + size / (eff x bandwidth), solved for eff. A run faster than the
    // overhead alone allows is capped by the range.
    let weight_seconds = 1.0 / tps - TOKEN_OVERHEAD_SECONDS;
    if weight_seconds <= 0.0 {
        return EFFICIENCY_RANGE.1;
    }
    (m.size_bytes as f64 / (bandwidth * weight_seconds)).clamp(EFFICIENCY_RANGE.0, EFFICIENCY_RANGE.1)
}

/// Every model's speed here, in catalog order: measured where it ran, else predicted (`None`
/// when neither is possible: no bandwidth figure, as in a browser without the server's facts).
pub fn estimates(models: &[ModelEntry], hw: &HardwareProfile, inputs: &SpeedInputs) -> Vec<Option<SpeedEstimate>> {
    let eff = efficiency(models, hw, &inputs.measured);
    models
        .iter()
        .map(|m| {
            let prompt_tokens_per_second = predict_prompt(m, hw);
            let measured = inputs.measured.iter().find(|s| s.model_id == m.id && s.tokens_per_second > 0.0);
            match measured {
                Some(s) => Some(SpeedEstimate {
                    tokens_per_second: s.tokens_per_second,
                    prompt_tokens_per_second,
                    source: SpeedSource::Measured,
                }),
                None => predict_generation(m, hw, eff).map(|tokens_per_second| SpeedEstimate {
                    tokens_per_second,
                    prompt_tokens_per_second,
                    source: SpeedSource::Predicted,
                }),
            }
        })
        .collect()
}
