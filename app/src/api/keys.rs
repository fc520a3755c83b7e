//! The endpoints of the "API keys" card: the caller's keys, make one (its secret in the answer,
//! the only time it is sent), revoke one. Keys are always the caller's own: there is no way to
//! name another user's. These endpoints need a browser session; a key itself opens only `/v1`.
//!
//! Refusals: 400 a bad name, 404 revoking a key the caller does not have, 409 a name the caller
//! already uses.

use super::ApiError;
#[cfg(feature = "ssr")]
use super::ssr;
use leptos::prelude::*;
use localbrain::keys::{KeysView, NewKey};
use server_fn::codec::Json;

/// The caller's API keys, oldest first, and the server's clock.
#[server(prefix = "/api", endpoint = "keys/list", input = Json, output = Json)]
pub async fn list_keys() -> Result<KeysView, ApiError> {
    let (engine, user) = ssr::caller().await?;
    store::view(engine.db(), user.id).await
}

/// Makes an API key called `name` for the caller; the answer holds its secret, once.
#[server(prefix = "/api", endpoint = "keys/create", input = Json, output = Json)]
pub async fn create_key(name: String) -> Result<NewKey, ApiError> {
    let (engine, user) = ssr::caller().await?;
    let (key, secret) = localbrain::store::api_keys::create(engine.db(), user.id, &name).await.map_err(store::error)?;
    let keys = store::view(engine.db(), user.id).await?;
    Ok(NewKey { key, secret: secret.expose().to_string(), keys })
}

/// Revokes the caller's key called `name`: it fails from the next request on. The keys left.
#[server(prefix = "/api", endpoint = "keys/revoke", input = Json, output = Json)]
pub async fn revoke_key(name: String) -> Result<KeysView, ApiError> {
    let (engine, user) = ssr::caller().await?;
    if !localbrain::store::api_keys::revoke(engine.db(), user.id, &name).await.map_err(ssr::internal)? {
        return Err(ApiError::NotFound { error: format!("you have no API key called {:?}", name.trim()) });
    }
    store::view(engine.db(), user.id).await
}

/// The server side: the list with the clock, and the store's refusals as the API tells them.
#[cfg(feature = "ssr")]
mod store {
    use super::{ApiError, ssr};
    use localbrain::keys::KeysView;
    use localbrain::store::Db;
    use localbrain::store::api_keys::{self, KeyError};

    /// A user's keys and the time now.
    pub async fn view(db: &Db, user_id: i64) -> Result<KeysView, ApiError> {
        let keys = api_keys::list(db, user_id).await.map_err(ssr::internal)?;
        Ok(KeysView { keys, now: localbrain::time::now_ms() })
    }

    /// A store refusal as the API tells it: the store's words, the variant chosen here.
    pub fn error(e: KeyError) -> ApiError {
        let error = e.to_string();
        match e {
            KeyError::BadName(_) => ApiError::BadRequest { error },
            KeyError::DuplicateName { .. } => ApiError::Conflict { error },
            KeyError::Store(source) => ssr::internal(format!("{error}: {source}")),
        }
    }
}
