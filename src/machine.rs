//! What this machine has shown about itself, kept in `<data-dir>/machine.json`: its measured
//! memory bandwidth and each model's measured generation speed on each device it ran on.
//!
//! Per machine, not per deployment: several servers on different hosts may share one database,
//! but each has its own data folder. The file is rewritten whole (a temporary file, then a
//! rename over the old one), under an advisory lock on `machine.json.lock` so a server and a
//! terminal recording at once do not lose each other's figures. A missing or unreadable file
//! is an empty one: everything in it can be measured again.

use crate::hardware::bandwidth;
use crate::speed::MeasuredSpeed;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's name in the data folder.
pub const FILE_NAME: &str = "machine.json";
/// Runs kept per model; the speed shown is their median, so one run on a busy machine does
/// not decide.
pub const RUNS_KEPT: usize = 5;
/// A reply shorter than this says more about the start-up than the speed: not recorded.
pub const MIN_TOKENS_TO_RECORD: u32 = 16;

/// The bandwidth measurement kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BandwidthReading {
    pub gbps: f64,
    /// Threads it was measured with; another thread setting measures again.
    pub threads: u32,
    /// How long the measurement took, in milliseconds.
    pub millis: u64,
    /// When, in Unix milliseconds.
    pub measured_at: i64,
}

/// The file's content.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineFacts {
    #[serde(default)]
    pub bandwidth: Option<BandwidthReading>,
    /// [`speed_key`] (the model, and the GPU it ran on) -> the generation tokens/s of its last
    /// [`RUNS_KEPT`] runs, oldest first.
    #[serde(default)]
    pub speeds: BTreeMap<String, Vec<f64>>,
}

impl MachineFacts {
    /// Each model's speed measured on `device` (a GPU's label, `None` for the CPU): the median
    /// of its kept runs there. A figure from another device says nothing of this one.
    pub fn measured(&self, device: Option<&str>) -> Vec<MeasuredSpeed> {
        self.speeds
            .iter()
            .filter_map(|(key, runs)| {
                let model_id = match (key.split_once(ON), device) {
                    (None, None) => key.as_str(),
                    (Some((id, on)), Some(d)) if on == d => id,
                    _ => return None,
                };
                median(runs).map(|tps| MeasuredSpeed { model_id: model_id.to_string(), tokens_per_second: tps })
            })
            .collect()
    }
}

/// Between a model id and the GPU in a speed's key. Model ids never hold it (catalog ids and
/// `hf.co/ORG/REPO:QUANT` names alike).
const ON: &str = " on ";

/// The key of `model_id`'s speeds on `device`: the id alone for the CPU (as files written before
/// the GPU builds have them), "ID on DEVICE" for a GPU.
pub fn speed_key(model_id: &str, device: Option<&str>) -> String {
    match device {
        None => model_id.to_string(),
        Some(d) => format!("{model_id}{ON}{d}"),
    }
}

fn median(runs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = runs.iter().copied().filter(|r| r.is_finite() && *r > 0.0).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// The machine file of a data folder.
pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// Reads the file; missing or unreadable is empty (logged when it was there but unreadable).
pub fn load(path: &Path) -> MachineFacts {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "machine facts unreadable; measuring again");
            MachineFacts::default()
        }),
        Err(_) => MachineFacts::default(),
    }
}

/// Reads, changes and writes the file back under its lock; returns what was written.
pub fn update(path: &Path, change: impl FnOnce(&mut MachineFacts)) -> std::io::Result<MachineFacts> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(lock_path(path))?;
    lock.lock()?;
    let mut facts = load(path);
    change(&mut facts);
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(&facts).map_err(std::io::Error::other)?)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let _ = lock.unlock();
    written.map(|()| facts)
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// The stored bandwidth for `threads`, measuring (and storing) it first when there is none,
/// it was taken with other threads, or `again` asks. A file that cannot be written still
/// gives the fresh figure (logged).
pub fn bandwidth(path: &Path, threads: u32, again: bool) -> BandwidthReading {
    let stored = load(path).bandwidth.filter(|b| b.threads == threads && b.gbps > 0.0);
    if let (Some(b), false) = (stored, again) {
        return b;
    }
    let m = bandwidth::measure(threads);
    let reading = BandwidthReading {
        // Two decimals: as precise as the measurement is, and the same after a trip through JSON.
        gbps: (m.gbps * 100.0).round() / 100.0,
        threads: m.threads,
        millis: m.elapsed.as_millis() as u64,
        measured_at: crate::time::now_ms(),
    };
    tracing::info!(gbps = reading.gbps, threads, ms = reading.millis, "measured memory bandwidth");
    if let Err(e) = update(path, |f| f.bandwidth = Some(reading.clone())) {
        tracing::warn!(path = %path.display(), error = %e, "cannot store the measured bandwidth");
    }
    reading
}

