//! Retrying is visible (issue 15): while the engine waits between tries the download's view says
//! why, which try comes next and when; "Try now" ends the wait; a failure ends with plain words
//! and its technical details apart.

use super::WAIT;
use super::harness::*;
use serde_json::json;

#[tokio::test]
async fn a_waiting_download_says_why_and_when_and_can_try_now() {
    let host = model_host().await;
    // The host is busy for every request: worth retrying, never succeeding.
    host.set_path(BETA_PATH, |m| {
        m.fail_first = 1000;
        m.fail_status = 503;
    });
    let s = Server::start(&host).await;
    let alice = s.admin().await;
    let id = id_of(&s.start_dl(&alice, BETA).await);

    let waiting = s
        .wait_dl(&alice, id, "a wait before the second try", WAIT, |r| {
            r["retrying"]["attempt"].as_u64().is_some_and(|a| a >= 2)
        })
        .await;
    let r = &waiting["retrying"];
    assert_eq!(status_of(&waiting), "downloading", "{waiting}");
    assert!(r["reason"].as_str().is_some_and(|w| w.contains("127.0.0.1 is busy") && w.contains("503")), "{waiting}");
    assert!(r["detail"].as_str().is_some_and(|d| !d.is_empty()), "{waiting}");
    assert_eq!(r["of"].as_u64(), Some(9), "the product's budget: the first try and 8 more");
    assert!(r["in_seconds"].as_u64().is_some_and(|s| s <= 60), "{waiting}");

    // Try now: the next request reaches the host before the wait would have ended.
    let before = host.requests(BETA_PATH).len();
    let attempt = r["attempt"].as_u64().unwrap();
    let later = s
        .wait_dl(&alice, id, "a long enough wait to cut short", WAIT, |r| {
            r["retrying"]["in_seconds"].as_u64().is_some_and(|s| s >= 2)
        })
        .await;
    let now = s.ok(&alice, "downloads/try_now", json!({ "id": id })).await;
    assert_eq!(id_of(&now), id);
    wait_for("the try asked for", std::time::Duration::from_secs(2), || async {
        (host.requests(BETA_PATH).len() > before).then_some(())
    })
    .await;
    assert!(later["retrying"]["attempt"].as_u64().unwrap() >= attempt);

    // Another user's download reads as missing; a download that is not waiting cannot try now.
    let bob = s.add_user("bob").await;
    let other = s.call(Some(&bob), "downloads/try_now", json!({ "id": id })).await;
    assert_eq!(other.status, 404, "{}", other.text);
    let paused = s.ok(&alice, "downloads/pause", json!({ "id": id })).await;
    assert_eq!(status_of(&paused), "paused");
    assert!(paused["retrying"].is_null(), "a paused download is not waiting: {paused}");
    let refused = s.call(Some(&alice), "downloads/try_now", json!({ "id": id })).await;
    assert_eq!(refused.status, 409, "try a paused one now: {}", refused.text);
    assert!(refused.error().contains("not waiting to try again"), "{}", refused.text);
}

#[tokio::test]
async fn a_failure_reads_in_plain_words_with_its_details_apart() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    let alice = s.admin().await;
    // Gamma's file is not on the host: a 404, which waiting would not cure, fails at once.
    let id = id_of(&s.start_dl(&alice, GAMMA).await);
    let failed = s.wait_dl(&alice, id, "failed", WAIT, |r| status_of(r) == "failed").await;
    assert_eq!(host.requests(GAMMA_PATH).len(), 1, "a 404 is not asked again");
    let words = failed["error"].as_str().unwrap();
    assert!(words.contains("127.0.0.1 no longer has this file (it answered 404)"), "{failed}");
    assert!(words.contains("catalog needs an update"), "says what to do: {failed}");
    let detail = failed["error_detail"].as_str().unwrap();
    assert!(detail.contains("404"), "{failed}");
    // A web page where the model should be (a login, a portal): no byte of it is kept.
    host.set_path(BETA_PATH, |m| m.html_error = true);
    let beta = id_of(&s.start_dl(&alice, BETA).await);
    let page = s.wait_dl(&alice, beta, "failed on the page", WAIT, |r| status_of(r) == "failed").await;
    assert!(!s.partial_path(BETA, beta).exists() || std::fs::metadata(s.partial_path(BETA, beta)).unwrap().len() == 0);
    assert!(page["error"].as_str().unwrap().contains("sent a web page, not the model"), "{page}");
    assert!(page["error_detail"].as_str().unwrap().contains("text/html"), "{page}");
}
