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
