//! Free disk space, the one measurement both the engine's disk check and the card's machine
//! facts use.

use std::io;
use std::path::Path;

/// Free bytes for new files in `dir`, or in its nearest ancestor that exists (a folder not made
/// yet; a relative path's last ancestor is the current directory).
pub fn free_space(dir: &Path) -> io::Result<u64> {
    let existing = dir
        .ancestors()
        .map(|a| if a.as_os_str().is_empty() { Path::new(".") } else { a })
        .find(|a| a.exists())
        .ok_or_else(|| io::Error::other("no existing folder to measure"))?;
    fs4::available_space(existing)
}

#[cfg(test)]
mod tests {
    use super::free_space;
    use std::path::Path;

    #[test]
    fn a_folder_not_made_yet_is_measured_on_its_nearest_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_space(&dir.path().join("not/yet/made")).unwrap() > 0);
        assert!(free_space(Path::new("relative/not/made")).unwrap() > 0);
    }
}
