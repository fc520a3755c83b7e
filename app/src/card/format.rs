//! Words for numbers on the card: speed, time left, the status line.

use localbrain::status::DownloadStatus;
use localbrain::units::format_bytes;
use localbrain::view::DownloadView;

/// "5.2 MB/s".
pub fn speed(bps: u64) -> String {
    format!("{}/s", format_bytes(bps))
}

/// "about 2 min left", "12 s left", "1 h 5 min left".
pub fn time_left(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s left"),
        60..=3599 => format!("about {} min left", secs.div_ceil(60)),
        _ => format!("{} h {} min left", secs / 3600, (secs % 3600) / 60),
    }
}

/// "1.2 GB of 4.7 GB".
pub fn bytes_of(d: &DownloadView) -> String {
    format!("{} of {}", format_bytes(d.bytes_downloaded), format_bytes(d.total_bytes))
}

/// "2026-11-30": the UTC date of Unix milliseconds (Howard Hinnant's days-to-civil).
pub fn date(ms: i64) -> String {
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The sentence announced to screen readers and shown above the bar.
pub fn status_line(d: &DownloadView, model_name: &str) -> String {
    match d.status {
        DownloadStatus::Pending => format!("Starting the download of {model_name}…"),
        DownloadStatus::Downloading if d.retrying.is_some() => {
            format!("Downloading {model_name}: {:.0}%, waiting to try again", d.percent.floor())
        }
        DownloadStatus::Downloading => format!("Downloading {model_name}: {:.0}%", d.percent.floor()),
        DownloadStatus::Paused => format!("Paused at {:.0}%", d.percent.floor()),
        DownloadStatus::Verifying => "Checking the file's SHA-256 fingerprint…".to_string(),
        DownloadStatus::Installing => "Installing into the models folder…".to_string(),
        DownloadStatus::Complete if d.removed_at.is_some() => format!("{model_name} was removed from this machine."),
        DownloadStatus::Complete => format!("{model_name} is installed and ready."),
        DownloadStatus::Failed => "The download failed.".to_string(),
        DownloadStatus::Cancelled => "The download was cancelled.".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_naturally() {
        assert_eq!(time_left(0), "0 s left");
        assert_eq!(time_left(59), "59 s left");
        assert_eq!(time_left(61), "about 2 min left");
        assert_eq!(time_left(3_900), "1 h 5 min left");
    }

    #[test]
    fn dates_are_calendar_days() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_709_251_200_000), "2024-03-01");
        assert_eq!(date(1_764_504_000_000), "2025-11-30");
    }

    #[test]
    fn speeds_use_disk_units() {
        assert_eq!(speed(5_200_000), "5 MB/s");
        assert_eq!(speed(1_500_000_000), "1.5 GB/s");
    }
}
