//! How many of a model's layers go to the GPU ("offload by fit"): every layer when the weights
//! plus the KV cache of every slot fit the card's free memory with a margin; otherwise as many
//! layers as fit, the rest on the CPU; none without a GPU. `--gpu-layers` overrides. The margin
//! is the memory rule's ([`gpu_margin`]), so the recommendation counts the card as this does.

use super::gguf::Layout;
use crate::chat::GpuUse;
use crate::memory_rule::gpu_margin;
use std::str::FromStr;

/// The setting: `auto` (by fit) or a number of layers (`0`: the CPU only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GpuLayers {
    #[default]
    Auto,
    Count(u32),
}

impl FromStr for GpuLayers {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(GpuLayers::Auto),
            n => n.parse().map(GpuLayers::Count).map_err(|_| {
                format!("{s:?} is not a number of layers: give auto (as many as fit the GPU), 0 (the CPU only) or N")
            }),
        }
    }
}

/// Layers of a model laid out as `m` to put on a GPU with `free` of `total` bytes, for
/// `setting`, when its slots' KV cache takes `kv_bytes` (all layers).
pub fn layers_on_gpu(setting: GpuLayers, free: u64, total: u64, m: &Layout, kv_bytes: u64) -> u32 {
    match setting {
        GpuLayers::Count(n) => n.min(m.layers),
        GpuLayers::Auto => {
            let Some(room) = free.checked_sub(gpu_margin(total)) else { return 0 };
            if m.layer_bytes.saturating_add(m.other_bytes).saturating_add(kv_bytes) <= room {
                return m.layers;
            }
            // Split: the embeddings and the output layer stay on the CPU (so one layer at least
            // does too: all of them take the output layer along); each layer moved takes its
            // weights and its share of the cache.
            let per_layer = (m.layer_bytes + kv_bytes).div_ceil(u64::from(m.layers.max(1))).max(1);
            u32::try_from(room / per_layer).unwrap_or(u32::MAX).min(m.layers.saturating_sub(1))
        }
    }
}

/// The value llama.cpp's `n_gpu_layers` takes for `layers` of `of` on the GPU: all of them
/// includes the output layer (llama.cpp counts it as one more).
pub fn n_gpu_layers(layers: u32, of: u32) -> u32 {
    if layers >= of && of > 0 { of + 1 } else { layers }
}

/// What is said of a model placed so: `None` when it runs on the CPU alone.
pub fn gpu_use(device: &str, layers: u32, of: u32) -> Option<GpuUse> {
    (layers > 0).then(|| GpuUse { device: device.to_string(), layers, of })
}

/// The share of a model's weights (and so of its cache) that stays in RAM with `layers` of
/// them on the GPU: the memory rule counts that much of it.
pub fn ram_fraction(m: &Layout, layers: u32) -> f64 {
    let total = m.layer_bytes.saturating_add(m.other_bytes).max(1) as f64;
    let moved = m.layer_bytes as f64 * f64::from(layers.min(m.layers)) / f64::from(m.layers.max(1));
    ((total - moved) / total).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{GIB, MIB};

    /// An 8B model at Q4: 32 layers of 4.4 GB, 0.6 GB of embeddings and output.
    fn eight_b() -> Layout {
        Layout { layers: 32, layer_bytes: 4_400 * MIB, other_bytes: 600 * MIB, kv_bytes_per_token: 0 }
    }

    /// Its cache for every slot: 1 GiB.
    const KV: u64 = GIB;

    #[test]
    fn every_layer_goes_when_the_model_and_its_cache_fit_with_the_margin() {
        assert_eq!(layers_on_gpu(GpuLayers::Auto, 22 * GIB, 24 * GIB, &eight_b(), KV), 32);
        // 5.9 GiB of model and cache needs 6.4 GiB free on an 8 GiB card: 6 GiB free is short.
        assert_eq!(layers_on_gpu(GpuLayers::Auto, 7 * GIB, 8 * GIB, &eight_b(), KV), 32);
        let short = layers_on_gpu(GpuLayers::Auto, 6 * GIB, 8 * GIB, &eight_b(), KV);
        assert!(short < 32 && short > 20, "{short}");
    }

    #[test]
    fn a_card_too_small_takes_what_fits_and_none_when_nothing_does() {
        // 4 GiB free, 3.5 GiB after the margin, 170 MiB a layer: 21 layers.
        assert_eq!(layers_on_gpu(GpuLayers::Auto, 4 * GIB, 4 * GIB, &eight_b(), KV), 21);
        assert_eq!(layers_on_gpu(GpuLayers::Auto, 400 * MIB, 4 * GIB, &eight_b(), KV), 0);
        assert_eq!(layers_on_gpu(GpuLayers::Auto, 0, 0, &eight_b(), KV), 0);
    }

    #[test]
    fn a_count_overrides_the_fit_up_to_the_model_s_layers() {
        assert_eq!(layers_on_gpu(GpuLayers::Count(0), 80 * GIB, 80 * GIB, &eight_b(), KV), 0);
        assert_eq!(layers_on_gpu(GpuLayers::Count(10), 0, 0, &eight_b(), KV), 10);
        assert_eq!(layers_on_gpu(GpuLayers::Count(99), 0, 0, &eight_b(), KV), 32);
    }

    #[test]
    fn llama_cpp_counts_the_output_layer_when_all_go() {
        assert_eq!(n_gpu_layers(32, 32), 33);
        assert_eq!(n_gpu_layers(21, 32), 21);
        assert_eq!(n_gpu_layers(0, 32), 0);
    }

    #[test]
    fn the_ram_share_shrinks_with_the_layers_moved() {
        let m = eight_b();
        assert_eq!(ram_fraction(&m, 0), 1.0);
        assert!((ram_fraction(&m, 32) - 0.12).abs() < 1e-9);
        assert!(ram_fraction(&m, 16) < ram_fraction(&m, 8));
        assert_eq!(ram_fraction(&m, 99), ram_fraction(&m, 32));
    }

    #[test]
    fn the_setting_reads_auto_or_a_count_and_says_what_else_it_takes() {
        assert_eq!("auto".parse(), Ok(GpuLayers::Auto));
        assert_eq!(" 12 ".parse(), Ok(GpuLayers::Count(12)));
        assert_eq!("0".parse(), Ok(GpuLayers::Count(0)));
        let err = "all".parse::<GpuLayers>().unwrap_err();
        assert!(err.contains("auto") && err.contains("\"all\""), "{err}");
        assert!("-1".parse::<GpuLayers>().is_err());
    }

    #[test]
    fn a_model_on_the_gpu_is_named_with_its_layers() {
        let used = gpu_use("Vulkan0 llvmpipe", 30, 30).expect("on the GPU");
        assert_eq!(used.to_string(), "on Vulkan0 llvmpipe: 30/30 layers");
        assert_eq!(gpu_use("CUDA0 H200", 0, 30), None);
    }
}
