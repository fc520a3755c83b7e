//! The download engine against a real HTTP server on loopback, on SQLite and PostgreSQL.

use localbrain::catalog::Catalog;
use localbrain::engine::retry::RetryPolicy;
use localbrain::engine::{Engine, EngineConfig, EngineError, files};
use localbrain::status::DownloadStatus::*;
use localbrain::store::{downloads, users};
use localbrain::view::{DownloadView, PauseReason};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use testkit::catalog::catalog_toml;
use testkit::{Fixture, RawHost, SELF_SIGNED_CERT, TestDb, Then, hex, test_bytes, tls12_hello_with};

pub const MODEL: &str = "test-model-q4";
pub const SIZE: usize = 3 * 1024 * 1024 + 12345;

/// A database, a models folder, a fixture server and an engine wired together.
pub struct Rig {
    pub db: TestDb,
    pub dir: tempfile::TempDir,
    pub server: Fixture,
    pub engine: Arc<Engine>,
    pub user: i64,
}

/// A one-model catalog pointing at the fixture.
pub fn catalog_for(urls: &[String], size: u64, sha: &str) -> Catalog {
    Catalog::parse(&catalog_toml(MODEL, urls, size, sha)).expect("test catalog")
}

pub fn fast_config(models_dir: PathBuf) -> EngineConfig {
    let mut cfg = EngineConfig::new(models_dir);
    cfg.retry = RetryPolicy { max_retries: 4, base: Duration::from_millis(20), max_delay: Duration::from_millis(200) };
    cfg.stall_timeout = Duration::from_millis(700);
    cfg.progress_interval = Duration::from_millis(50);
    cfg
}

impl Rig {
    pub async fn new() -> Rig {
        Self::with(|f| vec![f.url("/file")], None, None).await
    }

    pub async fn with(urls: impl FnOnce(&Fixture) -> Vec<String>, size: Option<u64>, sha: Option<&str>) -> Rig {
        Self::build(urls, size, sha, |_| {}).await
    }

    /// A rig whose engine settings `tune` adjusts.
    pub async fn build(
        urls: impl FnOnce(&Fixture) -> Vec<String>,
        size: Option<u64>,
        sha: Option<&str>,
        tune: impl FnOnce(&mut EngineConfig),
    ) -> Rig {
        let server = Fixture::start(test_bytes(SIZE, 0)).await;
        let db = TestDb::new().await;
        let dir = tempfile::tempdir().unwrap();
        let sha = sha.map(str::to_string).unwrap_or_else(|| server.sha256());
        let catalog = catalog_for(&urls(&server), size.unwrap_or(SIZE as u64), &sha);
        let mut cfg = fast_config(dir.path().join("models"));
        tune(&mut cfg);
        let engine = Engine::new(db.db.clone(), Arc::new(catalog), cfg).unwrap();
        let (admin, _) = users::ensure_admin(&db).await.unwrap();
        Rig { db, dir, server, engine, user: admin.id }
    }

    pub fn models(&self) -> PathBuf {
        self.dir.path().join("models")
    }

    pub fn target(&self) -> PathBuf {
        files::target_path(&self.models(), MODEL)
    }

    pub async fn start(&self) -> DownloadView {
        self.engine.start(self.user, MODEL).await.unwrap()
    }

    pub async fn settle(&self, id: i64) -> DownloadView {
        tokio::time::timeout(Duration::from_secs(30), self.engine.wait_settled(id)).await.expect("settles").unwrap()
    }

