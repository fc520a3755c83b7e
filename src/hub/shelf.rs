//! Where hub models live once resolved: on the catalog's hub shelf (what this process knows) and
//! in `hub_models` (what every process on the database knows, across restarts). And the one way
//! a person's text becomes a model id: a catalog id as it is, a hub reference through the hub
//! ([`adopt`]) or, offline, through the models already known ([`known_ids`]).

use super::client::{Hub, HubError};
use super::reference::{self, HubRef, Pick, model_id};
use super::resolve::{ResolveError, Resolved, resolve};
use super::settings::HubSettings;
use crate::catalog::{Catalog, CatalogError};
use crate::hardware::HardwareProfile;
use crate::speed::SpeedInputs;
use crate::store::{Db, StoreError, hub_models};

/// What a text names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Named {
    /// A catalog id (shipped, or a hub model's local id).
    Id(String),
    /// A model on the hub.
    Hub(HubRef),
}

/// Why a hub model could not be adopted.
#[derive(Debug, thiserror::Error)]
pub enum ShelfError {
    #[error(transparent)]
    Reference(#[from] reference::RefError),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error("cannot keep the hub model")]
    Store(#[from] StoreError),
    #[error("the hub's answer does not make a usable model")]
    Entry(#[from] CatalogError),
}

impl From<HubError> for ShelfError {
    fn from(e: HubError) -> Self {
        ShelfError::Resolve(e.into())
    }
}

/// Reads `text` as a catalog id or a hub reference (on huggingface.co or the configured hub).
pub fn name(text: &str, settings: &HubSettings) -> Result<Named, reference::RefError> {
    match reference::parse(text, Some(settings.host())) {
        Some(r) => r.map(Named::Hub),
        // As given: a catalog id is checked exactly (`alpha ` is not `alpha`).
        None => Ok(Named::Id(text.to_string())),
    }
}

/// Puts every hub model the database keeps on `catalog`'s shelf (at start). A row this build
/// cannot use is skipped with a warning rather than stopping the server.
pub async fn load(db: &Db, catalog: &Catalog) -> Result<usize, StoreError> {
    let mut loaded = 0;
    for row in hub_models::all(db).await? {
        let id = row.entry.id.clone();
        match catalog.add_hub(row.entry) {
            Ok(()) => loaded += 1,
            Err(e) => tracing::warn!(model = %id, error = %e, "a kept hub model is not usable; skipped"),
        }
    }
    Ok(loaded)
}

/// Resolves `r` on the hub, then keeps the model (database first, then the shelf), so a download
/// of its id can start. When the hub cannot be reached and the reference names a model already
/// known, that one is used: a paused download resumes offline-first, and the next reach of the
/// hub pins it again.
pub async fn adopt(
    db: &Db,
    catalog: &Catalog,
    hub: &Hub,
    r: &HubRef,
    hw: &HardwareProfile,
    speed: &SpeedInputs,
) -> Result<Adopted, ShelfError> {
    match resolve(hub, r, hw, speed).await {
        Ok(resolved) => {
            hub_models::upsert(db, &resolved.row).await?;
            catalog.add_hub(resolved.row.entry.clone())?;
            Ok(Adopted { model_id: resolved.row.entry.id.clone(), resolved: Some(resolved) })
        }
        Err(ResolveError::Hub(HubError::Unreachable { host, source })) => {
            match known_ids(catalog, r).into_iter().next() {
                Some(model_id) => {
                    tracing::info!(model = %model_id, %host, "the hub is out of reach; using the model already known");
                    Ok(Adopted { model_id, resolved: None })
                }
                None => Err(ResolveError::Hub(HubError::Unreachable { host, source }).into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// A hub model kept: its id, and how it resolved (`None` when the hub was out of reach and a
/// known model was used).
#[derive(Clone, Debug, PartialEq)]
pub struct Adopted {
    pub model_id: String,
    pub resolved: Option<Resolved>,
}

/// The local ids of the known hub models `r` names, without asking the hub: the quant's or the
/// file's own id, or for a bare repo every quant of it known here, in the order they came.
pub fn known_ids(catalog: &Catalog, r: &HubRef) -> Vec<String> {
    let known = catalog.hub_models();
    let want = match &r.pick {
        Pick::Quant(q) => Some(model_id(&r.repo, q)),
        Pick::File { path, .. } => Some(model_id(&r.repo, &super::quant::label_of(path))),
        Pick::Best => None,
    };
    match want {
        Some(id) => known.into_iter().filter(|m| m.id == id).map(|m| m.id).collect(),
        None => {
            // Every id of the repo starts `hf--org--repo--`; the hub forbids `--` in names.
            let prefix = model_id(&r.repo, "");
            known.into_iter().filter(|m| m.id.starts_with(&prefix)).map(|m| m.id).collect()
        }
    }
}

/// The model id `text` names without asking the hub: a catalog id as it is, or the first known
/// hub model the reference names. `Ok(None)` for a reference to nothing known here.
pub fn local_id(catalog: &Catalog, settings: &HubSettings, text: &str) -> Result<Option<String>, reference::RefError> {
    Ok(match name(text, settings)? {
        Named::Id(id) => Some(id),
        Named::Hub(r) => known_ids(catalog, &r).into_iter().next(),
    })
}
