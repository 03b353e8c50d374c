//! hookflow as a library: start the whole service in-process (the `serve` command, the
//! benchmark and the tests use this), or just apply migrations.
//!
//! The crates under `crates/` hold the logic; this file only wires them together.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use hookflow_delivery::{DeliveryConfig, HttpTransport};
use hookflow_engine::dispatch::DispatchConfig;
use hookflow_engine::{Engine, EngineConfig};
use hookflow_http::AppState;
use hookflow_storage::{DbConfig, DbStore};
use hookflow_templating::Catalog;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub mod bench;

/// Everything `hookflow serve` needs, built once from the CLI.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub database: DbConfig,
    pub listen: SocketAddr,
    pub admin_token: Option<String>,
    pub delivery: DeliveryConfig,
    pub dispatch: DispatchConfig,
}

/// A running hookflow: API, ingest and delivery.
pub struct Running {
    /// The address the API listens on (useful with port 0).
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Asks hookflow to stop: no new requests or claims; in-flight calls finish.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until hookflow has stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("hookflow task panicked")?
    }
}

/// Applies migrations and returns the opened store.
pub async fn open_store(config: &DbConfig) -> anyhow::Result<DbStore> {
    let store = DbStore::connect(config).await?;
    store.migrate().await?;
    Ok(store)
}

/// Starts hookflow: migrations, engine, delivery workers and the HTTP API.
pub async fn start(config: ServeConfig) -> anyhow::Result<Running> {
    let store = open_store(&config.database).await?;
    let catalog = Arc::new(Catalog::builtin().context("loading the event catalog")?);
    let (engine, engine_tasks) = Engine::start(
        Arc::new(store),
        catalog,
        EngineConfig {
            dispatch: config.dispatch.clone(),
        },
    )
    .await?;
    let transport = Arc::new(HttpTransport::new(config.delivery.clone())?);
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;

    let shutdown = CancellationToken::new();
    let dispatcher = engine.spawn_dispatcher(transport, shutdown.clone());
    let state = AppState {
        engine,
        admin_token: config.admin_token.map(Into::into),
    };
    let http_shutdown = shutdown.clone();
    let task = tokio::spawn(async move {
        let served =
            hookflow_http::serve(
                listener,
                state,
                async move { http_shutdown.cancelled().await },
            )
            .await;
        // The API has stopped taking requests; let the workers finish what is on the wire.
        info!("draining in-flight calls");
        dispatcher.await.context("dispatcher panicked")?;
        engine_tasks.join().await;
        info!("stopped");
        served.context("HTTP server failed")
    });
    info!(%addr, "hookflow is listening");
    Ok(Running {
        addr,
        shutdown,
        task,
    })
}