    /// Waits until the row reports at least `bytes` on disk while downloading.
    pub async fn wait_bytes(&self, id: i64, bytes: u64) {
        for _ in 0..600 {
            let v = self.engine.get(self.user, id).await.unwrap();
            if v.status == Downloading && v.bytes_downloaded >= bytes {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("download {id} never reached {bytes} bytes");
    }

    pub fn assert_installed_right(&self) {
        let got = std::fs::read(self.target()).expect("installed file");
        assert_eq!(got.len(), SIZE);
        assert_eq!(hex(&sha2::Sha256::digest(&got)), self.server.sha256());
        assert_no_partials(&self.models());
    }
}

use sha2::Digest;

pub fn assert_no_partials(models: &Path) {
    let dir = files::partial_dir(models);
    let left: Vec<_> = std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "partials left behind: {left:?}");
}

/// Starts a throttled download, lets `bytes` arrive, pauses it and waits for the runner to let
/// go. The server is left throttled.
pub async fn paused_midway(rig: &Rig, bytes: u64) -> DownloadView {
    slow(rig);
    let v = rig.start().await;
    rig.wait_bytes(v.id, bytes).await;
    rig.engine.pause(rig.user, v.id).await.unwrap();
    rig.settle(v.id).await
}

/// Waits until a dropped engine's file threads let go of `partial`. A kill -9 ends them with the
/// process; a dropped runtime leaves them to write out their queue and close the file, so until
/// then the partial is still changing (and locked).
pub fn wait_released(partial: &Path) {
    let gone = std::time::Instant::now() + Duration::from_secs(5);
    while files::is_locked_elsewhere(partial) {
        assert!(std::time::Instant::now() < gone, "the dead engine's writer never let go of the partial");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn slow(rig: &Rig) {
    rig.server.set(|m| {
        m.chunk = 32 * 1024;
        m.chunk_delay = Duration::from_millis(15);
    });
}

#[tokio::test]
async fn a_fresh_download_streams_verifies_and_installs() {
    let rig = Rig::new().await;
    let v = rig.start().await;
    assert_eq!(v.status, Pending);
    let done = rig.settle(v.id).await;
    assert_eq!(done.status, Complete, "{done:?}");
    assert_eq!(done.bytes_downloaded, SIZE as u64);
    assert_eq!(done.percent, 100.0);
    assert_eq!(done.target_path.as_deref(), Some(rig.target().to_str().unwrap()));
    rig.assert_installed_right();
    let reqs = rig.server.file_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].accept_encoding.as_deref(), Some("identity"));
    assert_eq!(reqs[0].range, None);
    let row = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap();
    assert_eq!(row.validator.as_deref(), Some("\"v1\""));
}

#[tokio::test]
async fn pause_keeps_the_partial_and_resume_continues_with_range_and_if_range() {
    let rig = Rig::new().await;
    slow(&rig);
    let v = rig.start().await;
    rig.wait_bytes(v.id, 200_000).await;
    let paused = rig.engine.pause(rig.user, v.id).await.unwrap();
    assert_eq!(paused.status, Paused);
    let settled = rig.settle(v.id).await;
    let partial = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap().partial_path;
    let on_disk = files::len_or_zero(Path::new(&partial));
    assert!(on_disk >= 200_000, "partial kept: {on_disk}");
    assert_eq!(settled.bytes_downloaded, on_disk, "row reconciled to the partial");
    // Bytes stop while paused.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(files::len_or_zero(Path::new(&partial)), on_disk);

    rig.server.set(|m| m.chunk_delay = Duration::ZERO);
    let resumed = rig.engine.resume(rig.user, v.id).await.unwrap();
    assert!(matches!(resumed.status, Pending | Downloading), "{:?}", resumed.status);
    assert_eq!(rig.settle(v.id).await.status, Complete);
    rig.assert_installed_right();
    let reqs = rig.server.file_requests();
    let last = reqs.last().unwrap();
    assert_eq!(last.range.as_deref(), Some(format!("bytes={on_disk}-").as_str()));
    assert_eq!(last.if_range.as_deref(), Some("\"v1\""));
    assert_eq!(last.status, 206);
    assert_eq!(last.sent, SIZE as u64 - on_disk, "nothing before the pause is fetched again");
}

#[tokio::test]
async fn last_modified_is_the_validator_when_there_is_no_etag() {
    let rig = Rig::new().await;
    slow(&rig);
    rig.server.set(|m| {
        m.etag = None;
        m.last_modified = Some("Wed, 21 Oct 2026 07:28:00 GMT".into());
    });
    let v = rig.start().await;
    rig.wait_bytes(v.id, 100_000).await;
    rig.engine.pause(rig.user, v.id).await.unwrap();
    rig.settle(v.id).await;
    rig.server.set(|m| m.chunk_delay = Duration::ZERO);
    rig.engine.resume(rig.user, v.id).await.unwrap();
    assert_eq!(rig.settle(v.id).await.status, Complete);
    let last = rig.server.file_requests().pop().unwrap();
    assert_eq!(last.if_range.as_deref(), Some("Wed, 21 Oct 2026 07:28:00 GMT"));
    rig.assert_installed_right();
}

#[tokio::test]
async fn a_changed_remote_file_restarts_from_zero_instead_of_splicing() {
    let rig = Rig::new().await;
    let v = paused_midway(&rig, 100_000).await;
    // New ETag: If-Range fails, the server sends the whole file with 200.
    rig.server.set(|m| {
        m.etag = Some("\"v2\"".into());
        m.chunk_delay = Duration::ZERO;
    });
    rig.engine.resume(rig.user, v.id).await.unwrap();
    assert_eq!(rig.settle(v.id).await.status, Complete);
    let last = rig.server.file_requests().pop().unwrap();
    assert_eq!(last.if_range.as_deref(), Some("\"v1\""));
    assert_eq!(last.status, 200);
    assert_eq!(last.sent, SIZE as u64);
    rig.assert_installed_right();
    let row = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap();
    assert_eq!(row.validator.as_deref(), Some("\"v2\""));
}

#[tokio::test]
async fn a_server_that_ignores_range_gets_a_truncated_partial_and_a_full_body() {
    let rig = Rig::new().await;
    let v = paused_midway(&rig, 100_000).await;
    rig.server.set(|m| {
        m.honor_range = false;
        m.chunk_delay = Duration::ZERO;
    });
    rig.engine.resume(rig.user, v.id).await.unwrap();
    assert_eq!(rig.settle(v.id).await.status, Complete);
    let last = rig.server.file_requests().pop().unwrap();
    assert!(last.range.is_some());
    assert_eq!(last.status, 200);
    rig.assert_installed_right();
}

#[tokio::test]
async fn a_206_at_the_wrong_offset_restarts_from_zero() {
    let rig = Rig::new().await;
    let v = paused_midway(&rig, 100_000).await;
    rig.server.set(|m| {
        m.wrong_start = true;
        m.chunk_delay = Duration::ZERO;
    });
    rig.engine.resume(rig.user, v.id).await.unwrap();
    assert_eq!(rig.settle(v.id).await.status, Complete);
    let reqs = rig.server.file_requests();
    assert!(reqs.iter().any(|r| r.range.is_none() && r.status == 200 && r.sent == SIZE as u64), "{reqs:?}");
    rig.assert_installed_right();
}

/// Makes a paused download whose partial holds `bytes`.
async fn paused_with_partial(rig: &Rig, bytes: &[u8]) -> i64 {
    rig.server.set(|m| m.fail_first = 1_000);
    let v = rig.start().await;
    rig.engine.pause(rig.user, v.id).await.unwrap();
    rig.settle(v.id).await;
    let row = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap();
    std::fs::create_dir_all(files::partial_dir(&rig.models())).unwrap();
    std::fs::write(&row.partial_path, bytes).unwrap();
    rig.server.set(|m| m.fail_first = 0);
    v.id
}

#[tokio::test]
async fn a_416_on_a_whole_partial_verifies_without_downloading() {
    let rig = Rig::new().await;
    let id = paused_with_partial(&rig, &test_bytes(SIZE, 0)).await;
    let before = rig.server.bytes_sent();
    rig.engine.resume(rig.user, id).await.unwrap();
    assert_eq!(rig.settle(id).await.status, Complete);
    assert_eq!(rig.server.bytes_sent(), before);
    // A whole partial needs no body at all: either no request or a 416.
    assert!(rig.server.file_requests().iter().all(|r| r.status != 200));
    rig.assert_installed_right();
}

#[tokio::test]
async fn a_wrong_partial_of_full_length_is_downloaded_again() {
    let rig = Rig::new().await;
    let id = paused_with_partial(&rig, &vec![7u8; SIZE]).await;
    rig.server.set(|m| m.etag = None); // no If-Range: the server answers the Range with 416
    rig.engine.resume(rig.user, id).await.unwrap();
    assert_eq!(rig.settle(id).await.status, Complete);
    rig.assert_installed_right();
}

#[tokio::test]
async fn redirects_are_followed() {
    let rig = Rig::with(|f| vec![f.url("/redirect/3")], None, None).await;
    let v = rig.start().await;
    assert_eq!(rig.settle(v.id).await.status, Complete);
    assert_eq!(rig.server.seen().iter().filter(|s| s.status == 302).count(), 3);
    rig.assert_installed_right();
}

#[tokio::test]
async fn a_chunked_body_without_content_length_works() {
    let rig = Rig::new().await;
    rig.server.set(|m| m.chunked = true);
    let v = rig.start().await;
    assert_eq!(rig.settle(v.id).await.status, Complete);
    rig.assert_installed_right();
}

#[tokio::test]
async fn a_body_that_ends_early_is_resumed_not_trusted() {
    let rig = Rig::new().await;
    rig.server.set(|m| {
        m.cut_after = Some(1_000_000);
        m.cut_times = 2;
    });
    let v = rig.start().await;
    assert_eq!(rig.settle(v.id).await.status, Complete);
    let reqs = rig.server.file_requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    assert_eq!(reqs[1].range.as_deref(), Some("bytes=1000000-"));
    assert_eq!(reqs[2].range.as_deref(), Some("bytes=2000000-"));
    assert_eq!(rig.server.bytes_sent(), SIZE as u64);
    rig.assert_installed_right();
}

#[tokio::test]
async fn a_size_other_than_the_catalogs_fails_at_once_naming_both() {
    let rig = Rig::with(|f| vec![f.url("/file")], Some(SIZE as u64 + 1), None).await;
    let v = rig.start().await;
    let done = rig.settle(v.id).await;
    assert_eq!(done.status, Failed);
    let err = done.error.unwrap();
    assert!(err.contains(&SIZE.to_string()) && err.contains(&(SIZE + 1).to_string()), "{err}");
    let row = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap();
    assert_eq!(row.bytes_downloaded, 0, "it did not download the wrong file");
    assert_eq!(files::len_or_zero(Path::new(&row.partial_path)), 0);
    assert!(!rig.target().exists());
}

#[tokio::test]
async fn an_html_error_page_with_status_200_is_told_as_a_web_page_at_once() {
    let rig = Rig::new().await;
    rig.server.set(|m| m.html_error = true);
    let v = rig.start().await;
    let done = rig.settle(v.id).await;
    assert_eq!(done.status, Failed);
    assert!(done.error.unwrap().contains("sent a web page, not the model"));
    assert!(done.error_detail.unwrap().contains("text/html"));
    assert_eq!(rig.server.file_requests().len(), 1, "waiting would not turn a page into the model");
    assert!(!rig.target().exists());
}

/// A captive portal: every request, ranged or not, gets the same short HTML page with status 200
/// and no length. A GGUF is never served as HTML, so the first page ends the download, told as
/// a web page (a short page of another type: `a_short_200_that_is_not_the_model_...`).
#[tokio::test]
async fn a_host_answering_every_request_with_a_short_page_fails_at_once_as_a_web_page() {
    let rig = Rig::new().await;
    rig.server.set(|m| {
        m.html_error = true;
        m.chunked = true;
    });
    let v = rig.start().await;
    let done = rig.settle(v.id).await;
    assert_eq!(done.status, Failed);
    let err = done.error.unwrap();
    assert!(err.contains("sent a web page, not the model"), "{err}");
    let reqs = rig.server.file_requests();
    assert_eq!(reqs.len(), 1, "waiting would not turn a page into the model: {reqs:?}");
    assert!(reqs.iter().all(|r| r.status == 200));
    assert!(!rig.target().exists());
}

#[tokio::test]
async fn the_next_mirror_is_tried_when_the_first_url_fails() {
    let rig = Rig::with(|f| vec![f.url("/missing"), f.url("/mirror")], None, None).await;
    let v = rig.start().await;
    assert_eq!(rig.settle(v.id).await.status, Complete);
    let seen = rig.server.seen();
    assert_eq!(seen[0].path, "/missing");
    assert_eq!(seen.last().unwrap().path, "/mirror");
    rig.assert_installed_right();
}

/// A host whose TLS certificate no root signed.
pub async fn bad_certificate_host() -> RawHost {
    RawHost::start(tls12_hello_with(SELF_SIGNED_CERT), Then::WaitForClose).await
}

#[tokio::test]
async fn a_bad_certificate_fails_at_once_without_retrying() {
    let host = bad_certificate_host().await;
    let url = host.url("https", "/file");
    let rig = Rig::with(move |_| vec![url], None, None).await;
    let v = rig.start().await;
    let done = rig.settle(v.id).await;
    assert_eq!(done.status, Failed);
    let err = done.error.unwrap();
    assert!(err.contains("certificate") && !err.contains("gave up"), "{err}");
    assert_eq!(host.connections(), 1, "a bad certificate is not asked again");
}

#[tokio::test]
async fn a_bad_certificate_moves_on_to_the_next_mirror_at_once() {
    let host = bad_certificate_host().await;
    let url = host.url("https", "/file");
    let rig = Rig::with(move |f| vec![url, f.url("/mirror")], None, None).await;
    let v = rig.start().await;
    assert_eq!(rig.settle(v.id).await.status, Complete);
    assert_eq!(host.connections(), 1);
    rig.assert_installed_right();
}

#[tokio::test]
async fn transient_503s_are_retried_honouring_retry_after() {
    let rig = Rig::new().await;
    rig.server.set(|m| {
        m.fail_first = 2;
        m.retry_after = Some("0".into());
    });
    let v = rig.start().await;
    assert_eq!(rig.settle(v.id).await.status, Complete);
    let statuses: Vec<u16> = rig.server.file_requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 503, 200]);
    rig.assert_installed_right();
}

