//! `localbrain catalog`: this machine, every model with how it fits and how fast it would
//! write here, and the pick.

use crate::cli::Config;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use localbrain::brain::BrainConfig;
use localbrain::catalog::Catalog;
use localbrain::hardware::HardwareProfile;
use localbrain::memory_rule::ram_needed_bytes;
use localbrain::recommend::{Fit, recommend_with};
use localbrain::speed::tokens_per_second;
use localbrain::units::{format_bytes, format_ram};

/// Prints the machine, the table and the pick. `measure` measures the memory speed again.
pub fn run(config: &Config, brain: &BrainConfig, measure: bool) -> anyhow::Result<()> {
    let catalog = Catalog::load(config.catalog.as_deref())?;
    let hw = brain.hardware(measure);
    let rec = recommend_with(&catalog.models, &hw, &brain.speed_inputs());
    for line in machine_lines(&hw) {
        println!("{line}");
    }
    println!(
        "Free disk: {} in {}",
        hw.free_disk_bytes.map_or("unknown".into(), format_bytes),
        config.models_dir.display()
    );
    if let Some(proxy) = &hw.proxy {
        println!("Proxy for downloads: {proxy}");
    }
    println!(
        "Replies at once: {} (--parallel; fewer if the free memory cannot hold that many contexts when a model loads)",
        brain.parallel
    );
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header(["", "model", "size", "RAM needed", "speed here", "fit"]);
    for (m, fit) in catalog.models.iter().zip(&rec.fits) {
        let mark = if rec.model_id.as_deref() == Some(m.id.as_str()) { "*" } else { "" };
        let verdict = match fit.fit {
            Fit::Fits if fit.slow => "fits, slow here".to_string(),
            Fit::Fits => "fits".to_string(),
            _ => fit.reason.clone(),
        };
        let speed = match &fit.speed {
            _ if !m.purpose.is_chat() => "embeddings only".to_string(),
            Some(s) => s.words(),
            None => "unknown".to_string(),
        };
        table.add_row([
            mark.to_string(),
            m.id.clone(),
            format_bytes(m.size_bytes),
            format_ram(ram_needed_bytes(m)),
            speed,
            verdict,
        ]);
    }
    println!("{table}");
    match &rec.model_id {
        Some(id) => println!("* Recommended: {id} ({})", rec.reason),
        None => println!("{}", rec.reason),
    }
    if let Some(id) = &rec.embedding_id {
        println!("For search over documents (/v1/embeddings): {id}");
    }
    println!(
        "Speeds marked ~ are predictions from the memory speed; \"measured\" ones come from replies on this \
         machine. Below {} counts as slow (--usable-speed).",
        tokens_per_second(brain.usable_tokens_per_second)
    );
    Ok(())
}

/// "This machine: 24 GB RAM; Intel Xeon, 2 cores, AVX-512; memory reads at 14.2 GB/s (1
/// thread); GPU: none seen", over lines people can scan.
pub fn machine_lines(hw: &HardwareProfile) -> Vec<String> {
    let cpu = format!(
        "{}, {} cores, {}",
        hw.cpu_model.as_deref().unwrap_or("unknown CPU"),
        hw.cpu_cores.map_or("?".to_string(), |c| c.to_string()),
        hw.simd.map_or("SIMD unknown", |s| s.label())
    );
    let bandwidth = match (hw.memory_bandwidth_gbps, hw.threads) {
        (Some(g), Some(t)) => format!("{g:.1} GB/s (measured, {t} thread{})", if t == 1 { "" } else { "s" }),
        (Some(g), None) => format!("{g:.1} GB/s (measured)"),
        (None, _) => "not measured".to_string(),
    };
    let gpu = match &hw.gpu {
        None => "none seen".to_string(),
        Some(g) => {
            let memory = g.memory_bytes.map(|b| format!(", {}", format_ram(b))).unwrap_or_default();
            let shared = if g.unified { " shared with the CPU" } else { "" };
            let used = if g.used { " (models run on it)" } else { " (not used: models run on the CPU)" };
            format!("{}{memory}{shared}{used}", g.name)
        }
    };
    vec![
        format!("This machine: {} RAM", hw.total_ram_bytes.map_or("unknown".into(), format_ram)),
        format!("CPU: {cpu}"),
        format!("Memory speed: {bandwidth}"),
        format!("GPU: {gpu}"),
    ]
}