/// Measures the bandwidth for `threads` again and keeps the higher of the new and the stored
/// figure: the memory's speed does not change, while anything else running during a
/// measurement only lowers it, so the best reading seen is the machine's. Run by `serve` at
/// boot when the stored reading is an old one; `localbrain catalog --measure` replaces it
/// instead (the data folder may have moved to another machine). What is now stored.
pub fn keep_best_bandwidth(path: &Path, threads: u32) -> Option<BandwidthReading> {
    let m = bandwidth::measure(threads);
    let fresh = BandwidthReading {
        gbps: (m.gbps * 100.0).round() / 100.0,
        threads: m.threads,
        millis: m.elapsed.as_millis() as u64,
        measured_at: crate::time::now_ms(),
    };
    let kept = update(path, |f| {
        let better = f.bandwidth.as_ref().is_none_or(|b| b.threads != threads || b.gbps < fresh.gbps);
        if better {
            f.bandwidth = Some(fresh.clone());
        }
    });
    match kept {
        Ok(facts) => {
            tracing::info!(gbps = fresh.gbps, kept = ?facts.bandwidth.as_ref().map(|b| b.gbps), "measured memory bandwidth again");
            facts.bandwidth
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot store the measured bandwidth");
            None
        }
    }
}

/// Records a run of `model_id` on `device` (a GPU's label, `None` for the CPU) that generated
/// `tokens` at `tokens_per_second` (skipped when too short to say much, see
/// [`MIN_TOKENS_TO_RECORD`]). Failures are logged: a speed not kept is measured again on the
/// next run.
pub fn record_speed(path: &Path, model_id: &str, device: Option<&str>, tokens: u32, tokens_per_second: f64) {
    if tokens < MIN_TOKENS_TO_RECORD || !tokens_per_second.is_finite() || tokens_per_second <= 0.0 {
        return;
    }
    let result = update(path, |f| {
        let runs = f.speeds.entry(speed_key(model_id, device)).or_default();
        runs.push(tokens_per_second);
        let extra = runs.len().saturating_sub(RUNS_KEPT);
        runs.drain(..extra);
    });
    if let Err(e) = result {
        tracing::warn!(path = %path.display(), error = %e, model = %model_id, "cannot store the measured speed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_keep_the_last_runs_and_show_their_median() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(&dir.path().join("data"));
        assert_eq!(load(&path), MachineFacts::default());
        for tps in [10.0, 50.0, 12.0, 11.0, 9.0, 13.0] {
            record_speed(&path, "m", None, 64, tps);
        }
        record_speed(&path, "m", None, 3, 1000.0); // too short to count
        record_speed(&path, "other", None, 32, 7.5);
        let facts = load(&path);
        assert_eq!(facts.speeds["m"], vec![50.0, 12.0, 11.0, 9.0, 13.0]);
        assert_eq!(
            facts.measured(None),
            vec![
                MeasuredSpeed { model_id: "m".into(), tokens_per_second: 12.0 },
                MeasuredSpeed { model_id: "other".into(), tokens_per_second: 7.5 },
            ]
        );
        // No temporary file is left beside it.
        let names: Vec<_> =
            std::fs::read_dir(path.parent().unwrap()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}"); // machine.json and its lock

        // A damaged file reads as empty and is replaced whole by the next write.
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(load(&path), MachineFacts::default());
        record_speed(&path, "m", None, 64, 20.0);
        assert_eq!(load(&path).speeds["m"], vec![20.0]);
    }

    #[test]
    fn a_speed_counts_for_the_device_it_was_measured_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        let gpu = "Vulkan0 llvmpipe (LLVM 15.0.6, 256 bits)";
        record_speed(&path, "hf.co/org/repo:Q4_K_M", None, 64, 9.0);
        record_speed(&path, "hf.co/org/repo:Q4_K_M", Some(gpu), 64, 90.0);
        record_speed(&path, "m", Some("CUDA0 NVIDIA H200"), 64, 400.0);
        let facts = load(&path);
        let speed = |id: &str, tps| MeasuredSpeed { model_id: id.into(), tokens_per_second: tps };
        assert_eq!(facts.measured(None), vec![speed("hf.co/org/repo:Q4_K_M", 9.0)]);
        assert_eq!(facts.measured(Some(gpu)), vec![speed("hf.co/org/repo:Q4_K_M", 90.0)]);
        assert_eq!(facts.measured(Some("CUDA0 NVIDIA H200")), vec![speed("m", 400.0)]);
        assert_eq!(facts.measured(Some("Metal0 Apple M3")), vec![]);
    }

    #[test]
    fn bandwidth_is_measured_once_per_thread_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        let first = bandwidth(&path, 1, false);
        assert!(first.gbps > 0.0 && first.millis < 2000, "{first:?}");
        assert_eq!(bandwidth(&path, 1, false), first, "stored, not measured again");
        assert_eq!(load(&path).bandwidth, Some(first.clone()));
        let again = bandwidth(&path, 1, true);
        assert_ne!(again.measured_at, 0);
        assert_eq!(load(&path).bandwidth, Some(again));
        assert_eq!(bandwidth(&path, 2, false).threads, 2);
    }

    #[test]
    fn measuring_again_at_boot_keeps_the_best_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(dir.path());
        // A reading taken while the machine was busy, far below anything real.
        let busy = BandwidthReading { gbps: 0.01, threads: 1, millis: 300, measured_at: 1 };
        update(&path, |f| f.bandwidth = Some(busy.clone())).unwrap();
        let kept = keep_best_bandwidth(&path, 1).unwrap();
        assert!(kept.gbps > busy.gbps, "{kept:?}");
        assert_eq!(load(&path).bandwidth, Some(kept.clone()));
        // A reading far above anything real stays: a new, lower one does not replace it.
        let high = BandwidthReading { gbps: 1.0e6, ..kept };
        update(&path, |f| f.bandwidth = Some(high.clone())).unwrap();
        assert_eq!(keep_best_bandwidth(&path, 1), Some(high));
    }
}