#[tokio::test]
async fn a_stall_is_retried_from_the_current_offset() {
    let rig = Rig::new().await;
    rig.server.set(|m| m.stall_after = Some(500_000));
    let v = rig.start().await;
    assert_eq!(rig.settle(v.id).await.status, Complete);
    let reqs = rig.server.file_requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].range.as_deref(), Some("bytes=500000-"));
    rig.assert_installed_right();
}

#[tokio::test]
async fn after_the_retry_budget_the_download_fails_and_keeps_its_partial() {
    let rig = Rig::new().await;
    // After the first cut, the server only answers 503.
    rig.server.set(|m| {
        m.cut_after = Some(100_000);
        m.cut_times = 1;
        m.fail_after_cut = true;
    });
    let v = rig.start().await;
    let done = rig.settle(v.id).await;
    assert_eq!(done.status, Failed);
    let (err, detail) = (done.error.unwrap(), done.error_detail.unwrap());
    assert!(err.contains("127.0.0.1 is busy (it answered 503)"), "{err}");
    assert!(detail.contains("gave up after 5 tries"), "{detail}");
    let row = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap();
    assert_eq!(files::len_or_zero(Path::new(&row.partial_path)), 100_000);
    assert_eq!(row.bytes_downloaded, 100_000);
    // Retry picks up where it stopped.
    rig.server.set(|m| m.fail_first = 0);
    rig.engine.resume(rig.user, v.id).await.unwrap();
    assert_eq!(rig.settle(v.id).await.status, Complete);
    assert_eq!(rig.server.file_requests().last().unwrap().range.as_deref(), Some("bytes=100000-"));
    rig.assert_installed_right();
}

