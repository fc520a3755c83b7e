//! The endpoints of "Models on this machine": the list (models, unfinished downloads, the disk
//! line), delete (admins only: installed files are shared by every user), check again (a job
//! that outlives the request: the answer shows it running, the list shows how far it has got)
//! and stopping that check, and removing an unfinished download (its owner, or an admin for
//! anyone's).
//!
//! Refusals: 403 delete by a non-admin, 404 a model that is not on this machine (or a download
//! that is not the caller's), 409 delete while the model is answering a chat or a download of
//! it is checking or installing it.

use super::ApiError;
#[cfg(feature = "ssr")]
use super::ssr;
use leptos::prelude::*;
use localbrain::installed::{DiskModel, ModelsView};
use localbrain::view::DownloadView;
use server_fn::codec::Json;

/// The models in the models folder, the unfinished downloads (the caller's; everyone's for an
/// admin) and the disk line.
#[server(prefix = "/api", endpoint = "models/list", input = Json, output = Json)]
pub async fn list_models() -> Result<ModelsView, ApiError> {
    let (engine, user) = ssr::caller().await?;
    let (brain, checks) = (ssr::brain().ok(), library::checks()?);
    library::of(&engine, brain.as_deref(), &checks).view(user.id, user.is_admin).await.map_err(library::error)
}

/// Deletes an installed model's file (admins only); the list as it is afterwards.
#[server(prefix = "/api", endpoint = "models/delete", input = Json, output = Json)]
pub async fn delete_model(model_id: String) -> Result<ModelsView, ApiError> {
    let (engine, user) = ssr::caller().await?;
    if !user.is_admin {
        return Err(ApiError::Forbidden {
            error: "only an admin can delete models: installed models are shared by every user".into(),
        });
    }
    library::valid_id(&model_id)?;
    let (brain, checks) = (ssr::brain().ok(), library::checks()?);
    let lib = library::of(&engine, brain.as_deref(), &checks);
    lib.remove(&model_id).await.map_err(library::error)?;
    lib.view(user.id, user.is_admin).await.map_err(library::error)
}

/// Starts hashing an installed model's file again, or joins the check of it that runs, and
/// answers at once with its row (`checking` says how far it has got). When the check ends, the
/// list shows what it found: verified, or damaged (a fresh download replaces it).
#[server(prefix = "/api", endpoint = "models/verify", input = Json, output = Json)]
pub async fn verify_model(model_id: String) -> Result<DiskModel, ApiError> {
    let (engine, _user) = ssr::caller().await?;
    library::valid_id(&model_id)?;
    let (brain, checks) = (ssr::brain().ok(), library::checks()?);
    library::of(&engine, brain.as_deref(), &checks).reverify(&model_id).await.map_err(library::error)
}

/// Stops the check of an installed model's file, if one runs, and answers its row once the
/// check has ended: the last result stands.
#[server(prefix = "/api", endpoint = "models/verify/cancel", input = Json, output = Json)]
pub async fn cancel_verify_model(model_id: String) -> Result<DiskModel, ApiError> {
    let (engine, _user) = ssr::caller().await?;
    library::valid_id(&model_id)?;
    let (brain, checks) = (ssr::brain().ok(), library::checks()?);
    library::of(&engine, brain.as_deref(), &checks).stop_check(&model_id).await.map_err(library::error)
}

/// Cancels an unfinished download and removes its partial file: the caller's own, or anyone's
/// for an admin. Another user's download is "not found" for a non-admin.
#[server(prefix = "/api", endpoint = "models/leftovers/remove", input = Json, output = Json)]
pub async fn remove_leftover(id: i64) -> Result<DownloadView, ApiError> {
    let (engine, user) = ssr::caller().await?;
    let owner = if user.is_admin {
        localbrain::store::downloads::get_any_user(engine.db(), id)
            .await
            .map_err(ssr::internal)?
            .map_or(user.id, |row| row.user_id)
    } else {
        user.id
    };
    engine.cancel(owner, id).await.map_err(ssr::engine_error)
}

/// The server side: the library over the engine's folder and database, and its errors.
#[cfg(feature = "ssr")]
mod library {
    use super::{ApiError, ssr};
    use leptos::prelude::use_context;
    use localbrain::brain::Brain;
    use localbrain::engine::Engine;
    use localbrain::library::checks::Checks;
    use localbrain::library::{Library, LibraryError};
    use std::sync::Arc;

    /// The library of this server: the engine's catalog, folder and database, the brain, and
    /// the checks running.
    pub fn of<'a>(engine: &'a Engine, brain: Option<&'a Brain>, checks: &'a Checks) -> Library<'a> {
        Library { db: engine.db(), catalog: engine.catalog(), models_dir: engine.models_dir(), brain, checks }
    }

    /// The checks running in this server (its state owns them).
    pub fn checks() -> Result<Arc<Checks>, ApiError> {
        use_context::<Arc<Checks>>().ok_or_else(|| ssr::internal("model checks missing from context"))
    }

    /// 400 unless `model_id` is shaped like a catalog id.
    pub fn valid_id(model_id: &str) -> Result<(), ApiError> {
        if localbrain::catalog::is_valid_model_id(model_id) {
            Ok(())
        } else {
            Err(ApiError::BadRequest {
                error: "model_id must be a catalog model id (lowercase letters, digits, '.', '_' or '-')".into(),
            })
        }
    }

    /// A library error as the API tells it: the library's words, the variant chosen here.
    pub fn error(e: LibraryError) -> ApiError {
        let error = e.to_string();
        match e {
            LibraryError::UnknownModel(_) => ApiError::BadRequest { error },
            LibraryError::NotInstalled(_) => ApiError::NotFound { error },
            LibraryError::Generating { .. } | LibraryError::Installing { .. } => ApiError::Conflict { error },
            LibraryError::Io { .. } | LibraryError::Store(_) => ssr::internal(e),
        }
    }
}
