//! localbrain's UI: the HTML shell, the router, the Settings page and its Local AI brain card.
//! Rendered on the server first (`ssr`), then hydrated in the browser (`hydrate`).

// The card's view is one deeply nested type; hydrating it needs more than the default 128.
#![recursion_limit = "256"]

pub mod api;
pub mod card;
pub mod keys;
pub mod models;
#[cfg(feature = "ssr")]
pub mod policy;
pub mod settings;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    SsrMode,
    components::{Redirect, Route, Router, Routes},
    path,
};

/// The HTML document around the app, rendered by the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    policy::send_page_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The app: routes `/settings`, and sends `/` there.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Set once the WASM has taken over the page; end-to-end tests wait for it before clicking.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    view! {
        <Stylesheet id="leptos" href="/pkg/localbrain.css"/>
        <Title text="Settings"/>
        <Router>
            <main class="page" data-hydrated=move || hydrated.get().then_some("true")>
                <Routes fallback=|| view! { <p class="not-found">"Page not found."</p> }>
                    <Route path=path!("/") view=|| view! { <Redirect path="/settings"/> }/>
                    // Async: the whole card is in the first HTML, so it shows without JavaScript.
                    <Route path=path!("/settings") view=settings::SettingsPage ssr=SsrMode::Async/>
                    <Route path=path!("/about") view=settings::AboutPage/>
                </Routes>
            </main>
        </Router>
    }
}

/// The browser entry: takes over the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
