//! A fresh, migrated database per test: a SQLite file in a temp folder, or, when DATABASE_URL
//! names PostgreSQL, a new database on that server that is dropped when the test ends. Test runs
//! never share a database, so they never collide.

use localbrain::store::{Backend, Db};
use std::sync::atomic::{AtomicU32, Ordering};

/// A database that lives as long as the test holds it.
pub struct TestDb {
    pub db: Db,
    /// For a second pool on the same database (a second process, as a crash test needs).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>,
}

impl std::ops::Deref for TestDb {
    type Target = Db;
    fn deref(&self) -> &Db {
        &self.db
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn new() -> TestDb {
        match std::env::var("DATABASE_URL").ok().filter(|u| u.starts_with("postgres")) {
            Some(admin_url) => Self::postgres(admin_url).await,
            None => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = localbrain::store::default_url(dir.path());
                let db = Db::connect(&url).await.expect("sqlite test db");
                assert_eq!(db.backend, Backend::Sqlite);
                TestDb { db, url, _dir: Some(dir), pg_drop: None }
            }
        }
    }

    async fn postgres(admin_url: String) -> TestDb {
        use sqlx::Connection;
        let name = format!(
            "lbt_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
        );
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("postgres admin");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create db");
        admin.close().await.ok();
        let url = with_database(&admin_url, &name);
        let db = Db::connect(&url).await.expect("postgres test db");
        assert_eq!(db.backend, Backend::Postgres);
        TestDb { db, url, _dir: None, pg_drop: Some((admin_url, name)) }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.pg_drop.take() else { return };
        // Drop runs inside the test's runtime, so the cleanup gets a thread and runtime of its own.
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
