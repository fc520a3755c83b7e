//! API keys (issue 19, item 2) on both databases: make, list, revoke; names checked and unique
//! per user; a key finds its user until revoked; the last use written at most once a minute; and
//! only digests in the table.

use localbrain::keys::NameError;
use localbrain::store::api_keys::{self, KeyError, TOUCH_AFTER_MS};
use localbrain::store::users;
use testkit::TestDb;

async fn two_users(db: &TestDb) -> (i64, i64) {
    let (admin, _) = users::ensure_admin(db).await.unwrap();
    let bob = users::create(db, "bob", "user").await.unwrap().unwrap();
    (admin.id, bob.id)
}

fn is_key(secret: &str) -> bool {
    secret
        .strip_prefix("lb-")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

#[tokio::test]
async fn keys_are_made_listed_oldest_first_and_revoked_per_user() {
    let db = TestDb::new().await;
    let (admin, bob) = two_users(&db).await;
    let (first, s1) = api_keys::create(&db, admin, "  my editor ").await.unwrap();
    assert!(is_key(s1.expose()), "{}", s1.expose());
    assert_eq!(first.name, "my editor", "names are trimmed");
    assert_eq!(first.prefix, s1.expose()[..11], "the prefix is lb- and 8 hex digits");
    assert_eq!(first.last_used_at, None);
    assert_eq!(format!("{s1:?}"), "Secret(***)");
    let (_, s2) = api_keys::create(&db, admin, "scripts").await.unwrap();
    assert_ne!(s1.expose(), s2.expose());
    // The same name for another user is fine.
    api_keys::create(&db, bob, "my editor").await.unwrap();

    let names = |keys: Vec<api_keys::ApiKey>| keys.into_iter().map(|k| k.name).collect::<Vec<_>>();
    assert_eq!(names(api_keys::list(&db, admin).await.unwrap()), ["my editor", "scripts"]);
    assert_eq!(names(api_keys::list(&db, bob).await.unwrap()), ["my editor"]);

    assert!(!api_keys::revoke(&db, bob, "scripts").await.unwrap(), "Bob cannot revoke the admin's key");
    assert!(api_keys::revoke(&db, admin, "my editor").await.unwrap());
    assert!(!api_keys::revoke(&db, admin, "my editor").await.unwrap(), "already gone");
    assert_eq!(names(api_keys::list(&db, admin).await.unwrap()), ["scripts"]);
    assert_eq!(names(api_keys::list(&db, bob).await.unwrap()), ["my editor"], "Bob's key of that name stays");
}

#[tokio::test]
async fn bad_and_duplicate_names_are_refused_in_words() {
    let db = TestDb::new().await;
    let (admin, _) = two_users(&db).await;
    api_keys::create(&db, admin, "editor").await.unwrap();
    let err = api_keys::create(&db, admin, " editor ").await.unwrap_err();
    assert!(matches!(&err, KeyError::DuplicateName { name } if name == "editor"), "{err:?}");
    assert!(err.to_string().contains("already have a key called \"editor\""), "{err}");
    for (name, want) in [("", NameError::Empty), (" \t ", NameError::Empty), ("a\nb", NameError::Control)] {
        assert!(matches!(api_keys::create(&db, admin, name).await, Err(KeyError::BadName(e)) if e == want), "{name:?}");
    }
    let long = "k".repeat(65);
    assert!(matches!(api_keys::create(&db, admin, &long).await, Err(KeyError::BadName(NameError::TooLong))));
    assert_eq!(api_keys::list(&db, admin).await.unwrap().len(), 1, "nothing was made by the refusals");
}

#[tokio::test]
async fn a_key_finds_its_user_until_revoked_and_unknown_secrets_find_none() {
    let db = TestDb::new().await;
    let (admin, bob) = two_users(&db).await;
    let (_, secret) = api_keys::create(&db, bob, "laptop").await.unwrap();
    let user = api_keys::user_for_key(&db, secret.expose()).await.unwrap().expect("a fresh key works");
    assert_eq!((user.id, user.name.as_str(), user.role.as_str()), (bob, "bob", "user"));
    assert_ne!(user.id, admin);
    assert!(api_keys::user_for_key(&db, "lb-0000").await.unwrap().is_none());
    assert!(api_keys::user_for_key(&db, "").await.unwrap().is_none());
    let other = format!("lb-{}", "0".repeat(64));
    assert!(api_keys::user_for_key(&db, &other).await.unwrap().is_none());
    assert!(api_keys::revoke(&db, bob, "laptop").await.unwrap());
    assert!(api_keys::user_for_key(&db, secret.expose()).await.unwrap().is_none(), "revoked fails at once");
    // Deleting the user takes the keys with it.
    let (_, kept) = api_keys::create(&db, bob, "desktop").await.unwrap();
    sqlx::query("DELETE FROM users WHERE id = $1").bind(bob).execute(&db.pool).await.unwrap();
    assert!(api_keys::user_for_key(&db, kept.expose()).await.unwrap().is_none());
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM api_keys").fetch_one(&db.pool).await.unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn the_last_use_is_written_once_then_not_again_within_the_minute() {
    let db = TestDb::new().await;
    let (admin, _) = two_users(&db).await;
    let (_, secret) = api_keys::create(&db, admin, "busy client").await.unwrap();
    let last_used = || async { api_keys::list(&db, admin).await.unwrap()[0].last_used_at };
    assert_eq!(last_used().await, None);
    api_keys::user_for_key(&db, secret.expose()).await.unwrap().unwrap();
    let first = last_used().await.expect("the first use is recorded");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    api_keys::user_for_key(&db, secret.expose()).await.unwrap().unwrap();
    assert_eq!(last_used().await, Some(first), "a use within the minute writes nothing");
    // A minute later (the recorded use moved back) the next use writes again.
    let old = first - TOUCH_AFTER_MS - 1;
    sqlx::query("UPDATE api_keys SET last_used_at = $1").bind(old).execute(&db.pool).await.unwrap();
    api_keys::user_for_key(&db, secret.expose()).await.unwrap().unwrap();
    assert!(last_used().await.unwrap() >= first, "a use after the minute is recorded");
}

#[tokio::test]
async fn only_the_digest_of_a_secret_is_stored() {
    let db = TestDb::new().await;
    let (admin, _) = two_users(&db).await;
    let (_, secret) = api_keys::create(&db, admin, "ci").await.unwrap();
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT name, key_hash, prefix FROM api_keys").fetch_all(&db.pool).await.unwrap();
    assert_eq!(rows.len(), 1);
    let (_, hash, prefix) = &rows[0];
    let hex = &secret.expose()[3..];
    assert_eq!(hash.len(), 64);
    assert!(!hash.contains(hex) && !hex.contains(hash.as_str()), "the secret is not the hash");
    assert!(!prefix.contains(&hex[8..16]), "only the first 8 hex digits are kept to show");
    for row in &rows {
        let all = format!("{row:?}");
        assert!(!all.contains(secret.expose()) && !all.contains(hex), "the secret is in the table: {all}");
    }
}
