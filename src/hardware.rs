//! What the machine offers a model: RAM, CPU (model, cores, SIMD level), memory bandwidth, a
//! GPU if one can be seen, and free disk in the models folder.
//!
//! The server fills the profile with [`detect`] (the model runs on the server's machine); the
//! browser adds `navigator.deviceMemory` where it has one. Every figure is optional: a missing
//! reading is `None`, never a guess, and the recommendation says when it had to do without.
//! Bytes are `u64` (no `usize` on the wire). The proxy in use is shown with the machine's facts
//! because it decides whether a download can reach its host at all.
//!
//! The memory bandwidth is measured ([`bandwidth`]), not read: [`detect`] leaves it `None` and
//! the caller fills it from the data folder's `machine.json` ([`crate::machine`]), where one
//! short measurement is kept per machine.

#[cfg(feature = "ssr")]
pub mod bandwidth;
#[cfg(feature = "ssr")]
mod cpu;
#[cfg(feature = "ssr")]
mod gpu;

use serde::{Deserialize, Serialize};

/// The widest vector instructions the CPU has: prompt reading is compute work, and these set
/// how much of it one core does per cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Simd {
    /// x86-64 with AVX-512 (also has AVX2).
    Avx512,
    /// x86-64 with AVX2 and FMA.
    Avx2,
    /// 64-bit ARM (Apple silicon, Graviton, Raspberry Pi 4 and later).
    Neon,
    /// Nothing wider than SSE4 (old or low-power x86).
    Basic,
}

impl Simd {
    /// The name people look up: "AVX-512", "AVX2", "NEON", "basic".
    pub fn label(self) -> &'static str {
        match self {
            Simd::Avx512 => "AVX-512",
            Simd::Avx2 => "AVX2",
            Simd::Neon => "NEON",
            Simd::Basic => "basic",
        }
    }
}

/// A graphics card (or Apple's GPU) that could hold a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gpu {
    /// The name the driver reports, e.g. "NVIDIA GeForce RTX 4090", "Apple M2 GPU".
    pub name: String,
    /// Its own memory in bytes; for unified memory, the machine's RAM. `None` when not reported.
    pub memory_bytes: Option<u64>,
    /// Shares the machine's RAM (Apple silicon) instead of having its own.
    pub unified: bool,
    /// Whether this build of localbrain runs models on it (llama.cpp built with a GPU backend).
    /// A card that is seen but not used is shown, and the speeds stay the CPU's.
    pub used: bool,
}

/// The machine as the recommendation sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HardwareProfile {
    /// Installed RAM the server may use, in bytes (capped by a cgroup memory limit, if any).
    pub total_ram_bytes: Option<u64>,
    /// RAM free for new work right now, in bytes. Shown beside the total; the fit uses the
    /// total, because what is free swings with whatever else runs and the pick should not.
    pub available_ram_bytes: Option<u64>,
    /// CPU cores the server can run a model on (physical cores, capped by the CPUs this
    /// process may use).
    pub cpu_cores: Option<u32>,
    /// Free bytes for an unprivileged user on the models folder's filesystem.
    pub free_disk_bytes: Option<u64>,
    /// The browser's `navigator.deviceMemory` in GB (a power of two, rounded down and capped
    /// by the browser); `None` on the server and in browsers without it (Firefox, Safari).
    pub device_memory_gb: Option<f64>,
    /// The CPU's model name, e.g. "Intel(R) Xeon(R) Processor".
    #[serde(default)]
    pub cpu_model: Option<String>,
    /// The widest SIMD instructions the CPU has.
    #[serde(default)]
    pub simd: Option<Simd>,
    /// CPU threads a reply is generated with (and the bandwidth was measured with).
    #[serde(default)]
    pub threads: Option<u32>,
    /// Memory read bandwidth measured with `threads` threads, in GB/s (10^9 bytes per second).
    #[serde(default)]
    pub memory_bandwidth_gbps: Option<f64>,
    /// A GPU, where one can be seen; `None` is "none seen" on the server.
    #[serde(default)]
    pub gpu: Option<Gpu>,
    /// The proxy downloads go through (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`),
    /// password hidden: `http://user:***@proxy:3128`; `None` when no proxy is set.
    pub proxy: Option<String>,
}

