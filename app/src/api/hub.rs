//! The endpoints of "Find a model on Hugging Face": search the hub for GGUF repos, and list one
//! repo's quants with how each fits this machine (the pick marked). A download of a hub model
//! goes through `downloads/start` like any other, with the reference as its `model_id`.
//!
//! Refusals, in plain words: 400 a reference that cannot be one (or a split model, or a file this
//! llama.cpp cannot run, or one too big for this machine), 403 a gated repo without a token (or
//! with one the hub refuses), 404 a repo, revision, quant or file that is not there (listing what
//! is), 503 a hub that cannot be reached or is busy (the catalog keeps working).

use super::ApiError;
#[cfg(feature = "ssr")]
use super::ssr;
use leptos::prelude::*;
use localbrain::hub::{FoundView, RepoView};
use server_fn::codec::Json;

/// GGUF repos on the hub matching `query`, most downloaded first.
#[server(prefix = "/api", endpoint = "hub/search", input = Json, output = Json)]
pub async fn search_hub(query: String) -> Result<Vec<FoundView>, ApiError> {
    let (engine, _user) = ssr::caller().await?;
    let query = query.trim().to_string();
    if query.is_empty() || query.len() > 200 {
        return Err(ApiError::BadRequest { error: "type 1 to 200 characters to search for".into() });
    }
    let hub = on_hub::of(&engine)?;
    hub.search(&query).await.map_err(on_hub::error)
}

/// The quants of the repo `reference` names (`hf.co/ORG/REPO`, a repo page's address), each with
/// its size, fit and predicted speed here, and the one the pick chose.
#[server(prefix = "/api", endpoint = "hub/repo", input = Json, output = Json)]
pub async fn hub_repo(reference: String) -> Result<RepoView, ApiError> {
    let (engine, _user) = ssr::caller().await?;
    let r = on_hub::reference(&engine, &reference)?;
    let hub = on_hub::of(&engine)?;
    let (hw, speed) = on_hub::machine().await?;
    let resolved = localbrain::hub::resolve::resolve(&hub, &r, &hw, &speed).await.map_err(on_hub::error)?;
    Ok(resolved.repo)
}

#[cfg(feature = "ssr")]
pub mod on_hub {
    //! What the hub endpoints and `downloads/start` share.

    use super::super::ssr;
    use super::ApiError;
    use localbrain::engine::Engine;
    use localbrain::hardware::HardwareProfile;
    use localbrain::hub::client::{Hub, HubError};
    use localbrain::hub::reference::HubRef;
    use localbrain::hub::resolve::ResolveError;
    use localbrain::hub::shelf::{self, Named, ShelfError};
    use localbrain::speed::SpeedInputs;

    /// A client for the configured hub.
    pub fn of(engine: &Engine) -> Result<Hub, ApiError> {
        let settings = engine.config().hub.clone().ok_or_else(|| ssr::internal("the hub's settings are not set"))?;
        Ok(Hub::new(settings))
    }

    /// `text` as a hub reference, or 400 saying what one looks like.
    pub fn reference(engine: &Engine, text: &str) -> Result<HubRef, ApiError> {
        let settings = engine.config().hub.as_ref().ok_or_else(|| ssr::internal("the hub's settings are not set"))?;
        match shelf::name(text, settings) {
            Ok(Named::Hub(r)) => Ok(r),
            Ok(Named::Id(_)) => Err(ApiError::BadRequest {
                error: format!("{:?} is not a Hugging Face model: it should look like hf.co/ORG/REPO", text.trim()),
            }),
            Err(e) => Err(ApiError::BadRequest { error: e.to_string() }),
        }
    }

    /// This machine and the speeds measured here, as the catalog's pick sees them.
    pub async fn machine() -> Result<(HardwareProfile, SpeedInputs), ApiError> {
        let brain = ssr::brain()?.config().clone();
        tokio::task::spawn_blocking(move || (brain.hardware(false), brain.speed_inputs())).await.map_err(ssr::internal)
    }

    /// Resolves and keeps the model a reference names; its local id.
    pub async fn adopt(engine: &Engine, r: &HubRef) -> Result<String, ApiError> {
        let hub = of(engine)?;
        let (hw, speed) = machine().await?;
        let adopted = shelf::adopt(engine.db(), engine.catalog(), &hub, r, &hw, &speed).await.map_err(error)?;
        Ok(adopted.model_id)
    }

    /// The status a hub failure is answered with; its words are the error's own.
    pub fn error(e: impl Into<ShelfError>) -> ApiError {
        let e = e.into();
        let error = e.to_string();
        match e {
            ShelfError::Reference(_) => ApiError::BadRequest { error },
            ShelfError::Resolve(r) => match r {
                ResolveError::Hub(h) => match h {
                    HubError::NotFound { .. } | HubError::NoRevision { .. } => ApiError::NotFound { error },
                    HubError::Gated { .. } | HubError::TokenRefused { .. } => ApiError::Forbidden { error },
                    HubError::Unreachable { .. }
                    | HubError::Busy { .. }
                    | HubError::Status { .. }
                    | HubError::BadAnswer { .. }
                    | HubError::Disagrees { .. } => ApiError::Unavailable { error },
                },
                ResolveError::NoGguf { .. } | ResolveError::NoQuant { .. } | ResolveError::NoFile { .. } => {
                    ApiError::NotFound { error }
                }
                ResolveError::PartMissing { .. }
                | ResolveError::NoHash { .. }
                | ResolveError::Header { .. }
                | ResolveError::TooBig { .. } => ApiError::BadRequest { error },
            },
            ShelfError::Store(_) | ShelfError::Entry(_) => ssr::internal(error),
        }
    }
}
