//! How fast a model would write on this machine, before it is downloaded: a prediction from
//! the machine's measured memory bandwidth, replaced by the real figure once the model has run.
//!
//! Generating a token reads (roughly) every weight once and does about two operations per
//! parameter, so on a CPU the speed is bounded by memory bandwidth over the model's size, or by
//! the cores' arithmetic over its parameters, whichever is slower (they overlap). Per token:
//!
//! `seconds = TOKEN_OVERHEAD_SECONDS + max(size_bytes / bandwidth, 2 x params / compute) / efficiency`
//!
//! - `bandwidth`: [`HardwareProfile::memory_bandwidth_gbps`], measured with the threads
//!   generation uses ([`crate::hardware::bandwidth`]); a GPU's when the model runs on one.
//! - `compute`: generation threads x [`decode_gflops_per_thread`] (by SIMD level); a GPU's
//!   arithmetic is not the limit, so it drops out when the model runs on one.
//! - `efficiency`: the share of both that llama.cpp achieves. Default [`DEFAULT_EFFICIENCY`];
//!   recalibrated from a measured run of a model big enough not to run from the CPU's cache
//!   ([`CALIBRATION_MIN_BYTES`]), see [`efficiency`].
//! - the overhead: what a token costs besides the weights (building the compute graph,
//!   sampling, handing the text over). It matters only for tiny models.
//!
//! Prompt reading is batched arithmetic: `threads x` [`prompt_gflops_per_thread`] `/ (2 x params)`.
//!
//! Where the constants come from (BENCHMARKS.md, "Predicted speed"): on this machine kind
//! (2-core Xeon, AVX-512 CPU, llama.cpp built for AVX2, 1 generation thread, 12-16 GB/s
//! measured) SmolLM2-135M Q4_1 (98 MB, 0.135B parameters) generated 55-76 tokens/s in
//! 2026-11-30's runs, i.e. 13-18 ms a token. Reading 98 MB at 14 GB/s takes 7 ms, so that run
//! was bound by arithmetic: 0.27 GFLOP a token in ~14 ms is ~19 GFLOPS on one thread, which is
//! `DEFAULT_EFFICIENCY x 24` (AVX-512 CPUs now 34: [`decode_gflops_per_thread`]). The 0.8 itself is the common share of a bandwidth test's figure
//! that llama.cpp's CPU generation reaches on bandwidth-bound machines (many cores); a
//! measured run of a real model on the machine replaces it. 1 ms of overhead is an upper
//! bound here: more would not fit the 135M model's fastest runs.
//!
use crate::catalog::ModelEntry;
use crate::hardware::{HardwareProfile, Simd};
use crate::memory_rule::{gpu_room, kv_cache_bytes};
use crate::units::MIB;
use serde::{Deserialize, Serialize};

/// Share of the measured bandwidth and of the nominal arithmetic a generation achieves, until
/// a run on the machine says.
pub const DEFAULT_EFFICIENCY: f64 = 0.8;
/// What a token costs besides reading the weights, in seconds.
pub const TOKEN_OVERHEAD_SECONDS: f64 = 0.001;
/// Speed below which a model counts as too slow to use: about reading speed for short
/// replies. A setting (`--usable-speed`).
pub const DEFAULT_USABLE_TOKENS_PER_SECOND: f64 = 8.0;
/// Smallest model whose measured run recalibrates the efficiency: smaller ones may run partly
/// from a large CPU cache and lean on the overhead, so they would say little about big models.
pub const CALIBRATION_MIN_BYTES: u64 = 256 * MIB;
/// The efficiency a calibration may set, so one odd run cannot make every prediction absurd.
/// Up to 3: a desktop core may well do three times the arithmetic of this VM's, where the
/// per-thread figures were calibrated.
pub const EFFICIENCY_RANGE: (f64, f64) = (0.2, 3.0);
/// A discrete GPU's memory bandwidth when it runs the model, in GB/s: a low figure for cards
/// people run models on (an RTX 3060 has 360, a 4090 1008), since the driver does not say.
pub const GPU_BANDWIDTH_GBPS: f64 = 300.0;

/// Generation GFLOPS one thread has, by SIMD level, before [`DEFAULT_EFFICIENCY`]: matrix x
/// vector work on quantized weights. The bundled llama.cpp is built for AVX2, so AVX-512's own
/// instructions gain nothing, but a CPU that has them is a newer core: the AVX-512 figure sits
/// between the two such CPUs this machine kind has come with (module docs). 24 fitted the
/// 2026-11-30 Xeon, whose one thread wrote SmolLM2-135M at 50-58 tokens/s; the 2026-12-06 AMD
/// EPYC wrote it at 148 (2.6x the Xeon), which 24 under-predicted 2.2x. 34 predicts 92: 1.6x
/// the Xeon, 0.62x the EPYC. AVX2 keeps the Xeon's 24; NEON and plain SSE are scaled by vector
/// width. A measured run replaces the prediction either way.
pub fn decode_gflops_per_thread(simd: Simd) -> f64 {
    match simd {
        Simd::Avx512 => 34.0,
        Simd::Avx2 => 24.0,
        Simd::Neon => 18.0,
        Simd::Basic => 6.0,
    }
}

