//! What every request handler can reach, built once in `main`. Handlers and layers take only
//! the parts they use (`State<Db>`, `State<SocketAddr>`), through the derived `FromRef`.

use leptos::prelude::LeptosOptions;
use localbrain::brain::Brain;
use localbrain::engine::Engine;
use localbrain::store::Db;
use std::net::SocketAddr;
use std::sync::Arc;

/// Everything a request handler can reach.
#[derive(Clone, axum::extract::FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub engine: Arc<Engine>,
    pub brain: Arc<Brain>,
    /// The address the server listens on, for the Host check.
    pub bound: SocketAddr,
    /// Failed login-link attempts per client address.
    pub guesses: Arc<crate::guesses::Guesses>,
}
