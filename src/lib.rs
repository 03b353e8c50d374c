//! hookflow as a library: start the whole service in-process (the `serve` command, the
//! benchmark and the tests use this), or just apply migrations.
//!
//! The crates under `crates/` hold the logic; this file only wires them together.
//!
//! # Layout
//! - [`cli`]: the `serve` flags and how they become a [`ServeConfig`] (the binary and the
//!   tests parse them the same way).
//! - [`defaults`]: the shipped defaults of `hookflow serve`, shared by the CLI and the bench.
//! - [`bench`]: `hookflow bench`, end-to-end throughput and latency against the raw HTTP limit.
//! - [`start`], [`start_with`] and [`Running`]: the whole service in-process (migrations,
//!   engine, delivery, API); [`open_store`]: migrations alone.
//!
//! The binary (`src/main.rs`, with the configuration file in `src/config.rs`) only parses the
//! command line and calls these.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use hookflow_delivery::notify::NotifyConfig;
use hookflow_delivery::{DeliveryConfig, HttpTransport};
use hookflow_engine::dispatch::DispatchConfig;
use hookflow_engine::event_log::RetentionPolicy;
use hookflow_engine::model::Timestamp;
use hookflow_engine::service::EngineTasks;
use hookflow_engine::store::QueueStore;
use hookflow_engine::{Engine, EngineConfig};
use hookflow_http::AppState;
use hookflow_storage::{DbConfig, DbStore, SecretBox};
use hookflow_templating::Catalog;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub mod bench;
pub mod cli;

/// The shipped defaults of `hookflow serve`, in one place: the CLI's flags default to them and
/// `hookflow bench` measures them unless told otherwise.
pub mod defaults {
    use std::time::Duration;

    use hookflow_engine::dispatch::DispatchConfig;
    use hookflow_engine::retry::RetryPolicy;

    /// Calls delivered at once by one process (`--concurrency`).
    pub const CONCURRENCY: usize = 512;
    /// Calls delivered at once to one endpoint by one process (`--per-endpoint-concurrency`).
    /// It bounds a fast endpoint's throughput (slots / round trip), so it is not small: 32 of
    /// the 512 slots still leave a slow or dead endpoint unable to hold the others back.
    pub const PER_ENDPOINT_CONCURRENCY: usize = 32;
    /// Timeout of one attempt (`--delivery-timeout-ms`).
    pub const DELIVERY_TIMEOUT_MS: u64 = 10_000;
    /// Retries after a failed attempt (`--max-retries`).
    pub const MAX_RETRIES: u32 = 10;
    /// First retry delay, doubling (`--retry-base-ms`).
    pub const RETRY_BASE_MS: u64 = 10_000;
    /// Longest retry delay (`--retry-max-ms`).
    pub const RETRY_MAX_MS: u64 = 6 * 3600 * 1000;

    /// The dispatcher's settings for these values; everything else at the engine's defaults.
    pub fn dispatch(
        concurrency: usize,
        per_endpoint: usize,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> DispatchConfig {
        DispatchConfig {
            concurrency: concurrency.max(1),
            per_host: per_endpoint.max(1),
            // A live worker must never lose a call it is still sending (actions with longer
            // timeouts of their own get longer leases: `dispatch::lease_for`).
            lease: (timeout * 2).max(Duration::from_secs(30)),
            retry,
            ..DispatchConfig::default()
        }
    }

    pub fn retry(max_retries: u32, base_ms: u64, max_ms: u64) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            base: Duration::from_millis(base_ms),
            max_delay: Duration::from_millis(max_ms.max(base_ms)),
        }
    }
}

