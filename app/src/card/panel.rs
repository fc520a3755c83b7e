//! The download part of the card: the progress bar, the numbers, and the buttons allowed in the
//! current status (DESIGN.md's state table).

use super::Op;
use super::format;
use leptos::prelude::*;
use localbrain::status::DownloadStatus::*;
use localbrain::view::DownloadView;

#[component]
pub fn DownloadPanel(
    current: RwSignal<Option<DownloadView>>,
    selected: RwSignal<String>,
    busy: RwSignal<bool>,
    act: Callback<Op>,
    model_name: Callback<String, String>,
) -> impl IntoView {
    let status_text = move || {
        current.with(|c| match c {
            Some(d) => format::status_line(d, &model_name.run(d.model_id.clone())),
            None => String::new(),
        })
    };
    view! {
        <div class="download" data-testid="download">
            // Announced to screen readers whenever the status sentence changes.
            <p class="status-line" role="status" aria-live="polite" data-testid="status">{status_text}</p>
            {move || match current.get() {
                None => view! {
                    <div class="actions">
                        <button class="btn btn-primary" disabled=move || busy.get()
                            on:click=move |_| act.run(Op::Start(selected.get_untracked()))>"Download"</button>
                    </div>
                }.into_any(),
                Some(d) => panel_for(d, busy, act, current).into_any(),
            }}
        </div>
    }
}

fn panel_for(
    d: DownloadView,
    busy: RwSignal<bool>,
    act: Callback<Op>,
    current: RwSignal<Option<DownloadView>>,
) -> impl IntoView {
    let id = d.id;
    // Verifying and installing have no byte count to show: the status line says what happens.
    let show_bar = matches!(d.status, Pending | Downloading | Paused);
    let pct = d.percent.clamp(0.0, 100.0);
    let numbers = {
        let mut parts = vec![format::bytes_of(&d), format!("{:.0}%", pct.floor())];
        if d.status == Downloading && d.speed_bps > 0 {
            parts.push(format::speed(d.speed_bps));
        }
        if let (Downloading, Some(eta)) = (d.status, d.eta_seconds) {
            parts.push(format::time_left(eta));
        }
        parts.join(" · ")
    };
    let button = move |label: &'static str, class: &'static str, op: Op| {
        view! {
            <button class=format!("btn {class}") disabled=move || busy.get()
                on:click=move |_| act.run(op.clone())>{label}</button>
        }
    };
    let buttons = match d.status {
        Pending | Downloading => {
            view! { {button("Pause", "btn-secondary", Op::Pause(id))} {button("Cancel", "btn-quiet", Op::Cancel(id))} }
                .into_any()
        }
        Paused => {
            view! { {button("Resume", "btn-primary", Op::Resume(id))} {button("Cancel", "btn-quiet", Op::Cancel(id))} }
                .into_any()
        }
        Verifying | Installing => button("Cancel", "btn-quiet", Op::Cancel(id)).into_any(),
        Failed => {
            view! { {button("Retry", "btn-primary", Op::Resume(id))} {button("Dismiss", "btn-quiet", Op::Cancel(id))} }
                .into_any()
        }
        Complete if d.removed_at.is_some() => {
            let model = d.model_id.clone();
            view! {
                <button class="btn btn-primary" disabled=move || busy.get()
                    on:click=move |_| act.run(Op::Start(model.clone()))>"Download again"</button>
            }
            .into_any()
        }
        Complete => view! {
            <button class="btn btn-secondary" on:click=move |_| current.set(None)>"Download another"</button>
        }
        .into_any(),
        Cancelled => ().into_any(),
    };
    view! {
        {show_bar.then(|| view! {
            <div class="bar" role="progressbar" aria-label="Download progress" aria-valuemin="0" aria-valuemax="100"
                aria-valuenow=format!("{pct:.0}") data-testid="progress">
                <div class="bar-fill" class:paused=d.status == Paused style=format!("width: {pct:.1}%")></div>
            </div>
            <p class="numbers" data-testid="numbers">{numbers}</p>
        })}
        {d.retrying.clone().filter(|_| d.status == Downloading).map(|r| view! {
            <div class="retrying" data-testid="retrying">
                <p>{r.sentence()}</p>
                <button class="btn btn-secondary" disabled=move || busy.get()
                    on:click=move |_| act.run(Op::TryNow(id))>"Try now"</button>
                <Details text=r.detail/>
            </div>
        })}
        {(d.status == Failed).then(|| view! {
            <p class="error" data-testid="error">{d.error.clone().unwrap_or_default()}</p>
            {d.error_detail.clone().map(|text| view! { <Details text/> })}
        })}
        {(d.status == Complete && d.removed_at.is_some()).then(|| view! {
            <p class="installed" data-testid="removed">"Removed from this machine."</p>
        })}
        {(d.status == Complete && d.removed_at.is_none()).then(|| view! {
            <p class="installed" data-testid="installed">"Installed at " <code>{d.target_path.clone().unwrap_or_default()}</code></p>
        })}
        <div class="actions">{buttons}</div>
    }
}

/// The technical account of a failure, closed until asked for.
#[component]
fn Details(text: String) -> impl IntoView {
    view! {
        <details class="details" data-testid="details">
            <summary>"Details"</summary>
            <pre>{text}</pre>
        </details>
    }
}
