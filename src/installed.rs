//! Wire types of "Models on this machine": the model files in the models folder, the unfinished
//! downloads whose partial files take room, and the disk line. The Settings page, the API
//! (`POST /api/models/...`) and `localbrain models` share them. Bytes are `u64`, ids `i64`, times
//! Unix milliseconds. Pure and WASM-safe.

use crate::chat::ModelFacts;
use crate::status::DownloadStatus;
use crate::units::format_bytes;
use serde::{Deserialize, Serialize};

/// What the last SHA-256 check of a file found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Its SHA-256 matched the catalog's when installed or last checked.
    Verified,
    /// Its SHA-256 did not match the catalog's: a fresh download replaces it.
    Damaged,
    /// Never checked by this localbrain (copied in, installed by an older version, or changed
    /// since its check).
    NotChecked,
}

impl Check {
    /// The label on the list: "verified", "damaged", "not checked yet".
    pub fn label(self) -> &'static str {
        match self {
            Check::Verified => "verified",
            Check::Damaged => "damaged",
            Check::NotChecked => "not checked yet",
        }
    }
}

/// Why a model counts as "in use" right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InUse {
    /// The brain is writing a reply with it: it cannot be deleted now.
    Generating,
    /// A download of it is checking or installing the file: it cannot be deleted now.
    Installing,
    /// A download of it is fetching bytes (its partial file, not this one, is being written).
    Downloading,
    /// In memory, idle: deleting it unloads it.
    Loaded,
}

impl InUse {
    /// The label on the list.
    pub fn label(self) -> &'static str {
        match self {
            InUse::Generating => "in use: answering a chat",
            InUse::Installing => "in use: a download is checking it",
            InUse::Downloading => "in use: downloading",
            InUse::Loaded => "in use: loaded",
        }
    }
}

/// One model file in the models folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskModel {
    /// The catalog id; `None` for a `.gguf` file the catalog does not know, which is listed by
    /// its file name and cannot be deleted or checked from here (no path comes from a request).
    pub model_id: Option<String>,
    /// The file's name in the models folder.
    pub file_name: String,
    /// The catalog's name, else the file name.
    pub name: String,
    /// The catalog's license and the model's page, kept with it (a hub model's repo card).
    #[serde(default)]
    pub license: Option<String>,
    #[serde(default)]
    pub page: Option<String>,
    pub size_bytes: u64,
    /// When localbrain installed it; the file's modification time when it has no record.
    pub installed_at: Option<i64>,
    /// When its SHA-256 was last checked.
    pub verified_at: Option<i64>,
    pub check: Check,
    /// The GGUF header's facts when the file is a model localbrain can run.
    pub facts: Option<ModelFacts>,
    /// Why the file cannot run, in plain words, when it cannot.
    pub problem: Option<String>,
    pub in_use: Option<InUse>,
    /// How far a check of its SHA-256 has got while one runs; `check` is still the last
    /// result until it ends.
    #[serde(default)]
    pub checking: Option<CheckProgress>,
}

/// A running SHA-256 check of a model file: bytes hashed so far of the file's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckProgress {
    pub bytes_done: u64,
    pub total: u64,
}

impl CheckProgress {
    /// Whole percent done, 0 to 100 (an empty file is done at once).
    pub fn percent(self) -> u8 {
        if self.total == 0 {
            return 100;
        }
        (u128::from(self.bytes_done.min(self.total)) * 100 / u128::from(self.total)) as u8
    }

    /// "Checking… 45%", what the row shows while it runs.
    pub fn label(self) -> String {
        format!("Checking… {}%", self.percent())
    }
}

/// A download that has not finished, and what its partial file holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Leftover {
    /// The download's id (what Cancel names).
    pub id: i64,
    pub model_id: String,
    /// The catalog's name, else the id.
    pub name: String,
    /// Whose download it is.
    pub user_name: String,
    pub status: DownloadStatus,
    /// Disk space its partial file takes now.
    pub bytes_on_disk: u64,
}

