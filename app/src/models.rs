//! "Models on this machine": the model files with their size, age, facts and check, the
//! unfinished downloads and what they hold, and the disk line. Admins delete (after an inline
//! confirmation, in the page: no browser dialog); anyone can check a file again, and a damaged
//! one offers a fresh download, which the Local AI brain card then shows. A check runs on the
//! server after the button's request has answered: while one runs, its row says how far it has
//! got (with Cancel) and the list is polled once a second; the result replaces it when done.
//!
//! The section and the card talk through a [`ModelsBus`] the Settings page provides: a download
//! the card finished refreshes this list, and a delete or a fresh download here updates the card.

use crate::api::{self, ApiError};
use crate::card::browser::Ticker;
use leptos::prelude::*;
use leptos::task::spawn_local;
use localbrain::installed::{Check, DiskModel, Leftover, ModelsView};
use localbrain::units::format_bytes;
use localbrain::view::DownloadView;

/// What the Settings page's two parts tell each other.
#[derive(Clone, Copy, Debug)]
pub struct ModelsBus {
    /// Bumped by the card when its download starts, stops, fails or finishes: the list reloads.
    pub changed: RwSignal<u64>,
    /// Bumped here when a model is deleted: the card re-reads its download and the brain.
    pub removed: RwSignal<u64>,
    /// A download started here ("Download again"): the card shows it.
    pub started: RwSignal<Option<DownloadView>>,
}

impl ModelsBus {
    /// A fresh bus, provided as context for the page.
    pub fn provide() {
        provide_context(ModelsBus {
            changed: RwSignal::new(0),
            removed: RwSignal::new(0),
            started: RwSignal::new(None),
        });
    }
}

