//! Boot recovery: after a crash or restart, rows left in an active status whose runner is gone
//! become paused (the user resumes them), with bytes set to what the partial really holds; and
//! partial files that no open row owns are deleted. A download another live process runs (its
//! claim renewed, `store::leases`) is left alone.
//!
//! Takeover: a running server adopts the active downloads whose runner died (another server on
//! the same database, killed or lost) and resumes them from their partial, if it shares their
//! models folder; if it does not, it pauses them with a note saying so.
//!
//! The engine's side of it (`Engine::recover`, `Engine::adopt_abandoned`) is in `engine.rs`.

use crate::status::DownloadStatus::{self, *};

/// What recovery did, for the log and the tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recovered {
    /// Downloads that were active and are now paused.
    pub paused: Vec<i64>,
    /// Partial files removed because no open download owns them.
    pub orphans_removed: usize,
}

pub(super) const ACTIVE: [DownloadStatus; 4] = [Pending, Downloading, Verifying, Installing];

/// What a server takes over: a download that was installing is paused instead (its runner may
/// have renamed the file already; a resume checks).
pub(super) const ADOPTABLE: [DownloadStatus; 3] = [Pending, Downloading, Verifying];