/// Everything `hookflow serve` needs, built once from the CLI.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub database: DbConfig,
    pub listen: SocketAddr,
    pub admin_token: Option<String>,
    /// Base64 key sealing credentials at rest; without it a key file is used (and created).
    pub secret_key: Option<String>,
    /// Where the key file is; default: beside the SQLite database, or `hookflow.key` in the
    /// working directory for PostgreSQL (every node must then share the same key).
    pub secret_key_file: Option<PathBuf>,
    pub delivery: DeliveryConfig,
    pub dispatch: DispatchConfig,
    /// Where notices of failed calls and deactivated actions go (email, operator webhook).
    pub notify: NotifyConfig,
    /// How long finished calls and events are kept.
    pub retention: RetentionPolicy,
    /// Record each trigger's evaluations (its activity).
    pub trigger_activity: bool,
}

/// Settings beyond [`ServeConfig`] that only `hookflow serve` and the tests set.
#[derive(Debug, Default)]
pub struct ServeOptions {
    /// Serve `GET /metrics` on a listener of its own instead of the API's.
    pub metrics_listen: Option<SocketAddr>,
    /// Reverse proxies whose forwarded headers name the client (sign-in limits count per
    /// client address). Default: none, the TCP peer is the client.
    pub trusted_proxies: hookflow_http::client::TrustedProxies,
    /// The API's listener, bound already: tests bind port 0 themselves and so know the address
    /// before hookflow starts. Default: bind [`ServeConfig::listen`] once the engine runs.
    pub listener: Option<TcpListener>,
}

/// A running hookflow: API, ingest and delivery.
pub struct Running {
    /// The address the API listens on (useful with port 0).
    pub addr: SocketAddr,
    /// The address of the metrics listener, when metrics have one of their own.
    pub metrics_addr: Option<SocketAddr>,
    /// On the first start of a fresh installation: the admin account made (email, password),
    /// to be shown to whoever started it, once.
    pub first_admin: Option<(String, String)>,
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

/// The key file used when none is given: beside a SQLite database file, else in the working
/// directory.
pub fn default_key_file(database_url: &str) -> PathBuf {
    let sqlite_path = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|p| !p.is_empty() && !p.contains(":memory:"));
    match sqlite_path {
        Some(db) => {
            let db = Path::new(db);
            let stem = db
                .file_stem()
                .map_or_else(|| "hookflow".into(), |s| s.to_string_lossy().into_owned());
            db.with_file_name(format!("{stem}.key"))
        }
        None => PathBuf::from("hookflow.key"),
    }
}

fn secret_box(config: &ServeConfig) -> anyhow::Result<SecretBox> {
    let key = match &config.secret_key {
        Some(text) => SecretBox::parse_key(text).context("HOOKFLOW_SECRET_KEY")?,
        None => {
            let path = config
                .secret_key_file
                .clone()
                .unwrap_or_else(|| default_key_file(&config.database.url));
            SecretBox::load_or_create_key(&path)?
        }
    };
    Ok(SecretBox::new(key))
}

/// Starts hookflow: migrations, engine, delivery workers and the HTTP API (with `/metrics`).
pub async fn start(config: ServeConfig) -> anyhow::Result<Running> {
    start_with(config, ServeOptions::default()).await
}

/// [`start`] with the options only `hookflow serve` and the tests set.
pub async fn start_with(config: ServeConfig, options: ServeOptions) -> anyhow::Result<Running> {
    let (engine, engine_tasks) = start_engine(&config).await?;
    // Bound only now, as it always was: until the engine runs, a connection is refused rather
    // than left waiting.
    let listener = match options.listener {
        Some(listener) => listener,
        None => bind(config.listen, "").await?,
    };
    let metrics_listener = match options.metrics_listen {
        Some(at) => Some(bind(at, "the metrics listener ").await?),
        None => None,
    };
    let addr = listener.local_addr()?;
    let metrics_addr = match &metrics_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    let workers = Workers::spawn(&engine, &config);
    // A fresh installation without an admin token would have no way in: make the first admin.
    let first_admin = match &config.admin_token {
        Some(_) => None,
        None => engine
            .ensure_first_admin()
            .await?
            .map(|(user, password)| (user.email, password)),
    };
    let state = AppState {
        engine,
        admin_token: config.admin_token.map(Into::into),
        auth: Arc::new(hookflow_http::auth::AuthState::new(options.trusted_proxies)),
        previews: Arc::new(hookflow_http::rate::RateLimiter::previews()),
        metrics: metrics_listener.is_none(),
    };
    let shutdown = CancellationToken::new();
    if let Some(listener) = metrics_listener {
        spawn_metrics(listener, state.clone(), shutdown.clone());
    }
    let task = tokio::spawn(serve_then_drain(
        listener,
        state,
        shutdown.clone(),
        workers,
        engine_tasks,
    ));
    info!(%addr, "hookflow is listening");
    Ok(Running {
        addr,
        metrics_addr,
        first_admin,
        shutdown,
        task,
    })
}

