//! The devices llama.cpp can run a model on, as its backends list them (name, memory, kind),
//! instead of guessing from the driver's files: a CPU build lists the CPU alone, a Vulkan or
//! CUDA build every card its backend sees.

use super::runtime::{RuntimeError, backend};
use llama_cpp_2::LlamaBackendDeviceType;

/// One device of llama.cpp's list.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    /// llama.cpp's name for it, e.g. "Vulkan0", "CUDA0", "CPU".
    pub name: String,
    /// The card, e.g. "NVIDIA H200", "llvmpipe (LLVM 15.0.6, 256 bits)".
    pub description: String,
    /// The backend, e.g. "Vulkan", "CUDA".
    pub backend: String,
    pub memory_total: u64,
    pub memory_free: u64,
    /// Its own memory (a card) or the machine's (an integrated GPU, Apple silicon).
    pub integrated: bool,
}

impl Device {
    /// "Vulkan0 NVIDIA H200": how logs and the card name it.
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.description)
    }
}

/// The GPU llama.cpp would run a model on: the first discrete GPU, else the first integrated
/// one. `None` on a CPU build, or when the backend sees no GPU (a Vulkan build on a machine
/// without one falls back to the CPU).
pub fn gpu() -> Result<Option<Device>, RuntimeError> {
    backend()?;
    let devices = llama_cpp_2::list_llama_ggml_backend_devices();
    let pick = |kind| devices.iter().find(|d| d.device_type == kind);
    Ok(pick(LlamaBackendDeviceType::Gpu).map(|d| device(d, false)).or_else(|| {
        // Apple's Metal device reports the shared RAM; llama.cpp types it as a GPU or an iGPU.
        pick(LlamaBackendDeviceType::IntegratedGpu).map(|d| device(d, true))
    }))
}

fn device(d: &llama_cpp_2::LlamaBackendDevice, integrated: bool) -> Device {
    Device {
        name: d.name.clone(),
        description: d.description.clone(),
        backend: d.backend.clone(),
        memory_total: d.memory_total as u64,
        memory_free: d.memory_free as u64,
        integrated: integrated || cfg!(target_os = "macos"),
    }
}
