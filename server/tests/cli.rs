//! `localbrain download` as a user runs it: the real binary against a real HTTP server on
//! loopback. Ctrl-C pauses and keeps the partial; running it again resumes and installs. Behind a
//! proxy (a real tinyproxy, a SOCKS5 relay) the download goes through it unless NO_PROXY says
//! otherwise; proxy variables are set on the child's command only, never on this process, so no
//! other test sees them. And `--help` talks to the user, with an example for every command.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// The binary on a data folder and catalog of its own, with no proxy variable (a developer's
/// proxy must not carry a loopback test).
fn localbrain(data: &std::path::Path, catalog: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_localbrain"));
    cmd.arg("--data-dir").arg(data).env("LOCALBRAIN_CATALOG", catalog).env("DATABASE_URL", "");
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
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
    // The machine's facts, and a predicted speed per model from its measured memory speed.
    for line in ["CPU: ", "Memory speed: ", "GPU: ", "tokens/s here"] {
        assert!(stdout.contains(line), "{line:?} in {stdout}");
    }
    // Measured once, kept in the data folder; --measure measures again.
    let stored = || {
        let facts: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("machine.json")).unwrap()).unwrap();
        facts["bandwidth"]["measured_at"].as_i64().unwrap()
    };
    let first = stored();
    let again = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_localbrain"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .env_remove("LOCALBRAIN_CATALOG")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    again(&["catalog"]);
    assert_eq!(stored(), first);
    again(&["catalog", "--measure"]);
    assert!(stored() > first);
}

/// `localbrain catalog | head -1`: the listing stops where the reader stops, with no panic.
#[test]
fn a_listing_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    // The reader has gone before the first line is written.
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_localbrain"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("catalog")
        .env_remove("LOCALBRAIN_CATALOG")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "ended by the closed pipe, as `ls | head` is: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
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
    let host = testkit::RefusingPort::new();
    let cat = dir.path().join("catalog.toml");
    let url = host.url("/offline.gguf");
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

/// Every variable that can send a download through a proxy, in both cases (and REQUEST_METHOD,
/// which turns them all off): removed from a child before a case sets its own.
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

/// `localbrain` with exactly the proxy variables `vars`, whatever this process's environment has.
fn localbrain_with(data: &std::path::Path, catalog: &std::path::Path, vars: &[(&str, String)]) -> Command {
    let mut cmd = localbrain(data, catalog);
    cmd.envs(vars.iter().map(|(k, v)| (k, v)));
    cmd
}

/// Debian's tinyproxy on a free loopback port, in the foreground, its log in a temp file.
struct Tinyproxy {
    child: std::process::Child,
    url: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    const VIA: &'static str = "localbrain-test-proxy";

