//! The Settings page and its Local AI brain card.

use leptos::prelude::*;
use leptos_meta::Title;

/// `/settings`: the page that holds the Local AI brain card.
#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <Title text="Settings"/>
        <header class="page-header">
            <h1>"Settings"</h1>
        </header>
        <LocalBrainCard/>
    }
}

/// The Local AI brain card: the machine, the recommended model, and its download.
#[component]
pub fn LocalBrainCard() -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="local-brain-title">
            <h2 id="local-brain-title">"Local AI brain"</h2>
            <p class="card-lead">
                "A private AI model that runs on this machine, offline. "
                "Pick one that fits and download it in one click."
            </p>
        </section>
    }
}
