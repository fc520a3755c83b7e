//! What every request handler can reach, built once in `main`. Handlers and layers take only
//! the parts they use (`State<Db>`, `State<Site>`), through the derived `FromRef`.

use leptos::prelude::LeptosOptions;
use localbrain::brain::Brain;
use localbrain::engine::Engine;
use localbrain::store::Db;
use localbrain::store::sessions::SessionRules;
use std::sync::Arc;
use std::time::Duration;

/// Everything a request handler can reach.
#[derive(Clone, axum::extract::FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub engine: Arc<Engine>,
    pub brain: Arc<Brain>,
    /// The checks of installed models running now (they outlive the requests that started them).
    pub checks: Arc<localbrain::library::checks::Checks>,
    /// Where people reach the server, for the Host and Origin checks.
    pub site: crate::site::Site,
    /// When sessions end.
    pub session_rules: SessionRules,
    /// How long a request body may take to arrive.
    pub body_timeout: Duration,
    /// Failed login-link attempts per client address.
    pub guesses: Arc<crate::guesses::Guesses>,
    /// Reverse proxies whose X-Forwarded-For names the client (`--trusted-proxy`).
    pub proxies: crate::proxies::TrustedProxies,
}
