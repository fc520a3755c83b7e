//! Parallel (segmented) downloads against the loopback fixture, on SQLite and PostgreSQL. The
//! segments are shrunk so a 3 MB file gets thirteen of them; everything else is the product's.

use crate::engine::{MODEL, Rig, SIZE, fast_config, paused_midway, slow, wait_released};
use localbrain::engine::segments::{self, Segment, SegmentRule};
use localbrain::engine::{Engine, EngineConfig, files};
use localbrain::status::DownloadStatus::*;
use localbrain::store::downloads;
use sha2::Digest;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const SEGMENT: u64 = 256 * 1024;

fn parallel(cfg: &mut EngineConfig) {
    cfg.connections = 4;
    // All connections at once; the speed rule has tests of its own below.
    cfg.fast_stream_bps = None;
    cfg.segment_rule = SegmentRule { min_bytes: SEGMENT, max_bytes: 2 * SEGMENT, max_count: 16 };
}

async fn rig() -> Rig {
    Rig::build(|f| vec![f.url("/file")], None, None, parallel).await
}

fn plan() -> Vec<Segment> {
    let mut cfg = fast_config("/unused".into());
    parallel(&mut cfg);
    segments::plan(SIZE as u64, cfg.segment_rule)
}

/// `bytes=A-B` as (A, B exclusive).
fn closed_range(r: &str) -> (u64, u64) {
    let (a, b) = r.strip_prefix("bytes=").unwrap().split_once('-').unwrap();
    (a.parse().unwrap(), b.parse::<u64>().unwrap() + 1)
}

async fn saved_segments(rig: &Rig, id: i64) -> Vec<Segment> {
    let row = downloads::get(&rig.db, rig.user, id).await.unwrap().unwrap();
    let text = row.segments.expect("a parallel download keeps its segments on the row");
    let segs = segments::decode(&text, SIZE as u64).expect("valid segments");
    assert_eq!(row.bytes_downloaded, segments::done_bytes(&segs), "bytes and segments agree");
    segs
}

#[tokio::test]
async fn a_large_file_comes_over_several_connections_each_byte_once() {
    let rig = rig().await;
    let plan = plan();
    assert_eq!(plan.len(), 13);
    // A slow line, so the connections' bodies overlap in time.
    rig.server.set(|m| m.chunk_delay = Duration::from_millis(5));
    let v = rig.start().await;
    assert_eq!(rig.settle(v.id).await.status, Complete);
    rig.assert_installed_right();

    let reqs = rig.server.file_requests();
    let mut ranges: Vec<(u64, u64)> = reqs.iter().map(|r| closed_range(r.range.as_deref().unwrap())).collect();
    ranges.sort();
    let expected: Vec<(u64, u64)> = plan.iter().map(|s| (s.start, s.end)).collect();
    assert_eq!(ranges, expected, "one closed range per segment");
    assert_eq!(rig.server.bytes_sent(), SIZE as u64, "no byte fetched twice");
    assert!(reqs.iter().all(|r| r.status == 206));
    // The first answer gives the validator every later request sends back.
    assert_eq!(reqs[0].if_range, None);
    assert!(reqs[1..].iter().all(|r| r.if_range.as_deref() == Some("\"v1\"")));
    assert!(rig.server.max_in_flight() >= 2, "segments came in parallel");
    assert!(rig.server.max_in_flight() <= 4, "no more connections than configured");
}

