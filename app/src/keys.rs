//! "API keys": the signed-in user's keys for programs that use localbrain's OpenAI-compatible
//! API. Each row shows the key's name, the start of its secret, when it was made and last used;
//! "Make key" shows the new secret once, in a read-only field with a Copy button, and never
//! again (the server keeps only its hash); "Revoke" asks inline (no browser dialog) and the key
//! stops working at once. Times read against the server's clock ([`KeysView::now`]), so the
//! server's render and the browser's agree.

use crate::api::{self, ApiError};
use leptos::prelude::*;
use leptos::task::spawn_local;
use localbrain::keys::{ApiKey, KeysView, MAX_NAME_CHARS, NewKey, ago};

/// The card, loaded on the server for the first render. Shows nothing when signed out (the
/// Local AI brain card above already says how to sign in).
#[component]
pub fn ApiKeys() -> impl IntoView {
    let data = Resource::new(|| (), |_| api::list_keys());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(view) => view! { <KeysBody initial=view/> }.into_any(),
                    Err(ApiError::NotSignedIn { .. }) => ().into_any(),
                    Err(e) => view! {
                        <section class="card-like" data-testid="api-keys"><p class="error" role="alert">{e.to_string()}</p></section>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// Where programs send their requests: this page's origin and `/v1`.
fn api_base() -> String {
    #[cfg(feature = "hydrate")]
    if let Ok(origin) = window().location().origin() {
        return format!("{origin}/v1");
    }
    "this server's address followed by /v1".to_string()
}

/// "Copy", "Copied", or why it could not be copied.
#[derive(Clone, Copy, Debug, PartialEq)]
enum CopyState {
    Ready,
    Copied,
    Failed,
}

#[component]
fn KeysBody(initial: KeysView) -> impl IntoView {
    let keys = RwSignal::new(initial);
    let name = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let fresh = RwSignal::new(None::<NewKey>);
    let copy = RwSignal::new(CopyState::Ready);
    let busy = RwSignal::new(None::<String>);
    let confirming = RwSignal::new(None::<String>);

    let make = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.with(Option::is_some) {
            return;
        }
        busy.set(Some(String::new()));
        let wanted = name.get_untracked();
        spawn_local(async move {
            let result = api::create_key(wanted).await;
            let _ = busy.try_set(None);
            match result {
                Ok(made) => {
                    let _ = keys.try_set(made.keys.clone());
                    let _ = name.try_set(String::new());
                    let _ = error.try_set(None);
                    let _ = copy.try_set(CopyState::Ready);
                    let _ = confirming.try_set(None);
                    let _ = fresh.try_set(Some(made));
                }
                Err(e) => {
                    let _ = error.try_set(Some(e.to_string()));
                }
            }
        });
    };
    let revoke = move |key: String| {
        busy.set(Some(key.clone()));
        spawn_local(async move {
            let result = api::revoke_key(key.clone()).await;
            let _ = busy.try_set(None);
            let _ = confirming.try_set(None);
            match result {
                Ok(v) => {
                    let _ = keys.try_set(v);
                    let _ = error.try_set(None);
                    // The secret of a key just revoked is no use any more.
                    let _ = fresh.try_update(|f| {
                        if f.as_ref().is_some_and(|f| f.key.name == key) {
                            *f = None;
                        }
                    });
                }
                Err(e) => {
                    let _ = error.try_set(Some(e.to_string()));
                }
            }
        });
    };
    let row = RowState { busy, confirming, revoke };

    view! {
        <section class="card-like" aria-labelledby="keys-title" data-testid="api-keys">
            <h2 id="keys-title">"API keys"</h2>
            <p class="card-lead">
                "Programs on other machines, or other apps on this one, use localbrain's models with a key. "
                "Make one for each program, so you can revoke it alone."
            </p>
            {move || fresh.get().map(|made| view! { <NewKeyBox made copy fresh/> })}
            <form class="key-form" on:submit=make>
                <label class="field" for="key-name">"Name of a new key"</label>
                <div class="key-form-row">
                    <input id="key-name" class="text-input" type="text" autocomplete="off" maxlength=MAX_NAME_CHARS
                        placeholder="e.g. laptop" data-testid="key-name" bind:value=name/>
                    <button type="submit" class="btn btn-primary" disabled=move || busy.with(|b| b.as_deref() == Some(""))>
                        {move || if busy.with(|b| b.as_deref() == Some("")) { "Making…" } else { "Make key" }}
                    </button>
                </div>
                {move || error.get().map(|w| view! { <p class="error" role="alert" data-testid="key-error">{w}</p> })}
            </form>
            {move || keys.with(|k| k.keys.is_empty()).then(|| view! {
                <p class="muted key-none">"No keys yet."</p>
            })}
            <ul class="model-list key-list">
                {move || {
                    let KeysView { keys: list, now } = keys.get();
                    list.into_iter().map(|k| key_row(k, now, row)).collect_view()
                }}
            </ul>
        </section>
    }
}

/// The new key's secret, shown once.
#[component]
fn NewKeyBox(made: NewKey, copy: RwSignal<CopyState>, fresh: RwSignal<Option<NewKey>>) -> impl IntoView {
    let secret = made.secret.clone();
    let on_copy = move |_| copy_text(&secret, copy);
    view! {
        <div class="new-key" role="status" data-testid="new-key">
            <label class="field" for="new-key-secret">{format!("Your new key \u{201c}{}\u{201d}", made.key.name)}</label>
            <div class="key-form-row">
                <input id="new-key-secret" class="text-input secret" type="text" readonly autocomplete="off"
                    spellcheck="false" data-testid="new-key-secret" prop:value=made.secret.clone()
                    on:focus=move |ev| select_all(&ev)/>
                <button type="button" class="btn btn-secondary" data-testid="copy-key" on:click=on_copy>
                    {move || if copy.get() == CopyState::Copied { "Copied" } else { "Copy" }}
                </button>
            </div>
            {move || (copy.get() == CopyState::Failed).then(|| view! {
                <p class="error" role="alert">"This browser did not let the page copy: select the key and copy it yourself."</p>
            })}
            <p class="key-note">
                "Copy it now: it will not be shown again. Programs send it as "
                <code class="nowrap">"Authorization: Bearer …"</code>" to "<code class="nowrap">{api_base()}</code>
            </p>
            <button type="button" class="btn btn-quiet" on:click=move |_| fresh.set(None)>"Done"</button>
        </div>
    }
}

/// What every row's Revoke shares.
#[derive(Clone, Copy)]
struct RowState<R: Fn(String) + Copy + 'static> {
    busy: RwSignal<Option<String>>,
    confirming: RwSignal<Option<String>>,
    revoke: R,
}

