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
    /// The error in plain words when failed: what happened and what to do.
    pub error: Option<String>,
    /// The technical account behind `error` (its causes), for a "Details" disclosure.
    pub error_detail: Option<String>,
    /// Set while the transfer waits before trying again after a failure.
    pub retrying: Option<RetryView>,
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

/// A download waiting before its next try, as the card and the terminal tell it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryView {
    /// What went wrong, in plain words, without a full stop: "This machine can't reach huggingface.co".
    pub reason: String,
    /// The technical account, for "Details".
    pub detail: String,
    /// The try that comes next, counted from 1, of at most `of`.
    pub attempt: u32,
    pub of: u32,
    /// Seconds until that try.
    pub in_seconds: u64,
}

impl RetryView {
    /// "This machine can't reach huggingface.co. Trying again in 12 s (attempt 3 of 9)."
    pub fn sentence(&self) -> String {
        let when = match self.in_seconds {
            0 => "now".to_string(),
            s => format!("in {s} s"),
        };
        format!("{}. Trying again {when} (attempt {} of {}).", self.reason, self.attempt, self.of)
    }
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
    /// The speeds measured here and the usable speed, so the card can recompute the
    /// recommendation with the browser's memory reading and get the server's answer.
    pub speed: crate::speed::SpeedInputs,
    /// Where models are installed.
    pub models_dir: String,
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_wait_reads_as_a_countdown() {
        let mut r = super::RetryView {
            reason: "This machine can't reach huggingface.co".into(),
            detail: String::new(),
            attempt: 3,
            of: 9,
            in_seconds: 12,
        };
        assert_eq!(r.sentence(), "This machine can't reach huggingface.co. Trying again in 12 s (attempt 3 of 9).");
        r.in_seconds = 0;
        assert!(r.sentence().contains("Trying again now"));
    }

    #[test]
    fn percent_is_bounded_and_safe_on_zero_total() {
        assert_eq!(super::percent(0, 0), 0.0);
        assert_eq!(super::percent(50, 200), 25.0);
        assert_eq!(super::percent(300, 200), 100.0);
    }
}
