//! Several servers on one database and one models folder (issue 17): a download started on one
//! is watched, paused, resumed and cancelled through another, and taken over by another when
//! its server is killed. The model host's request log shows which transfer ran when.

use super::harness::*;
use serde_json::json;
use std::time::{Duration, Instant};
use testkit::Seen;

const WAIT: Duration = Duration::from_secs(60);

/// About 400 KB/s: the 4 MiB model takes ten seconds, long enough to act on mid-way.
fn slow(host: &Fixture) {
    host.set(|m| {
        m.chunk = 8 * 1024;
        m.chunk_delay = Duration::from_millis(20);
    });
}

/// A slow model host and two servers on one database and one models folder.
async fn two_servers() -> (Fixture, Server, Server) {
    let host = model_host().await;
    slow(&host);
    let a = Server::start(&host).await;
    let b = a.another().await;
    (host, a, b)
}

/// Bytes the host sends in `window`, measured from now.
async fn sent_during(host: &Fixture, window: Duration) -> u64 {
    let before = host.bytes_sent();
    tokio::time::sleep(window).await;
    host.bytes_sent() - before
}

#[tokio::test]
async fn a_download_running_on_one_server_is_watched_paused_and_cancelled_through_another() {
    let (host, a, b) = two_servers().await;
    let admin = a.admin().await;
    let id = id_of(&a.start_dl(&admin, ALPHA).await);

    // B shows A's progress: bytes and speed from the row A's runner writes each second.
    let seen = b
        .wait_dl(&admin, id, "bytes and a speed, seen from B", WAIT, |r| {
            r["bytes_downloaded"].as_u64().unwrap_or(0) > 200_000 && r["speed_bps"].as_u64().unwrap_or(0) > 0
        })
        .await;
    assert!(seen["eta_seconds"].as_u64().is_some(), "{seen}");

    // Pause through B: the answer comes once A's transfer has stopped, with the bytes it holds.
    let asked = Instant::now();
    let paused = b.ok(&admin, "downloads/pause", json!({ "id": id })).await;
    let took = asked.elapsed();
    assert_eq!(status_of(&paused), "paused");
    let partial_len = std::fs::metadata(a.partial_path(ALPHA, id)).unwrap().len();
    assert_eq!(paused["bytes_downloaded"].as_u64(), Some(partial_len), "{paused}");
    let after = sent_during(&host, Duration::from_millis(1500)).await;
    assert!(after <= 16 * 1024, "{after} bytes sent after B's pause answered: A kept downloading");
    eprintln!("pause through B: answered in {took:?}, transfer on A stopped");

    // Resumed through B, B's runner finishes it from A's partial.
    let before = host.requests(ALPHA_PATH).len();
    b.ok(&admin, "downloads/resume", json!({ "id": id })).await;
    let done = a.wait_dl(&admin, id, "complete", WAIT, |r| status_of(r) == "complete").await;
    let resumed = &host.requests(ALPHA_PATH)[before..];
    assert_eq!(resumed.len(), 1, "one transfer after the resume: {resumed:?}");
    assert_eq!(resumed[0].range.as_deref(), Some(format!("bytes={partial_len}-").as_str()));
    assert_eq!(done["bytes_downloaded"].as_u64(), Some(ALPHA_SIZE as u64));
    assert_eq!(sha256_hex(&std::fs::read(a.installed_path(ALPHA)).unwrap()), sha256_hex(&alpha_bytes()));

    // Cancel through B of a download A runs: A stops, the partial is gone when B answers.
    let id = id_of(&a.start_dl(&admin, BETA).await);
    b.wait_dl(&admin, id, "some bytes", WAIT, |r| r["bytes_downloaded"].as_u64().unwrap_or(0) > 50_000).await;
    let cancelled = b.ok(&admin, "downloads/cancel", json!({ "id": id })).await;
    assert_eq!(status_of(&cancelled), "cancelled");
    assert!(!a.partial_path(BETA, id).exists(), "the partial outlived the cancel");
    assert!(sent_during(&host, Duration::from_millis(1500)).await <= 16 * 1024, "A kept downloading");
    assert_eq!(a.model_files(), vec![format!("{ALPHA}.gguf")]);
}

