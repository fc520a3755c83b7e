//! One transfer per model (issue 17; the rows are `store::carriers`). A download started or
//! resumed while another download of the same model runs into the same models folder joins it
//! instead of fetching the model again: it has no runner and no partial of its own, and the
//! carrier's heartbeat keeps it in step (status, bytes, speed). Each user keeps their own row
//! and their own Pause and Cancel. When the carrier's user pauses or cancels, its runner hands
//! the transfer, partial and all, to the oldest joined download and starts that one's runner,
//! which resumes from the partial (a new Range request, no byte fetched twice): the transfer
//! stops only when the last user lets it go. Across processes the same holds through the rows.

//!
//! The engine's side of it (joining, settling, handing on) is in `engine.rs`.

use crate::store::downloads::DownloadRow;

/// Whether a row is one that joined another's transfer and has no runner of its own.
pub(super) fn is_joined(row: &DownloadRow) -> bool {
    row.carrier_id.is_some() && row.status.is_active()
}