/// The whole "Models on this machine" section: `POST /api/models/list`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelsView {
    pub models: Vec<DiskModel>,
    /// The caller's unfinished downloads; every user's for an admin.
    pub leftovers: Vec<Leftover>,
    /// Sum of the model files' sizes.
    pub models_bytes: u64,
    /// What every unfinished download's partial file takes (all users: it is one disk).
    pub partial_bytes: u64,
    /// Free space in the models folder; `None` when it cannot be measured.
    pub free_bytes: Option<u64>,
    /// Whether the caller may delete models and remove others' unfinished downloads (admins).
    pub is_admin: bool,
}

impl ModelsView {
    /// "Models 4.2 GB · unfinished downloads 3.1 GB · 52 GB free".
    pub fn disk_line(&self) -> String {
        let free = self.free_bytes.map_or("free space unknown".to_string(), |f| format!("{} free", format_bytes(f)));
        format!(
            "Models {} · unfinished downloads {} · {free}",
            format_bytes(self.models_bytes),
            format_bytes(self.partial_bytes)
        )
    }

    /// "2 unfinished downloads hold 3.1 GB", over the leftovers listed.
    pub fn leftovers_line(&self) -> String {
        let bytes = format_bytes(self.leftovers.iter().map(|l| l.bytes_on_disk).sum());
        match self.leftovers.len() {
            0 => "No unfinished downloads.".to_string(),
            1 => format!("1 unfinished download holds {bytes}"),
            n => format!("{n} unfinished downloads hold {bytes}"),
        }
    }
}

impl DiskModel {
    /// "98 MB · installed 2026-11-30 14:05 UTC · verified", the line under its name.
    pub fn summary(&self) -> String {
        let mut parts = vec![format_bytes(self.size_bytes)];
        if let Some(at) = self.installed_at {
            parts.push(format!("installed {}", format_time(at)));
        }
        parts.push(self.check.label().to_string());
        parts.join(" · ")
    }
}

/// "2026-11-30 14:05 UTC" for Unix milliseconds: the same words on the server, in the browser
/// and in the terminal (no time zone database needed, so the first render and the hydrated one
/// agree).
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, (rem % 3600) / 60)
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(format_time(1_796_047_500_000), "2026-11-30 14:05 UTC");
    }

    #[test]
    fn the_disk_line_adds_up_models_partials_and_free() {
        let leftover = |id, bytes_on_disk| Leftover {
            id,
            model_id: "m".into(),
            name: "M".into(),
            user_name: "admin".into(),
            status: DownloadStatus::Paused,
            bytes_on_disk,
        };
        let view = ModelsView {
            models: vec![],
            leftovers: vec![leftover(1, 1_000_000_000), leftover(2, 2_100_000_000)],
            models_bytes: 4_200_000_000,
            partial_bytes: 3_100_000_000,
            free_bytes: Some(52_000_000_000),
            is_admin: true,
        };
        assert_eq!(view.disk_line(), "Models 4.2 GB · unfinished downloads 3.1 GB · 52.0 GB free");
        assert_eq!(view.leftovers_line(), "2 unfinished downloads hold 3.1 GB");
    }

    #[test]
    fn a_check_says_how_far_it_has_got_in_whole_percent() {
        let at = |bytes_done, total| CheckProgress { bytes_done, total }.label();
        assert_eq!(at(0, 1000), "Checking… 0%");
        assert_eq!(at(459, 1000), "Checking… 45%");
        assert_eq!(at(u64::MAX - 1, u64::MAX), "Checking… 99%");
        assert_eq!(at(1000, 1000), "Checking… 100%");
        assert_eq!(at(0, 0), "Checking… 100%");
    }

    #[test]
    fn a_model_listed_before_checks_ran_as_jobs_reads_as_not_being_checked() {
        let older = r#"{"model_id":"m","file_name":"m.gguf","name":"M","size_bytes":1,"installed_at":null,
            "verified_at":null,"check":"verified","facts":null,"problem":null,"in_use":null}"#;
        let m: DiskModel = serde_json::from_str(older).unwrap();
        assert_eq!(m.checking, None);
    }
}
