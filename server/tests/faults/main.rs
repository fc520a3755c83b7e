//! The fault suite (issue 8, item 1): the real `localbrain download` binary against a loopback
//! file server that misbehaves on purpose, and a process that is killed at random moments.
//!
//! Whatever happens, the models folder never holds a final file with the wrong bytes, never
//! more than one partial, and a partial only ever holds a prefix of the right file; a run that
//! is left alone finishes with the right file installed and no partial left behind.
//!
//! Knobs (environment):
//! - `LOCALBRAIN_FAULT_SEED`: the seed of the kill schedule (printed by every run; set it to
//!   replay a failure).
//! - `LOCALBRAIN_FAULT_KILLS`: how many SIGKILLs each kill test lands (default 30): one test
//!   kills single-stream downloads, `parallel_kills` kills four-connection ones.
//!
//! The disk-full test mounts a tmpfs, so it needs root (CI runs as root); without it, it fails
//! saying so instead of skipping.

mod parallel_kills;
mod proxies;

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use testkit::catalog::catalog_toml;
use testkit::{Fixture, hex, test_bytes};

const MODEL: &str = "fault-model";
const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A runtime for the fixture server; the tests themselves are plain blocking code that spawns
/// processes and sleeps, while the server keeps serving on the runtime's threads.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A data folder, a models folder and a catalog with one model served by the fixture.
struct Env {
    _dir: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    models: PathBuf,
    catalog: PathBuf,
    /// Pass `--models-dir` (when the models folder is not `<data>/models`).
    models_flag: bool,
    /// Extra flags and environment for every run (the parallel tests' connections and segments).
    flags: Vec<String>,
    vars: Vec<(String, String)>,
    runs: std::cell::Cell<u32>,
}

