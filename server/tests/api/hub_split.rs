//! A split GGUF from the hub (`-00001-of-00003.gguf` and on), end to end: the real test model
//! cut into three parts the way llama.cpp's `gguf-split` cuts one (`testkit::gguf::split`),
//! served by the test kit's loopback hub. It installs as one model, part by part, and runs (on
//! llama.cpp's own split loader); a wrong SHA-256 on a part installs nothing; kill -9 in the
//! middle of a part, and after one, resumes without fetching a part in place again; a cancel
//! leaves no part behind.

use super::*;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use testkit::{HubFile, HubHost, HubRepo};

const REPO: &str = "test-org/SmolLM2-Split-GGUF";
/// The id the split Q4_1 installs as.
const ID: &str = "hf--test-org--smollm2-split-gguf--q4_1";
const PARTS: usize = 3;

/// The three parts' bytes, in order.
fn parts() -> Vec<Arc<Vec<u8>>> {
    static PARTS_BYTES: std::sync::OnceLock<Vec<Arc<Vec<u8>>>> = std::sync::OnceLock::new();
    PARTS_BYTES
        .get_or_init(|| {
            testkit::gguf::split_model_paths(PARTS).iter().map(|p| Arc::new(std::fs::read(p).unwrap())).collect()
        })
        .clone()
}

fn part_name(k: usize) -> String {
    localbrain::catalog::split_file_name("SmolLM2-135M-Instruct-Q4_1", k, PARTS)
}

/// The split model, its parts listed out of order as a tree may list them, with `edit` applied.
fn split_repo(edit: impl Fn(usize, &mut HubFile)) -> HubRepo {
    let mut files: Vec<HubFile> = parts()
        .into_iter()
        .enumerate()
        .map(|(i, data)| {
            let mut f = HubFile::new(&part_name(i + 1), data);
            edit(i + 1, &mut f);
            f
        })
        .collect();
    files.reverse();
    HubRepo::new(REPO, files)
}

/// Where part `k` installs.
fn installed(s: &Server, k: usize) -> PathBuf {
    s.models_dir.join(localbrain::catalog::split_file_name(ID, k, PARTS))
}

async fn server_on(hub: &HubHost) -> Server {
    Server::start_with(&model_host().await, &[("HF_ENDPOINT", &hub.base)]).await
}