#[tokio::test]
async fn when_the_server_running_a_download_is_killed_another_takes_it_over_from_its_partial() {
    let (host, a, b) = two_servers().await;
    let admin = a.admin().await;
    let id = id_of(&a.start_dl(&admin, ALPHA).await);
    b.wait_dl(&admin, id, "a quarter", WAIT, |r| r["bytes_downloaded"].as_u64().unwrap_or(0) > 1_000_000).await;
    // An instance starting now leaves a live instance's download alone (boot recovery).
    let c = a.another().await;
    let at = host.bytes_sent();
    let row = c.wait_dl(&admin, id, "more bytes after C's boot", WAIT, |_| host.bytes_sent() > at + 100_000).await;
    assert_eq!(status_of(&row), "downloading", "{row}");
    drop(c);

    a.kill9();
    let killed = Instant::now();
    let partial_len = std::fs::metadata(a.partial_path(ALPHA, id)).unwrap().len();
    let before = host.requests(ALPHA_PATH).len();
    // B takes over: a new transfer from where the partial ends, never a second partial.
    let taken = wait_for("B's transfer", WAIT, || async {
        let partials: Vec<String> = b.model_files().into_iter().filter(|f| f.starts_with(".partial/")).collect();
        assert!(partials.len() <= 1, "two partials at once: {partials:?}");
        (host.requests(ALPHA_PATH).len() > before).then(|| killed.elapsed())
    })
    .await;
    eprintln!("takeover: bytes flowing on B {taken:?} after kill -9 of A");
    let resumed = &host.requests(ALPHA_PATH)[before..];
    let from: u64 =
        resumed[0].range.as_deref().and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok()).unwrap();
    assert!(from > 0 && from <= partial_len, "resumed from {from}, the partial held {partial_len}");
    let done = b.wait_dl(&admin, id, "complete", WAIT, |r| status_of(r) == "complete").await;
    assert_eq!(done["bytes_downloaded"].as_u64(), Some(ALPHA_SIZE as u64));
    assert_eq!(sha256_hex(&std::fs::read(b.installed_path(ALPHA)).unwrap()), sha256_hex(&alpha_bytes()));
    assert_eq!(b.model_files(), vec![format!("{ALPHA}.gguf")]);
    assert!(b.log_text().contains("took over downloads whose server stopped"), "{}", b.log_text());
}

/// `localbrain download MODEL` run against the server's data folder and database, as a person
/// would in a terminal beside it.
fn terminal_download(s: &Server, model: &str) -> std::process::Child {
    s.command()
        .args(["download", model])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run localbrain download")
}

/// `command` in a pseudo-terminal (util-linux `script`), so it draws its progress bar as it does
/// for a person; what the terminal shows comes back on stdout.
fn in_terminal(command: std::process::Command) -> std::process::Command {
    let quote = |a: &std::ffi::OsStr| format!("'{}'", a.to_string_lossy().replace('\'', "'\\''"));
    let line: Vec<String> = std::iter::once(command.get_program()).chain(command.get_args()).map(quote).collect();
    let mut pty = std::process::Command::new("script");
    pty.args(["--quiet", "--return", "--flush", "--command", &line.join(" "), "/dev/null"]);
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => pty.env(key, value),
            None => pty.env_remove(key),
        };
    }
    pty
}

/// The byte counts a progress bar showed (`[=====>   ] 1.20 MiB/4.00 MiB ...`), frame by frame.
fn bar_positions(screen: &str) -> Vec<String> {
    screen
        .split(['\r', '\n'])
        .filter_map(|frame| frame.split_once("] ")?.1.split_once('/').map(|(bytes, _)| bytes.trim().to_owned()))
        .collect()
}

/// Waits (up to 30 s) for a terminal command to end; its stderr.
fn ended(child: std::process::Child) -> (bool, String) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx.recv_timeout(Duration::from_secs(30)).expect("the terminal's download ended").unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A terminal attached to a download the server runs shows it moving: the bytes the server's
/// heartbeat writes to the row, not a bar frozen where it started (issue 28, item 6).
#[tokio::test]
async fn a_terminal_attached_to_the_servers_download_shows_its_bytes_move() {
    let host = model_host().await;
    slow(&host);
    let s = Server::start(&host).await;
    s.admin().await; // the terminal acts as the admin
    let bob = s.add_user("bob").await;
    let id = id_of(&s.start_dl(&bob, ALPHA).await);
    s.wait_dl(&bob, id, "flowing", WAIT, |r| r["bytes_downloaded"].as_u64().unwrap_or(0) > 100_000).await;
    // The terminal (the admin) asks for the model bob's download on the server is fetching:
    // its own row, joined to that transfer.
    let mut download = s.command();
    download.args(["download", ALPHA]);
    let mut terminal = in_terminal(download);
    terminal.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped());
    let out = tokio::task::spawn_blocking(move || terminal.output().expect("run localbrain download in a terminal"))
        .await
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    let mut distinct = bar_positions(&screen);
    distinct.dedup();
    println!("the bar showed {distinct:?}");
    // The server's download takes ~10 s and the row is written each second: a moving bar shows
    // several figures before the last one; a frozen one shows its first, then the end.
    assert!(distinct.len() >= 4, "the bar showed only {distinct:?}: {screen}");
    assert_eq!(status_of(&s.get_dl(&bob, id).await), "complete");
}