    fn start() -> Tinyproxy {
        let bin = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("tinyproxy is missing: run `scripts/install-tools.sh test` (make test does)");
        let dir = tempfile::tempdir().unwrap();
        // A port the kernel just handed out and took back: free unless something grabs it in
        // the next milliseconds, and then the wait below fails saying so.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let conf = dir.path().join("tinyproxy.conf");
        let config = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Connect\nMaxClients 64\nAllow 127.0.0.1\nViaProxyName \"{}\"\n",
            Self::VIA
        );
        std::fs::write(&conf, config).unwrap();
        // In the foreground (-d) tinyproxy logs to stderr: one "Request" line per request.
        let log = dir.path().join("tinyproxy.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut proxy = Tinyproxy { child, url: format!("http://127.0.0.1:{port}"), log, _dir: dir };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return proxy;
            }
            if let Some(status) = proxy.child.try_wait().unwrap() {
                panic!("tinyproxy exited ({status}): {}", proxy.log());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("tinyproxy never listened on port {port}: {}", proxy.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The requests it forwarded, as its log names them ("GET http://host:port/path HTTP/1.1").
    fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| l.split_once("): ").filter(|_| l.contains("Request (")).map(|(_, r)| r.to_string()))
            .collect()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn downloads_go_through_the_proxy_the_environment_names_unless_no_proxy_says_otherwise() {
    let proxy = Tinyproxy::start();
    let p = proxy.url.clone();
    // (variables, through the proxy?): each form reqwest reads, and NO_PROXY in both cases.
    let cases: Vec<(Vec<(&str, String)>, bool)> = vec![
        (vec![("HTTP_PROXY", p.clone())], true),
        (vec![("http_proxy", p.clone())], true),
        (vec![("ALL_PROXY", p.clone())], true),
        (vec![("all_proxy", p.clone())], true),
        // An HTTPS proxy is for https URLs only: this http host is reached directly.
        (vec![("HTTPS_PROXY", p.clone())], false),
        (vec![("HTTP_PROXY", p.clone()), ("NO_PROXY", "127.0.0.1".into())], false),
        (vec![("ALL_PROXY", p.clone()), ("no_proxy", "localhost, 127.0.0.0/8".into())], false),
    ];
    const LEN: usize = 512 * 1024;
    for (vars, through) in cases {
        let server = Fixture::start(test_bytes(LEN, 7)).await;
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog(dir.path(), &server, LEN);
        let data = dir.path().join("data");
        let forwarded_before = proxy.requests().len();
        let (d, v) = (data.clone(), vars.clone());
        let out =
            tokio::task::spawn_blocking(move || localbrain_with(&d, &cat, &v).args(["download", "cli-model"]).output())
                .await
                .unwrap()
                .unwrap();
        assert!(out.status.success(), "{vars:?}: {}", String::from_utf8_lossy(&out.stderr));
        let installed = std::fs::read(data.join("models/cli-model.gguf")).unwrap();
        assert!(installed == test_bytes(LEN, 7), "{vars:?}: the installed file is the served file");

        let asked = server.file_requests();
        assert!(!asked.is_empty(), "{vars:?}: the host served the file");
        let forwarded: Vec<String> = proxy.requests().split_off(forwarded_before);
        let wanted = format!("GET {} HTTP/1.1", server.url("/file"));
        if through {
            assert!(forwarded.contains(&wanted), "{vars:?}: the proxy forwarded {wanted:?}; its log:\n{}", proxy.log());
            for seen in &asked {
                let via = seen.via.as_deref().unwrap_or_default();
                assert!(via.contains(Tinyproxy::VIA), "{vars:?}: every request came through the proxy: {seen:?}");
            }
        } else {
            assert!(forwarded.is_empty(), "{vars:?}: nothing through the proxy: {forwarded:?}");
            assert!(asked.iter().all(|s| s.via.is_none()), "{vars:?}: straight to the host: {asked:?}");
        }
    }
}

/// A SOCKS5 relay on loopback (no authentication, CONNECT by IPv4 address or domain name), as
/// `ssh -D` offers one: counts the connections it relayed.
async fn socks5_relay() -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("socks5h://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let relayed = Arc::new(AtomicUsize::new(0));
    let count = relayed.clone();
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = [0u8; 2];
                client.read_exact(&mut head).await?;
                let mut methods = vec![0u8; usize::from(head[1])];
                client.read_exact(&mut methods).await?;
                client.write_all(&[5, 0]).await?; // version 5, no authentication
                let mut req = [0u8; 4];
                client.read_exact(&mut req).await?;
                assert_eq!(&req[..2], &[5, 1], "a SOCKS5 CONNECT");
                let host = match req[3] {
                    1 => {
                        let mut ip = [0u8; 4];
                        client.read_exact(&mut ip).await?;
                        std::net::Ipv4Addr::from(ip).to_string()
                    }
                    3 => {
                        let len = client.read_u8().await?;
                        let mut name = vec![0u8; usize::from(len)];
                        client.read_exact(&mut name).await?;
                        String::from_utf8(name).unwrap()
                    }
                    other => panic!("address type {other}"),
                };
                let port = client.read_u16().await?;
                let mut upstream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
                client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
                count.fetch_add(1, Ordering::SeqCst);
                tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
                Ok::<_, std::io::Error>(())
            });
        }
    });
    (url, relayed)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_socks5_all_proxy_carries_the_download() {
    let (relay, relayed) = socks5_relay().await;
    const LEN: usize = 256 * 1024;
    let server = Fixture::start(test_bytes(LEN, 9)).await;
    let dir = tempfile::tempdir().unwrap();
    let cat = catalog(dir.path(), &server, LEN);
    let data = dir.path().join("data");
    let d = data.clone();
    let out = tokio::task::spawn_blocking(move || {
        localbrain_with(&d, &cat, &[("ALL_PROXY", relay)]).args(["download", "cli-model"]).output()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(data.join("models/cli-model.gguf")).unwrap() == test_bytes(LEN, 9));
    assert!(relayed.load(Ordering::SeqCst) >= 1, "the download went through the SOCKS5 relay");
}

#[test]
fn the_catalog_command_shows_the_proxy_with_its_password_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let catalog_with = |vars: &[(&str, String)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_localbrain"));
        cmd.arg("--data-dir").arg(dir.path()).arg("catalog").env_remove("LOCALBRAIN_CATALOG");
        for var in PROXY_VARS {
            cmd.env_remove(var);
        }
        let out = cmd.envs(vars.iter().map(|(k, v)| (k, v))).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let shown = catalog_with(&[("HTTPS_PROXY", "http://alice:s3cret@127.0.0.1:3128".into())]);
    assert!(shown.contains("Proxy for downloads: http://alice:***@127.0.0.1:3128 for https URLs"), "{shown}");
    assert!(!shown.contains("s3cret"), "the password is hidden: {shown}");
    let shown = catalog_with(&[("ALL_PROXY", "proxy.example:8080".into()), ("NO_PROXY", "localhost".into())]);
    assert!(shown.contains("Proxy for downloads: http://proxy.example:8080 (not for localhost)"), "{shown}");
    let shown = catalog_with(&[]);
    assert!(!shown.contains("Proxy"), "no proxy, no line: {shown}");
}

/// `localbrain ARGS --help`, as a person reads it.
fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_localbrain")).args(args).arg("--help").output().unwrap();
    assert!(out.status.success(), "{args:?} --help: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The commands a help page lists under "Commands:", without clap's own `help`.
fn commands_in(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim_end() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn help_speaks_to_the_user_with_an_example_for_every_command() {
    let top = help(&[]);
    for internal in ["axum", "leptos", "binary", "router", "recovery"] {
        assert!(!top.to_lowercase().contains(internal), "{internal:?} is for us, not in --help:\n{top}");
    }
    assert!(top.contains("Examples:\n") && top.contains("localbrain download "), "{top}");
    let mut to_read: Vec<Vec<String>> = commands_in(&top).into_iter().map(|c| vec![c]).collect();
    for known in ["serve", "download", "catalog", "run", "user"] {
        assert!(to_read.iter().any(|c| c[0] == known), "{known} is listed: {top}");
    }
    let mut read = 0;
    while let Some(path) = to_read.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&args);
        // An example of this very command, under an "Example(s):" heading.
        let itself = format!("  localbrain {}", path.join(" "));
        let examples = text.split_once("Example").map(|(_, e)| e).unwrap_or_default();
        assert!(
            examples.lines().any(|l| l.starts_with(&itself) || l.contains(&format!(" {} ", path.join(" ")))),
            "`localbrain {} --help` shows no example of it:\n{text}",
            path.join(" ")
        );
        to_read.extend(commands_in(&text).into_iter().map(|c| [path.clone(), vec![c]].concat()));
        read += 1;
    }
    assert!(read >= 7, "read {read} help pages");
}

/// `localbrain ARGS` on a data folder: (success, stdout, stderr).
fn run_on(data: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_localbrain"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("DATABASE_URL", "")
        .env_remove("LOCALBRAIN_CATALOG")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn key_add_prints_the_secret_alone_on_the_last_line_and_list_and_revoke_follow() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert!(run_on(data, &["user", "add", "alice"]).0);
    let (ok, out, err) = run_on(data, &["key", "add", "alice", "my editor"]);
    assert!(ok, "{err}");
    let secret = out.lines().last().unwrap_or_default();
    let hex = secret.strip_prefix("lb-").unwrap_or_default();
    assert!(hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "last line: {out:?}");
    assert!(err.contains("Made API key \"my editor\" for alice") && err.contains("not be shown again"), "{err}");
    assert!(!err.contains(secret), "the secret goes to stdout only");

    let (ok, out, _) = run_on(data, &["key", "list", "alice"]);
    assert!(ok);
    let row = out.lines().find(|l| l.starts_with("my editor")).unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains(&format!("{}…", &secret[..11])) && row.contains("just now") && row.ends_with("never"),
        "{out}"
    );
    assert!(out.starts_with("NAME") && out.contains("LAST USED"), "{out}");
    assert!(!out.contains(secret), "list never shows a secret: {out}");

    let (ok, out, err) = run_on(data, &["key", "revoke", "alice", "my editor"]);
    assert!(ok, "{err}");
    assert!(out.contains("Revoked alice's API key \"my editor\""), "{out}");
    let (ok, out, _) = run_on(data, &["key", "list", "alice"]);
    assert!(ok && out.contains("alice has no API keys"), "{out}");
}

