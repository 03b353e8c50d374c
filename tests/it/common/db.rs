//! One database per test, SQLite or PostgreSQL, and the macros that run a test on each: the
//! same test proves the same behaviour on both backends.
//!
//! [`TestDb`] is shared by every app a test starts on it (a restart, two nodes) and removed
//! when the last of them is gone.

use std::sync::Arc;

use sea_orm::ConnectionTrait;

/// Where CI points the PostgreSQL variants; unset = those variants are skipped.
pub const POSTGRES_ENV: &str = "HOOKFLOW_TEST_POSTGRES_URL";

/// The key sealing credentials in a PostgreSQL test database. PostgreSQL has no database file
/// to keep a key file beside; test processes share this one instead of racing to create
/// `./hookflow.key`.
const POSTGRES_SECRET_KEY: &str = "dGVzdCBrZXkgZm9yIGhvb2tmbG93IGUyZSB0ZXN0cyE=";

/// Runs an async test body on both backends. Each test becomes a module with two tests,
/// `<name>::sqlite` and `<name>::postgres`; the PostgreSQL one returns early (and says so) when
/// `HOOKFLOW_TEST_POSTGRES_URL` is unset. Attributes written on the function apply to both tests.
///
/// ```ignore
/// both_backends! {
///     async fn a_404_is_not_retried(backend: Backend) { ... }
/// }
/// ```
#[macro_export]
macro_rules! both_backends {
    ($(
        $(#[$meta:meta])*
        async fn $name:ident($backend:ident : Backend) $body:block
    )*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($backend: $crate::common::Backend) $body

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::common::Backend::Sqlite).await
            }

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if !$crate::common::Backend::Postgres.available() {
                    return;
                }
                run($crate::common::Backend::Postgres).await
            }
        }
    )*};
}

/// Runs an async test body on PostgreSQL only (skipped, saying so, without the env variable).
#[macro_export]
macro_rules! postgres_only {
    ($(
        $(#[$meta:meta])*
        async fn $name:ident($backend:ident : Backend) $body:block
    )*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($backend: $crate::common::Backend) $body

            $(#[$meta])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if !$crate::common::Backend::Postgres.available() {
                    return;
                }
                run($crate::common::Backend::Postgres).await
            }
        }
    )*};
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Whether this backend can run here; prints why not.
    pub fn available(self) -> bool {
        match self {
            Backend::Sqlite => true,
            Backend::Postgres => {
                let set = std::env::var(POSTGRES_ENV).is_ok_and(|v| !v.is_empty());
                if !set {
                    println!("skipped: {POSTGRES_ENV} not set");
                }
                set
            }
        }
    }
}

/// A database of its own for one test. Apps started on it share it; it is removed when the
/// last of them is gone (best effort for PostgreSQL).
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: the admin URL and the database name to drop afterwards.
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Arc<TestDb> {
        Arc::new(match backend {
            Backend::Sqlite => TestDb::sqlite(),
            Backend::Postgres => TestDb::postgres().await,
        })
    }

    /// The key apps on this database seal credentials with, when it is not a key file beside
    /// the database (as it is for SQLite).
    pub fn secret_key(&self) -> Option<&'static str> {
        (self.backend == Backend::Postgres).then_some(POSTGRES_SECRET_KEY)
    }

    fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        let url = format!("sqlite://{}/hookflow.db?mode=rwc", dir.path().display());
        TestDb {
            backend: Backend::Sqlite,
            url,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// A new database on the server `HOOKFLOW_TEST_POSTGRES_URL` names.
    async fn postgres() -> TestDb {
        let admin = std::env::var(POSTGRES_ENV)
            .unwrap_or_else(|_| panic!("{POSTGRES_ENV} must be set for PostgreSQL tests"));
        let name = format!("hf_test_{}", uuid::Uuid::new_v4().simple());
        let conn = sea_orm::Database::connect(admin.as_str())
            .await
            .unwrap_or_else(|e| panic!("connecting to {admin}: {e}"));
        conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
        let _ = conn.close().await;
        let mut url = reqwest::Url::parse(&admin)
            .unwrap_or_else(|e| panic!("{POSTGRES_ENV} is not a URL: {e}"));
        url.set_path(&format!("/{name}"));
        TestDb {
            backend: Backend::Postgres,
            url: url.to_string(),
            _dir: None,
            pg: Some((admin, name)),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // Drop cannot await, and this may run on a runtime thread: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(conn) = sea_orm::Database::connect(admin.as_str()).await {
                    let _ = conn
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}
