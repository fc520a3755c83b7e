//! `localbrain catalog`: this machine, every model with how it fits and how fast it would
//! write here, and the pick; `localbrain catalog hf.co/ORG/REPO`: the same for every quant of a
//! Hugging Face repo, as the card lists them.

use crate::cli::Config;
use anyhow::{Context, bail};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use localbrain::brain::BrainConfig;
use localbrain::catalog::{Catalog, ModelEntry};
use localbrain::hardware::HardwareProfile;
use localbrain::hub::client::Hub;
use localbrain::hub::reference::Pick;
use localbrain::hub::settings::HubSettings;
use localbrain::hub::shelf::{self, Named};
use localbrain::memory_rule::ram_needed_bytes;
use localbrain::recommend::{Fit, ModelFit, recommend_with};
use localbrain::speed::tokens_per_second;
use localbrain::units::{format_bytes, format_ram};

/// Prints the machine, the table (the shipped models, then the Hugging Face ones kept) and the
/// pick, as the card shows them. `measure` measures the memory speed again.
pub fn run(config: &Config, brain: &BrainConfig, catalog: &Catalog, measure: bool) -> anyhow::Result<()> {
    let models = catalog.all();
    let hw = brain.hardware(measure);
    let rec = recommend_with(&models, &hw, &brain.speed_inputs());
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
    for (m, fit) in models.iter().zip(&rec.fits) {
        let mark = if rec.model_id.as_deref() == Some(m.id.as_str()) { "*" } else { "" };
        let speed = if m.purpose.is_chat() { speed_words(fit) } else { "embeddings only".to_string() };
        table.add_row([
            mark.to_string(),
            m.id.clone(),
            format_bytes(m.size_bytes),
            format_ram(ram_needed_bytes(m)),
            speed,
            verdict(fit),
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
    speeds_footnote(brain);
    Ok(())
}

/// Prints this machine and every quant of the Hugging Face repo `text` names, each with its size,
/// the memory it needs, its speed here and its fit, the pick marked, and how to download it. The
/// quants, the pick and its words are the card's (`localbrain::hub::resolve`); no model byte is
/// downloaded (only the header of the file picked, to check that it can run here).
pub async fn hub_repo(brain: &BrainConfig, measure: bool, text: &str) -> anyhow::Result<()> {
    let settings = HubSettings::from_env()?;
    let mut r = match shelf::name(text, &settings)? {
        Named::Hub(r) => r,
        Named::Id(id) => bail!(
            "{id:?} is not a Hugging Face model: give hf.co/ORG/REPO (`localbrain catalog` alone lists the catalog's models)"
        ),
    };
    // Every quant is listed whatever the reference named: the pick is the machine's.
    r.pick = Pick::Best;
    let (b, speed) = (brain.clone(), brain.speed_inputs());
    let hw = tokio::task::spawn_blocking(move || b.hardware(measure)).await.context("cannot look at this machine")?;
    for line in machine_lines(&hw) {
        println!("{line}");
    }
    eprintln!("Looking up {} on {} ...", r.display(), settings.host());
    let hub = Hub::new(settings);
    let resolved = localbrain::hub::resolve::resolve(&hub, &r, &hw, &speed).await?;
    let repo = &resolved.repo;
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header(["", "quant", "file", "size", "RAM needed", "speed here", "fit"]);
    // The repo's quants are one model: they differ in size only, which the memory rule counts.
    let needed = |size_bytes| ram_needed_bytes(&ModelEntry { size_bytes, ..resolved.row.entry.clone() });
    for q in &repo.quants {
        table.add_row([
            if q.picked { "*" } else { "" }.to_string(),
            q.quant.clone(),
            q.file.clone(),
            format_bytes(q.size_bytes),
            format_ram(needed(q.size_bytes)),
            speed_words(&q.fit),
            verdict(&q.fit),
        ]);
    }
    println!(
        "{} at commit {}; license {}",
        repo.repo,
        &repo.revision[..12],
        repo.license.as_deref().unwrap_or("not given")
    );
    println!("{table}");
    println!("* Picked: {}", repo.reason);
    if let Some(q) = repo.quants.iter().find(|q| q.picked) {
        println!("Download it with: localbrain download hf.co/{}:{}", repo.repo, q.quant);
    }
    println!("The model's page: {}", repo.card_url);
    speeds_footnote(brain);
    Ok(())
}

/// A model's fit in the table's words.
fn verdict(fit: &ModelFit) -> String {
    match fit.fit {
        Fit::Fits if fit.slow => "fits, slow here".to_string(),
        Fit::Fits => "fits".to_string(),
        _ => fit.reason.clone(),
    }
}

fn speed_words(fit: &ModelFit) -> String {
    fit.speed.as_ref().map_or("unknown".to_string(), |s| s.words())
}

fn speeds_footnote(brain: &BrainConfig) {
    println!(
        "Speeds marked ~ are predictions from the memory speed; \"measured\" ones come from replies on this \
         machine. Below {} counts as slow (--usable-speed).",
        tokens_per_second(brain.usable_tokens_per_second)
    );
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
