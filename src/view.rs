//! Wire types the UI and the server share. A change here is a compile error on both sides.
//! Bytes are `u64`, ids `i64` and times are Unix milliseconds (`i64`): no `usize` crosses the wire.

use crate::status::DownloadStatus;
use serde::{Deserialize, Serialize};

/// Why localbrain (not the user) paused a download. The row keeps it as a kind
/// (`{"paused_by":"restart"}` in `model_downloads.error_kind`), so the card decides on the value,
/// never by comparing the sentence, and a reworded sentence changes no decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// The process running it stopped (a restart, a shutdown, a crash found by boot recovery):
    /// the card offers Resume in a banner.
    Restart,
    /// Its runner died and its partial is in a models folder this server does not see.
    ElsewhereFolder,
}

impl PauseReason {
    /// The sentence shown with the paused download.
    pub fn note(self) -> &'static str {
        match self {
            PauseReason::Restart => "paused because localbrain restarted",
            PauseReason::ElsewhereFolder => {
                "The localbrain server that was downloading this stopped, and its unfinished file is in a models \
                 folder this server cannot see. Resume it on that server, or resume it here to start again."
            }
        }
    }

    /// The kind as the row stores it.
    #[cfg(feature = "ssr")]
    pub fn to_kind(self) -> String {
        serde_json::json!({ "paused_by": self }).to_string()
    }

    /// The reason in a stored kind; `None` for a failure's kind, or one a newer build wrote.
    #[cfg(feature = "ssr")]
    pub fn from_kind(kind: &str) -> Option<PauseReason> {
        #[derive(Deserialize)]
        struct Kept {
            paused_by: PauseReason,
        }
        serde_json::from_str::<Kept>(kind).ok().map(|k| k.paused_by)
    }
}

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
    /// Set when paused by localbrain rather than by the user, saying why.
    #[serde(default)]
    pub paused_by: Option<PauseReason>,
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

    #[cfg(feature = "ssr")]
    #[test]
    fn a_pause_reason_survives_its_kind_and_is_not_a_failure() {
        use super::PauseReason::*;
        for r in [Restart, ElsewhereFolder] {
            assert_eq!(super::PauseReason::from_kind(&r.to_kind()), Some(r));
        }
        assert_eq!(super::PauseReason::from_kind(r#"{"kind":"busy","host":"x","status":503}"#), None);
        assert_eq!(super::PauseReason::from_kind(r#"{"paused_by":"a_newer_reason"}"#), None);
    }

    #[test]
    fn percent_is_bounded_and_safe_on_zero_total() {
        assert_eq!(super::percent(0, 0), 0.0);
        assert_eq!(super::percent(50, 200), 25.0);
        assert_eq!(super::percent(300, 200), 100.0);
    }
}
