//! The Settings page, which holds the Local AI brain card, "Models on this machine" and
//! "API keys", and a small About page.

use crate::card::LocalBrainCard;
use crate::keys::ApiKeys;
use crate::models::{ModelsBus, ModelsOnDisk};
use leptos::prelude::*;
use leptos_meta::Title;

/// `/settings`: the page that holds the Local AI brain card, the models on this machine and the
/// user's API keys.
#[component]
pub fn SettingsPage() -> impl IntoView {
    ModelsBus::provide();
    let me = Resource::new(|| (), |_| crate::api::whoami());
    view! {
        <Title text="Settings"/>
        <header class="page-header">
            <h1>"Settings"</h1>
            <nav>
                <a href="/about">"About localbrain"</a>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move { me.await.ok().flatten().map(|name| view! { <SignedIn name/> }) })}
                </Suspense>
            </nav>
        </header>
        <LocalBrainCard/>
        <ModelsOnDisk/>
        <ApiKeys/>
    }
}

/// Who is signed in, and Sign out: shown only to someone signed in.
#[component]
fn SignedIn(name: String) -> impl IntoView {
    view! {
        <span class="whoami" data-testid="whoami">"Signed in as " <strong>{name}</strong></span>
        // A plain form: it works before the page hydrates, and the server sends it back here.
        <form class="signout" method="post" action="/api/logout">
            <button type="submit" class="btn btn-quiet">"Sign out"</button>
        </form>
    }
}

/// `/about`: what localbrain is. Navigating here unmounts the card (and stops its polling).
#[component]
pub fn AboutPage() -> impl IntoView {
    view! {
        <Title text="About localbrain"/>
        <header class="page-header">
            <h1>"About localbrain"</h1>
            <nav><a href="/settings">"Settings"</a></nav>
        </header>
        <section class="card">
            <p>
                "localbrain puts a private AI model on this machine. Models come from a catalog of "
                "open models, are checked against their published SHA-256, and run offline."
            </p>
        </section>
    }
}