async fn cli(s: &Server, args: &[&str]) -> std::process::Output {
    let mut cmd = s.command();
    cmd.args(args).stdin(Stdio::null());
    tokio::task::spawn_blocking(move || cmd.output().expect("run localbrain")).await.unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!("stdout: {}\nstderr: {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The `.gguf` files in the models folder (not the partials).
fn ggufs(s: &Server) -> Vec<String> {
    s.model_files().into_iter().filter(|f| f.ends_with(".gguf")).collect()
}

/// Where the last request for `data` on the CDN started, 0 for one without a Range.
fn last_from(hub: &HubHost, data: &[u8]) -> Option<u64> {
    let last = hub.cdn.requests(&HubHost::cdn_path(data)).pop()?;
    Some(
        last.range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.split('-').next())
            .and_then(|r| r.parse().ok())
            .unwrap_or(0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_model_installs_as_one_model_and_runs() {
    let hub = HubHost::start(vec![split_repo(|_, _| {})]).await;
    let s = server_on(&hub).await;
    let reference = format!("hf.co/{REPO}:Q4_1");

    let out = cli(&s, &["catalog", &reference]).await;
    assert!(out.status.success(), "{}", text(&out));
    let total: u64 = parts().iter().map(|p| p.len() as u64).sum();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&part_name(1)) && stdout.contains("* Picked: Q4_1"), "{stdout}");

    let out = cli(&s, &["download", &reference]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).trim_end().ends_with(&format!("{ID}-00001-of-00003.gguf")),
        "{}",
        text(&out)
    );
    for (k, bytes) in parts().iter().enumerate() {
        assert!(std::fs::read(installed(&s, k + 1)).unwrap() == **bytes, "part {} is the hub's", k + 1);
    }
    assert_eq!(ggufs(&s).len(), PARTS, "the parts and nothing else: {:?}", s.model_files());
    // The hub's resolve answer was checked for every part, each at the pinned commit.
    let commit = split_repo(|_, _| {}).commit;
    for k in 1..=PARTS {
        let heads = hub.seen().into_iter().filter(|r| r.method == "HEAD" && r.target.contains(&part_name(k))).count();
        assert!(heads >= 1, "part {k} checked on its resolve answer");
    }
    assert!(hub.seen().iter().filter(|r| r.target.contains("/resolve/")).all(|r| r.target.contains(&commit)));

    // llama.cpp loads the parts as one model.
    let out = cli(&s, &["run", &reference, "--max-tokens", "8", "--temperature", "0", "Say hello"]).await;
    assert!(out.status.success(), "run: {}", text(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty(), "a reply: {}", text(&out));

    // One model on this machine, its size the parts', checked part by part.
    let alice = s.admin().await;
    let listed = s.ok(&alice, "models/list", json!({})).await;
    let rows: Vec<&Value> = listed["models"].as_array().unwrap().iter().collect();
    assert_eq!(rows.len(), 1, "one row for the three parts: {listed}");
    assert_eq!((rows[0]["model_id"].as_str(), rows[0]["size_bytes"].as_u64()), (Some(ID), Some(total)), "{listed}");
    assert_eq!(rows[0]["check"], "verified", "{listed}");
    let check = || async {
        s.ok(&alice, "models/verify", json!({ "model_id": ID })).await;
        wait_for("the check to end", WAIT, || async {
            let row = s.ok(&alice, "models/list", json!({})).await["models"][0].clone();
            row["checking"].is_null().then_some(row)
        })
        .await
    };
    let checked = check().await;
    assert_eq!(checked["check"], "verified", "{checked}");
    // One byte flipped in the last part: the model is damaged.
    let mut last = std::fs::read(installed(&s, PARTS)).unwrap();
    let at = last.len() - 100;
    last[at] ^= 0xff;
    std::fs::write(installed(&s, PARTS), &last).unwrap();
    let checked = check().await;
    assert_eq!(checked["check"], "damaged", "{checked}");

    let out = cli(&s, &["rm", &reference, "--yes"]).await;
    assert!(out.status.success(), "rm: {}", text(&out));
    assert!(ggufs(&s).is_empty(), "every part removed: {:?}", s.model_files());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_hash_on_one_part_installs_nothing() {
    let hub = HubHost::start(vec![split_repo(|k, f| {
        if k == 2 {
            f.listed_sha256 = testkit::sha256_hex(b"not the second part");
        }
    })])
    .await;
    let s = server_on(&hub).await;
    let out = cli(&s, &["download", &format!("hf.co/{REPO}")]).await;
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(stderr.contains("sha-256") || stderr.contains("hash"), "says a file is not the one listed: {stderr}");
    assert!(ggufs(&s).is_empty(), "no part installed: {:?}", s.model_files());
    let out = cli(&s, &["run", &format!("hf.co/{REPO}"), "hi"]).await;
    assert!(!out.status.success() && text(&out).contains("is not installed"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_a_part_and_after_one_resumes_without_fetching_a_part_again() {
    let hub = HubHost::start(vec![split_repo(|_, _| {})]).await;
    let bytes = parts();
    for p in &bytes {
        hub.cdn.set_path(&HubHost::cdn_path(p), |m| {
            m.chunk = 64 * 1024;
            m.chunk_delay = Duration::from_millis(10);
        });
    }
    let s = server_on(&hub).await;
    let reference = format!("hf.co/{REPO}:Q4_1");
    let partials = s.models_dir.join(".partial");
    let on_disk = move || -> u64 {
        std::fs::read_dir(&partials)
            .map(|d| d.flatten().map(|e| e.metadata().map_or(0, |m| m.len())).sum())
            .unwrap_or(0)
    };
    let spawn = || {
        s.command()
            .args(["--connections", "1", "download", &reference])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };

    // In the middle of part 2, the first one fetched.
    let mut child = spawn();
    wait_for("part 2 to be under way", WAIT, || async { (on_disk() > 2_000_000).then_some(()) }).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(ggufs(&s).is_empty(), "no part in place yet: {:?}", s.model_files());
    let kept = on_disk();

    // Resumed, then killed after part 2 is in place, in the middle of part 3.
    let mut child = spawn();
    wait_for("part 3 to be under way", WAIT, || async {
        (installed(&s, 2).exists() && on_disk() > 2_000_000).then_some(())
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let from = last_from(&hub, &bytes[1]).unwrap();
    assert!(from > 0 && from <= kept, "part 2 resumed from its kept bytes ({kept}), not from zero: {from}");
    let part2_requests = hub.cdn.requests(&HubHost::cdn_path(&bytes[1])).len();
    let kept = on_disk();

    for p in &bytes {
        hub.cdn.set_path(&HubHost::cdn_path(p), |m| m.chunk_delay = Duration::ZERO);
    }
    let out = cli(&s, &["--connections", "1", "download", &reference]).await;
    assert!(out.status.success(), "{}", text(&out));
    for (k, b) in bytes.iter().enumerate() {
        assert!(std::fs::read(installed(&s, k + 1)).unwrap() == **b, "part {} is the hub's", k + 1);
    }
    assert_eq!(
        hub.cdn.requests(&HubHost::cdn_path(&bytes[1])).len(),
        part2_requests,
        "part 2, in place, not fetched again"
    );
    let from = last_from(&hub, &bytes[2]).unwrap();
    assert!(from > 0 && from <= kept, "part 3 resumed from its kept bytes ({kept}): {from}");
    assert!(!s.model_files().iter().any(|f| f.ends_with(".partial")), "{:?}", s.model_files());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_leaves_no_part_behind() {
    let hub = HubHost::start(vec![split_repo(|_, _| {})]).await;
    for p in &parts() {
        hub.cdn.set_path(&HubHost::cdn_path(p), |m| {
            m.chunk = 64 * 1024;
            m.chunk_delay = Duration::from_millis(10);
        });
    }
    let s = server_on(&hub).await;
    let alice = s.admin().await;
    let started = s.ok(&alice, "downloads/start", json!({ "model_id": format!("hf.co/{REPO}:Q4_1") })).await;
    assert_eq!(started["model_id"], ID, "{started}");
    assert_eq!(started["total_bytes"].as_u64(), Some(parts().iter().map(|p| p.len() as u64).sum()), "{started}");
    let id = id_of(&started);
    let row = s
        .wait_dl(&alice, id, "part 3 under way", WAIT, |r| {
            installed(&s, 2).exists() && r["bytes_downloaded"].as_u64().unwrap_or(0) > parts()[1].len() as u64
        })
        .await;
    assert_eq!(status_of(&row), "downloading", "between parts the download goes on: {row}");
    s.ok(&alice, "downloads/cancel", json!({ "id": id })).await;
    assert!(s.model_files().is_empty(), "no part and no partial left: {:?}", s.model_files());
}