/// Reads this machine's RAM, cores and the free disk of `models_dir` (or of its nearest
/// existing ancestor, since the folder may not exist before the first download).
///
/// `device_memory_gb` is left `None`: only the browser can fill it; `threads`,
/// `memory_bandwidth_gbps`, the GPU's `used` and `proxy` are the caller's to fill (the
/// configured threads, the stored measurement, what its llama.cpp build can offload, the proxy
/// its downloads use). Does a few small blocking reads of kernel files (and runs `nvidia-smi`
/// when it is installed); call it from `spawn_blocking` in async code.
#[cfg(feature = "ssr")]
pub fn detect(models_dir: &std::path::Path) -> HardwareProfile {
    let (total_ram_bytes, available_ram_bytes) = memory();
    let cpu_model = cpu::model();
    HardwareProfile {
        total_ram_bytes,
        available_ram_bytes,
        cpu_cores: cpu_cores(),
        free_disk_bytes: crate::disk::free_space(models_dir).ok(),
        device_memory_gb: None,
        gpu: gpu::detect(cpu_model.as_deref(), total_ram_bytes),
        cpu_model,
        simd: Some(cpu::simd()),
        threads: None,
        memory_bandwidth_gbps: None,
        proxy: None,
    }
}

/// (total, available) RAM in bytes, each capped by a cgroup memory limit if there is one.
/// The brain asks this before it loads a model.
#[cfg(feature = "ssr")]
pub fn memory() -> (Option<u64>, Option<u64>) {
    use sysinfo::{MemoryRefreshKind, RefreshKind, System};

    let system =
        System::new_with_specifics(RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram())).ok();
    // In a container the host's RAM is not ours to use: the cgroup limit is the real ceiling.
    let cgroup = system.as_ref().and_then(System::cgroup_limits);
    let total_ram_bytes = system
        .as_ref()
        .map(System::total_memory)
        .map(|t| cgroup.as_ref().map_or(t, |c| t.min(c.total_memory)))
        .filter(|t| *t > 0);
    let available_ram_bytes = system
        .as_ref()
        .map(System::available_memory)
        .map(|a| cgroup.as_ref().map_or(a, |c| a.min(c.free_memory)))
        .filter(|_| total_ram_bytes.is_some());

    (total_ram_bytes, available_ram_bytes)
}

/// Physical cores (what llama.cpp sizes its threads by), capped by the CPUs this process may
/// use (affinity, cgroup CPU quota), whichever is known.
#[cfg(feature = "ssr")]
pub fn cpu_cores() -> Option<u32> {
    let physical = sysinfo::System::physical_core_count().ok().filter(|n| *n > 0);
    let allowed = std::thread::available_parallelism().ok().map(usize::from);
    let cores = match (physical, allowed) {
        (Some(p), Some(a)) => Some(p.min(a)),
        (p, a) => p.or(a),
    };
    cores.map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "ssr")]
    #[test]
    fn detect_reads_ram_cores_and_disk_on_this_machine() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            dir.path().to_path_buf(),
            // Not created yet: the nearest existing ancestor answers.
            dir.path().join("models/not/yet"),
            std::path::PathBuf::from("relative/models/dir"),
        ];
        for models_dir in cases {
            let hw = detect(&models_dir);
            let total = hw.total_ram_bytes.expect("total RAM");
            assert!(total > 64 << 20, "{total}");
            let available = hw.available_ram_bytes.expect("available RAM");
            assert!(available <= total, "{available} <= {total}");
            assert!(hw.cpu_cores.expect("cores") >= 1);
            assert!(hw.free_disk_bytes.is_some(), "{}", models_dir.display());
            assert_eq!(hw.device_memory_gb, None);
            assert!(hw.cpu_model.as_deref().is_some_and(|m| !m.is_empty()), "{:?}", hw.cpu_model);
            assert!(hw.simd.is_some());
        }
    }

    #[test]
    fn profile_round_trips_as_json_with_nulls() {
        let hw = HardwareProfile { device_memory_gb: Some(8.0), ..Default::default() };
        let json = serde_json::to_string(&hw).unwrap();
        assert_eq!(
            json,
            r#"{"total_ram_bytes":null,"available_ram_bytes":null,"cpu_cores":null,"free_disk_bytes":null,"device_memory_gb":8.0,"cpu_model":null,"simd":null,"threads":null,"memory_bandwidth_gbps":null,"gpu":null,"proxy":null}"#
        );
        assert_eq!(serde_json::from_str::<HardwareProfile>(&json).unwrap(), hw);
        // A profile from before the CPU, bandwidth and GPU fields still reads.
        let old = r#"{"total_ram_bytes":1,"available_ram_bytes":null,"cpu_cores":2,"free_disk_bytes":null,"device_memory_gb":null,"proxy":null}"#;
        let read = serde_json::from_str::<HardwareProfile>(old).unwrap();
        assert_eq!((read.cpu_cores, read.simd, read.gpu), (Some(2), None, None));
        assert_eq!(serde_json::to_string(&Simd::Avx512).unwrap(), r#""avx512""#);
    }
}
