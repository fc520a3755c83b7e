//! `localbrain download` as a user runs it: the real binary against a real HTTP server on
//! loopback. Ctrl-C pauses and keeps the partial; running it again resumes and installs.

use std::process::{Command, Stdio};
use std::time::Duration;
use testkit::catalog::catalog_toml;
use testkit::{Fixture, test_bytes};

const SIZE: usize = 4 * 1024 * 1024;

fn catalog(dir: &std::path::Path, server: &Fixture, size: usize) -> std::path::PathBuf {
    let path = dir.join("catalog.toml");
    let text = catalog_toml("cli-model", &[server.url("/file")], size as u64, &server.sha256());
    std::fs::write(&path, text).unwrap();
    path
}

fn localbrain(data: &std::path::Path, catalog: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_localbrain"));
    cmd.arg("--data-dir").arg(data).env("LOCALBRAIN_CATALOG", catalog).env("DATABASE_URL", "");
    cmd
}

fn send_signal(pid: u32, sig: &str) {
    let status = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_pauses_and_a_second_run_resumes_to_a_verified_install() {
    let server = Fixture::start(test_bytes(SIZE, 0)).await;
    server.set(|m| {
        m.chunk = 32 * 1024;
        m.chunk_delay = Duration::from_millis(20);
    });
    let dir = tempfile::tempdir().unwrap();
    let cat = catalog(dir.path(), &server, SIZE);
    let data = dir.path().join("data");

    let child = localbrain(&data, &cat)
        .args(["download", "cli-model"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let partial_dir = data.join("models/.partial");
    let on_disk = || -> u64 {
        std::fs::read_dir(&partial_dir).map(|d| d.flatten().map(|e| e.metadata().unwrap().len()).sum()).unwrap_or(0)
    };
    let mut grew = false;
    for _ in 0..400 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        if on_disk() > 300_000 {
            grew = true;
            break;
        }
    }
    assert!(grew, "the partial never grew");
    send_signal(child.id(), "INT"); // what Ctrl-C sends
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a paused download is not a success");
    assert!(stderr.contains("paused at") && stderr.contains("again to resume"), "{stderr}");
    let kept: Vec<_> = std::fs::read_dir(&partial_dir).unwrap().flatten().collect();
    assert_eq!(kept.len(), 1, "the partial is kept");
    let kept_len = kept[0].metadata().unwrap().len();
    assert!(kept_len > 300_000);

    server.set(|m| m.chunk_delay = Duration::ZERO);
    let (d, c) = (data.clone(), cat.clone());
    let out = tokio::task::spawn_blocking(move || localbrain(&d, &c).args(["download", "cli-model"]).output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.trim_end().ends_with("models/cli-model.gguf"), "prints where it installed: {stdout}");
    let installed = std::fs::read(data.join("models/cli-model.gguf")).unwrap();
    assert!(installed == test_bytes(SIZE, 0), "the installed file is the served file");
    let last = server.file_requests().pop().unwrap();
    assert_eq!(last.range, Some(format!("bytes={kept_len}-")), "resumed, not restarted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_size_mismatch_exits_non_zero_saying_both_sizes_and_installs_nothing() {
    let server = Fixture::start(test_bytes(SIZE, 0)).await;
    let dir = tempfile::tempdir().unwrap();
    let cat = catalog(dir.path(), &server, SIZE + 10);
    let data = dir.path().join("data");
    let d = data.clone();
    let out = tokio::task::spawn_blocking(move || localbrain(&d, &cat).args(["download", "cli-model"]).output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&SIZE.to_string()) && stderr.contains(&(SIZE + 10).to_string()), "{stderr}");
    assert!(!data.join("models/cli-model.gguf").exists());
}

#[test]
fn an_unknown_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_localbrain"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["download", "no-such-model"])
        .env("DATABASE_URL", "")
        .env_remove("LOCALBRAIN_CATALOG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no model called \"no-such-model\""), "{stderr}");
}

#[test]
fn the_catalog_command_marks_the_recommended_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_localbrain"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("catalog")
        .env_remove("LOCALBRAIN_CATALOG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("qwen2.5-0.5b-instruct-q4_k_m"), "{stdout}");
    assert!(stdout.contains("* Recommended: "), "{stdout}");
}