#[tokio::test]
async fn a_hash_mismatch_fails_installs_nothing_and_removes_the_bad_partial() {
    let wrong = hex(&sha2::Sha256::digest(b"some other file"));
    let rig = Rig::with(|f| vec![f.url("/file")], None, Some(&wrong)).await;
    let v = rig.start().await;
    let done = rig.settle(v.id).await;
    assert_eq!(done.status, Failed);
    let (err, detail) = (done.error.unwrap(), done.error_detail.unwrap());
    assert!(err.contains("corrupt") && err.contains("nothing was installed"), "{err}");
    assert!(detail.contains(&wrong), "the details name both digests: {detail}");
    assert!(!rig.target().exists());
    assert_no_partials(&rig.models());
}

#[tokio::test]
async fn not_enough_disk_is_refused_before_anything_is_written() {
    let rig = Rig::with(|f| vec![f.url("/file")], Some(u64::MAX / 4), None).await;
    let err = rig.engine.start(rig.user, MODEL).await.unwrap_err();
    assert!(matches!(err, EngineError::NotEnoughDisk { .. }), "{err}");
    assert!(err.to_string().starts_with("not enough disk space: needs"), "{err}");
    assert!(downloads::list(&rig.db, rig.user).await.unwrap().is_empty());
}

#[tokio::test]
async fn cancel_removes_the_partial_and_frees_the_slot() {
    let rig = Rig::new().await;
    slow(&rig);
    let v = rig.start().await;
    rig.wait_bytes(v.id, 100_000).await;
    let c = rig.engine.cancel(rig.user, v.id).await.unwrap();
    assert_eq!(c.status, Cancelled);
    assert_no_partials(&rig.models());
    assert!(!rig.target().exists());
    // Cancelled is terminal: no more pause or resume.
    let err = rig.engine.resume(rig.user, v.id).await.unwrap_err();
    assert!(matches!(err, EngineError::WrongState { action: "resume", status: Cancelled }), "{err}");
    // A new start makes a new row.
    rig.server.set(|m| m.chunk_delay = Duration::ZERO);
    let again = rig.start().await;
    assert_ne!(again.id, v.id);
    assert_eq!(rig.settle(again.id).await.status, Complete);
}

