//! The Local AI brain card: this machine, the recommended model (with a select to override it),
//! and the download with its progress and the buttons its status allows (DESIGN.md's table).
//!
//! The first render comes from the server with the real state; after hydration the card polls
//! the download once a second while it is active, and stops when it is not, or when the card
//! goes away.

pub(crate) mod browser;
mod chat;
pub mod format;
mod hub_search;
mod panel;

use crate::api::{self, ApiError};
use chat::TryIt;
use hub_search::HubSearch;
use leptos::prelude::*;
use leptos::task::spawn_local;
use localbrain::catalog::ModelEntry;
use localbrain::chat::BrainView;
use localbrain::hardware::HardwareProfile;
use localbrain::memory_rule::ram_needed_bytes;
use localbrain::recommend::{Fit, recommend_with};
use localbrain::status::DownloadStatus;
use localbrain::units::{format_bytes, format_ram};
use localbrain::view::{CatalogView, DownloadView, PauseReason};
use panel::DownloadPanel;

/// The card, loading its data on the server for the first render.
#[component]
pub fn LocalBrainCard() -> impl IntoView {
    let data = Resource::new(
        || (),
        |_| async move {
            let catalog = api::catalog().await?;
            let downloads = api::list_downloads().await?;
            let brain = api::brain_status().await?;
            let chats = api::recent_chats().await?;
            Ok::<_, ApiError>((catalog, downloads, brain, chats))
        },
    );
    view! {
        <section class="card" aria-labelledby="local-brain-title">
            <h2 id="local-brain-title">"Local AI brain"</h2>
            <p class="card-lead">
                "A private AI model that runs on this machine, offline. No account, no fees."
            </p>
            <Suspense fallback=|| view! { <p class="muted">"Looking at this machine…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok((catalog, downloads, brain, chats)) => view! { <CardBody catalog downloads brain chats/> }.into_any(),
                        Err(e) => view! { <p class="signin" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The download the card shows first: an open one, else a just-finished one.
fn shown_download(downloads: &[DownloadView]) -> Option<DownloadView> {
    downloads
        .iter()
        .find(|d| !d.status.is_terminal())
        .or_else(|| downloads.first().filter(|d| d.status == DownloadStatus::Complete))
        .cloned()
}

#[component]
fn CardBody(
    catalog: CatalogView,
    downloads: Vec<DownloadView>,
    brain: BrainView,
    chats: api::ChatsView,
) -> impl IntoView {
    let CatalogView { models, hardware, recommendation: server_rec, speed, models_dir: _ } = catalog;
    let models = StoredValue::new(models);
    let current = RwSignal::new(shown_download(&downloads));
    let busy = RwSignal::new(false);
    let toast = RwSignal::new(None::<String>);
    let brain = RwSignal::new(brain);

    // "Models on this machine" (below the card): a finished download here refreshes it; a
    // download started there shows here, and a delete there re-reads this download and the brain.
    let bus = use_context::<crate::models::ModelsBus>();
    if let Some(bus) = bus {
        Effect::new(move |_| {
            if let Some(d) = bus.started.get() {
                current.set(Some(d));
            }
        });
        Effect::new(move |prev: Option<u64>| {
            let n = bus.removed.get();
            if prev.is_some() {
                spawn_local(async move {
                    if let Some(id) = current.with_untracked(|c| c.as_ref().map(|d| d.id))
                        && let Ok(v) = api::get_download(id).await
                    {
                        let _ = current.try_set(Some(v));
                    }
                    if let Ok(view) = api::brain_status().await {
                        let _ = brain.try_set(view);
                    }
                });
            }
            n
        });
    }

    // The list below shows unfinished downloads and installed models: it reloads whenever the
    // card's download starts, stops, fails or finishes.
    if let Some(bus) = bus {
        Effect::new(move |was: Option<Option<(i64, DownloadStatus)>>| {
            let now = current.with(|c| c.as_ref().map(|d| (d.id, d.status)));
            if was.is_some_and(|w| w != now) {
                bus.changed.update(|n| *n += 1);
            }
            now
        });
    }

    // A download that just installed a model makes it available to chat with.
    Effect::new(move |was_complete: Option<bool>| {
        let complete = current.with(|c| c.as_ref().is_some_and(|d| d.status == DownloadStatus::Complete));
        if complete && was_complete == Some(false) {
            spawn_local(async move {
                if let Ok(view) = api::brain_status().await {
                    let _ = brain.try_set(view);
                }
            });
        }
        complete
    });

    // The browser's memory reading arrives after hydration; the server's RAM still decides
    // where it is known, so the first render and the hydrated one agree.
    let device_memory = RwSignal::new(None::<f64>);
    Effect::new(move |_| device_memory.set(browser::device_memory_gb()));
    let hw = hardware.clone();
    let rec = Memo::new(move |_| {
        let mut hw = hw.clone();
        hw.device_memory_gb = device_memory.get();
        models.with_value(|m| recommend_with(m, &hw, &speed))
    });
    let initial = current
        .get_untracked()
        .map(|d| d.model_id)
        .or(server_rec.model_id.clone())
        .or_else(|| models.with_value(|m| m.first().map(|m| m.id.clone())))
        .unwrap_or_default();
    let selected = RwSignal::new(initial);

    // Once a second while active; dropping the ticker stops it (also when the card unmounts).
    let ticker = StoredValue::new(None::<(i64, browser::Ticker)>);
    Effect::new(move |_| {
        let active = current.with(|c| c.as_ref().filter(|d| d.status.is_active()).map(|d| d.id));
        match active {
            Some(id) if ticker.with_value(|t| t.as_ref().map(|(i, _)| *i)) != Some(id) => {
                let tick = browser::Ticker::every(1000, move || {
                    spawn_local(async move {
                        if let Ok(v) = api::get_download(id).await {
                            // A poll that lands after a button changed the download (a cancel
                            // that cleared the card, another download started) is stale.
                            let _ = current.try_update(|c| {
                                if c.as_ref().is_some_and(|d| d.id == id && d.status.is_active()) {
                                    *c = (v.status != DownloadStatus::Cancelled).then_some(v);
                                }
                            });
                        }
                    })
                });
                ticker.set_value(Some((id, tick)));
            }
            Some(_) => {}
            None => ticker.set_value(None),
        }
    });
    on_cleanup(move || {
        let _ = ticker.try_set_value(None);
    });

    let act = Callback::new(move |op: Op| {
        busy.set(true);
        spawn_local(async move {
            let result = match op {
                Op::Start(model_id) => api::start_download(model_id).await,
                Op::Pause(id) => api::pause_download(id).await,
                Op::Resume(id) => api::resume_download(id).await,
                Op::Cancel(id) => api::cancel_download(id).await,
                Op::TryNow(id) => api::try_download_now(id).await,
            };
            let _ = busy.try_set(false);
            match result {
                Ok(v) if v.status == DownloadStatus::Cancelled => {
                    let _ = current.try_set(None);
                }
                Ok(v) => {
                    let unknown = models.try_with_value(|m| !m.iter().any(|m| m.id == v.model_id)).unwrap_or(false);
                    let _ = current.try_set(Some(v));
                    // A Hugging Face model just resolved: its name comes with the catalog.
                    if unknown && let Ok(c) = api::catalog().await {
                        let _ = models.try_set_value(c.models);
                    }
                }
                Err(e) => {
                    let _ = toast.try_set(Some(e.to_string()));
                }
            }
        });
    });

    let model_name = move |id: &str| {
        models.with_value(|m| m.iter().find(|m| m.id == id).map(|m| m.name.clone()).unwrap_or_else(|| id.to_string()))
    };
    let restart_banner = move || {
        current.with(|c| {
            c.as_ref()
                .filter(|d| d.status == DownloadStatus::Paused && d.paused_by == Some(PauseReason::Restart))
                .map(|d| (d.id, model_name(&d.model_id)))
        })
    };

    view! {
        {move || restart_banner().map(|(id, name)| view! {
            <div class="banner" role="status">
                <span>{format!("Your download of {name} was paused when localbrain restarted.")}</span>
                <button class="btn btn-primary" disabled=move || busy.get()
                    on:click=move |_| act.run(Op::Resume(id))>"Resume"</button>
            </div>
        })}
        <dl class="machine">
            <div>
                <dt>"Memory (this server)"</dt>
                <dd data-testid="server-ram">{hardware.total_ram_bytes.map_or("unknown".to_string(), format_ram)}</dd>
            </div>
            <div>
                <dt>"Memory (this browser)"</dt>
                <dd data-testid="device-memory">
                    {move || device_memory.get().map_or("not reported".to_string(), |gb| format!("{gb} GB"))}
                </dd>
            </div>
            <div>
                <dt>"Processor"</dt>
                <dd data-testid="cpu">
                    {
                        let (model, facts) = cpu_words(&hardware);
                        let facts = facts
                            .into_iter()
                            .map(|f| view! { " · " <span class="nowrap">{f}</span> })
                            .collect_view();
                        view! { {model} {facts} }
                    }
                </dd>
            </div>
            <div>
                <dt>"Memory speed"</dt>
                <dd data-testid="bandwidth">{bandwidth_words(&hardware)}</dd>
            </div>
            <div>
                <dt>"Graphics card"</dt>
                <dd data-testid="gpu">{gpu_words(&hardware)}</dd>
            </div>
            <div>
                <dt>"Free disk for models"</dt>
                <dd data-testid="free-disk">{hardware.free_disk_bytes.map_or("unknown".to_string(), format_bytes)}</dd>
            </div>
            {hardware.proxy.clone().map(|proxy| view! {
                <div>
                    <dt>"Proxy for downloads"</dt>
                    <dd data-testid="proxy">{proxy}</dd>
                </div>
            })}
        </dl>
        <div class="recommendation" data-testid="recommendation">
            {move || rec.with(|r| match &r.model_id {
                Some(id) => view! {
                    <p>
                        <span class="badge">"Recommended"</span>
                        <strong>{model_name(id)}</strong>
                    </p>
                    <p class="muted">{r.reason.clone()}</p>
                }.into_any(),
                None => view! { <p class="warn">{r.reason.clone()}</p> }.into_any(),
            })}
            {move || rec.with(|r| r.embedding_id.clone()).map(|id| view! {
                <p class="muted" data-testid="embedding-pick">
                    "For search over your documents (embeddings, for programs using the API): "
                    <strong>{model_name(&id)}</strong>
                </p>
            })}
        </div>
        <label class="field" for="model-select">"Model"</label>
        <select id="model-select" class="select" disabled=move || current.with(|c| c.is_some())
            on:change=move |ev| selected.set(event_target_value(&ev))
            prop:value=move || selected.get()>
            {move || models.with_value(|ms| ms.iter().map(|m| {
                let label = rec.with(|r| option_label(m, r));
                let id = m.id.clone();
                let is_selected = selected.get_untracked() == id;
                view! { <option value=id selected=is_selected>{label}</option> }
            }).collect_view())}
        </select>
        <DownloadPanel current selected busy act model_name=Callback::new(move |id: String| model_name(&id))/>
        <HubSearch busy act downloading=Signal::derive(move || current.with(|c| c.as_ref().is_some_and(|d| !d.status.is_terminal())))/>
        <TryIt brain chats/>
        {move || toast.get().map(|msg| view! {
            <div class="toast" role="alert">
                <span>{msg}</span>
                <button class="btn btn-quiet" on:click=move |_| toast.set(None)>"Dismiss"</button>
            </div>
        })}
    }
}

/// "Qwen3 4B · 2.5 GB · needs 6 GB RAM · ~9 tokens/s here · recommended", "… · measured 12
/// tokens/s", "… · ~2 tokens/s · slow here" or "… · won't fit: ...".
fn option_label(m: &ModelEntry, rec: &localbrain::recommend::Recommendation) -> String {
    let mut label =
        format!("{} · {} · needs {} RAM", m.name, format_bytes(m.size_bytes), format_ram(ram_needed_bytes(m)));
    let verdict = rec.fits.iter().find(|f| f.model_id == m.id);
    if let Some((speed, slow)) = verdict.and_then(|f| f.speed.as_ref().map(|s| (s, f.slow))) {
        label.push_str(" · ");
        // "slow here" follows a slow one's figure: one "here" is enough.
        label.push_str(&if slow { speed.figure() } else { speed.words() });
    }
    if !m.purpose.is_chat() {
        label.push_str(" · for embeddings (search), not chat");
    }
    match verdict {
        Some(f) if f.fit != Fit::Fits => {
            label.push_str(" · won't fit: ");
            label.push_str(&f.reason);
        }
        _ if rec.model_id.as_deref() == Some(m.id.as_str()) => label.push_str(" · recommended"),
        Some(f) if f.slow => label.push_str(" · slow here"),
        _ => {}
    }
    label
}

/// ("Intel(R) Xeon(R) Processor", ["2 cores", "AVX-512"]): the model, then the short facts
/// the card keeps whole on a line (so "AVX-512" never breaks at its hyphen).
fn cpu_words(hw: &HardwareProfile) -> (String, Vec<String>) {
    let model = hw.cpu_model.clone().unwrap_or_else(|| "unknown".to_string());
    let mut facts = Vec::new();
    if let Some(cores) = hw.cpu_cores {
        facts.push(if cores == 1 { "1 core".to_string() } else { format!("{cores} cores") });
    }
    if let Some(simd) = hw.simd {
        facts.push(simd.label().to_string());
    }
    (model, facts)
}

/// "14.2 GB/s (measured)": how fast memory reads, which bounds how fast a model writes.
fn bandwidth_words(hw: &HardwareProfile) -> String {
    hw.memory_bandwidth_gbps.map_or("not measured".to_string(), |g| format!("{g:.1} GB/s (measured)"))
}

/// "NVIDIA GeForce RTX 4090 via Vulkan · 24 GB (models run on it)", "… (not used: models run on
/// the processor)", "none seen".
fn gpu_words(hw: &HardwareProfile) -> String {
    match &hw.gpu {
        None => "none seen".to_string(),
        Some(g) => {
            let mut words = g.name.clone();
            if let Some(bytes) = g.memory_bytes {
                words.push_str(&format!(" · {}", format_ram(bytes)));
                if g.unified {
                    words.push_str(" shared");
                }
            }
            words.push_str(if g.used { " (models run on it)" } else { " (not used: models run on the processor)" });
            words
        }
    }
}

/// What a button asks the server to do.
#[derive(Clone, Debug)]
pub enum Op {
    Start(String),
    Pause(i64),
    Resume(i64),
    Cancel(i64),
    /// End the wait before the next try.
    TryNow(i64),
}

#[cfg(test)]
mod tests {
    use super::*;
    use localbrain::catalog::Catalog;
    use localbrain::hardware::Simd;
    use localbrain::speed::{MeasuredSpeed, SpeedInputs};

    /// The select's words on this machine kind (2 cores, 24 GB, one generation thread at 14 GB/s),
    /// after Qwen2.5 0.5B ran at 19 tokens/s (about its prediction, so the others barely move).
    #[test]
    fn options_say_how_fast_each_model_would_write() {
        let catalog = Catalog::embedded();
        let hw = HardwareProfile {
            total_ram_bytes: Some(24 << 30),
            free_disk_bytes: Some(1 << 40),
            cpu_cores: Some(2),
            simd: Some(Simd::Avx512),
            threads: Some(1),
            memory_bandwidth_gbps: Some(14.0),
            ..Default::default()
        };
        let measured = vec![MeasuredSpeed { model_id: "qwen2.5-0.5b-instruct-q4_k_m".into(), tokens_per_second: 19.0 }];
        let rec = recommend_with(&catalog.models, &hw, &SpeedInputs { measured, ..Default::default() });
        let label = |id: &str| option_label(&catalog.get(id).unwrap(), &rec);
        assert_eq!(
            label("gemma-3-1b-it-q4_k_m"),
            "Gemma 3 1B Instruct · 806 MB · needs 2 GB RAM · ~9 tokens/s here · recommended"
        );
        assert_eq!(label("qwen3-14b-q4_k_m"), "Qwen3 14B · 9.0 GB · needs 16 GB RAM · ~0.6 tokens/s · slow here");
        assert_eq!(
            label("qwen2.5-0.5b-instruct-q4_k_m"),
            "Qwen2.5 0.5B Instruct · 398 MB · needs 1 GB RAM · measured 19 tokens/s"
        );
        let (model, facts) = cpu_words(&hw);
        assert_eq!((model.as_str(), facts), ("unknown", vec!["2 cores".to_string(), "AVX-512".to_string()]));
        assert_eq!(bandwidth_words(&hw), "14.0 GB/s (measured)");
        assert_eq!(gpu_words(&hw), "none seen");
    }
}