/// A finished run of the binary.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Env {
    fn new(server: &Fixture, size: usize) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let catalog = root.join("catalog.toml");
        let text = catalog_toml(MODEL, &[server.url("/file")], size as u64, &server.sha256());
        std::fs::write(&catalog, text).unwrap();
        let data = root.join("data");
        let models = data.join("models");
        Env {
            _dir: dir,
            root,
            data,
            models,
            catalog,
            models_flag: false,
            flags: Vec::new(),
            vars: Vec::new(),
            runs: Default::default(),
        }
    }

    /// Installs into `models` (passed with `--models-dir`) instead of `<data>/models`.
    fn with_models_dir(mut self, models: PathBuf) -> Env {
        self.models = models;
        self.models_flag = true;
        self
    }

    /// Downloads over `connections` connections in segments of `segment` bytes.
    fn parallel(mut self, connections: u32, segment: usize) -> Env {
        self.flags = vec!["--connections".into(), connections.to_string()];
        self.vars = vec![("LOCALBRAIN_SEGMENT_MIN_BYTES".into(), segment.to_string())];
        self
    }

    fn target(&self) -> PathBuf {
        self.models.join(format!("{MODEL}.gguf"))
    }

    fn partial_dir(&self) -> PathBuf {
        self.models.join(".partial")
    }

    /// The partial files, with their lengths.
    fn partials(&self) -> Vec<(PathBuf, u64)> {
        match std::fs::read_dir(self.partial_dir()) {
            Ok(d) => d.flatten().map(|e| (e.path(), e.metadata().map(|m| m.len()).unwrap_or(0))).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Length of the one partial, 0 when there is none.
    fn partial_len(&self) -> u64 {
        self.partials().iter().map(|(_, l)| *l).sum()
    }

    /// `localbrain download MODEL`, stdout and stderr going to files of their own.
    fn spawn(&self) -> (Child, PathBuf, PathBuf) {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let out = self.root.join(format!("run{n}.stdout"));
        let err = self.root.join(format!("run{n}.stderr"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_localbrain"));
        cmd.arg("--data-dir").arg(&self.data);
        if self.models_flag {
            cmd.arg("--models-dir").arg(&self.models);
        }
        // A developer's proxy must not carry a loopback test; a test that wants one sets it.
        for var in PROXY_VARS {
            cmd.env_remove(var);
        }
        cmd.args(&self.flags).args(["download", MODEL]).envs(self.vars.iter().map(|(k, v)| (k, v)));
        cmd.env("LOCALBRAIN_CATALOG", &self.catalog)
            .env("DATABASE_URL", "")
            .env_remove("LOCALBRAIN_MODELS_DIR")
            .env_remove("LOCALBRAIN_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap());
        (cmd.spawn().expect("start localbrain"), out, err)
    }

    /// Waits for a spawned run (killing it and failing after `limit`).
    fn finish(&self, mut child: Child, out: PathBuf, err: PathBuf, limit: Duration) -> Run {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "localbrain download did not finish within {limit:?}; stderr:\n{}",
                    std::fs::read_to_string(&err).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Run {
            status,
            stdout: std::fs::read_to_string(out).unwrap_or_default(),
            stderr: std::fs::read_to_string(err).unwrap_or_default(),
        }
    }

    /// One run left alone until it exits.
    fn run(&self, limit: Duration) -> Run {
        let (child, out, err) = self.spawn();
        self.finish(child, out, err, limit)
    }

    /// Waits until the partial on disk holds more than `bytes` (the download is under way).
    fn wait_partial_over(&self, child: &mut Child, bytes: u64, err: &Path) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.partial_len() <= bytes {
            if let Some(s) = child.try_wait().unwrap() {
                panic!(
                    "the download ended ({s}) before its partial reached {bytes} bytes; stderr:\n{}",
                    std::fs::read_to_string(err).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "the partial never grew past {bytes} bytes");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The invariants that hold at every instant, whatever was killed when: the final file is
    /// absent or exactly right; at most one partial, holding a prefix of the right bytes.
    fn assert_nothing_wrong_on_disk(&self, data: &[u8], ctx: &str) {
        self.assert_nothing_wrong_in_target(data, ctx);
        for (path, len) in self.partials() {
            let got = std::fs::read(&path).unwrap();
            assert!(len as usize <= data.len(), "{ctx}: the partial is longer than the file ({len})");
            if let Some(at) = got.iter().zip(data).position(|(a, b)| a != b) {
                panic!("{ctx}: the partial {} differs from the served file at byte {at}", path.display());
            }
        }
    }

    /// The final file is absent or exactly right, and there is at most one partial.
    fn assert_nothing_wrong_in_target(&self, data: &[u8], ctx: &str) {
        let target = self.target();
        if target.exists() {
            let got = std::fs::read(&target).unwrap();
            assert!(
                got.len() == data.len() && hex(&Sha256::digest(&got)) == hex(&Sha256::digest(data)),
                "{ctx}: the installed file is WRONG ({} bytes, sha256 {})",
                got.len(),
                hex(&Sha256::digest(&got))
            );
        }
        let partials = self.partials();
        assert!(partials.len() <= 1, "{ctx}: more than one partial: {partials:?}");
    }

    /// A run that exited 0: the right file is installed, its path printed, no partial left.
    fn assert_installed(&self, run: &Run, data: &[u8], ctx: &str) {
        assert!(run.status.success(), "{ctx}: exit {}; stderr:\n{}", run.status, run.stderr);
        let printed = run.stdout.trim_end();
        assert!(printed.ends_with(&format!("{MODEL}.gguf")), "{ctx}: prints where it installed, got {printed:?}");
        let got = std::fs::read(self.target()).unwrap_or_else(|e| panic!("{ctx}: no installed file: {e}"));
        assert!(got == data, "{ctx}: the installed file is not the served file");
        let left = self.partials();
        assert!(left.is_empty(), "{ctx}: a partial was left behind: {left:?}");
    }
}

/// Every variable that can send a download through a proxy, in both cases, and REQUEST_METHOD,
/// which turns them all off.
const PROXY_VARS: [&str; 9] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "REQUEST_METHOD",
];

fn send_signal(pid: u32, sig: &str) {
    let status = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success(), "kill -{sig} {pid}");
}

/// splitmix64: small, seedable, good enough to spread kill times.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

// ---------------------------------------------------------------------------------------------
// 1. kill -9 at random moments
// ---------------------------------------------------------------------------------------------

#[test]
fn kill_9_at_random_moments_never_leaves_a_wrong_file() {
    const SIZE: usize = 12 * MIB;
    let seed = env_u64("LOCALBRAIN_FAULT_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    let want_kills = env_u64("LOCALBRAIN_FAULT_KILLS").unwrap_or(30) as u32;
    eprintln!("faults: seed {seed} (replay with LOCALBRAIN_FAULT_SEED={seed}), {want_kills} kills");
    let mut rng = Rng(seed);

    let rt = runtime();
    let data = test_bytes(SIZE, 0);
    let server = rt.block_on(Fixture::start(data.clone()));
    let env = Env::new(&server, SIZE);

    let (mut kills, mut completions, mut resumes, mut fresh_starts) = (0u32, 0u32, 0u32, 0u32);
    // Downloads begun from nothing (the installed file deleted first); all end installed.
    let mut cycles = 1u64;
    // Bytes the server sent that the partial did not keep when its process was killed
    // (approximate: the server may count a last chunk or two after the kill, in the next run).
    let (mut lost, mut max_lost) = (0u64, 0u64);
    let mut iteration = 0u32;
    let mut landed = [0u32; 3];
    // How long a whole run on the fast line takes, measured on the runs left alone.
    let mut fast_run_ms = 500u64;
    // After a verified install, usually delete it so the next kills land in a new download;
    // sometimes keep it so they land in the "already installed: hash it" path instead.
    let after_install = |rng: &mut Rng, env: &Env, cycles: &mut u64| {
        if rng.below(4) != 0 {
            std::fs::remove_file(env.target()).unwrap();
            *cycles += 1;
        }
    };

    loop {
        iteration += 1;
        let finishing = kills >= want_kills;
        // Mostly a slow line (a whole run takes ~2.5 s, so kills land mid-transfer); sometimes a
        // fast one, so kills land near the end: verifying, installing, writing the row.
        // Every sixth run (and the last) is left alone to finish, on a fast line.
        let left_alone = finishing || iteration.is_multiple_of(6);
        let fast = left_alone || rng.below(5) == 0;
        server.set(|m| {
            m.chunk = 64 * 1024;
            m.chunk_delay = if fast { Duration::ZERO } else { Duration::from_millis(12) };
        });
        let ctx = format!("seed {seed}, iteration {iteration}{}", if fast { " (fast server)" } else { "" });
        let start_offset = env.partial_len();
        let reqs_before = server.file_requests().len();
        let sent_before = server.bytes_sent();

        let from_nothing = start_offset == 0 && !env.target().exists();
        let spawned = Instant::now();
        let (mut child, out, err) = env.spawn();
        let killed = if left_alone {
            let run = env.finish(child, out, err, Duration::from_secs(60));
            env.assert_installed(&run, &data, &ctx);
            if from_nothing {
                fast_run_ms = spawned.elapsed().as_millis() as u64;
            }
            completions += 1;
            false
        } else {
            match if fast { rng.below(3) } else { 3 } {
                0 => std::thread::sleep(Duration::from_millis(rng.below(fast_run_ms))),
                // Aim at the end of the run: the last bytes, the hash check, the install.
                1 => std::thread::sleep(Duration::from_millis(fast_run_ms * 6 / 10 + rng.below(fast_run_ms / 2))),
                // Kill as soon as the whole file is in the partial: while it is fsynced,
                // verified, installed.
                2 => {
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while env.partial_len() < SIZE as u64
                        && !env.target().exists()
                        && child.try_wait().unwrap().is_none()
                        && Instant::now() < deadline
                    {
                        std::thread::sleep(Duration::from_micros(500));
                    }
                }
                _ => std::thread::sleep(Duration::from_millis(rng.below(1500))),
            }
            let _ = child.kill(); // SIGKILL
            let status = child.wait().unwrap();
            if status.signal() == Some(9) {
                kills += 1;
                true
            } else {
                // It finished before the kill landed.
                let run = Run {
                    status,
                    stdout: std::fs::read_to_string(out).unwrap_or_default(),
                    stderr: std::fs::read_to_string(&err).unwrap_or_default(),
                };
                env.assert_installed(&run, &data, &ctx);
                completions += 1;
                false
            }
        };
        env.assert_nothing_wrong_on_disk(&data, &ctx);

        // The run's first request continued exactly where the partial left off.
        let reqs = server.file_requests();
        if let Some(first) = reqs.get(reqs_before) {
            let expected = (start_offset > 0).then(|| format!("bytes={start_offset}-"));
            assert_eq!(first.range, expected, "{ctx}: the first request must resume from the partial");
            if first.range.is_some() {
                assert_eq!(first.status, 206, "{ctx}");
                resumes += 1;
            } else {
                fresh_starts += 1;
            }
        } else if start_offset > 0 && (start_offset as usize) < SIZE && !killed {
            panic!("{ctx}: finished without asking for the rest of a {start_offset}-byte partial");
        }
        if killed {
            // Where the kill landed, as far as the disk tells.
            let now = env.partial_len();
            let phase = if env.target().exists() {
                2 // after the install, or while hashing an installed file
            } else if now == SIZE as u64 {
                1 // whole partial: verifying or installing
            } else {
                0 // starting, or transferring
            };
            landed[phase] += 1;
            let sent = server.bytes_sent() - sent_before;
            let kept = env.partial_len().saturating_sub(start_offset);
            let waste = sent.saturating_sub(kept);
            lost += waste;
            max_lost = max_lost.max(waste);
        } else {
            if finishing {
                break;
            }
            after_install(&mut rng, &env, &mut cycles);
        }
    }

    let sent = server.bytes_sent();
    let installed = cycles * SIZE as u64;
    let summary = format!(
        "faults: {kills} kills, {completions} completions, {resumes} resumes, sent {:.1} MB for {:.1} MB installed",
        mb(sent),
        mb(installed)
    );
    println!("{summary}");
    eprintln!(
        "{summary} (seed {seed}; whole run on the fast line {fast_run_ms} ms; {fresh_starts} fresh starts; kills landed {} while starting or transferring, {} with the whole partial on disk, {} with the file installed; ~{:.1} MB received but lost to kills, at most ~{:.1} MB in one)",
        landed[0],
        landed[1],
        landed[2],
        mb(lost),
        mb(max_lost)
    );
    assert!(kills >= want_kills);
    // A kill loses what the engine had received but not yet written to the partial: its write
    // buffer (4 MiB, flushed about once a second), the chunks queued for the writer thread and
    // what was in flight on loopback; on the fast line that can be the whole file. Averaged over
    // the kills it stays well under 6 MiB (measured ~3 MiB). The exact check that a resume never
    // refetches what the partial holds is the Range assertion on every run above.
    let per_kill = 6 * MIB as u64;
    assert!(
        sent <= installed + kills as u64 * per_kill,
        "seed {seed}: {summary}: more than {} MB lost per kill",
        mb(per_kill)
    );
}

// ---------------------------------------------------------------------------------------------
// 2. The remote file changes between attempts
// ---------------------------------------------------------------------------------------------

#[test]
fn a_remote_file_that_changes_between_attempts_is_not_spliced() {
    const SIZE: usize = 6 * MIB;
    let rt = runtime();
    let data = test_bytes(SIZE, 0);
    for sig in ["INT", "KILL"] {
        let server = rt.block_on(Fixture::start(data.clone()));
        server.set(|m| {
            m.chunk = 32 * 1024;
            m.chunk_delay = Duration::from_millis(10);
        });
        let env = Env::new(&server, SIZE);
        let (mut child, out, err) = env.spawn();
        // Past the first flush to the file (the engine writes through a buffer).
        env.wait_partial_over(&mut child, 256 * 1024, &err);
        send_signal(child.id(), sig);
        let run = env.finish(child, out, err, Duration::from_secs(20));
        assert!(!run.status.success(), "SIG{sig}: a stopped download is not a success");
        if sig == "INT" {
            assert!(run.stderr.contains("paused at"), "{}", run.stderr);
        }
        env.assert_nothing_wrong_on_disk(&data, sig);
        let kept = env.partial_len();
        assert!(kept > 0 && (kept as usize) < SIZE, "SIG{sig}: partial of {kept} bytes");

        // The file on the server is replaced: a new ETag, so If-Range no longer matches.
        server.set(|m| {
            m.etag = Some("\"v2\"".into());
            m.chunk_delay = Duration::ZERO;
        });
        let reqs_before = server.file_requests().len();
        let sent_before = server.bytes_sent();
        let run = env.run(Duration::from_secs(30));
        env.assert_installed(&run, &data, sig);

        let after: Vec<_> = server.file_requests().split_off(reqs_before);
        assert_eq!(after.len(), 1, "SIG{sig}: one request after the change: {after:?}");
        let resume = &after[0];
        assert_eq!(resume.range, Some(format!("bytes={kept}-")), "SIG{sig}: it asked to resume");
        assert_eq!(resume.if_range.as_deref(), Some("\"v1\""), "SIG{sig}: ...only if the file is unchanged");
        assert_eq!(resume.status, 200, "SIG{sig}: the changed file came back whole");
        assert_eq!(
            server.bytes_sent() - sent_before,
            SIZE as u64,
            "SIG{sig}: the whole new file was sent, and nothing of the old one was kept"
        );
        // The row now carries the new validator: a later resume would send it.
        drop(server);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Disk full mid-download
// ---------------------------------------------------------------------------------------------

/// A tmpfs mounted on a fresh folder of its own, lazily unmounted however the test ends (the
/// folder is removed after the unmount, never while something is still mounted on it).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "the disk-full test needs to mount a tmpfs (run as root, as CI does): mount -t tmpfs -o size={size} tmpfs {} failed: {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Writes zeros into `path` until the filesystem is full; returns the bytes written.
fn fill_disk(path: &Path) -> u64 {
    let mut f = File::create(path).unwrap();
    let block = vec![0u8; 256 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&block) {
            Ok(0) => panic!("write returned 0 before the disk was full"),
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => return written,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
}

#[test]
fn disk_full_mid_download_fails_clearly_keeps_the_partial_and_resumes_after_space_is_freed() {
    // The engine only starts with remaining + max(5%, 256 MiB) free, so the tmpfs passes that
    // check and is filled up once the download is under way.
    const SIZE: usize = 16 * MIB;
    let rt = runtime();
    let data = test_bytes(SIZE, 0);
    let server = rt.block_on(Fixture::start(data.clone()));
    server.set(|m| {
        m.chunk = 64 * 1024;
        m.chunk_delay = Duration::from_millis(20);
    });
    let disk = Tmpfs::mount("300m");
    let mount_at = disk.path().to_path_buf();
    let env = Env::new(&server, SIZE).with_models_dir(mount_at.join("models"));

    let (mut child, out, err) = env.spawn();
    env.wait_partial_over(&mut child, 512 * 1024, &err);
    let filler = mount_at.join("filler");
    let filled = fill_disk(&filler);
    let run = env.finish(child, out, err, Duration::from_secs(30));
    assert!(!run.status.success(), "a full disk is not a success; stdout: {}", run.stdout);
    let last_line = run.stderr.lines().last().unwrap_or_default();
    assert!(last_line.contains("The disk is full"), "says the disk is full: {last_line:?}\n{}", run.stderr);
    assert!(last_line.contains("Try again with: localbrain download"), "says what to run next: {last_line:?}");
    assert!(!env.target().exists(), "nothing is installed");
    env.assert_nothing_wrong_on_disk(&data, "disk full");
    let kept = env.partial_len();
    assert!(kept > 0 && (kept as usize) < SIZE, "the partial is kept: {kept} bytes (filler {filled})");

    std::fs::remove_file(&filler).unwrap();
    server.set(|m| m.chunk_delay = Duration::ZERO);
    let reqs_before = server.file_requests().len();
    let run = env.run(Duration::from_secs(30));
    env.assert_installed(&run, &data, "after freeing space");
    let resumed = &server.file_requests()[reqs_before];
    assert_eq!(resumed.range, Some(format!("bytes={kept}-")), "it resumed from the kept partial");
}

// ---------------------------------------------------------------------------------------------
// 4. Hostile servers, through the CLI (the engine tests cover the details)
// ---------------------------------------------------------------------------------------------

const HOSTILE_SIZE: usize = 4 * MIB;

#[test]
fn a_server_that_resets_the_connection_mid_body_still_completes() {
    let rt = runtime();
    let data = test_bytes(HOSTILE_SIZE, 0);
    let server = rt.block_on(Fixture::start(data.clone()));
    server.set(|m| {
        m.cut_after = Some(MIB as u64);
        m.cut_times = 3;
    });
    let env = Env::new(&server, HOSTILE_SIZE);
    let run = env.run(Duration::from_secs(30));
    env.assert_installed(&run, &data, "resets");
    let reqs = server.file_requests();
    assert!(reqs.len() >= 4, "three cuts, then the rest: {reqs:?}");
    assert!(reqs[1..].iter().all(|r| r.range.is_some() && r.status == 206), "every retry resumed: {reqs:?}");
    assert!(server.bytes_sent() < 2 * HOSTILE_SIZE as u64, "resumed, not restarted");
}

#[test]
fn a_server_that_answers_503_three_times_still_completes() {
    let rt = runtime();
    let data = test_bytes(HOSTILE_SIZE, 0);
    let server = rt.block_on(Fixture::start(data.clone()));
    server.set(|m| {
        m.fail_first = 3;
        m.fail_status = 503;
        m.retry_after = Some("0".into());
    });
    let env = Env::new(&server, HOSTILE_SIZE);
    let run = env.run(Duration::from_secs(30));
    env.assert_installed(&run, &data, "503");
    let statuses: Vec<u16> = server.file_requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 503, 503, 200]);
}

#[test]
fn an_html_error_page_with_status_200_is_refused_as_a_web_page() {
    let rt = runtime();
    let data = test_bytes(HOSTILE_SIZE, 0);
    let server = rt.block_on(Fixture::start(data.clone()));
    server.set(|m| m.html_error = true);
    let env = Env::new(&server, HOSTILE_SIZE);
    let run = env.run(Duration::from_secs(30));
    assert!(!run.status.success(), "an error page is not the model");
    let last_line = run.stderr.lines().last().unwrap_or_default();
    assert!(last_line.contains("sent a web page, not the model"), "{}", run.stderr);
    assert_eq!(server.file_requests().len(), 1, "waiting would not turn a page into the model: asked once");
    assert!(!env.target().exists(), "nothing installed");
    env.assert_nothing_wrong_on_disk(&data, "html");
    assert_eq!(server.file_requests().len(), 1, "refused at once, no retries");
}

/// The product's stall timeout is 30 s and the binary has no way to shorten it, so this one
/// takes over half a minute; it runs beside the others. (The engine tests cover stalls with a
/// short timeout.)
#[test]
fn a_server_that_stalls_forever_after_some_bytes_resumes_after_the_stall_timeout() {
    let rt = runtime();
    let data = test_bytes(HOSTILE_SIZE, 0);
    let server = rt.block_on(Fixture::start(data.clone()));
    server.set(|m| m.stall_after = Some(MIB as u64));
    let mut env = Env::new(&server, HOSTILE_SIZE);
    // The product waits 30 s; the flag makes the same wait short enough for every test run.
    env.flags = vec!["--stall-timeout".into(), "3".into()];
    let started = Instant::now();
    let run = env.run(Duration::from_secs(60));
    env.assert_installed(&run, &data, "stall");
    let reqs = server.file_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[1].range, Some(format!("bytes={}-", MIB)), "resumed after the stall");
    assert!(started.elapsed() >= Duration::from_secs(3), "waited for the stall timeout");
}
