//! A GPU that could hold a model: an NVIDIA card (the driver's `/proc/driver/nvidia`, and
//! `nvidia-smi` for its memory when installed), or Apple silicon's GPU, which shares the RAM.
//! `None` when none is seen. Whether localbrain uses it is a property of its llama.cpp build,
//! which only the brain knows: [`detect`] leaves `used` false for the brain to fill.

use super::Gpu;
use std::path::Path;
use std::time::Duration;

/// The GPU this machine shows, if any. `cpu_model` and `total_ram` identify Apple silicon,
/// whose GPU memory is the machine's RAM.
pub fn detect(cpu_model: Option<&str>, total_ram: Option<u64>) -> Option<Gpu> {
    if cfg!(target_os = "macos") && cpu_model.is_some_and(|m| m.starts_with("Apple")) {
        let name = format!("{} GPU", cpu_model.unwrap_or("Apple"));
        return Some(Gpu { name, memory_bytes: total_ram, unified: true, used: false });
    }
    let (name, memory_bytes) = match nvidia_smi() {
        Some(found) => found,
        None => (proc_nvidia_name(Path::new("/proc/driver/nvidia/gpus"))?, None),
    };
    Some(Gpu { name, memory_bytes, unified: false, used: false })
}

/// The first card's "Model:" line in the driver's per-GPU `information` files.
fn proc_nvidia_name(gpus: &Path) -> Option<String> {
    let mut dirs: Vec<_> = std::fs::read_dir(gpus).ok()?.flatten().map(|e| e.path()).collect();
    dirs.sort();
    dirs.iter().find_map(|dir| {
        let text = std::fs::read_to_string(dir.join("information")).ok()?;
        text.lines().find_map(|l| l.strip_prefix("Model:").map(|m| m.trim().to_string())).filter(|m| !m.is_empty())
    })
}

/// (name, memory) of the first card from `nvidia-smi`, when it is installed and answers within
/// two seconds (a wedged driver must not hold up the catalog).
fn nvidia_smi() -> Option<(String, Option<u64>)> {
    let mut child = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,memory.total", "--format=csv,noheader,nounits"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut out).ok()?;
    parse_nvidia_smi(&out)
}

/// "NVIDIA GeForce RTX 4090, 24564" (MiB) -> the name and bytes of the first line.
fn parse_nvidia_smi(out: &str) -> Option<(String, Option<u64>)> {
    let line = out.lines().find(|l| !l.trim().is_empty())?;
    let (name, mib) = line.rsplit_once(',').unwrap_or((line, ""));
    let name = name.trim();
    (!name.is_empty()).then(|| (name.to_string(), mib.trim().parse::<u64>().ok().map(|m| m << 20)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nvidia_smi_and_the_driver_files() {
        assert_eq!(
            parse_nvidia_smi("NVIDIA GeForce RTX 4090, 24564\nNVIDIA GeForce RTX 4090, 24564\n"),
            Some(("NVIDIA GeForce RTX 4090".into(), Some(24_564 << 20)))
        );
        assert_eq!(parse_nvidia_smi("Tesla T4, [N/A]"), Some(("Tesla T4".into(), None)));
        assert_eq!(parse_nvidia_smi("\n"), None);

        let dir = tempfile::tempdir().unwrap();
        let gpu = dir.path().join("0000:01:00.0");
        std::fs::create_dir(&gpu).unwrap();
        std::fs::write(gpu.join("information"), "Model: \t\t NVIDIA A10\nIRQ:   42\n").unwrap();
        assert_eq!(proc_nvidia_name(dir.path()).as_deref(), Some("NVIDIA A10"));
        assert_eq!(proc_nvidia_name(&dir.path().join("missing")), None);
    }
}
