//! One transfer per model for several users (issue 17), on SQLite and PostgreSQL: a second
//! user's download of a model that is downloading joins its transfer; each user's Pause and
//! Cancel are their own; the transfer goes on until the last of them lets it go. The fixture's
//! request log shows how many transfers ran and where each began.

use super::engine::{MODEL, Rig, SIZE, assert_no_partials, slow};
use localbrain::engine::files;
use localbrain::status::DownloadStatus::*;
use localbrain::store::{downloads, users};
use localbrain::view::DownloadView;
use std::time::Duration;

async fn bob(rig: &Rig) -> i64 {
    users::create(&rig.db, "bob", "user").await.unwrap().unwrap().id
}

/// Waits (up to 10 s) until `user`'s view of download `id` passes `ok`.
async fn wait_view(rig: &Rig, user: i64, id: i64, what: &str, ok: impl Fn(&DownloadView) -> bool) -> DownloadView {
    for _ in 0..1000 {
        let v = rig.engine.get(user, id).await.unwrap();
        if ok(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("download {id} never showed {what}: {:?}", rig.engine.get(user, id).await.unwrap());
}

/// The partial files in the models folder now.
fn partials(rig: &Rig) -> Vec<String> {
    std::fs::read_dir(files::partial_dir(&rig.models()))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default()
}

fn fast(rig: &Rig) {
    rig.server.set(|m| m.chunk_delay = Duration::ZERO);
}

/// Where a request's Range began (0 for none).
fn range_start(range: Option<&str>) -> u64 {
    range.and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok()).unwrap_or(0)
}

/// Alice's download running, then Bob's joined to it.
async fn alice_then_bob(rig: &Rig, bytes: u64) -> (DownloadView, i64, DownloadView) {
    slow(rig);
    let a = rig.start().await;
    rig.wait_bytes(a.id, bytes).await;
    let bob = bob(rig).await;
    let b = rig.engine.start(bob, MODEL).await.unwrap();
    assert_ne!(a.id, b.id, "each user keeps a row of their own");
    let row = downloads::get_any_user(&rig.db, b.id).await.unwrap().unwrap();
    assert_eq!(row.carrier_id, Some(a.id), "Bob's download did not join Alice's: {row:?}");
    (a, bob, b)
}

#[tokio::test]
async fn a_second_users_download_joins_the_running_transfer_and_both_complete() {
    let rig = Rig::new().await;
    let (a, bob, b) = alice_then_bob(&rig, 200_000).await;
    assert!(b.status.is_active(), "{b:?}");
    assert!(b.bytes_downloaded > 0, "Bob's row starts at the transfer's progress: {b:?}");
    assert_eq!(partials(&rig), vec![format!("{MODEL}.{}.partial", a.id)]);
    // Bob sees the shared transfer's bytes and speed, as the carrier's heartbeat copies them.
    wait_view(&rig, bob, b.id, "bytes and a speed", |v| {
        v.bytes_downloaded > b.bytes_downloaded + 100_000 && v.speed_bps > 0
    })
    .await;
    fast(&rig);
    assert_eq!(rig.settle(a.id).await.status, Complete);
    let done = rig.settle(b.id).await;
    assert_eq!((done.status, done.bytes_downloaded), (Complete, SIZE as u64), "{done:?}");
    assert!(done.target_path.is_some());
    assert_eq!(rig.server.file_requests().len(), 1, "one transfer for both users");
    rig.assert_installed_right();
}

#[tokio::test]
async fn when_the_first_user_cancels_the_transfer_goes_on_for_the_other_from_its_partial() {
    let rig = Rig::new().await;
    let (a, bob, b) = alice_then_bob(&rig, 300_000).await;
    let cancelled = rig.engine.cancel(rig.user, a.id).await.unwrap();
    assert_eq!(cancelled.status, Cancelled);
    // The partial is Bob's now (renamed, never copied or dropped), and it keeps growing.
    assert_eq!(partials(&rig), vec![format!("{MODEL}.{}.partial", b.id)]);
    let going = wait_view(&rig, bob, b.id, "the transfer going on", |v| {
        v.status == Downloading && v.bytes_downloaded > 400_000
    })
    .await;
    assert!(going.bytes_downloaded <= SIZE as u64);
    fast(&rig);
    let done = rig.settle(b.id).await;
    assert_eq!(done.status, Complete, "{done:?}");
    let requests = rig.server.file_requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let from = range_start(requests[1].range.as_deref());
    assert!(from >= 300_000, "the handed-on transfer began again at {from}: bytes were fetched twice");
    assert_eq!(rig.engine.get(rig.user, a.id).await.unwrap().status, Cancelled);
    rig.assert_installed_right();
}

#[tokio::test]
async fn a_joined_user_who_cancels_leaves_the_transfer_running_untouched() {
    let rig = Rig::new().await;
    let (a, bob, b) = alice_then_bob(&rig, 100_000).await;
    let cancelled = rig.engine.cancel(bob, b.id).await.unwrap();
    assert_eq!((cancelled.status, cancelled.bytes_downloaded), (Cancelled, 0), "{cancelled:?}");
    assert_eq!(partials(&rig), vec![format!("{MODEL}.{}.partial", a.id)], "Alice's partial must stay");
    rig.wait_bytes(a.id, 400_000).await;
    fast(&rig);
    assert_eq!(rig.settle(a.id).await.status, Complete);
    assert_eq!(rig.server.file_requests().len(), 1, "Bob's cancel touched Alice's transfer");
    assert_eq!(rig.engine.get(bob, b.id).await.unwrap().status, Cancelled);
    rig.assert_installed_right();
}

#[tokio::test]
async fn the_transfer_stops_only_when_the_last_user_cancels() {
    let rig = Rig::new().await;
    let (a, bob, b) = alice_then_bob(&rig, 100_000).await;
    rig.engine.cancel(rig.user, a.id).await.unwrap();
    wait_view(&rig, bob, b.id, "the handed-on transfer", |v| v.status == Downloading).await;
    assert_eq!(rig.engine.cancel(bob, b.id).await.unwrap().status, Cancelled);
    assert_no_partials(&rig.models());
    let sent = rig.server.bytes_sent();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rig.server.bytes_sent() - sent <= 64 * 1024, "bytes still flow after the last cancel");
    assert!(!rig.target().exists());
}

