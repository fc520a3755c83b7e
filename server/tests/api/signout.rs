//! Sessions that end (issue 16, item 3): Sign out ends this session at once, and
//! `localbrain user logout NAME` ends all of a user's sessions; other users keep theirs.

use super::harness::*;
use serde_json::json;
use std::process::Stdio;

#[tokio::test]
async fn sign_out_ends_this_session_and_user_logout_ends_them_all() {
    let host = model_host().await;
    let s = Server::start(&host).await;
    let alice = s.admin().await;
    let bob_first = s.add_user("bob").await;
    s.ok(&bob_first, "downloads/list", json!({})).await;

    // POST /api/logout: 200, the cookie cleared, and the same cookie refused right after.
    let out = s.call(Some(&bob_first), "logout", json!({})).await;
    assert_eq!(out.status, 200, "{}", out.text);
    assert_eq!(out.json["signed_out"], true);
    assert_eq!(s.call(Some(&bob_first), "downloads/list", json!({})).await.status, 401);
    let again = s.call(Some(&bob_first), "logout", json!({})).await;
    assert_eq!(again.status, 401, "no session to end: {}", again.text);

    // Two browsers of bob's: `user logout bob` ends both, alice's session goes on.
    let one = s.login("bob", &s.user_login_link("bob")).await;
    let two = s.login("bob", &s.user_login_link("bob")).await;
    s.ok(&one, "downloads/list", json!({})).await;
    s.ok(&two, "downloads/list", json!({})).await;
    let out =
        s.command().args(["user", "logout", "bob"]).stdin(Stdio::null()).output().expect("run localbrain user logout");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Signed bob out everywhere (2 sessions ended)"), "{stdout}");
    for session in [&one, &two] {
        assert_eq!(s.call(Some(session), "downloads/list", json!({})).await.status, 401);
    }
    s.ok(&alice, "downloads/list", json!({})).await;
}

#[tokio::test]
async fn an_unused_session_ends_after_the_idle_setting_and_is_swept() {
    let host = model_host().await;
    let s = Server::start_with(&host, &[("LOCALBRAIN_SESSION_IDLE", "3s"), ("LOCALBRAIN_SESSION_MAX", "12h")]).await;
    let link = s.user_add_link("carol");
    let resp = s.http.get(&link).send().await.unwrap();
    let cookie = resp.headers().get(reqwest::header::SET_COOKIE).unwrap().to_str().unwrap().to_string();
    assert!(cookie.contains("Max-Age=43200"), "the cookie lasts as long as the session may: {cookie}");
    let carol = User { name: "carol".into(), cookie: cookie.split(';').next().unwrap().to_string() };
    // In use (the card polls), the session outlives its 3 s idle time.
    for _ in 0..5 {
        s.ok(&carol, "downloads/list", json!({})).await;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    // Left alone for longer than that, it is over, and the server sweeps it away.
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    assert_eq!(s.call(Some(&carol), "downloads/list", json!({})).await.status, 401);
    wait_for("the ended session swept", std::time::Duration::from_secs(20), || async {
        (s.count_rows("sessions").await == 0).then_some(())
    })
    .await;
}
