//! Byte sizes: the units localbrain counts in and the words it shows them in, shared by the
//! recommendation, the engine, the brain, the card and the CLI so every screen says the same.
//!
//! RAM is shown in binary GB (GiB labelled "GB", as RAM is sold and as every OS reports it: a
//! "16 GB" machine has 16 GiB) through [`format_ram`]; file sizes and disk space in decimal GB,
//! as file managers and Hugging Face show them, through [`format_bytes`]. Pure and WASM-safe.

/// One binary gigabyte; `min_ram_gb` and `navigator.deviceMemory` count in these.
pub const GIB: u64 = 1 << 30;
/// One binary megabyte.
pub const MIB: u64 = 1 << 20;

/// Free disk to keep beyond a file's size while downloading it: 5% or 256 MiB, whichever is
/// more, so a download never fills the disk to the last byte. The engine checks the same margin
/// before it starts.
pub fn disk_margin(size: u64) -> u64 {
    (size / 20).max(256 * MIB)
}

/// A file or disk size in decimal units: "4.7 GB" (one decimal) from 1 GB up, "386 MB" below,
/// then "12 KB" and "512 B".
pub fn format_bytes(n: u64) -> String {
    let x = n as f64;
    // Thresholds sit where the smaller unit would round up to 1000.
    if n >= 999_500_000 {
        format!("{:.1} GB", x / 1e9)
    } else if n >= 999_500 {
        format!("{:.0} MB", x / 1e6)
    } else if n >= 1_000 {
        format!("{:.0} KB", x / 1e3)
    } else {
        format!("{n} B")
    }
}

/// RAM in binary GB labelled "GB", as RAM is sold and reported: "16 GB", "15.5 GB"
/// (a trailing ".0" dropped), "512 MB" below 1 GB.
pub fn format_ram(n: u64) -> String {
    let tenths = (n as f64 / GIB as f64 * 10.0).round() as u64;
    if tenths >= 10 {
        if tenths.is_multiple_of(10) {
            format!("{} GB", tenths / 10)
        } else {
            format!("{}.{} GB", tenths / 10, tenths % 10)
        }
    } else {
        format!("{:.0} MB", n as f64 / MIB as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_margin_is_five_percent_or_256_mib() {
        let cases = [
            (0, 256 * MIB),
            (1_000_000_000, 256 * MIB),
            (256 * MIB * 20, 256 * MIB),
            (10_000_000_000, 500_000_000),
            (u64::MAX, u64::MAX / 20),
        ];
        for (size, margin) in cases {
            assert_eq!(disk_margin(size), margin, "{size}");
        }
    }

    #[test]
    fn formats() {
        let bytes = [
            (0, "0 B"),
            (999, "999 B"),
            (1_500, "2 KB"),
            (386_404_992, "386 MB"),
            (999_499_999, "999 MB"),
            (999_500_000, "1.0 GB"),
            (4_683_074_240, "4.7 GB"),
            (9_001_752_960, "9.0 GB"),
            (64 * GIB, "68.7 GB"),
        ];
        for (n, want) in bytes {
            assert_eq!(format_bytes(n), want, "{n}");
        }
        let ram = [
            (16 * GIB, "16 GB"),
            (15 * GIB + GIB / 2, "15.5 GB"),
            (25_276_502_016, "23.5 GB"),
            (GIB / 2, "512 MB"),
            (GIB / 4, "256 MB"),
            (GIB * 96 / 100, "1 GB"),
            (0, "0 MB"),
        ];
        for (n, want) in ram {
            assert_eq!(format_ram(n), want, "{n}");
        }
    }
}