#[test]
fn out_of_range_settings_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value) in [("--stall-timeout", "0"), ("--connections", "17"), ("--max-rate", "fast")] {
        let out = Command::new(env!("CARGO_BIN_EXE_localbrain"))
            .arg("--data-dir")
            .arg(dir.path())
            .args([flag, value, "download", "no-such-model"])
            .env_remove("LOCALBRAIN_CATALOG")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag} {value} is refused");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag) && stderr.contains(value), "{flag} {value}: names the bad setting: {stderr}");
        assert!(!dir.path().join("localbrain.db").exists(), "{flag} {value}: no database created");
    }
}

/// Offline (issue 15): within seconds the terminal names the host and says it is trying again
/// (a line per try when stderr is not a terminal); the end says what happened and what to do,
/// and `--verbose` adds the technical details.
#[tokio::test(flavor = "multi_thread")]
async fn offline_the_terminal_names_the_host_and_shows_it_is_retrying_within_seconds() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cat = dir.path().join("catalog.toml");
    let url = format!("http://127.0.0.1:{port}/offline.gguf");
    std::fs::write(&cat, catalog_toml("offline-model", &[url], 1000, &testkit::sha256_hex(b"never served"))).unwrap();
    let data = dir.path().join("data");
    let started = std::time::Instant::now();
    let mut child = localbrain(&data, &cat)
        .args(["--retries", "3", "download", "offline-model", "--verbose"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            seen.push((started.elapsed(), line));
        }
        seen
    })
    .await
    .unwrap();
    let status = child.wait().unwrap();
    let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    let (first_at, first) =
        lines.iter().find(|(_, l)| l.contains("Trying again")).unwrap_or_else(|| panic!("no retry line: {text:#?}"));
    assert!(first.starts_with("127.0.0.1 refused the connection. Trying again"), "{first}");
    // The first wait is a fraction of a second and may pass between two looks at the row.
    assert!(first.contains("(attempt ") && first.ends_with(" of 4)."), "{first}");
    assert!(*first_at < Duration::from_secs(5), "said it was retrying after {first_at:?}");
    assert!(text.iter().any(|l| l.starts_with("  details:") && l.contains("Connection refused")), "{text:#?}");
    assert!(!status.success(), "an offline download is not a success");
    let last = text.last().unwrap();
    assert!(last.contains("127.0.0.1 refused the connection") && last.contains("Try again later"), "{last}");
    assert!(last.contains("Try again with: localbrain download offline-model"), "{last}");
    assert!(!last.contains("os error"), "the technical account is not in the words: {last}");
    assert!(text.iter().any(|l| l.starts_with("details:") && l.contains("gave up after 4 tries")), "{text:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn models_lists_what_is_installed_and_rm_deletes_it_only_when_told_to() {
    let server = Fixture::start(test_bytes(SIZE, 0)).await;
    let dir = tempfile::tempdir().unwrap();
    let cat = catalog(dir.path(), &server, SIZE);
    let data = dir.path().join("data");
    let run = move |args: &'static [&'static str]| {
        let (d, c) = (data.clone(), cat.clone());
        tokio::task::spawn_blocking(move || {
            localbrain(&d, &c).args(args).stdin(Stdio::null()).output().expect("run localbrain")
        })
    };
    let out = run(&["models"]).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("No models on this machine yet"));

    let out = run(&["download", "cli-model"]).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let installed = dir.path().join("data/models/cli-model.gguf");
    assert!(installed.exists());

    let out = run(&["models"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("cli-model") && stdout.contains("4 MB") && stdout.contains("verified"), "{stdout}");
    assert!(stdout.contains("installed 20"), "says when: {stdout}");
    assert!(stdout.contains("No unfinished downloads."), "{stdout}");
    assert!(stdout.contains("Models 4 MB · unfinished downloads 0 B · "), "{stdout}");

    // No terminal and no --yes: refused, nothing deleted.
    let out = run(&["rm", "cli-model"]).await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--yes") && stderr.contains("no terminal"), "{stderr}");
    assert!(installed.exists(), "not deleted unasked");

    let out = run(&["rm", "no-such-model", "--yes"]).await.unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no model called"));

    let out = run(&["rm", "cli-model", "--yes"]).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Deleted"), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(!installed.exists(), "deleted");
    let out = run(&["models"]).await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("No models on this machine yet"));
}
