//! The CPU's model name and SIMD level, read from the CPU itself (cpuid on x86) or the OS.

use super::Simd;

/// The CPU's model name as the OS reports it; `None` when it reports none.
pub fn model() -> Option<String> {
    use sysinfo::{CpuRefreshKind, RefreshKind, System};
    let system = System::new_with_specifics(RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing())).ok()?;
    let brand = system.cpus().first()?.brand().trim().to_string();
    (!brand.is_empty()).then_some(brand)
}

/// The widest SIMD level this CPU runs.
pub fn simd() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            Simd::Avx512
        } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            Simd::Avx2
        } else {
            Simd::Basic
        }
    }
    // NEON is part of the 64-bit ARM baseline.
    #[cfg(target_arch = "aarch64")]
    {
        Simd::Neon
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        Simd::Basic
    }
}
