//! Sessions that end (issue 16, item 3) on both databases: the idle clock, the absolute end,
//! a new sign-in that leaves other sessions' clocks alone, and the sweep.

use localbrain::store::sessions::{self, SessionRules, Swept};
use localbrain::store::users;
use std::time::Duration;
use testkit::TestDb;

/// A user signed in through a fresh login link: the session secret.
async fn sign_in(db: &TestDb, user_id: i64, rules: &SessionRules) -> String {
    let token = sessions::create_login_token(db, user_id).await.unwrap();
    let (_, session) =
        sessions::redeem_login_token(db, token.expose(), rules).await.unwrap().expect("a fresh link opens");
    session.expose().to_string()
}

async fn works(db: &TestDb, session: &str, rules: &SessionRules) -> bool {
    sessions::user_for_session(db, session, rules).await.unwrap().is_some()
}

#[tokio::test]
async fn a_session_in_use_lives_past_its_idle_time_and_ends_when_left_alone() {
    let db = TestDb::new().await;
    let (admin, _) = users::ensure_admin(&db).await.unwrap();
    let rules = SessionRules { idle: Duration::from_secs(3), max: Duration::from_secs(3600) };
    let session = sign_in(&db, admin.id, &rules).await;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(works(&db, &session, &rules).await, "used every 2 s, the 3 s idle clock never runs out");
    }
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(!works(&db, &session, &rules).await, "3.5 s unused ends it");
    assert_eq!(sessions::sweep(&db, &rules).await.unwrap(), Swept { sessions: 1, login_tokens: 0 });
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_end_however_much_it_is_used_and_a_new_sign_in_does_not_extend_it() {
    let db = TestDb::new().await;
    let (admin, _) = users::ensure_admin(&db).await.unwrap();
    let rules = SessionRules { idle: Duration::from_secs(3600), max: Duration::from_secs(3) };
    let first = sign_in(&db, admin.id, &rules).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(works(&db, &first, &rules).await);
    let second = sign_in(&db, admin.id, &rules).await;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert!(!works(&db, &first, &rules).await, "3.5 s after sign-in, used or not, the first session is over");
    assert!(works(&db, &second, &rules).await, "the second session has its own clock");
    // Rules read on each request: a shorter maximum ends the second one too.
    let shorter = SessionRules { max: Duration::from_secs(1), ..rules };
    assert!(!works(&db, &second, &shorter).await);
}

#[tokio::test]
async fn the_sweep_removes_ended_sessions_and_dead_links_and_keeps_the_rest() {
    let db = TestDb::new().await;
    let (admin, _) = users::ensure_admin(&db).await.unwrap();
    let rules = SessionRules { idle: Duration::from_secs(2), max: Duration::from_secs(3600) };
    let in_use = sign_in(&db, admin.id, &rules).await;
    let _left_alone = sign_in(&db, admin.id, &rules).await;
    let _unused_link = sessions::create_login_token(&db, admin.id).await.unwrap();
    assert_eq!(sessions::sweep(&db, &rules).await.unwrap(), Swept::default(), "nothing has ended yet");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(works(&db, &in_use, &rules).await);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let swept = sessions::sweep(&db, &rules).await.unwrap();
    assert_eq!(swept.sessions, 1, "the session idle for 2.4 s is swept, the one used 1.2 s ago stays");
    assert!(works(&db, &in_use, &rules).await);
    // Login links go once they have expired, used or not.
    sqlx::query("UPDATE login_tokens SET expires_at = 0").execute(&db.pool).await.unwrap();
    assert_eq!(sessions::sweep(&db, &rules).await.unwrap().login_tokens, 3);
}
