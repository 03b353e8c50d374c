//! Databases for the storage tests: a fresh SQLite file per test, and a fresh PostgreSQL
//! database per test (dropped afterwards) when `HOOKFLOW_TEST_POSTGRES_URL` is set — unset, the
//! PostgreSQL variants print `skipped` and return, the opt-out the README documents; CI always
//! sets it.

use hookflow_storage::{DbConfig, DbStore};
use sea_orm::{ConnectionTrait, Database};

/// A migrated store on a database of its own, removed when dropped.
pub struct TestDb {
    pub store: DbStore,
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: the admin URL and the database to drop afterwards.
    pg: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // Drop cannot await, and this runs on a runtime thread: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(conn) = Database::connect(admin.as_str()).await {
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

async fn open(url: String) -> DbStore {
    let store = DbStore::connect(&DbConfig {
        url,
        max_connections: None,
    })
    .await
    .unwrap();
    store.migrate().await.unwrap();
    store
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let store = open(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("t.db").display()
    ))
    .await;
    TestDb {
        store,
        _dir: Some(dir),
        pg: None,
    }
}

/// A fresh database on the server named by `HOOKFLOW_TEST_POSTGRES_URL`, or `None` when it is
/// unset.
pub async fn postgres() -> Option<TestDb> {
    let Ok(base) = std::env::var("HOOKFLOW_TEST_POSTGRES_URL") else {
        eprintln!("skipped: HOOKFLOW_TEST_POSTGRES_URL not set");
        return None;
    };
    let name = format!("hf_store_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&base)
        .await
        .expect("connect to HOOKFLOW_TEST_POSTGRES_URL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let _ = admin.close().await;
    let url = match base.rfind('/') {
        Some(i) if base[..i].contains("://") && !base[..i].ends_with('/') => {
            format!("{}/{name}", &base[..i])
        }
        _ => format!("{base}/{name}"),
    };
    let store = open(url).await;
    Some(TestDb {
        store,
        _dir: None,
        pg: Some((base, name)),
    })
}
