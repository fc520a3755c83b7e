//! This process among the others that share its database (issue 17): the id it claims downloads
//! under (`host:pid:random`), whether another runner has stopped, and the id of the models folder
//! it downloads into, so a process can tell whether it sees the same partial files as another.

use std::io::{self, Write};
use std::path::Path;

/// The file in a models folder that names it.
const FOLDER_ID_FILE: &str = ".localbrain-folder";

/// This process, as the `runner` column names it.
#[derive(Clone, Debug)]
pub struct Instance {
    /// `host:pid:random`: the random part tells this process from an earlier one that had the
    /// same pid (a container restarts as pid 1).
    pub id: String,
    host: String,
    pid: u32,
}

impl Instance {
    /// This process's id.
    pub fn new() -> Instance {
        let host = sysinfo::System::host_name().ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "localhost".into());
        // A ':' separates the parts.
        let host = host.replace(':', "_");
        let pid = std::process::id();
        Instance { id: format!("{host}:{pid}:{}", random_hex(4)), host, pid }
    }

    /// Whether the process `runner` names has stopped: `Some` when it ran on this host (its
    /// process is looked up), `None` when it ran elsewhere and only its lease can tell.
    pub fn has_stopped(&self, runner: &str) -> Option<bool> {
        let mut parts = runner.split(':');
        let (host, pid) = (parts.next()?, parts.next()?.parse::<u32>().ok()?);
        if host != self.host {
            return None;
        }
        if runner == self.id {
            return Some(false);
        }
        // Our own pid under another id is an earlier process, gone.
        Some(pid == self.pid || !process_alive(pid))
    }
}

impl Default for Instance {
    fn default() -> Self {
        Instance::new()
    }
}

/// Whether a process runs with `pid` (a zombie, killed but not yet reaped, does not).
fn process_alive(pid: u32) -> bool {
    let Ok(pid_t) = i32::try_from(pid) else { return false };
    // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
    let exists = unsafe { libc::kill(pid_t, 0) } == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return false;
    }
    // "pid (name) S ...": the state follows the last ')'.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_none_or(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => true,
    }
}

/// The id of the models folder `dir`, made on first use. Two processes that read the same id
/// share the folder (and its partial files); on a folder that is not shared they read different
/// ones, even at the same path.
pub fn folder_id(dir: &Path) -> io::Result<String> {
    let path = dir.join(FOLDER_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir)?;
    let id = random_hex(16);
    // Written under a temporary name and linked into place, so a reader never sees half of it
    // and two processes starting at once agree on the one that was linked first.
    let tmp = dir.join(format!("{FOLDER_ID_FILE}.{}", random_hex(4)));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(format!("{id}\n").as_bytes())?;
        f.sync_all()?;
    }
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(id),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(std::fs::read_to_string(&path)?.trim().to_string()),
        Err(e) => Err(e),
    }
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    // Without randomness the time still tells processes apart.
    if getrandom::fill(&mut b).is_err() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        b.iter_mut().enumerate().for_each(|(i, x)| *x = (nanos >> (8 * (i % 16))) as u8);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runners_on_this_host_are_looked_up_and_others_are_not() {
        let me = Instance::new();
        assert_eq!(me.has_stopped(&me.id), Some(false));
        let earlier_me = format!("{}:{}:00000000", me.host, me.pid);
        assert_eq!(me.has_stopped(&earlier_me), Some(true), "an earlier process with our pid");
        // pid 1 runs on every Linux machine.
        assert_eq!(me.has_stopped(&format!("{}:1:abcd", me.host)), Some(false));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(me.has_stopped(&format!("{}:{pid}:abcd", me.host)), Some(true));
        assert_eq!(me.has_stopped("another-host:1:abcd"), None);
        assert_eq!(me.has_stopped("garbage"), None);
    }

    #[test]
    fn a_folder_keeps_its_id_and_another_folder_has_its_own() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = folder_id(a.path()).unwrap();
        assert_eq!(first.len(), 32);
        assert_eq!(folder_id(a.path()).unwrap(), first);
        assert_ne!(folder_id(b.path()).unwrap(), first);
    }
}
