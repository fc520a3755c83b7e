//! The memory rule: how much installed RAM a catalog model needs (its weights plus a KV cache at
//! the default context, inside a budget of the RAM) and whether a machine's reported RAM covers
//! it, counting a GPU's own memory where layers go. One rule for the recommendation, the GPU
//! speed guess and the brain's admission and offload, so what the card calls a fit is what the
//! brain agrees to load. Bytes throughout.

use crate::catalog::ModelEntry;
use crate::hardware::Gpu;
use crate::units::{GIB, MIB};

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

/// The f16 KV cache of `m` at [`DEFAULT_CONTEXT_TOKENS`] (or its own context, if shorter): its
/// header's bytes a token where the entry has them (hub models), else `params_b x`
/// [`KV_BYTES_PER_TOKEN_PER_B_PARAMS`] `x tokens`.
pub fn kv_cache_bytes(m: &ModelEntry) -> u64 {
    let tokens = m.context_length.min(DEFAULT_CONTEXT_TOKENS);
    if m.kv_bytes_per_token > 0 {
        return m.kv_bytes_per_token.saturating_mul(tokens);
    }
    (m.params_b.max(0.0) * KV_BYTES_PER_TOKEN_PER_B_PARAMS * tokens as f64).ceil() as u64
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

/// What is kept free on a GPU beside the weights and the cache: llama.cpp's compute buffers and
/// what the driver and the desktop take while the model runs. A twentieth of the card, and at
/// least 512 MiB.
pub fn gpu_margin(total: u64) -> u64 {
    (total / 20).max(512 * MIB)
}

/// The memory of `gpu` a model's layers may take, which they then leave out of RAM: a discrete
/// card's memory less its margin when models run on it; 0 for none, one not used, or one that
/// shares the RAM (Apple silicon, an integrated GPU: its memory is the RAM already counted).
pub fn gpu_room(gpu: Option<&Gpu>) -> u64 {
    match gpu {
        Some(g) if g.used && !g.unified => g.memory_bytes.map_or(0, |total| total.saturating_sub(gpu_margin(total))),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(params_b: f64, size_bytes: u64, min_ram_gb: u32) -> ModelEntry {
        ModelEntry {
            id: "m".into(),
            name: "Model m".into(),
            family: "test".into(),
            params_b,
            quant: "Q4_K_M".into(),
            url: "https://example.com/m.gguf".into(),
            mirrors: vec![],
            sha256: "6eb923e7d26e9cea28811e1a8e852009b21242fb157b26149d3b188f3a8c8653".into(),
            size_bytes,
            min_ram_gb,
            context_length: 32768,
            license: "mit".into(),
            page: None,
            quality: 1,
            purpose: Default::default(),
            parts: Vec::new(),
            kv_bytes_per_token: 0,
        }
    }

    #[test]
    fn ram_rule() {
        // min_ram_gb is the floor when the weights are small ...
        let m = model(8.0, 4_920_739_168, 8);
        assert_eq!(kv_cache_bytes(&m), 8 * 16_384 * 4096);
        assert_eq!(ram_needed_bytes(&m), 8 * GIB);
        // ... and the 80% rule wins when min_ram_gb is too low: (4 GB + 0.5 GiB) / 0.8.
        let m = model(8.0, 4_000_000_000, 1);
        let want = ((4_000_000_000u64 + (512 << 20)) as f64 / 0.8).ceil() as u64;
        assert_eq!(ram_needed_bytes(&m), want);
        // A short context caps the cache.
        let short = ModelEntry { context_length: 1024, ..m.clone() };
        assert_eq!(kv_cache_bytes(&short), kv_cache_bytes(&m) / 4);
        // The header's own figure, where the entry has it, over the estimate by parameters:
        // SmolLM2-135M's 23,040 bytes a token, not 0.135 x 16 KiB.
        let smol = ModelEntry { kv_bytes_per_token: 23_040, ..model(0.135, 98_362_432, 1) };
        assert_eq!(kv_cache_bytes(&smol), 23_040 * 4096);
        assert_eq!(kv_cache_bytes(&ModelEntry { context_length: 1024, ..smol }), 23_040 * 1024);
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
    fn a_card_of_its_own_adds_its_memory_less_the_margin() {
        let card = |gib: u64, unified: bool, used: bool| Gpu {
            name: "g".into(),
            memory_bytes: Some(gib * GIB),
            unified,
            used,
        };
        assert_eq!(gpu_room(Some(&card(24, false, true))), 24 * GIB - 24 * GIB / 20);
        assert_eq!(gpu_room(Some(&card(4, false, true))), 4 * GIB - 512 * MIB);
        assert_eq!(gpu_room(Some(&card(24, false, false))), 0, "not used by this build");
        assert_eq!(gpu_room(Some(&card(16, true, true))), 0, "the RAM itself");
        assert_eq!(gpu_room(Some(&Gpu { memory_bytes: None, ..card(8, false, true) })), 0);
        assert_eq!(gpu_room(None), 0);
    }
}
