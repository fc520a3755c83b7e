//! The store on both engines: rows, scoping by user, the one-open-download rule, status CAS.

use localbrain::status::DownloadStatus;
use localbrain::store::downloads::{self, NewDownload};
use localbrain::store::users;
use testkit::TestDb;

const HASH: &str = "6eb923e7d26e9cea28811e1a8e852009b21242fb157b26149d3b188f3a8c8653";

fn new_download(user_id: i64, model_id: &str) -> NewDownload<'_> {
    NewDownload {
        user_id,
        model_id,
        total_bytes: 397_808_192,
        sha256_expected: HASH,
        target_path: "/models/m.gguf",
        claim: None,
        carrier_id: None,
    }
}

fn partial(id: i64) -> String {
    format!("/models/.partial/m.{id}.partial")
}

#[tokio::test]
async fn a_download_row_is_written_and_read_back() {
    let db = TestDb::new().await;
    let (admin, created) = users::ensure_admin(&db).await.unwrap();
    assert!(created);
    let (row, created) = downloads::insert_or_get_open(&db, &new_download(admin.id, "m"), partial).await.unwrap();
    assert!(created);
    assert_eq!(row.status, DownloadStatus::Pending);
    assert_eq!(row.partial_path, partial(row.id));
    assert_eq!(row.total_bytes, 397_808_192);
    assert_eq!(row.sha256_expected, HASH);

    let read = downloads::get(&db, admin.id, row.id).await.unwrap().unwrap();
    assert_eq!(read, row);
    assert_eq!(downloads::list(&db, admin.id).await.unwrap(), vec![row]);
}

#[tokio::test]
async fn the_unique_partial_index_refuses_a_second_open_row() {
    let db = TestDb::new().await;
    let (admin, _) = users::ensure_admin(&db).await.unwrap();
    let (first, _) = downloads::insert_or_get_open(&db, &new_download(admin.id, "m"), partial).await.unwrap();

    // Through the API: the existing open row comes back.
    let (again, created) = downloads::insert_or_get_open(&db, &new_download(admin.id, "m"), partial).await.unwrap();
    assert!(!created);
    assert_eq!(again.id, first.id);

    // Straight SQL: the database itself refuses it.
    let err = sqlx::query(
        "INSERT INTO model_downloads (user_id, model_id, status, total_bytes, sha256_expected,
           target_path, partial_path, created_at, updated_at)
         VALUES ($1, 'm', 'paused', 1, $2, 't', 'p', 0, 0)",
    )
    .bind(admin.id)
    .bind(HASH)
    .execute(&db.pool)
    .await
    .unwrap_err();
    assert!(localbrain::store::is_unique_violation(&err), "{err}");

    // Once the first is terminal, a new one may start.
    assert!(downloads::set_status(&db, first.id, DownloadStatus::Cancelled, None).await.unwrap());
    let (second, created) = downloads::insert_or_get_open(&db, &new_download(admin.id, "m"), partial).await.unwrap();
    assert!(created);
    assert_ne!(second.id, first.id);
}

#[tokio::test]
async fn concurrent_starts_make_one_row() {
    let db = TestDb::new().await;
    let (admin, _) = users::ensure_admin(&db).await.unwrap();
    let starts = (0..20).map(|_| {
        let db = db.db.clone();
        tokio::spawn(async move { downloads::insert_or_get_open(&db, &new_download(admin.id, "m"), partial).await })
    });
    let results = futures::future::join_all(starts).await;
    let mut ids: Vec<i64> = results.into_iter().map(|r| r.unwrap().unwrap().0.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 1, "all starts must return the same row: {ids:?}");
    assert_eq!(downloads::list(&db, admin.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn another_users_download_is_not_found() {
    let db = TestDb::new().await;
    let (a, _) = users::ensure_admin(&db).await.unwrap();
    let b = users::create(&db, "bob", "user").await.unwrap().unwrap();
    let (row, _) = downloads::insert_or_get_open(&db, &new_download(a.id, "m"), partial).await.unwrap();
    assert_eq!(downloads::get(&db, b.id, row.id).await.unwrap(), None);
    assert!(downloads::list(&db, b.id).await.unwrap().is_empty());
    // The same model for another user is its own row.
    let (theirs, created) = downloads::insert_or_get_open(&db, &new_download(b.id, "m"), partial).await.unwrap();
    assert!(created);
    assert_ne!(theirs.id, row.id);
}

#[tokio::test]
async fn status_writes_are_compare_and_set() {
    let db = TestDb::new().await;
    let (a, _) = users::ensure_admin(&db).await.unwrap();
    let (row, _) = downloads::insert_or_get_open(&db, &new_download(a.id, "m"), partial).await.unwrap();
    use DownloadStatus::*;
    assert!(downloads::set_status(&db, row.id, Downloading, None).await.unwrap());
    assert!(downloads::set_bytes(&db, row.id, 1234, &[Downloading]).await.unwrap());
    assert!(downloads::set_status(&db, row.id, Cancelled, None).await.unwrap());
    // A runner finishing late can neither revive nor overwrite a cancelled row.
    assert!(!downloads::set_status(&db, row.id, Verifying, None).await.unwrap());
    assert!(!downloads::set_status(&db, row.id, Complete, None).await.unwrap());
    assert!(!downloads::set_bytes(&db, row.id, 9999, &[Downloading]).await.unwrap());
    let read = downloads::get(&db, a.id, row.id).await.unwrap().unwrap();
    assert_eq!(read.status, Cancelled);
    assert_eq!(read.bytes_downloaded, 1234);
}

#[tokio::test]
async fn a_second_admin_is_never_made() {
    let db = TestDb::new().await;
    let (first, created) = users::ensure_admin(&db).await.unwrap();
    assert!(created);
    let (again, created) = users::ensure_admin(&db).await.unwrap();
    assert!(!created);
    assert_eq!(first, again);
    assert_eq!(users::count(&db).await.unwrap(), 1);
    assert_eq!(users::create(&db, "admin", "user").await.unwrap(), None);
}