#[tokio::test]
async fn the_terminal_and_the_server_on_one_data_folder_control_each_others_downloads() {
    let host = model_host().await;
    slow(&host);
    let s = Server::start(&host).await;
    let admin = s.admin().await;

    // The terminal runs it; the card's Pause (the API) stops the terminal's transfer.
    let cli = terminal_download(&s, ALPHA);
    let row = wait_for("the terminal's download, seen by the server", WAIT, || async {
        s.list(&admin).await.into_iter().find(|r| r["bytes_downloaded"].as_u64().unwrap_or(0) > 100_000)
    })
    .await;
    let id = id_of(&row);
    assert!(row["speed_bps"].as_u64().unwrap_or(0) > 0, "the server shows the terminal's speed: {row}");
    let paused = s.ok(&admin, "downloads/pause", json!({ "id": id })).await;
    assert_eq!(status_of(&paused), "paused");
    let (ok, stderr) = ended(cli);
    assert!(!ok && stderr.contains("paused at"), "{stderr}");
    assert!(sent_during(&host, Duration::from_millis(1500)).await <= 16 * 1024, "the terminal kept downloading");

    // The server runs it; Ctrl-C in a terminal attached to it pauses the server's transfer.
    s.ok(&admin, "downloads/resume", json!({ "id": id })).await;
    s.wait_dl(&admin, id, "flowing again", WAIT, |r| r["speed_bps"].as_u64().unwrap_or(0) > 0).await;
    let cli = terminal_download(&s, ALPHA);
    let attached = host.bytes_sent();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(host.bytes_sent() > attached, "the server keeps downloading while the terminal watches");
    assert!(std::process::Command::new("kill").args(["-INT", &cli.id().to_string()]).status().unwrap().success());
    let (ok, stderr) = ended(cli);
    assert!(!ok && stderr.contains("paused at"), "{stderr}");
    assert_eq!(status_of(&s.get_dl(&admin, id).await), "paused");
    assert!(sent_during(&host, Duration::from_millis(1500)).await <= 16 * 1024, "the server kept downloading");
}

#[tokio::test]
async fn an_instance_that_cannot_see_the_models_folder_leaves_a_dead_instances_download_paused_with_a_note() {
    let host = model_host().await;
    slow(&host);
    let a = Server::start(&host).await;
    let elsewhere = a.another_elsewhere().await;
    let admin = a.admin().await;
    let id = id_of(&a.start_dl(&admin, ALPHA).await);
    elsewhere.wait_dl(&admin, id, "some bytes", WAIT, |r| r["bytes_downloaded"].as_u64().unwrap_or(0) > 100_000).await;
    let requests = host.requests(ALPHA_PATH).len();
    a.kill9();
    let row = elsewhere.wait_dl(&admin, id, "paused", WAIT, |r| status_of(r) == "paused").await;
    let note = row["error"].as_str().unwrap_or_default();
    assert!(note.contains("models folder this server cannot see"), "{row}");
    assert_eq!(row["paused_by"], "elsewhere_folder", "the reason is a value, not only a sentence: {row}");
    assert_eq!(host.requests(ALPHA_PATH).len(), requests, "no transfer started where the partial is not");
    assert!(row["bytes_downloaded"].as_u64().unwrap_or(0) > 0, "the bytes on the other disk are still told: {row}");
}