#[tokio::test]
async fn pause_keeps_every_segment_and_resume_fetches_only_what_is_missing() {
    let rig = rig().await;
    let v = paused_midway(&rig, 700_000).await;
    assert_eq!(v.status, Paused);
    let saved = saved_segments(&rig, v.id).await;
    let done = segments::done_bytes(&saved);
    assert!(done >= 700_000);
    assert!(saved.iter().filter(|s| s.done > 0).count() >= 2, "several segments progressed: {saved:?}");
    assert_eq!(v.bytes_downloaded, done);
    let partial = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap().partial_path;
    assert_eq!(files::len_or_zero(Path::new(&partial)), SIZE as u64, "the partial is preallocated");

    let before = rig.server.file_requests().len();
    rig.server.set(|m| m.chunk_delay = Duration::ZERO);
    rig.engine.resume(rig.user, v.id).await.unwrap();
    assert_eq!(rig.settle(v.id).await.status, Complete);
    let after = &rig.server.file_requests()[before..];
    let mut asked: Vec<(u64, u64)> = after.iter().map(|r| closed_range(r.range.as_deref().unwrap())).collect();
    asked.sort();
    let missing: Vec<(u64, u64)> =
        saved.iter().filter(|s| !s.is_complete()).map(|s| (s.start + s.done, s.end)).collect();
    assert_eq!(asked, missing, "each unfinished segment resumes where it stopped");
    assert!(after.iter().all(|r| r.if_range.as_deref() == Some("\"v1\"")));
    assert_eq!(after.iter().map(|r| r.sent).sum::<u64>(), SIZE as u64 - done, "finished bytes kept");
    rig.assert_installed_right();
}