#[test]
fn key_commands_refuse_unknown_users_unknown_keys_and_bad_or_taken_names() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    assert!(run_on(data, &["user", "add", "bob"]).0);
    for args in [&["key", "add", "nobody", "k"][..], &["key", "list", "nobody"], &["key", "revoke", "nobody", "k"]] {
        let (ok, out, err) = run_on(data, args);
        assert!(!ok && out.is_empty(), "{args:?}: {out}");
        assert!(err.contains("there is no user called \"nobody\""), "{args:?}: {err}");
    }
    let (ok, _, err) = run_on(data, &["key", "revoke", "bob", "ci"]);
    assert!(!ok && err.contains("bob has no API key called \"ci\""), "{err}");
    assert!(run_on(data, &["key", "add", "bob", "ci"]).0);
    let (ok, out, err) = run_on(data, &["key", "add", "bob", " ci "]);
    assert!(!ok && out.is_empty() && err.contains("already have a key called \"ci\""), "{err}");
    let (ok, out, err) = run_on(data, &["key", "add", "bob", "  "]);
    assert!(!ok && out.is_empty() && err.contains("give the key a name"), "{err}");
    let (ok, _, err) = run_on(data, &["key", "add", "bob", &"x".repeat(65)]);
    assert!(!ok && err.contains("at most 64 characters"), "{err}");
}
