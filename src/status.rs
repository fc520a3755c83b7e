//! The download status machine: every status a download row can have and the moves allowed
//! between them. The engine, the store and the API all ask [`DownloadStatus::can_become`]
//! before writing a status, so a cancelled row is never revived by a late runner.

use serde::{Deserialize, Serialize};

/// Where a download is in its life. Stored in the database as the lowercase name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DownloadStatus {
    /// Row made, transfer not yet started.
    Pending,
    /// Bytes are flowing.
    Downloading,
    /// Stopped by the user or by a restart; the partial file is kept.
    Paused,
    /// The SHA-256 is being checked.
    Verifying,
    /// The verified file is being moved into the models folder.
    Installing,
    /// Installed. Terminal.
    Complete,
    /// Stopped by an error; the partial is kept where it can resume.
    Failed,
    /// Stopped by the user; the partial is removed. Terminal.
    Cancelled,
}

impl DownloadStatus {
    /// Every status, in life order.
    pub const ALL: [DownloadStatus; 8] = [
        Self::Pending,
        Self::Downloading,
        Self::Paused,
        Self::Verifying,
        Self::Installing,
        Self::Complete,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The name stored in the database and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Downloading => "downloading",
            Self::Paused => "paused",
            Self::Verifying => "verifying",
            Self::Installing => "installing",
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Complete and cancelled rows never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Cancelled)
    }

    /// A runner owns the row in these states; the card polls while a download is in one.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Pending | Self::Downloading | Self::Verifying | Self::Installing)
    }

    /// Whether a row in `self` may move to `next`. Staying in the same status is not a move.
    pub fn can_become(self, next: Self) -> bool {
        use DownloadStatus::*;
        match (self, next) {
            // The runner's forward path. Pending may jump to Verifying when the model file is
            // already on disk and only needs its hash checked.
            (Pending, Downloading | Verifying) => true,
            (Downloading, Verifying) => true,
            // An installed file that failed its check is downloaded again.
            (Verifying, Downloading) => true,
            (Verifying, Installing | Complete) => true,
            (Installing, Complete) => true,
            // Pause, cancel and failure are possible in every non-terminal state that has a
            // runner (cancel also from paused and failed: that is Dismiss).
            (Pending | Downloading | Verifying | Installing, Paused | Failed | Cancelled) => true,
            (Paused | Failed, Cancelled) => true,
            // Resume and Retry hand the row back to a runner.
            (Paused | Failed, Pending) => true,
            _ => false,
        }
    }

    /// The statuses that count against "one download per (user, model)": everything that still
    /// owns a partial file. Kept in step with the unique partial index in migrations/.
    pub fn holds_slot(self) -> bool {
        !self.is_terminal()
    }
}

impl std::fmt::Display for DownloadStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::DownloadStatus::{self, *};

    /// The whole allowed table, written out once; every pair not in it must be refused.
    const ALLOWED: &[(DownloadStatus, DownloadStatus)] = &[
        (Pending, Downloading),
        (Pending, Verifying),
        (Pending, Paused),
        (Pending, Failed),
        (Pending, Cancelled),
        (Downloading, Verifying),
        (Downloading, Paused),
        (Downloading, Failed),
        (Downloading, Cancelled),
        (Verifying, Installing),
        (Verifying, Complete),
        (Verifying, Downloading),
        (Verifying, Paused),
        (Verifying, Failed),
        (Verifying, Cancelled),
        (Installing, Complete),
        (Installing, Paused),
        (Installing, Failed),
        (Installing, Cancelled),
        (Paused, Pending),
        (Paused, Cancelled),
        (Failed, Pending),
        (Failed, Cancelled),
    ];

    #[test]
    fn every_pair_is_allowed_or_refused_as_the_table_says() {
        for from in DownloadStatus::ALL {
            for to in DownloadStatus::ALL {
                let expected = ALLOWED.contains(&(from, to));
                assert_eq!(from.can_become(to), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn terminal_states_have_no_way_out() {
        for to in DownloadStatus::ALL {
            assert!(!Complete.can_become(to));
            assert!(!Cancelled.can_become(to));
        }
    }

    #[test]
    fn names_round_trip_through_storage_and_json() {
        for st in DownloadStatus::ALL {
            assert_eq!(DownloadStatus::parse(st.as_str()), Some(st));
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()));
        }
        assert_eq!(DownloadStatus::parse("Downloading"), None);
        assert_eq!(DownloadStatus::parse(""), None);
    }
}
