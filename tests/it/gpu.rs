//! The brain on a real Vulkan device without a GPU: Mesa's software driver, lavapipe
//! ("llvmpipe"), which runs llama.cpp's Vulkan shaders on the CPU. Built and run only with the
//! `vulkan` feature (`make test-vulkan`). nextest runs each test in its own process, so each
//! chooses what llama.cpp's Vulkan backend sees before the backend starts: lavapipe is a
//! CPU-type device, which llama.cpp skips unless `GGML_VK_VISIBLE_DEVICES` names it, so a
//! machine with lavapipe alone is a machine without a GPU. On Debian 12, llama.cpp's Vulkan code
//! builds against Debian 13's headers, which install-tools.sh unpacks (its comment says why).

use crate::brain::{ask, brain, collect, installed_copy, smol_catalog};
use localbrain::brain::offload::GpuLayers;
use localbrain::brain::{BrainConfig, devices};
use localbrain::chat::{ChatStats, Finish, GpuUse};
use std::path::Path;

/// SmolLM2-135M's layers.
const LAYERS: u32 = 30;

/// Lets llama.cpp's Vulkan backend see lavapipe (device 0, the only one), as a GPU would be seen.
fn see_lavapipe() {
    // SAFETY: the test's own process (nextest), before the backend or any other thread reads
    // the environment.
    unsafe { std::env::set_var("GGML_VK_VISIBLE_DEVICES", "0") };
}

/// A greedy reply on a brain with `gpu_layers`: its text and stats.
async fn reply(models: &Path, gpu_layers: GpuLayers) -> (String, ChatStats) {
    let brain = brain(models, &smol_catalog(), |c: &mut BrainConfig| c.gpu_layers = gpu_layers);
    let (pieces, stats) = collect(brain.chat(1, ask("Name three colours, one per line.", 24)).await.unwrap()).await;
    let text = pieces.concat();
    assert!(!text.trim().is_empty(), "an empty reply");
    assert!(matches!(stats.finish, Finish::Stop | Finish::Length), "{stats:?}");
    assert!((1..=24).contains(&stats.generated_tokens) && stats.tokens_per_second > 0.0, "{stats:?}");
    (text, stats)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_layer_goes_to_the_vulkan_device_and_the_reply_is_the_cpu_s() {
    see_lavapipe();
    let device = devices::gpu().unwrap().expect("lavapipe, seen as a GPU");
    assert_eq!(device.backend, "Vulkan");
    assert!(device.name.starts_with("Vulkan"), "{device:?}");
    assert!(device.description.contains("llvmpipe"), "{device:?}");
    assert!(device.memory_total > 0 && device.memory_free <= device.memory_total, "{device:?}");
    let (_dir, models) = installed_copy();
    let hw = BrainConfig::new(models.clone()).hardware(false);
    let gpu = hw.gpu.expect("the machine line names the device");
    assert!(gpu.name.contains("llvmpipe") && gpu.name.ends_with(" via Vulkan") && gpu.used, "{gpu:?}");

    // The small model and its cache fit: all of it goes.
    let (on_gpu, stats) = reply(&models, GpuLayers::Auto).await;
    let want = GpuUse { device: device.label(), layers: LAYERS, of: LAYERS };
    assert_eq!(stats.gpu.as_ref(), Some(&want), "{stats:?}");
    assert_eq!(stats.ran_on(), format!("on {}: 30/30 layers", device.label()));

    // The same greedy reply on the CPU, in the same build, compared whole. Should lavapipe's
    // arithmetic turn out to differ from the CPU's, this is where a measured tolerance goes.
    let (on_cpu, cpu_stats) = reply(&models, GpuLayers::Count(0)).await;
    assert_eq!(cpu_stats.gpu, None);
    assert_eq!(cpu_stats.ran_on(), "on CPU");
    assert_eq!(on_gpu, on_cpu, "the reply on lavapipe differs from the CPU's");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_count_of_layers_splits_the_model_between_the_device_and_the_cpu() {
    see_lavapipe();
    let (_dir, models) = installed_copy();
    let (_, stats) = reply(&models, GpuLayers::Count(10)).await;
    let gpu = stats.gpu.clone().expect("10 layers on lavapipe");
    assert_eq!((gpu.layers, gpu.of), (10, LAYERS), "{gpu:?}");
    assert!(stats.ran_on().ends_with(": 10/30 layers"), "{}", stats.ran_on());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vulkan_build_without_a_gpu_runs_on_the_cpu() {
    // lavapipe alone, not named: llama.cpp's Vulkan backend finds no GPU.
    // SAFETY: as in `see_lavapipe`.
    unsafe { std::env::remove_var("GGML_VK_VISIBLE_DEVICES") };
    assert_eq!(devices::gpu().unwrap(), None);
    let (_dir, models) = installed_copy();
    let hw = BrainConfig::new(models.clone()).hardware(false);
    assert!(hw.gpu.as_ref().is_none_or(|g| !g.used), "{:?}", hw.gpu);
    let (_, stats) = reply(&models, GpuLayers::Auto).await;
    assert_eq!(stats.gpu, None, "{stats:?}");
    assert_eq!(stats.ran_on(), "on CPU");
}
