//! A fresh database per test: a SQLite file in a temp folder, or, when DATABASE_URL names
//! PostgreSQL, a new database on that server that is dropped when the test ends. Test runs never
//! share a database, so they never collide.

use localbrain::store::{Backend, Db};
use std::sync::atomic::{AtomicU32, Ordering};

/// A new, empty database nobody has connected to yet (a child process can migrate it itself).
/// It lives as long as the test holds it.
pub struct FreshDb {
    /// Where it is: `sqlite://...` or `postgres://...`.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl FreshDb {
    /// SQLite, or PostgreSQL when DATABASE_URL is a postgres URL.
    pub async fn create() -> FreshDb {
        match std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres")) {
            Some(admin_url) => Self::postgres(admin_url).await,
            None => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = localbrain::store::default_url(dir.path());
                FreshDb { url, _dir: Some(dir), pg_drop: None }
            }
        }
    }

    async fn postgres(admin_url: String) -> FreshDb {
        use sqlx::Connection;
        let name = format!(
            "lbt_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
        );
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
        admin.close().await.ok();
        let url = with_database(&admin_url, &name);
        FreshDb { url, _dir: None, pg_drop: Some((admin_url, name)) }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.pg_drop.take() else { return };
        // Drop may run inside the test's runtime, so the cleanup gets a thread and runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut c).await;
                }
            })
        })
        .join();
    }
}

/// A fresh database, connected and migrated.
pub struct TestDb {
    pub db: Db,
    /// For a second pool on the same database (a second process, as a crash test needs).
    pub url: String,
    // Dropped after the pool (field order).
    _fresh: FreshDb,
}

impl std::ops::Deref for TestDb {
    type Target = Db;
    fn deref(&self) -> &Db {
        &self.db
    }
}

impl TestDb {
    /// SQLite, or PostgreSQL when DATABASE_URL is a postgres URL.
    pub async fn new() -> TestDb {
        let fresh = FreshDb::create().await;
        let db = Db::connect(&fresh.url).await.expect("test database");
        let want = if fresh.pg_drop.is_some() { Backend::Postgres } else { Backend::Sqlite };
        assert_eq!(db.backend, want);
        TestDb { db, url: fresh.url.clone(), _fresh: fresh }
    }
}

/// The same server URL with another database name.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..host_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}
