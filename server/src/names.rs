//! How the terminal's commands read a model's name: a catalog id as it is; a Hugging Face
//! reference resolved through the hub (`download`) or, offline, among the hub models this data
//! folder already knows (`run`, `rm`).

use crate::cli::Config;
use anyhow::{Context, bail};
use localbrain::engine::Engine;
use localbrain::hub::client::Hub;
use localbrain::hub::settings::HubSettings;
use localbrain::hub::shelf::{self, Named};
use localbrain::units::format_bytes;

/// The model id to download for `text`: a hub reference is resolved (pinned to the repo's commit,
/// its header and the hub's headers checked) and kept, and the terminal says what was picked.
pub async fn to_download(config: &Config, engine: &Engine, text: &str) -> anyhow::Result<String> {
    let settings = settings(engine);
    let r = match shelf::name(text, settings)? {
        Named::Id(id) => return Ok(id),
        Named::Hub(r) => r,
    };
    let brain = crate::brain_config(config);
    let speed = brain.speed_inputs();
    let hw = tokio::task::spawn_blocking(move || brain.hardware(false)).await.context("cannot look at this machine")?;
    eprintln!("Looking up {} on {} ...", r.display(), settings.host());
    let hub = Hub::new(settings.clone());
    let adopted = shelf::adopt(engine.db(), engine.catalog(), &hub, &r, &hw, &speed).await?;
    match &adopted.resolved {
        Some(res) => {
            let row = &res.row;
            eprintln!(
                "{}: {} ({}, {}) at commit {}; license {}",
                row.repo,
                row.file_path,
                format_bytes(row.entry.size_bytes),
                res.repo.reason,
                &row.revision[..12],
                row.entry.license
            );
        }
        None => eprintln!("Hugging Face is out of reach: using {} as known here", adopted.model_id),
    }
    Ok(adopted.model_id)
}

/// The installed model `text` names, without the network: a catalog id as it is, or the hub model
/// a reference was downloaded as.
pub fn installed(engine: &Engine, text: &str) -> anyhow::Result<String> {
    let settings = settings(engine);
    match shelf::local_id(engine.catalog(), settings, text)? {
        Some(id) => Ok(id),
        None => bail!("{} is not on this machine: run `localbrain download {}` first", text.trim(), text.trim()),
    }
}

fn settings(engine: &Engine) -> &HubSettings {
    engine.config().hub.as_ref().expect("`open` always sets the hub's settings")
}