/// Prompt-reading GFLOPS one thread gets, by SIMD level. AVX2 is this machine kind's figure:
/// `make bench-brain` (BENCHMARKS.md, issue 13) read a 553-token prompt of SmolLM2-135M at
/// 100-124 tokens/s on one thread, and 2 x 0.135 GFLOP x 110 is 30. The bundled llama.cpp is
/// built for AVX2, so AVX-512 gains nothing; NEON and plain SSE are scaled by vector width.
pub fn prompt_gflops_per_thread(simd: Simd) -> f64 {
    match simd {
        Simd::Avx512 | Simd::Avx2 => 30.0,
        Simd::Neon => 22.0,
        Simd::Basic => 8.0,
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
            SpeedSource::Predicted => format!("{} here", self.figure()),
            SpeedSource::Measured => self.figure(),
        }
    }

    /// "~9 tokens/s" or "measured 12 tokens/s", for a line that says "here" elsewhere.
    pub fn figure(&self) -> String {
        match self.source {
            SpeedSource::Predicted => format!("~{}", tokens_per_second(self.tokens_per_second)),
            SpeedSource::Measured => format!("measured {}", tokens_per_second(self.tokens_per_second)),
        }
    }
}

/// "9 tokens/s", "1 token/s", "0.4 tokens/s", "180 tokens/s": whole numbers people can read.
/// Under 10 the figure is rounded down, so a speed just under a usable 8 never reads as 8.
pub fn tokens_per_second(tps: f64) -> String {
    let shown = if tps < 10.0 { tps.floor() } else { tps.round() };
    if tps < 1.0 {
        format!("{tps:.1} tokens/s")
    } else if shown == 1.0 {
        "1 token/s".to_string()
    } else {
        format!("{shown:.0} tokens/s")
    }
}

/// Where a model would run, as the seconds a token's weights take to read and to compute
/// (before the efficiency), and whether on a GPU. `None` without a bandwidth figure.
fn weight_seconds(m: &ModelEntry, hw: &HardwareProfile) -> Option<(f64, bool)> {
    if let Some(gpu) = hw.gpu.as_ref().filter(|g| g.used) {
        // A GPU's arithmetic outruns its memory: only the reading counts. Unified memory is
        // the RAM the measurement read (whatever fits the RAM fits it); a discrete card is
        // faster, for what fits in its own memory.
        if gpu.unified {
            let gbps = hw.memory_bandwidth_gbps.filter(|g| g.is_finite() && *g > 0.0)?;
            return Some((m.size_bytes as f64 / (gbps * 1e9), true));
        }
        let on_card = m.size_bytes as f64 / (GPU_BANDWIDTH_GBPS * 1e9);
        if gpu.memory_bytes.is_none() {
            return cpu_seconds(m, hw).map(|s| (s, false));
        }
        // The room the brain's offload by fit gives layers on the card: all of them when the
        // weights and the cache fit it, else that share, the rest read by the CPU.
        let room = gpu_room(Some(gpu)) as f64;
        let working = m.size_bytes.saturating_add(kv_cache_bytes(m)).max(1) as f64;
        if working <= room {
            return Some((on_card, true));
        }
        let share = (room / working).clamp(0.0, 1.0);
        let cpu = cpu_seconds(m, hw)?;
        return Some((share * on_card + (1.0 - share) * cpu, share > 0.0));
    }
    cpu_seconds(m, hw).map(|s| (s, false))
}

/// The seconds a token's weights take to read and compute on the CPU (before the efficiency);
/// `None` without a bandwidth figure.
fn cpu_seconds(m: &ModelEntry, hw: &HardwareProfile) -> Option<f64> {
    let flops = 2.0 * m.params_b.max(0.0) * 1e9;
    let gbps = hw.memory_bandwidth_gbps.filter(|g| g.is_finite() && *g > 0.0)?;
    let reading = m.size_bytes as f64 / (gbps * 1e9);
    let threads = hw.threads.or(hw.cpu_cores).unwrap_or(1).max(1);
    let computing = hw.simd.map_or(0.0, |simd| flops / (f64::from(threads) * decode_gflops_per_thread(simd) * 1e9));
    Some(reading.max(computing))
}

/// Predicted generation tokens/s of `m` at `efficiency`; `None` without a bandwidth figure.
pub fn predict_generation(m: &ModelEntry, hw: &HardwareProfile, efficiency: f64) -> Option<f64> {
    let (weights, _) = weight_seconds(m, hw)?;
    Some(1.0 / (TOKEN_OVERHEAD_SECONDS + weights / efficiency))
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
/// measurement (the other models' predictions move with it); [`DEFAULT_EFFICIENCY`] when there is none. Clamped to [`EFFICIENCY_RANGE`].
pub fn efficiency(models: &[ModelEntry], hw: &HardwareProfile, measured: &[MeasuredSpeed]) -> f64 {
    let biggest = measured
        .iter()
        .filter(|s| s.tokens_per_second.is_finite() && s.tokens_per_second > 0.0)
        .filter_map(|s| models.iter().find(|m| m.id == s.model_id).map(|m| (m, s.tokens_per_second)))
        .filter(|(m, _)| m.size_bytes >= CALIBRATION_MIN_BYTES)
        .filter_map(|(m, tps)| weight_seconds(m, hw).filter(|(_, gpu)| !gpu).map(|(w, _)| (m, tps, w)))
        .max_by_key(|(m, _, _)| m.size_bytes);
    let Some((_, tps, weights)) = biggest else { return DEFAULT_EFFICIENCY };
    // 1/tps = overhead + weights / eff, solved for eff. A run faster than the overhead alone
    // allows is capped by the range.
    let spent = 1.0 / tps - TOKEN_OVERHEAD_SECONDS;
    if spent <= 0.0 {
        return EFFICIENCY_RANGE.1;
    }
    (weights / spent).clamp(EFFICIENCY_RANGE.0, EFFICIENCY_RANGE.1)
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