#[tokio::test]
async fn a_paused_download_can_be_cancelled() {
    let rig = Rig::new().await;
    let v = paused_midway(&rig, 50_000).await;
    assert_eq!(rig.engine.cancel(rig.user, v.id).await.unwrap().status, Cancelled);
    assert_no_partials(&rig.models());
}

#[tokio::test]
async fn a_pause_right_after_start_is_honoured_whenever_the_runner_gets_to_run() {
    let rig = Rig::new().await;
    rig.server.set(|m| m.fail_first = 1_000);
    let v = rig.start().await;
    let p = rig.engine.pause(rig.user, v.id).await.unwrap();
    assert_eq!(p.status, Paused);
    let settled = rig.settle(v.id).await;
    assert_eq!(settled.status, Paused, "the runner never overwrote the pause");
}

#[tokio::test]
async fn an_installed_model_is_hashed_once_and_not_downloaded() {
    let rig = Rig::new().await;
    std::fs::create_dir_all(rig.models()).unwrap();
    std::fs::write(rig.target(), test_bytes(SIZE, 0)).unwrap();
    let v = rig.start().await;
    let done = rig.settle(v.id).await;
    assert_eq!(done.status, Complete);
    assert_eq!(done.bytes_downloaded, SIZE as u64);
    assert!(rig.server.file_requests().is_empty());
}