/// The section, loaded on the server for the first render. Shows nothing when signed out (the
/// card above already says how to sign in).
#[component]
pub fn ModelsOnDisk() -> impl IntoView {
    let data = Resource::new(|| (), |_| api::list_models());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(view) => view! { <ModelsBody initial=view/> }.into_any(),
                    Err(ApiError::NotSignedIn { .. }) => ().into_any(),
                    Err(e) => view! {
                        <section class="card-like" data-testid="models"><p class="error" role="alert">{e.to_string()}</p></section>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ModelsBody(initial: ModelsView) -> impl IntoView {
    let view_sig = RwSignal::new(initial);
    let busy = RwSignal::new(None::<String>);
    let confirming = RwSignal::new(None::<String>);
    let message = RwSignal::new(None::<(String, String)>);
    let bus = use_context::<ModelsBus>();

    // Every reload says how the checks that ended meanwhile came out.
    let reload = move || {
        spawn_local(async move {
            if let Ok(v) = api::list_models().await {
                let ended = view_sig.try_with_untracked(|old| ended_checks(old, &v)).unwrap_or_default();
                for note in ended {
                    let _ = message.try_set(Some(note));
                }
                let _ = view_sig.try_set(v);
            }
        })
    };
    // Once a second while a check runs; dropping the ticker stops it (also when the page goes).
    let checking = Memo::new(move |_| view_sig.with(|v| v.models.iter().any(|m| m.checking.is_some())));
    let ticker = StoredValue::new(None::<Ticker>);
    Effect::new(move |_| {
        if !checking.get() {
            ticker.set_value(None);
        } else if ticker.with_value(Option::is_none) {
            ticker.set_value(Some(Ticker::every(1000, reload)));
        }
    });
    on_cleanup(move || {
        let _ = ticker.try_set_value(None);
    });
    if let Some(bus) = bus {
        Effect::new(move |prev: Option<u64>| {
            let n = bus.changed.get();
            if prev.is_some() {
                reload();
            }
            n
        });
    }

    let delete = move |id: String| {
        busy.set(Some(id.clone()));
        spawn_local(async move {
            let result = api::delete_model(id.clone()).await;
            let _ = busy.try_set(None);
            let _ = confirming.try_set(None);
            match result {
                Ok(v) => {
                    let _ = view_sig.try_set(v);
                    let _ = message.try_set(None);
                    if let Some(bus) = bus {
                        bus.removed.update(|n| *n += 1);
                    }
                }
                Err(e) => {
                    let _ = message.try_set(Some((id, e.to_string())));
                }
            }
        });
    };
    // The answer shows the check running (the ticker then follows it), or already done when
    // the file was small.
    let check = move |id: String| {
        busy.set(Some(id.clone()));
        spawn_local(async move {
            let result = api::verify_model(id.clone()).await;
            let _ = busy.try_set(None);
            match result {
                Ok(m) => {
                    let _ = view_sig.try_update(|v| {
                        if let Some(slot) = v.models.iter_mut().find(|x| x.model_id.as_deref() == Some(id.as_str())) {
                            let note = m.checking.is_none().then(|| check_note(slot, &m));
                            let _ = message.try_set(note.map(|w| (id.clone(), w.to_string())));
                            *slot = m;
                        }
                    });
                }
                Err(e) => {
                    let _ = message.try_set(Some((id, e.to_string())));
                }
            }
        });
    };
    let stop_check = move |id: String| {
        busy.set(Some(id.clone()));
        spawn_local(async move {
            let result = api::cancel_verify_model(id.clone()).await;
            let _ = busy.try_set(None);
            match result {
                Ok(m) => {
                    let _ = message.try_set(Some((id.clone(), "Check stopped: the last result stands.".into())));
                    let _ = view_sig.try_update(|v| {
                        if let Some(slot) = v.models.iter_mut().find(|x| x.model_id.as_deref() == Some(id.as_str())) {
                            *slot = m;
                        }
                    });
                }
                Err(e) => {
                    let _ = message.try_set(Some((id, e.to_string())));
                }
            }
        });
    };
    let download_again = move |id: String| {
        busy.set(Some(id.clone()));
        spawn_local(async move {
            let result = api::start_download(id.clone()).await;
            let _ = busy.try_set(None);
            match result {
                Ok(d) => {
                    let _ = message.try_set(Some((id, "Downloading it again: see the Local AI brain card.".into())));
                    if let Some(bus) = bus {
                        bus.started.set(Some(d));
                    }
                    reload();
                }
                Err(e) => {
                    let _ = message.try_set(Some((id, e.to_string())));
                }
            }
        });
    };
    let remove_leftover = move |id: i64| {
        busy.set(Some(format!("leftover-{id}")));
        spawn_local(async move {
            let result = api::remove_leftover(id).await;
            let _ = busy.try_set(None);
            if let Err(e) = result {
                let _ = message.try_set(Some((format!("leftover-{id}"), e.to_string())));
            }
            reload();
        });
    };
    let actions = RowActions { busy, confirming, message, delete, check, stop_check, download_again };

    view! {
        <section class="card-like" aria-labelledby="models-title" data-testid="models">
            <h2 id="models-title">"Models on this machine"</h2>
            <p class="disk-line" data-testid="disk-line">{move || view_sig.with(ModelsView::disk_line)}</p>
            {move || view_sig.with(|v| v.models.is_empty()).then(|| view! {
                <p class="muted">"No models yet: download one in the Local AI brain card."</p>
            })}
            <ul class="model-list">
                {move || {
                    let (models, is_admin) = view_sig.with(|v| (v.models.clone(), v.is_admin));
                    models.into_iter().map(|m| model_row(m, is_admin, actions)).collect_view()
                }}
            </ul>
            <h3 class="leftovers-title">"Unfinished downloads"</h3>
            <p class="muted" data-testid="leftovers-line">{move || view_sig.with(ModelsView::leftovers_line)}</p>
            <ul class="model-list">
                {move || view_sig.with(|v| v.leftovers.clone()).into_iter().map(|l| {
                    leftover_row(l, busy, message, remove_leftover)
                }).collect_view()}
            </ul>
        </section>
    }
}

/// The note for a model whose check ended between two looks at it (`before` while it ran,
/// `after` once it had ended): what it found, or that it did not finish (stopped elsewhere, or
/// the file could not be read) when its record did not change.
fn check_note(before: &DiskModel, after: &DiskModel) -> &'static str {
    match after.check {
        _ if after.verified_at == before.verified_at => "The check did not finish: the last result stands.",
        Check::Damaged => "Its SHA-256 does not match the catalog's: the file is damaged.",
        Check::Verified => "Its SHA-256 matches the catalog's.",
        Check::NotChecked => "The check did not finish: the last result stands.",
    }
}

/// The notes for the checks running in `old` that have ended in `new`, by model id.
fn ended_checks(old: &ModelsView, new: &ModelsView) -> Vec<(String, String)> {
    new.models
        .iter()
        .filter(|m| m.checking.is_none())
        .filter_map(|m| {
            let id = m.model_id.as_ref()?;
            let before = old.models.iter().find(|o| o.model_id.as_ref() == Some(id) && o.checking.is_some())?;
            Some((id.clone(), check_note(before, m).to_string()))
        })
        .collect()
}

/// What a row's buttons do, and the state they share.
#[derive(Clone, Copy)]
struct RowActions<D, C, S, A>
where
    D: Fn(String) + Copy + 'static,
    C: Fn(String) + Copy + 'static,
    S: Fn(String) + Copy + 'static,
    A: Fn(String) + Copy + 'static,
{
    busy: RwSignal<Option<String>>,
    confirming: RwSignal<Option<String>>,
    message: RwSignal<Option<(String, String)>>,
    delete: D,
    check: C,
    stop_check: S,
    download_again: A,
}

fn model_row<D, C, S, A>(m: DiskModel, is_admin: bool, a: RowActions<D, C, S, A>) -> impl IntoView
where
    D: Fn(String) + Copy + Send + Sync + 'static,
    C: Fn(String) + Copy + Send + Sync + 'static,
    S: Fn(String) + Copy + Send + Sync + 'static,
    A: Fn(String) + Copy + Send + Sync + 'static,
{
    let id = m.model_id.clone().unwrap_or_default();
    let known = m.model_id.is_some();
    let state_class = match m.check {
        Check::Verified => "state state-ok",
        Check::Damaged => "state state-bad",
        Check::NotChecked => "state",
    };
    let details = match (&m.facts, &m.problem) {
        (Some(f), _) => f.summary(),
        (None, Some(p)) => p.clone(),
        (None, None) => String::new(),
    };
    let confirm_words =
        format!("Delete {} ({})? Every user of this machine loses it.", m.name, format_bytes(m.size_bytes));
    let (id_busy, id_confirm, id_msg) = (id.clone(), id.clone(), id.clone());
    let is_busy = move || a.busy.with(|b| b.as_deref() == Some(id_busy.as_str()));
    let is_busy2 = is_busy.clone();
    let is_busy3 = is_busy.clone();
    let confirming = move || a.confirming.with(|c| c.as_deref() == Some(id_confirm.as_str()));
    let msg = move || a.message.with(|m| m.as_ref().filter(|(k, _)| *k == id_msg).map(|(_, w)| w.clone()));
    let (i1, i2, i3, i4) = (id.clone(), id.clone(), id.clone(), id.clone());
    view! {
        <li class="model-row" data-testid="model-row" data-model=id.clone()>
            <div class="model-head">
                <strong>{m.name.clone()}</strong>
                <span class=state_class data-testid="model-check">{m.check.label()}</span>
                {m.in_use.map(|u| view! { <span class="state state-busy" data-testid="in-use">{u.label()}</span> })}
                {m.checking.map(|p| view! { <span class="state state-busy" data-testid="checking">{p.label()}</span> })}
            </div>
            <p class="muted model-line">{m.summary()}</p>
            {(!details.is_empty()).then(|| view! { <p class="facts muted">{details}</p> })}
            {(m.license.is_some() || m.page.is_some()).then(|| view! {
                <p class="muted" data-testid="model-license">
                    {m.license.clone().map(|l| format!("license {l}"))}
                    {m.page.clone().map(|href| view! {
                        {m.license.is_some().then_some(" · ")}
                        <a href=href target="_blank" rel="noopener noreferrer">"model page"</a>
                    })}
                </p>
            })}
            {(!known).then(|| view! {
                <p class="muted">{format!("{} is not a catalog model: remove it from the models folder by hand.", m.file_name)}</p>
            })}
            {known.then(|| view! {
                <div class="actions">
                    {if m.checking.is_some() {
                        view! {
                            <button class="btn btn-secondary" disabled=is_busy
                                on:click=move |_| (a.stop_check)(i1.clone())>"Cancel"</button>
                        }.into_any()
                    } else {
                        view! {
                            <button class="btn btn-secondary" disabled=is_busy on:click=move |_| (a.check)(i1.clone())>
                                {move || if is_busy2() { "Checking…" } else { "Check again" }}
                            </button>
                        }.into_any()
                    }}
                    {(m.check == Check::Damaged).then(|| view! {
                        <button class="btn btn-primary" disabled=is_busy3
                            on:click=move |_| (a.download_again)(i2.clone())>"Download again"</button>
                    })}
                    {is_admin.then(|| view! {
                        <button class="btn btn-quiet" on:click=move |_| a.confirming.set(Some(i3.clone()))>"Delete"</button>
                    })}
                </div>
            })}
            {move || confirming().then(|| {
                let i4 = i4.clone();
                view! {
                    <div class="confirm" role="group" aria-label="Confirm delete" data-testid="confirm-delete">
                        <p>{confirm_words.clone()}</p>
                        <div class="actions">
                            <button class="btn btn-danger" disabled=move || a.busy.with(Option::is_some)
                                on:click=move |_| (a.delete)(i4.clone())>"Yes, delete"</button>
                            <button class="btn btn-quiet" on:click=move |_| a.confirming.set(None)>"Keep it"</button>
                        </div>
                    </div>
                }
            })}
            {move || msg().map(|w| view! { <p class="row-note" role="status" data-testid="model-note">{w}</p> })}
        </li>
    }
}

fn leftover_row(
    l: Leftover,
    busy: RwSignal<Option<String>>,
    message: RwSignal<Option<(String, String)>>,
    remove: impl Fn(i64) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let key = format!("leftover-{}", l.id);
    let (k1, k2) = (key.clone(), key);
    let id = l.id;
    view! {
        <li class="model-row" data-testid="leftover-row">
            <div class="model-head">
                <strong>{l.name.clone()}</strong>
                <span class="state">{l.status.as_str()}</span>
            </div>
            <p class="muted model-line">{format!("{} · by {}", format_bytes(l.bytes_on_disk), l.user_name)}</p>
            <div class="actions">
                <button class="btn btn-quiet" disabled=move || busy.with(|b| b.as_deref() == Some(k1.as_str()))
                    on:click=move |_| remove(id)>"Remove"</button>
            </div>
            {move || message.with(|m| m.as_ref().filter(|(k, _)| *k == k2).map(|(_, w)| w.clone()))
                .map(|w| view! { <p class="error" role="alert">{w}</p> })}
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use localbrain::installed::CheckProgress;

    fn model(id: &str, check: Check, verified_at: Option<i64>, running: bool) -> DiskModel {
        DiskModel {
            model_id: Some(id.into()),
            file_name: format!("{id}.gguf"),
            name: id.into(),
            license: None,
            page: None,
            size_bytes: 100,
            installed_at: Some(1),
            verified_at,
            check,
            facts: None,
            problem: None,
            in_use: None,
            checking: running.then_some(CheckProgress { bytes_done: 40, total: 100 }),
        }
    }

    fn view_of(models: Vec<DiskModel>) -> ModelsView {
        ModelsView { models, leftovers: vec![], models_bytes: 0, partial_bytes: 0, free_bytes: None, is_admin: false }
    }

    #[test]
    fn a_check_that_ended_says_what_it_found_or_that_it_did_not_finish() {
        let old = view_of(vec![
            model("a", Check::NotChecked, None, true),
            model("b", Check::Verified, Some(5), true),
            model("c", Check::Verified, Some(5), true),
            model("d", Check::Verified, Some(5), false),
        ]);
        let new = view_of(vec![
            model("a", Check::Damaged, Some(9), false),
            model("b", Check::Verified, Some(5), false),
            model("c", Check::Verified, Some(5), true),
            model("d", Check::Verified, Some(9), false),
        ]);
        assert_eq!(
            ended_checks(&old, &new),
            vec![
                ("a".to_string(), "Its SHA-256 does not match the catalog's: the file is damaged.".to_string()),
                ("b".to_string(), "The check did not finish: the last result stands.".to_string()),
            ],
            "c still runs; d was not running here"
        );
    }
}