/// Opens the store (migrating it) and starts the engine on it.
async fn start_engine(config: &ServeConfig) -> anyhow::Result<(Arc<Engine>, EngineTasks)> {
    let secrets = secret_box(config)?;
    let store = open_store(&config.database).await?.with_secrets(secrets);
    let sqlite = config.database.url.starts_with("sqlite:");
    if sqlite {
        // One process owns a SQLite database, so whatever is still in flight was left by a
        // previous run that died: it goes back to the queue now, not when its lease ends.
        let released = QueueStore::recover_in_flight(&store, Timestamp::now()).await?;
        if released > 0 {
            info!(
                calls = released,
                "calls left in flight by the previous run are queued again"
            );
        }
    }
    let catalog = Arc::new(Catalog::builtin().context("loading the event catalog")?);
    let transport = Arc::new(HttpTransport::new(config.delivery.clone())?);
    let engine_config = EngineConfig {
        dispatch: DispatchConfig {
            // SQLite's writers take turns anyway; PostgreSQL commits overlap their WAL flushes.
            committers: if sqlite { 1 } else { 4 },
            ..config.dispatch.clone()
        },
        notifier: hookflow_delivery::notify::build(&config.notify)?,
        trigger_activity: config.trigger_activity,
    };
    Ok(Engine::start(Arc::new(store), catalog, transport, engine_config).await?)
}

/// Binds `at`; `what` names the listener in the error ("the metrics listener ").
async fn bind(at: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(at)
        .await
        .with_context(|| format!("binding {what}{at}"))
}

/// The loops that deliver and prune. They stop only after the API has answered its last
/// request, so every call an accepted event handed over is delivered before hookflow exits.
struct Workers {
    stop: CancellationToken,
    dispatcher: JoinHandle<()>,
    retention: JoinHandle<()>,
}

impl Workers {
    fn spawn(engine: &Engine, config: &ServeConfig) -> Workers {
        let stop = CancellationToken::new();
        Workers {
            dispatcher: engine.spawn_dispatcher(stop.clone()),
            retention: engine.spawn_retention(config.retention.clone(), stop.clone()),
            stop,
        }
    }

    /// Stops the loops, letting in-flight calls finish.
    async fn drain(self) -> anyhow::Result<()> {
        info!("draining in-flight calls");
        self.stop.cancel();
        self.dispatcher.await.context("dispatcher panicked")?;
        self.retention.await.context("retention panicked")?;
        Ok(())
    }
}

/// Serves `GET /metrics` on a listener of its own until `shutdown`. Scrapes need no draining:
/// this listener simply stops with the rest.
fn spawn_metrics(listener: TcpListener, state: AppState, shutdown: CancellationToken) {
    let router = hookflow_http::metrics::router(state);
    tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "the metrics listener failed");
        }
    });
}

/// Serves the API until `shutdown`, then drains the workers and the engine.
async fn serve_then_drain(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
    workers: Workers,
    engine_tasks: EngineTasks,
) -> anyhow::Result<()> {
    let served =
        hookflow_http::serve(listener, state, async move { shutdown.cancelled().await }).await;
    workers.drain().await?;
    engine_tasks.join().await;
    info!("stopped");
    served.context("HTTP server failed")
}