#[tokio::test]
async fn a_download_whose_runner_on_another_host_stops_renewing_is_taken_over_when_its_lease_runs_out() {
    let host = model_host().await;
    slow(&host);
    let s = Server::start(&host).await;
    let admin = s.admin().await;
    let id = id_of(&s.start_dl(&admin, ALPHA).await);
    s.wait_dl(&admin, id, "some bytes", WAIT, |r| r["bytes_downloaded"].as_u64().unwrap_or(0) > 100_000).await;
    s.ok(&admin, "downloads/pause", json!({ "id": id })).await;
    // As a runner on another host would leave it when that host is lost: downloading, claimed
    // by a process this host cannot look up, its lease running out in 4 s.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    s.execute(&format!(
        "UPDATE model_downloads SET status = 'downloading', runner = 'another-host:4242:0badc0de', \
         lease_until = {} WHERE id = {id}",
        now + 4000
    ))
    .await;
    let requests = host.requests(ALPHA_PATH).len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(host.requests(ALPHA_PATH).len(), requests, "taken over while the other host's lease still held");
    let done = s.wait_dl(&admin, id, "complete after the lease ran out", WAIT, |r| status_of(r) == "complete").await;
    let resumed = &host.requests(ALPHA_PATH)[requests..];
    assert!(resumed[0].range.as_deref().is_some_and(|r| r != "bytes=0-"), "resumed from the partial: {resumed:?}");
    assert_eq!(done["bytes_downloaded"].as_u64(), Some(ALPHA_SIZE as u64));
    assert_eq!(sha256_hex(&std::fs::read(s.installed_path(ALPHA)).unwrap()), sha256_hex(&alpha_bytes()));
}

/// Where a logged request's Range began (0 for none).
fn range_start(seen: &Seen) -> u64 {
    seen.range.as_deref().and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn two_users_on_two_servers_share_one_transfer_until_the_last_lets_go() {
    let (host, a, b) = two_servers().await;
    let alice = a.admin().await;
    let bob = a.add_user("bob").await;
    let first = id_of(&a.start_dl(&alice, ALPHA).await);
    a.wait_dl(&alice, first, "some bytes", WAIT, |r| r["bytes_downloaded"].as_u64().unwrap_or(0) > 300_000).await;

    // Bob's download on B joins the transfer A runs: his own row, no second transfer.
    let bobs = id_of(&b.start_dl(&bob, ALPHA).await);
    assert_ne!(bobs, first);
    b.wait_dl(&bob, bobs, "the shared transfer's progress", WAIT, |r| {
        r["bytes_downloaded"].as_u64().unwrap_or(0) > 500_000 && r["speed_bps"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert_eq!(
        host.requests(ALPHA_PATH).len(),
        1,
        "Bob's download fetched the model again: {:?}",
        host.requests(ALPHA_PATH)
    );

    // Alice cancels through B: the transfer goes on for Bob from the partial, never from 0.
    let cancelled = b.ok(&alice, "downloads/cancel", json!({ "id": first })).await;
    assert_eq!(status_of(&cancelled), "cancelled");
    let handed = wait_for("the transfer handed on", WAIT, || async { host.requests(ALPHA_PATH).get(1).cloned() }).await;
    assert!(range_start(&handed) > 300_000, "handed on from {:?}", handed.range);
    assert!(a.partial_path(ALPHA, bobs).exists() && !a.partial_path(ALPHA, first).exists());

    // Alice changes her mind on B: she joins Bob's transfer.
    let joined = b.start_dl(&alice, ALPHA).await;
    let (again, at) = (id_of(&joined), joined["bytes_downloaded"].as_u64().unwrap_or(0));
    assert!(at > 300_000, "she joins at the shared progress: {joined}");
    b.wait_dl(&alice, again, "progress again", WAIT, |r| r["bytes_downloaded"].as_u64().unwrap_or(0) > at + 200_000)
        .await;
    assert_eq!(host.requests(ALPHA_PATH).len(), 2, "Alice's second start fetched the model again");

    // The server carrying it dies: B takes Bob's transfer over, and Alice's row follows it.
    a.kill9();
    let done = b.wait_dl(&bob, bobs, "complete", WAIT, |r| status_of(r) == "complete").await;
    assert_eq!(done["bytes_downloaded"].as_u64(), Some(ALPHA_SIZE as u64));
    let hers = b.wait_dl(&alice, again, "complete", WAIT, |r| status_of(r) == "complete").await;
    assert_eq!(hers["bytes_downloaded"].as_u64(), Some(ALPHA_SIZE as u64));
    let requests = host.requests(ALPHA_PATH);
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert!(range_start(&requests[2]) >= range_start(&requests[1]), "{requests:?}");
    assert_eq!(sha256_hex(&std::fs::read(b.installed_path(ALPHA)).unwrap()), sha256_hex(&alpha_bytes()));
    assert_eq!(b.model_files(), vec![format!("{ALPHA}.gguf")]);
}
