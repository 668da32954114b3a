//! Fresh, migrated databases for tests: a temporary SQLite file always, and a throw-away
//! PostgreSQL database when `CRM_TEST_POSTGRES_URL` is set (the pattern of `#[sqlx::test]`).
//!
//! ```ignore
//! each_backend(|db| async move {
//!     db.store.deploy_definition(&tenant, "sales", "Sales", "{}").await.unwrap();
//! })
//! .await;
//! ```

use std::future::Future;
use std::io::Write as _;
use std::sync::Once;

use nexus_crm::store::{AnyStore, StoreError};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, SqliteConnection};

/// The variable that points the suite at a PostgreSQL server.
pub const POSTGRES_URL_VAR: &str = "CRM_TEST_POSTGRES_URL";

/// One test database: the store on it, and its URL for raw access.
pub struct TestDb {
    /// The migrated store.
    pub store: AnyStore,
    /// `sqlite:PATH` or `postgres://…/crm_test_…`.
    pub url: String,
}

impl TestDb {
    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Runs raw SQL on a connection of its own, bypassing the store (to try what the store
    /// never does, such as editing history). Errors map like the store's.
    pub async fn raw_execute(&self, sql: &str) -> Result<u64, StoreError> {
        let sql = AssertSqlSafe(sql.to_owned());
        Ok(match &self.store {
            AnyStore::Sqlite(_) => {
                let mut conn = SqliteConnection::connect(&self.url).await?;
                conn.execute(sql).await?.rows_affected()
            }
            AnyStore::Postgres(_) => {
                let mut conn = PgConnection::connect(&self.url).await?;
                conn.execute(sql).await?.rows_affected()
            }
        })
    }
}

/// Runs `test` against a fresh SQLite file, then against a fresh PostgreSQL database if
/// [`POSTGRES_URL_VAR`] is set. Panics (fails the test) if it is set and the server is down.
pub async fn each_backend<F, Fut>(test: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite:{}", dir.path().join("crm.db").display());
    let store = AnyStore::open(&url).await.expect("a fresh SQLite store");
    eprintln!("-- backend: sqlite ({url})");
    test(TestDb { store: store.clone(), url }).await;
    store.close().await;

    let Some(admin_url) = postgres_url() else {
        return;
    };
    // Dropped at the end of this scope, or while unwinding from a failed assertion.
    let database = PgDatabase::create(&admin_url).await;
    let store = AnyStore::open(&database.url).await.expect("a fresh PostgreSQL store");
    eprintln!("-- backend: postgres ({})", database.url);
    test(TestDb { store: store.clone(), url: database.url.clone() }).await;
    store.close().await;
}

/// The PostgreSQL URL to test against; says once per test binary when there is none.
pub fn postgres_url() -> Option<String> {
    static NOTICE: Once = Once::new();
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            NOTICE.call_once(|| {
                // Straight to the stderr handle: the test harness captures `println!`/`eprintln!`.
                let _ = writeln!(
                    std::io::stderr(),
                    "PostgreSQL tests skipped: set {POSTGRES_URL_VAR} (e.g. postgres://postgres@127.0.0.1:5432/test)"
                );
            });
            None
        }
    }
}

/// A database created for one test and dropped (`WITH (FORCE)`) when this guard is.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    /// Where the test connects.
    pub url: String,
}

impl PgDatabase {
    /// Creates `crm_test_<uuid>` on the server of `admin_url`.
    pub async fn create(admin_url: &str) -> Self {
        let mut admin = PgConnection::connect(admin_url).await.unwrap_or_else(|e| {
            panic!("{POSTGRES_URL_VAR} is set but PostgreSQL is unreachable at {admin_url}: {e}")
        });
        let name = format!("crm_test_{}", uuid::Uuid::now_v7().simple());
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = admin.close().await;
        Self { admin_url: admin_url.to_owned(), url: with_database(admin_url, &name), name }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop cannot await, and may run inside the test's runtime: use a runtime of its own on
        // a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await?;
                admin.execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).await?;
                admin.close().await
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// `url` with its database (path) replaced by `database`, query string kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}
