//! Wire types the UI and the server share. A change here is a compile error on both sides.
//! Bytes are `u64`, ids `i64` and times are Unix milliseconds (`i64`): no `usize` crosses the wire.

use crate::status::DownloadStatus;
use serde::{Deserialize, Serialize};

/// The note boot recovery leaves on a download it paused; the card shows it as a banner.
pub const RESTART_NOTE: &str = "paused because localbrain restarted";

/// One download as the card and the API show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DownloadView {
    pub id: i64,
    pub model_id: String,
    pub status: DownloadStatus,
    pub bytes_downloaded: u64,
    pub total_bytes: u64,
    /// 0.0 ..= 100.0
    pub percent: f64,
    /// Live bytes per second (moving average); 0 when nothing is flowing.
    pub speed_bps: u64,
    /// Seconds left at the current speed; `None` when unknown.
    pub eta_seconds: Option<u64>,
    /// The error in plain words when failed.
    pub error: Option<String>,
    /// Where the model is installed, once complete.
    pub target_path: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub paused_at: Option<i64>,
    pub completed_at: Option<i64>,
    /// When the model this download installed was deleted from the machine (a complete
    /// download then offers Download again).
    #[serde(default)]
    pub removed_at: Option<i64>,
}

/// Percent done, 0 when the total is unknown; never above 100.
pub fn percent(done: u64, total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    (done.min(total) as f64 / total as f64) * 100.0
}

/// What the card needs to show the machine and the choice: `POST /api/catalog`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CatalogView {
    pub models: Vec<crate::catalog::ModelEntry>,
    pub hardware: crate::hardware::HardwareProfile,
    pub recommendation: crate::recommend::Recommendation,
    /// Where models are installed.
    pub models_dir: String,
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_is_bounded_and_safe_on_zero_total() {
        assert_eq!(super::percent(0, 0), 0.0);
        assert_eq!(super::percent(50, 200), 25.0);
        assert_eq!(super::percent(300, 200), 100.0);
    }
}
