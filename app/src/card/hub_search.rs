//! "Find a model on Hugging Face": a search box over the hub's GGUF repos (most downloaded first,
//! with downloads, likes, when updated, and whether gated), and for the repo picked, every quant
//! with its size, how it fits this machine and how fast it would write here, the pick marked.
//! Download starts the chosen quant by its file's address at the listed commit, through the same
//! `downloads/start` as the catalog's models; the card's download panel then shows it.

use super::Op;
use crate::api;
use leptos::prelude::*;
use leptos::task::spawn_local;
use localbrain::hub::{FoundView, QuantView, RepoView};
use localbrain::recommend::Fit;
use localbrain::units::format_bytes;

/// What the search part shows below the box.
#[derive(Clone, Debug, PartialEq)]
enum Shown {
    Nothing,
    Searching,
    Found(Vec<FoundView>),
    Loading(String),
    Repo(RepoView),
    /// The hub's or the server's words.
    Problem(String),
}

#[component]
pub fn HubSearch(busy: RwSignal<bool>, act: Callback<Op>, downloading: Signal<bool>) -> impl IntoView {
    let query = RwSignal::new(String::new());
    let shown = RwSignal::new(Shown::Nothing);
    let found = RwSignal::new(Vec::<FoundView>::new());
    let search = move || {
        let q = query.get_untracked();
        if q.trim().is_empty() {
            return;
        }
        shown.set(Shown::Searching);
        spawn_local(async move {
            let next = match api::search_hub(q).await {
                Ok(list) if list.is_empty() => Shown::Problem("No GGUF model on Hugging Face matches that.".into()),
                Ok(list) => {
                    let _ = found.try_set(list.clone());
                    Shown::Found(list)
                }
                Err(e) => Shown::Problem(e.to_string()),
            };
            let _ = shown.try_set(next);
        });
    };
    let open = Callback::new(move |repo: String| {
        shown.set(Shown::Loading(repo.clone()));
        spawn_local(async move {
            let next = match api::hub_repo(format!("hf.co/{repo}")).await {
                Ok(view) => Shown::Repo(view),
                Err(e) => Shown::Problem(e.to_string()),
            };
            let _ = shown.try_set(next);
        });
    });
    let back = Callback::new(move |()| shown.set(Shown::Found(found.get_untracked())));
    view! {
        <section class="hub" aria-labelledby="hub-title" data-testid="hub">
            <h3 id="hub-title">"Find a model on Hugging Face"</h3>
            <form class="hub-form" on:submit=move |ev| {
                ev.prevent_default();
                search();
            }>
                <label class="visually-hidden" for="hub-query">"Search Hugging Face"</label>
                <input id="hub-query" class="input" type="search" placeholder="e.g. qwen2.5 0.5b instruct"
                    maxlength="200" prop:value=move || query.get()
                    on:input=move |ev| query.set(event_target_value(&ev))/>
                <button class="btn btn-secondary" type="submit">"Search"</button>
            </form>
            {move || match shown.get() {
                Shown::Nothing => ().into_any(),
                Shown::Searching => view! { <p class="muted" role="status">"Searching Hugging Face…"</p> }.into_any(),
                Shown::Loading(repo) => view! { <p class="muted" role="status">{format!("Reading {repo}…")}</p> }.into_any(),
                Shown::Problem(words) => view! { <p class="warn" role="alert" data-testid="hub-problem">{words}</p> }.into_any(),
                Shown::Found(list) => view! { <Results list open/> }.into_any(),
                Shown::Repo(repo) => view! { <Quants repo busy act downloading back/> }.into_any(),
            }}
        </section>
    }
}

#[component]
fn Results(list: Vec<FoundView>, open: Callback<String>) -> impl IntoView {
    view! {
        <ul class="hub-results" data-testid="hub-results">
            {list.into_iter().map(|f| {
                let repo = f.repo.clone();
                let facts = found_facts(&f);
                view! {
                    <li>
                        <button class="linklike" on:click=move |_| open.run(repo.clone())>{f.repo.clone()}</button>
                        <span class="muted">{facts}</span>
                        {f.gated.then(|| view! { <span class="badge badge-quiet">"needs a token"</span> })}
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}

#[component]
fn Quants(
    repo: RepoView,
    busy: RwSignal<bool>,
    act: Callback<Op>,
    downloading: Signal<bool>,
    back: Callback<()>,
) -> impl IntoView {
    let license = repo.license.clone().unwrap_or_else(|| "see its page".into());
    let rows = repo.quants.clone().into_iter().map(|q| {
        let address = format!("https://huggingface.co/{}/resolve/{}/{}", repo.repo, repo.revision, q.file);
        let words = quant_words(&q);
        let fits = q.fit.fit == Fit::Fits;
        view! {
            <tr class:picked=q.picked>
                <td><strong>{q.quant.clone()}</strong>{q.picked.then(|| view! { " " <span class="badge">"Recommended"</span> })}</td>
                <td>{format_bytes(q.size_bytes)}</td>
                <td>{words}</td>
                <td>
                    <button class="btn btn-primary btn-small" disabled=move || busy.get() || downloading.get() || !fits
                        on:click=move |_| act.run(Op::Start(address.clone()))>"Download"</button>
                </td>
            </tr>
        }
    }).collect_view();
    view! {
        <div class="hub-repo" data-testid="hub-quants">
            <p>
                <button class="linklike" on:click=move |_| back.run(())>"← Results"</button>
            </p>
            <p>
                <strong>{repo.repo.clone()}</strong>
                " · license " {license} " · "
                <a href=repo.card_url.clone() target="_blank" rel="noopener noreferrer">"model page"</a>
            </p>
            <p class="muted">{format!("Pinned to commit {} · {}", &repo.revision[..repo.revision.len().min(12)], repo.reason)}</p>
            <table class="quants">
                <thead><tr><th>"Quant"</th><th>"Size"</th><th>"Here"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}

/// "1.2M downloads · 340 likes · updated 2026-11-30", shortened for the list.
fn found_facts(f: &FoundView) -> String {
    let mut parts = vec![format!("{} downloads", count(f.downloads)), format!("{} likes", count(f.likes))];
    if let Some(ms) = f.updated_at {
        parts.push(format!("updated {}", super::format::date(ms)));
    }
    format!(" · {}", parts.join(" · "))
}

/// "fits · ~40 tokens/s here", or why it does not fit.
fn quant_words(q: &QuantView) -> String {
    match q.fit.fit {
        Fit::Fits => match &q.fit.speed {
            Some(s) if q.fit.slow => format!("fits · {} · slow here", s.figure()),
            Some(s) => format!("fits · {}", s.words()),
            None => "fits".to_string(),
        },
        _ => format!("won't fit: {}", q.fit.reason),
    }
}

/// 1234 -> "1.2K", 1234567 -> "1.2M".
fn count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}K", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_are_short() {
        assert_eq!(
            (super::count(999), super::count(1234), super::count(2_500_000)),
            ("999".into(), "1.2K".into(), "2.5M".into())
        );
    }
}