#[tokio::test]
async fn a_wrong_installed_file_is_downloaded_and_replaced() {
    let rig = Rig::new().await;
    std::fs::create_dir_all(rig.models()).unwrap();
    std::fs::write(rig.target(), vec![1u8; SIZE]).unwrap();
    let v = rig.start().await;
    assert_eq!(rig.settle(v.id).await.status, Complete);
    assert_eq!(rig.server.file_requests().len(), 1);
    rig.assert_installed_right();
}

#[tokio::test]
async fn twenty_simultaneous_starts_make_one_row_and_one_transfer() {
    let rig = Rig::new().await;
    slow(&rig);
    let starts = (0..20).map(|_| {
        let e = rig.engine.clone();
        let u = rig.user;
        tokio::spawn(async move { e.start(u, MODEL).await.unwrap().id })
    });
    let mut ids: Vec<i64> = futures::future::join_all(starts).await.into_iter().map(|r| r.unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1);
    rig.server.set(|m| m.chunk_delay = Duration::ZERO);
    assert_eq!(rig.settle(ids[0]).await.status, Complete);
    assert_eq!(rig.server.file_requests().len(), 1);
    rig.assert_installed_right();
}

#[tokio::test]
async fn unknown_models_and_other_users_downloads_are_refused() {
    let rig = Rig::new().await;
    let err = rig.engine.start(rig.user, "no-such-model").await.unwrap_err();
    assert!(matches!(err, EngineError::UnknownModel(ref id) if id == "no-such-model"), "{err}");
    let v = rig.start().await;
    let bob = users::create(&rig.db, "bob", "user").await.unwrap().unwrap();
    for r in [
        rig.engine.get(bob.id, v.id).await,
        rig.engine.pause(bob.id, v.id).await,
        rig.engine.resume(bob.id, v.id).await,
        rig.engine.cancel(bob.id, v.id).await,
    ] {
        assert!(matches!(r, Err(EngineError::NotFound)));
    }
    assert_eq!(rig.settle(v.id).await.status, Complete);
}