/// "Made 3 days ago · never used", "Made 3 days ago · last used 2 minutes ago".
fn when_line(k: &ApiKey, now: i64) -> String {
    let used = k.last_used_at.map_or_else(|| "never used".to_string(), |t| format!("last used {}", ago(t, now)));
    format!("Made {} · {used}", ago(k.created_at, now))
}

fn key_row<R>(k: ApiKey, now: i64, s: RowState<R>) -> impl IntoView
where
    R: Fn(String) + Copy + Send + Sync + 'static,
{
    let line = when_line(&k, now);
    let (n1, n2, n3, n4) = (k.name.clone(), k.name.clone(), k.name.clone(), k.name.clone());
    let confirming = move || s.confirming.with(|c| c.as_deref() == Some(n2.as_str()));
    let busy = move || s.busy.with(|b| b.as_deref() == Some(n3.as_str()));
    let confirm_words = format!("Revoke \u{201c}{}\u{201d}? Programs using it stop working at once.", k.name);
    view! {
        <li class="model-row" data-testid="key-row" data-key=k.name.clone()>
            <div class="model-head">
                <strong class="key-name">{k.name.clone()}</strong>
                <code class="key-prefix">{k.shown()}</code>
            </div>
            <p class="muted model-line" data-testid="key-when">{line}</p>
            <div class="actions">
                <button class="btn btn-quiet" on:click=move |_| s.confirming.set(Some(n1.clone()))>"Revoke"</button>
            </div>
            {move || confirming().then(|| {
                let n4 = n4.clone();
                let busy = busy.clone();
                view! {
                    <div class="confirm" role="group" aria-label="Confirm revoke" data-testid="confirm-revoke">
                        <p>{confirm_words.clone()}</p>
                        <div class="actions">
                            <button class="btn btn-danger" disabled=busy on:click=move |_| (s.revoke)(n4.clone())>"Yes, revoke"</button>
                            <button class="btn btn-quiet" on:click=move |_| s.confirming.set(None)>"Keep it"</button>
                        </div>
                    </div>
                }
            })}
        </li>
    }
}

/// Selects a field's text when it gets focus, so a tap and the system's Copy take it all.
fn select_all(ev: &leptos::ev::FocusEvent) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        if let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
            input.select();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ev;
}

#[cfg(feature = "hydrate")]
mod clipboard {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        /// `navigator.clipboard.writeText`; throws where the page has no clipboard (plain http
        /// on another machine's address is not a secure context).
        #[wasm_bindgen(catch, js_namespace = ["navigator", "clipboard"], js_name = writeText)]
        pub fn write_text(text: &str) -> Result<js_sys::Promise, JsValue>;
    }
}

/// Puts `text` on the clipboard; `state` says Copied, or Failed when the browser refuses.
fn copy_text(text: &str, state: RwSignal<CopyState>) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::prelude::*;
        let Ok(promise) = clipboard::write_text(text) else {
            state.set(CopyState::Failed);
            return;
        };
        let ok = Closure::once(move |_: JsValue| {
            let _ = state.try_set(CopyState::Copied);
        });
        let err = Closure::once(move |_: JsValue| {
            let _ = state.try_set(CopyState::Failed);
        });
        let _ = promise.then2(&ok, &err);
        // The promise calls one of them later; two small closures per click are let go.
        ok.forget();
        err.forget();
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (text, state);
}