#[tokio::test]
async fn a_joined_download_paused_and_resumed_joins_the_transfer_again() {
    let rig = Rig::new().await;
    let (a, bob, b) = alice_then_bob(&rig, 100_000).await;
    let paused = rig.engine.pause(bob, b.id).await.unwrap();
    assert_eq!((paused.status, paused.bytes_downloaded), (Paused, 0), "it holds nothing of its own: {paused:?}");
    let resumed = rig.engine.resume(bob, b.id).await.unwrap();
    assert!(resumed.status.is_active() && resumed.bytes_downloaded >= 100_000, "{resumed:?}");
    let row = downloads::get_any_user(&rig.db, b.id).await.unwrap().unwrap();
    assert_eq!(row.carrier_id, Some(a.id));
    fast(&rig);
    assert_eq!(rig.settle(b.id).await.status, Complete);
    assert_eq!(rig.settle(a.id).await.status, Complete);
    assert_eq!(rig.server.file_requests().len(), 1);
    rig.assert_installed_right();
}

#[tokio::test]
async fn the_first_user_pausing_hands_the_transfer_on_and_resuming_joins_it() {
    let rig = Rig::new().await;
    let (a, bob, b) = alice_then_bob(&rig, 200_000).await;
    let paused = rig.engine.pause(rig.user, a.id).await.unwrap();
    assert_eq!(paused.status, Paused);
    wait_view(&rig, bob, b.id, "the handed-on transfer", |v| v.status == Downloading && v.bytes_downloaded >= 200_000)
        .await;
    let resumed = rig.engine.resume(rig.user, a.id).await.unwrap();
    assert!(resumed.status.is_active(), "{resumed:?}");
    let row = downloads::get_any_user(&rig.db, a.id).await.unwrap().unwrap();
    assert_eq!(row.carrier_id, Some(b.id), "Alice's resume did not join the transfer she handed on");
    assert_eq!(partials(&rig).len(), 1, "{:?}", partials(&rig));
    fast(&rig);
    assert_eq!(rig.settle(a.id).await.status, Complete);
    assert_eq!(rig.settle(b.id).await.status, Complete);
    assert_eq!(rig.server.file_requests().len(), 2, "one transfer, handed on once");
    rig.assert_installed_right();
}

#[tokio::test]
async fn a_shutdown_pauses_the_shared_transfer_for_everyone() {
    let rig = Rig::new().await;
    let (a, bob, b) = alice_then_bob(&rig, 100_000).await;
    let paused = rig.engine.pause_all(Duration::from_secs(5)).await;
    assert_eq!(paused, vec![a.id]);
    assert_eq!(rig.settle(a.id).await.status, Paused);
    let joined = wait_view(&rig, bob, b.id, "paused", |v| v.status == Paused).await;
    assert_eq!(joined.error.as_deref(), Some(localbrain::view::PauseReason::Restart.note()));
    assert_eq!(partials(&rig), vec![format!("{MODEL}.{}.partial", a.id)], "the partial stays with its carrier");
    assert_eq!(rig.server.file_requests().len(), 1, "a shutting-down process handed the transfer on");
}
