//! `localbrain catalog`: every model, how it fits this machine, and the pick.

use crate::cli::Config;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use localbrain::catalog::Catalog;
use localbrain::recommend::{Fit, ram_needed_bytes, recommend};
use localbrain::units::{format_bytes, format_ram};

/// Prints the table.
pub fn run(config: &Config) -> anyhow::Result<()> {
    let catalog = Catalog::load(config.catalog.as_deref())?;
    let hw = localbrain::hardware::detect(&config.models_dir);
    let rec = recommend(&catalog.models, &hw);
    println!(
        "This machine: {} RAM, {} free disk in {}",
        hw.total_ram_bytes.map_or("unknown".into(), format_ram),
        hw.free_disk_bytes.map_or("unknown".into(), format_bytes),
        config.models_dir.display()
    );
    if let Some(proxy) = &hw.proxy {
        println!("Proxy for downloads: {proxy}");
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header(["", "model", "size", "RAM needed", "fit"]);
    for (m, fit) in catalog.models.iter().zip(&rec.fits) {
        let mark = if rec.model_id.as_deref() == Some(m.id.as_str()) { "*" } else { "" };
        let verdict = match fit.fit {
            Fit::Fits => "fits".to_string(),
            _ => fit.reason.clone(),
        };
        table.add_row([
            mark.to_string(),
            m.id.clone(),
            format_bytes(m.size_bytes),
            format_ram(ram_needed_bytes(m)),
            verdict,
        ]);
    }
    println!("{table}");
    match &rec.model_id {
        Some(id) => println!("* Recommended: {id} ({})", rec.reason),
        None => println!("{}", rec.reason),
    }
    Ok(())
}