/// The process dies mid-download (its runtime is dropped, as a kill -9 would): boot recovery
/// takes the bytes from the row's segments, not from the preallocated file's length.
#[test]
fn a_killed_parallel_download_resumes_from_its_saved_segments() {
    let outer = tokio::runtime::Runtime::new().unwrap();
    let rig = outer.block_on(async {
        let rig = rig().await;
        slow(&rig);
        rig
    });
    let doomed = tokio::runtime::Runtime::new().unwrap();
    let (models, catalog) = (rig.models(), rig.engine.catalog().clone());
    let mut cfg = fast_config(models.clone());
    parallel(&mut cfg);
    let id = doomed.block_on(async {
        // The doomed runtime's own pool (see the single-stream kill test).
        let db = localbrain::store::Db::connect(&rig.db.url).await.unwrap();
        let engine = Engine::new(db.clone(), Arc::new(catalog.clone()), cfg.clone()).unwrap();
        let v = engine.start(rig.user, MODEL).await.unwrap();
        loop {
            let row = downloads::get(&db, rig.user, v.id).await.unwrap().unwrap();
            if row.bytes_downloaded >= 500_000 {
                break v.id;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    doomed.shutdown_timeout(Duration::from_millis(100));
    outer.block_on(async {
        let partial = downloads::get(&rig.db, rig.user, id).await.unwrap().unwrap().partial_path;
        wait_released(Path::new(&partial));
        let engine = Engine::new(rig.db.db.clone(), Arc::new(catalog), cfg).unwrap();
        assert_eq!(engine.recover().await.unwrap().paused, vec![id]);
        let saved = saved_segments(&rig, id).await;
        let done = segments::done_bytes(&saved);
        assert!((500_000..SIZE as u64).contains(&done), "recovered {done} bytes, not the file's length");

        let before = rig.server.file_requests().len();
        rig.server.set(|m| m.chunk_delay = Duration::ZERO);
        engine.resume(rig.user, id).await.unwrap();
        let end = tokio::time::timeout(Duration::from_secs(30), engine.wait_settled(id)).await.unwrap().unwrap();
        assert_eq!(end.status, Complete);
        let sent: u64 = rig.server.file_requests()[before..].iter().map(|r| r.sent).sum();
        assert_eq!(sent, SIZE as u64 - done, "nothing recorded before the kill was fetched again");
        rig.assert_installed_right();
    });
}

#[tokio::test]
async fn a_file_changed_during_a_pause_is_fetched_whole_never_spliced() {
    let rig = rig().await;
    let v = paused_midway(&rig, 400_000).await;
    rig.server.set(|m| {
        m.etag = Some("\"v2\"".into());
        m.chunk_delay = Duration::ZERO;
    });
    let before = rig.server.file_requests().len();
    rig.engine.resume(rig.user, v.id).await.unwrap();
    assert_eq!(rig.settle(v.id).await.status, Complete);
    let after = &rig.server.file_requests()[before..];
    assert_eq!(after[0].status, 200, "If-Range saw the new ETag");
    let last = after.last().unwrap();
    assert_eq!((last.range.as_deref(), last.status, last.sent), (None, 200, SIZE as u64), "one whole body");
    let row = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap();
    assert_eq!(row.segments, None);
    rig.assert_installed_right();
}

#[tokio::test]
async fn a_server_without_ranges_gets_one_stream() {
    let rig = rig().await;
    rig.server.set(|m| m.honor_range = false);
    let v = rig.start().await;
    assert_eq!(rig.settle(v.id).await.status, Complete);
    let reqs = rig.server.file_requests();
    assert_eq!(reqs.len(), 2, "one refused ranged try, then one stream: {reqs:?}");
    assert_eq!(reqs[1].range, None);
    rig.assert_installed_right();
}

#[tokio::test]
async fn a_broken_connection_is_retried_from_where_its_segment_stopped() {
    let rig = rig().await;
    rig.server.set(|m| {
        m.cut_after = Some(100_000);
        m.cut_times = 2;
        m.chunk = 20_000;
    });
    let v = rig.start().await;
    assert_eq!(rig.settle(v.id).await.status, Complete);
    let starts: Vec<u64> = plan().iter().map(|s| s.start).collect();
    let resumed = rig
        .server
        .file_requests()
        .iter()
        .map(|r| closed_range(r.range.as_deref().unwrap()).0)
        .filter(|a| !starts.contains(a))
        .count();
    assert!(resumed >= 1, "a cut segment continued mid-way");
    rig.assert_installed_right();
}

#[tokio::test]
async fn busy_answers_are_retried() {
    let rig = rig().await;
    rig.server.set(|m| m.fail_first = 3);
    let v = rig.start().await;
    assert_eq!(rig.settle(v.id).await.status, Complete);
    rig.assert_installed_right();
}

#[tokio::test]
async fn an_unreachable_host_costs_no_disk() {
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/file", l.local_addr().unwrap())
    };
    let rig = Rig::build(move |_| vec![closed_port], None, None, parallel).await;
    let v = rig.start().await;
    let done = rig.settle(v.id).await;
    assert_eq!(done.status, Failed);
    let (err, detail) = (done.error.unwrap(), done.error_detail.unwrap());
    assert!(err.contains("127.0.0.1 refused the connection"), "{err}");
    assert!(detail.contains("gave up after 5 tries"), "{detail}");
    let row = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap();
    assert_eq!(files::len_or_zero(Path::new(&row.partial_path)), 0, "no space reserved for a file never seen");
    assert_eq!(row.bytes_downloaded, 0);
}

#[tokio::test]
async fn a_bad_certificate_ends_the_download_at_once() {
    let host = crate::engine::bad_certificate_host().await;
    let url = host.url("https", "/file");
    let rig = Rig::build(move |_| vec![url], None, None, parallel).await;
    let v = rig.start().await;
    let done = rig.settle(v.id).await;
    assert_eq!(done.status, Failed);
    let err = done.error.unwrap();
    assert!(err.contains("certificate") && !err.contains("gave up"), "{err}");
    assert_eq!(host.connections(), 1, "a bad certificate is not asked again");
    let row = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap();
    assert_eq!(files::len_or_zero(Path::new(&row.partial_path)), 0, "no space reserved for a refused host");
}

#[tokio::test]
async fn a_hash_mismatch_installs_nothing_and_forgets_the_segments() {
    let wrong = testkit::hex(&sha2::Sha256::digest(b"some other file"));
    let rig = Rig::build(|f| vec![f.url("/file")], None, Some(&wrong), parallel).await;
    let v = rig.start().await;
    let end = rig.settle(v.id).await;
    assert_eq!(end.status, Failed);
    assert!(end.error.unwrap().contains("SHA-256"));
    assert!(!rig.target().exists());
    crate::engine::assert_no_partials(&rig.models());
    let row = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap();
    assert_eq!((row.segments, row.bytes_downloaded), (None, 0));
}

#[tokio::test]
async fn cancel_removes_the_preallocated_partial() {
    let rig = rig().await;
    slow(&rig);
    let v = rig.start().await;
    rig.wait_bytes(v.id, 200_000).await;
    assert_eq!(rig.engine.cancel(rig.user, v.id).await.unwrap().status, Cancelled);
    crate::engine::assert_no_partials(&rig.models());
    assert!(!rig.target().exists());
}

#[tokio::test]
async fn one_connection_configured_means_one_stream() {
    let rig = Rig::build(
        |f| vec![f.url("/file")],
        None,
        None,
        |c| {
            parallel(c);
            c.connections = 1;
        },
    )
    .await;
    let v = rig.start().await;
    assert_eq!(rig.settle(v.id).await.status, Complete);
    assert_eq!(rig.server.file_requests().len(), 1);
    rig.assert_installed_right();
}

#[tokio::test]
async fn shutdown_pauses_a_parallel_download_with_its_segments_saved() {
    let rig = rig().await;
    slow(&rig);
    let v = rig.start().await;
    rig.wait_bytes(v.id, 300_000).await;
    assert_eq!(rig.engine.pause_all(Duration::from_secs(4)).await, vec![v.id]);
    let row = downloads::get(&rig.db, rig.user, v.id).await.unwrap().unwrap();
    assert_eq!(row.status, Paused);
    assert_eq!(row.error.as_deref(), Some(localbrain::view::PauseReason::Restart.note()));
    let saved = saved_segments(&rig, v.id).await;
    assert!(segments::done_bytes(&saved) >= 300_000, "the bytes written before the stop are recorded");
    // What the segments claim is really in the file.
    let partial = std::fs::read(&row.partial_path).unwrap();
    let data = testkit::test_bytes(SIZE, 0);
    for s in &saved {
        let (a, b) = (s.start as usize, (s.start + s.done) as usize);
        assert!(partial[a..b] == data[a..b], "segment {}-{} holds the right bytes", s.start, s.end);
    }
}

#[tokio::test]
async fn a_stream_fast_enough_alone_gets_no_helpers() {
    let rig = Rig::build(
        |f| vec![f.url("/file")],
        None,
        None,
        |c| {
            parallel(c);
            c.fast_stream_bps = Some(1);
        },
    )
    .await;
    rig.server.set(|m| m.chunk_delay = Duration::from_millis(3));
    let v = rig.start().await;
    assert_eq!(rig.settle(v.id).await.status, Complete);
    assert_eq!(rig.server.max_in_flight(), 1, "one connection did it all");
    let starts: Vec<u64> =
        rig.server.file_requests().iter().map(|r| closed_range(r.range.as_deref().unwrap()).0).collect();
    assert_eq!(starts, plan().iter().map(|s| s.start).collect::<Vec<_>>(), "segments in file order");
    rig.assert_installed_right();
}

#[tokio::test]
async fn a_slow_stream_gets_helpers_after_the_probe() {
    let rig = Rig::build(
        |f| vec![f.url("/file")],
        None,
        None,
        |c| {
            parallel(c);
            c.fast_stream_bps = Some(u64::MAX);
        },
    )
    .await;
    // ~2 MB/s: the 3 MB file takes longer than the probe on one connection.
    slow(&rig);
    let v = rig.start().await;
    assert_eq!(rig.settle(v.id).await.status, Complete);
    assert!(rig.server.max_in_flight() >= 2, "more connections opened once one proved slow");
    assert_eq!(rig.server.bytes_sent(), SIZE as u64, "no byte fetched twice");
    rig.assert_installed_right();
}