/// Boot recovery after the runner died with the process: a runtime that is shut down takes
/// its tasks with it, exactly as a killed server would.
#[test]
fn a_killed_runner_is_paused_at_boot_and_resumes_without_refetching() {
    let outer = tokio::runtime::Runtime::new().unwrap();
    let rig = outer.block_on(async {
        let rig = Rig::new().await;
        slow(&rig);
        rig
    });
    // The doomed engine runs in its own runtime.
    let doomed_rt = tokio::runtime::Runtime::new().unwrap();
    let models = rig.models();
    let catalog = rig.engine.catalog().clone();
    let (id, partial) = doomed_rt.block_on(async {
        // A pool of the doomed runtime's own, as a second process would have: connections made
        // in a runtime die with it, so the survivors must not share them.
        let db = localbrain::store::Db::connect(&rig.db.url).await.unwrap();
        let engine = Engine::new(db.clone(), Arc::new(catalog.clone()), fast_config(models.clone())).unwrap();
        let v = engine.start(rig.user, MODEL).await.unwrap();
        loop {
            let row = downloads::get(&db, rig.user, v.id).await.unwrap().unwrap();
            if row.bytes_downloaded >= 300_000 {
                break (v.id, row.partial_path);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    doomed_rt.shutdown_timeout(Duration::from_millis(100));
    wait_released(Path::new(&partial));
    outer.block_on(async {
        let row = downloads::get(&rig.db, rig.user, id).await.unwrap().unwrap();
        assert_eq!(row.status, Downloading, "the dead runner left the row active");
        // An orphan partial from some older crash.
        std::fs::write(files::partial_dir(&models).join("gone.999.partial"), b"x").unwrap();

        let engine = Engine::new(rig.db.db.clone(), Arc::new(catalog), fast_config(models.clone())).unwrap();
        let rec = engine.recover().await.unwrap();
        assert_eq!(rec.paused, vec![id]);
        assert_eq!(rec.orphans_removed, 1);
        let on_disk = files::len_or_zero(Path::new(&partial));
        let row = downloads::get(&rig.db, rig.user, id).await.unwrap().unwrap();
        assert_eq!(row.status, Paused);
        assert_eq!(row.bytes_downloaded, on_disk, "bytes reconciled to the partial");
        assert!(on_disk >= 300_000);

        rig.server.set(|m| m.chunk_delay = Duration::ZERO);
        engine.resume(rig.user, id).await.unwrap();
        let done = tokio::time::timeout(Duration::from_secs(30), engine.wait_settled(id)).await.unwrap().unwrap();
        assert_eq!(done.status, Complete);
        let last = rig.server.file_requests().pop().unwrap();
        assert_eq!(last.range.as_deref(), Some(format!("bytes={on_disk}-").as_str()));
        assert_eq!(last.sent, SIZE as u64 - on_disk, "bytes before the kill were not fetched again");
        rig.assert_installed_right();
    });
}

#[tokio::test]
async fn a_row_whose_partial_vanished_restarts_from_zero() {
    let rig = Rig::new().await;
    let v = paused_midway(&rig, 100_000).await;
    let row = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap();
    std::fs::remove_file(&row.partial_path).unwrap();
    rig.server.set(|m| m.chunk_delay = Duration::ZERO);
    rig.engine.resume(rig.user, v.id).await.unwrap();
    assert_eq!(rig.settle(v.id).await.status, Complete);
    assert_eq!(rig.server.file_requests().last().unwrap().range, None);
    rig.assert_installed_right();
}

#[tokio::test]
async fn shutdown_pauses_running_downloads_and_keeps_their_partials() {
    let rig = Rig::new().await;
    slow(&rig);
    let v = rig.start().await;
    rig.wait_bytes(v.id, 100_000).await;
    let paused = rig.engine.pause_all(Duration::from_secs(4)).await;
    assert_eq!(paused, vec![v.id]);
    let row = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap();
    assert_eq!(row.status, Paused);
    assert_eq!(row.error.as_deref(), Some(PauseReason::Restart.note()));
    // The card decides on the typed reason, not on the sentence.
    let view = rig.engine.get(rig.user, v.id).await.unwrap();
    assert_eq!(view.paused_by, Some(PauseReason::Restart));
    let by_user = paused_midway(&Rig::new().await, 100_000).await;
    assert_eq!(
        (by_user.status, by_user.paused_by),
        (Paused, None),
        "a pause by the user has no reason of localbrain's"
    );
    let on_disk = files::len_or_zero(Path::new(&row.partial_path));
    assert!(on_disk >= 100_000);
    assert_eq!(row.bytes_downloaded, on_disk, "the runner flushed and recorded its bytes");
}

#[tokio::test]
async fn a_bandwidth_limit_holds_the_average_rate() {
    let server = Fixture::start(test_bytes(SIZE, 0)).await;
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = catalog_for(&[server.url("/file")], SIZE as u64, &server.sha256());
    let mut cfg = fast_config(dir.path().join("models"));
    cfg.max_rate = Some(4_000_000);
    let engine = Engine::new(db.db.clone(), Arc::new(catalog), cfg).unwrap();
    let (admin, _) = users::ensure_admin(&db).await.unwrap();
    let began = std::time::Instant::now();
    let v = engine.start(admin.id, MODEL).await.unwrap();
    let done = tokio::time::timeout(Duration::from_secs(30), engine.wait_settled(v.id)).await.unwrap().unwrap();
    let took = began.elapsed().as_secs_f64();
    assert_eq!(done.status, Complete);
    // 3.2 MB at 4 MB/s, less the first quarter second of burst: at least ~0.5 s.
    let floor = SIZE as f64 / 4_000_000.0 - 0.3;
    assert!(took >= floor, "took {took:.2} s, the limit allows no less than {floor:.2} s");
}

/// A host answering every request with `status`, a short `body` of `content_type` (none when
/// `None`), with a Content-Length or (when `length` is false) a body that ends when the
/// connection closes: what a captive portal or a filter sends instead of the model.
async fn short_answer(content_type: Option<&str>, length: bool, body: &str) -> RawHost {
    let mut head = "HTTP/1.1 200 OK\r\nConnection: close\r\n".to_string();
    if let Some(t) = content_type {
        head.push_str(&format!("Content-Type: {t}\r\n"));
    }
    if length {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    RawHost::start(format!("{head}\r\n{body}").into_bytes(), Then::Close).await
}

/// A captive portal or a filter answers 200 with a short body that is not HTML: the catalog's
/// size (against the Content-Length, or the bytes that came) shows it is not the model, so the
/// download fails at once, saying the network answered with a page of its own, and keeps none
/// of its bytes.
#[tokio::test]
async fn a_short_200_that_is_not_the_model_fails_at_once_whatever_its_type() {
    let body = "Please sign in to the hotel network to continue.";
    for (content_type, length) in
        [(Some("text/plain"), true), (Some("application/octet-stream"), false), (None, false), (None, true)]
    {
        let case = format!("{content_type:?}, length: {length}");
        let host = short_answer(content_type, length, body).await;
        let url = host.url("http", "/file");
        let rig = Rig::with(move |_| vec![url], None, None).await;
        let v = rig.start().await;
        let done = rig.settle(v.id).await;
        assert_eq!(done.status, Failed, "{case}");
        let err = done.error.unwrap();
        assert!(err.contains("instead of the model") && err.contains("sign in"), "{case}: {err}");
        assert!(!err.contains("different file"), "{case}: {err}");
        assert_eq!(host.connections(), 1, "{case}: asked once, not retried");
        let row = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap();
        assert_eq!(files::len_or_zero(Path::new(&row.partial_path)), 0, "{case}: the page is not kept");
        assert!(!rig.target().exists(), "{case}");
    }
}

/// 403 and 410 are final: one request, and words that say what the host said.
#[tokio::test]
async fn a_403_or_410_fails_at_once_saying_what_the_host_said() {
    for (status, words) in [(403, "refuses to send this model"), (410, "has removed this file")] {
        let rig = Rig::new().await;
        rig.server.set(|m| {
            m.fail_first = 100;
            m.fail_status = status;
        });
        let v = rig.start().await;
        let done = rig.settle(v.id).await;
        assert_eq!(done.status, Failed, "{status}");
        let err = done.error.unwrap();
        assert!(err.contains(words) && err.contains(&status.to_string()), "{status}: {err}");
        assert_eq!(rig.server.file_requests().len(), 1, "{status}: asked once, not retried");
    }
}

/// Writes a failed row's stored words and kept failure as an older build would have left them.
async fn keep(rig: &Rig, id: i64, words: &str, kind: Option<&str>) {
    sqlx::query("UPDATE model_downloads SET error = $1, error_kind = $2 WHERE id = $3")
        .bind(words)
        .bind(kind)
        .bind(id)
        .execute(&rig.db.pool)
        .await
        .unwrap();
}

/// A failed row keeps its failure's kind and facts, and its words are made from them when it is
/// read: the words table as it is now rewords a row whatever sentence was stored with it. A
/// row kept without a kind (failed before kinds were kept), or with one this build does not
/// know, shows the sentence stored with it.
#[tokio::test]
async fn a_failed_rows_words_are_made_from_its_kept_failure_when_it_is_read() {
    use localbrain::engine::{Failure, Reach};
    let rig = Rig::new().await;
    rig.server.set(|m| {
        m.fail_first = 100;
        m.fail_status = 410;
    });
    let v = rig.start().await;
    let done = rig.settle(v.id).await;
    let row = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap();
    let kept = Failure::from_json(row.error_kind.as_deref().expect("the failure is kept")).unwrap();
    assert_eq!(kept, Failure::Refused { host: "127.0.0.1".into(), status: 410 });
    assert_eq!(done.error, Some(kept.said().stopped()));

    let stale = "Words an older table wrote.";
    for failure in [
        Failure::Busy { host: "mirror.example".into(), status: 503 },
        Failure::Unreachable { host: "huggingface.co".into(), reach: Reach::Certificate },
        Failure::NotTheModel { host: "huggingface.co".into(), bytes: 48 },
        Failure::DiskFull,
    ] {
        keep(&rig, v.id, stale, Some(&failure.to_json())).await;
        let read = rig.engine.get(rig.user, v.id).await.unwrap();
        assert_eq!(read.error, Some(failure.said().stopped()), "{failure:?}");
        assert_eq!(rig.engine.list(rig.user).await.unwrap()[0].error, read.error, "{failure:?}: listed alike");
    }
    for kind in [None, Some(r#"{"kind":"a_kind_from_a_newer_build","host":"x"}"#)] {
        keep(&rig, v.id, stale, kind).await;
        assert_eq!(rig.engine.get(rig.user, v.id).await.unwrap().error.as_deref(), Some(stale), "{kind:?}");
    }
    // A resume clears the failure with the words.
    keep(&rig, v.id, stale, Some(&Failure::DiskFull.to_json())).await;
    rig.server.set(|m| m.fail_first = 0);
    rig.engine.resume(rig.user, v.id).await.unwrap();
    assert_eq!(rig.settle(v.id).await.status, Complete);
    let row = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap();
    assert_eq!((row.error, row.error_kind), (None, None));
}
