//! The Settings page, which holds the Local AI brain card, and a small About page.

use crate::card::LocalBrainCard;
use leptos::prelude::*;
use leptos_meta::Title;

/// `/settings`: the page that holds the Local AI brain card.
#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <Title text="Settings"/>
        <header class="page-header">
            <h1>"Settings"</h1>
            <nav><a href="/about">"About localbrain"</a></nav>
        </header>
        <LocalBrainCard/>
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
