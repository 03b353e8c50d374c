//! The `hookflow` command line. Parsing only; the work happens in the library.
//!
//! Settings come from flags, environment variables, a configuration file (`--config`, see
//! `config`) and defaults, in that order of precedence.

mod config;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use hookflow::{bench, defaults, ServeConfig, ServeOptions};
use hookflow_delivery::notify::NotifyConfig;
use hookflow_delivery::{DeliveryConfig, TargetPolicy};
use hookflow_engine::event_log::RetentionPolicy;
use hookflow_storage::DbConfig;
use tracing_subscriber::EnvFilter;

/// The hot paths allocate many short-lived buffers from several threads; mimalloc handles that
/// pattern markedly better than glibc's allocator (measured with `hookflow bench`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The version and the commit it was built from (see `build.rs`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HOOKFLOW_GIT_COMMIT"),
    ")"
);

/// hookflow: a self-hosted trigger engine for commerce platforms. Events in, webhooks out.
#[derive(Parser)]
#[command(name = "hookflow", version = VERSION, about)]
struct Cli {
    /// A TOML file of settings: the `serve` flags without their dashes, e.g. `max-retries = 5`
    /// (see hookflow.example.toml). Flags and environment variables win over it. Default: none.
    #[arg(long, global = true, env = "HOOKFLOW_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Which log events to write, in RUST_LOG syntax: a level (`debug`) or levels per module
    /// (`info,hookflow_engine=debug`). `bench` writes warnings only unless this is given.
    #[arg(
        long = "log",
        global = true,
        env = "HOOKFLOW_LOG",
        default_value = "info",
        value_name = "FILTER"
    )]
    log: String,
    /// How log events are written to stderr: `pretty` (a line of text each) or `json` (one JSON
    /// object per line, for log collectors).
    #[arg(
        long,
        global = true,
        env = "HOOKFLOW_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Pretty
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and the delivery workers (applies migrations first).
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print a shell completion script, e.g. `hookflow completions bash > /etc/bash_completion.d/hookflow`.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Measure end-to-end delivery throughput against the raw HTTP limit of this machine.
    Bench(bench::BenchArgs),
    /// Manage user accounts (of the web UI and the API).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; prints a generated password when none is given.
    Add {
        /// The sign-in email address.
        #[arg(long)]
        email: String,
        /// `admin` (every shop, users, settings), `shop_owner_admin` (triggers, queue and
        /// alerts of the shops given with --shop) or `viewer` (read-only).
        #[arg(long, value_parser = parse_role)]
        role: hookflow_engine::accounts::Role,
        /// A shop the user acts for (repeat for several). Needed for shop_owner_admin; for a
        /// viewer it restricts what they read (default: every shop).
        #[arg(long = "shop", value_name = "ID")]
        shops: Vec<i64>,
        /// The password (at least 10 characters). Default: a generated one, printed once.
        #[arg(long, env = "HOOKFLOW_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[command(flatten)]
        db: DbArgs,
    },
}

fn parse_role(text: &str) -> Result<hookflow_engine::accounts::Role, String> {
    text.parse()
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the configuration `serve` would run with (from flags, environment, `--config` and
    /// defaults, each line saying which), secrets masked. Takes the same flags as `serve`.
    Print(Box<ServeArgs>),
}

#[derive(Args)]
struct DbArgs {
    /// Database URL: sqlite://FILE?mode=rwc or postgres://USER@HOST/DB.
    #[arg(
        long,
        env = "HOOKFLOW_DATABASE_URL",
        default_value = "sqlite://hookflow.db?mode=rwc"
    )]
    database_url: String,
    /// Database connection pool size (default: 8 for SQLite, 16 for PostgreSQL).
    #[arg(long, env = "HOOKFLOW_DATABASE_POOL")]
    database_pool: Option<u32>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Address the API listens on (port 0 picks a free port).
    #[arg(long, env = "HOOKFLOW_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Serve `GET /metrics` on this address instead of on the API's (default: on the API's
    /// listener, without the admin token).
    #[arg(long, env = "HOOKFLOW_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Bearer token with full rights on the API, for automation. Without it the API still
    /// needs a caller (401 otherwise): a user's API token or a web UI session; on the first
    /// start of an empty database hookflow then creates the admin account admin@localhost and
    /// prints its password once. Default: none.
    #[arg(long, env = "HOOKFLOW_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Comma-separated networks (CIDR) of reverse proxies whose X-Forwarded-For (or, without
    /// it, Forwarded) header names the client: the client is the rightmost hop that is not
    /// such a proxy. Other peers are the client themselves, whatever they send. Failed
    /// sign-ins are limited per client address (20 in 15 minutes) and per account (5 in 15
    /// minutes); behind a proxy not listed here, every user shares the proxy's address.
    /// Default: none.
    #[arg(long, env = "HOOKFLOW_TRUSTED_PROXIES", default_value = "")]
    trusted_proxies: String,
    /// Key sealing credentials (passwords, HMAC secrets, client keys) at rest: 32 bytes in
    /// base64. Default: none, and then a key file is used (created on first start).
    #[arg(long, env = "HOOKFLOW_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// The key file, created (mode 0600) when missing (default: beside the SQLite database, or
    /// ./hookflow.key for PostgreSQL).
    #[arg(long, env = "HOOKFLOW_SECRET_KEY_FILE")]
    secret_key_file: Option<std::path::PathBuf>,
    /// Comma-separated networks (CIDR) webhooks may reach although they are loopback, private
    /// or link-local, e.g. 10.0.0.0/8,127.0.0.1. By default only public addresses are reachable.
    #[arg(long, env = "HOOKFLOW_ALLOW_PRIVATE_TARGETS", default_value = "")]
    allow_private_targets: String,
    /// Timeout of one delivery attempt, in milliseconds.
    #[arg(long, env = "HOOKFLOW_DELIVERY_TIMEOUT_MS", default_value_t = defaults::DELIVERY_TIMEOUT_MS)]
    delivery_timeout_ms: u64,
    /// Retries after a failed attempt (timeouts, connection errors, 5xx, 408, 429).
    #[arg(long, env = "HOOKFLOW_MAX_RETRIES", default_value_t = defaults::MAX_RETRIES)]
    max_retries: u32,
    /// Delay before the first retry, in milliseconds; it doubles with each retry (±25 % jitter).
    #[arg(long, env = "HOOKFLOW_RETRY_BASE_MS", default_value_t = defaults::RETRY_BASE_MS)]
    retry_base_ms: u64,
    /// Longest delay between retries, in milliseconds.
    #[arg(long, env = "HOOKFLOW_RETRY_MAX_MS", default_value_t = defaults::RETRY_MAX_MS)]
    retry_max_ms: u64,
    /// Calls delivered at once by this process.
    #[arg(long, env = "HOOKFLOW_CONCURRENCY", default_value_t = defaults::CONCURRENCY)]
    concurrency: usize,
    /// Calls delivered at once to one endpoint (host:port) by this process, so that a slow or
    /// dead endpoint cannot hold the others back.
    #[arg(long, env = "HOOKFLOW_PER_ENDPOINT_CONCURRENCY", default_value_t = defaults::PER_ENDPOINT_CONCURRENCY)]
    per_endpoint_concurrency: usize,
    /// Send notices (failed calls, deactivated actions) by email through this SMTP server:
    /// smtp://host:port (plain), smtp://host?tls=required (STARTTLS), smtps://host (TLS);
    /// credentials as smtp://user:password@host. Default: none (no email).
    #[arg(long, env = "HOOKFLOW_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// The sender address of notice emails.
    #[arg(long, env = "HOOKFLOW_SMTP_FROM", default_value = hookflow_delivery::notify::DEFAULT_FROM)]
    smtp_from: String,
    /// An operator address that gets every notice email besides the shop's notification
    /// address. Default: none.
    #[arg(long, env = "HOOKFLOW_NOTIFY_EMAIL")]
    notify_email: Option<String>,
    /// POST every notice as JSON to this URL (an operator's endpoint: not subject to the SSRF
    /// guard). Default: none.
    #[arg(long, env = "HOOKFLOW_NOTIFY_WEBHOOK_URL")]
    notify_webhook_url: Option<String>,
    /// Days succeeded calls (and their attempts) are kept after they last changed.
    #[arg(long, env = "HOOKFLOW_RETAIN_SUCCEEDED_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    retain_succeeded_days: u32,
    /// Days failed, cancelled and skipped calls are kept; events go once they have no calls
    /// left and are older than both bounds.
    #[arg(long, env = "HOOKFLOW_RETAIN_FAILED_DAYS", default_value_t = 90,
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    retain_failed_days: u32,
}

fn main() -> anyhow::Result<()> {
    let mut matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // The file is layered in as environment (see `config`), so the command line is parsed
    // again once it is read; no other thread runs yet.
    let mut from_file = BTreeSet::new();
    if let Some(file) = &cli.config {
        from_file = config::apply_file(&Cli::command(), file)?;
        matches = Cli::command().get_matches();
        cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    }
    // The benchmark sends one request per event: a log line each would measure the log. It
    // logs warnings only unless asked for more.
    let quiet_bench = matches!(cli.command, Command::Bench(_))
        && matches.value_source("log") == Some(clap::parser::ValueSource::DefaultValue);
    init_logging(if quiet_bench { "warn" } else { &cli.log }, cli.log_format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(*args).await,
            Command::Migrate { db } => {
                hookflow::open_store(&db_config(db)).await?;
                println!("migrations applied");
                Ok(())
            }
            Command::Config {
                command: ConfigCommand::Print(_),
            } => {
                let print = matches
                    .subcommand_matches("config")
                    .and_then(|m| m.subcommand_matches("print"))
                    .context("`config print` without its arguments")?;
                print!("{}", config::print(&Cli::command(), print, &from_file));
                Ok(())
            }
            Command::Completions { shell } => {
                clap_complete::generate(
                    shell,
                    &mut Cli::command(),
                    "hookflow",
                    &mut std::io::stdout(),
                );
                Ok(())
            }
            Command::Bench(args) => bench::run(args).await,
            Command::User {
                command:
                    UserCommand::Add {
                        email,
                        role,
                        shops,
                        password,
                        db,
                    },
            } => {
                let store = hookflow::open_store(&db_config(db)).await?;
                let shops: Vec<_> = shops
                    .into_iter()
                    .map(hookflow_engine::model::ShopId)
                    .collect();
                let (user, generated) = hookflow_engine::accounts::create_user(
                    &store,
                    &email,
                    password.as_deref(),
                    role,
                    &shops,
                )
                .await?;
                println!("created user {} ({}, {})", user.id, user.email, user.role);
                if let Some(password) = generated {
                    println!("password: {password}");
                }
                Ok(())
            }
        }
    });
    drop(runtime);
    // From here on a failure is a log event like any other (one JSON object under
    // `--log-format json`), not the plain `Error: …` that a `main` returning it would print;
    // unless the filter hides it, then it is printed plainly rather than lost.
    if let Err(err) = outcome {
        if tracing::enabled!(target: "hookflow", tracing::Level::ERROR) {
            tracing::error!(target: "hookflow", error = format!("{err:#}"), "hookflow stopped on an error");
        } else {
            eprintln!("Error: {err:#}");
        }
        std::process::exit(1);
    }
    Ok(())
}

/// Log events go to stderr, as text lines or JSON objects, filtered by `filter`. Everything
/// hookflow writes to stderr once this ran goes through here, so that under
/// `--log-format json` a collector can parse every line; stdout carries only what scripts
/// read (the `hookflow listening on` line, a first admin's password).
fn init_logging(filter: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter)
        .with_context(|| format!("--log (HOOKFLOW_LOG): {filter:?} is not a log filter"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colours only for a person at a terminal: a file or a collector gets plain text.
        LogFormat::Pretty => builder.with_ansi(colour_stderr()).init(),
        // The current span and its parents go with every event: a delivery's call id, a
        // request's route.
        LogFormat::Json => {
            builder
                .json()
                .with_ansi(false)
                .with_current_span(true)
                .with_span_list(true)
                .init();
            // A panic is an event too, not lines of text among the JSON.
            std::panic::set_hook(Box::new(|info| {
                tracing::error!(target: "hookflow", panic = %info, "panicked");
            }));
        }
    }
    Ok(())
}

/// Whether pretty logs get ANSI colours: only when stderr is a terminal and `NO_COLOR` is
/// not set (<https://no-color.org>: any non-empty value).
fn colour_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn db_config(db: DbArgs) -> DbConfig {
    DbConfig {
        url: db.database_url,
        max_connections: db.database_pool,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let policy = TargetPolicy::parse(&args.allow_private_targets)
        .map_err(|e| anyhow::anyhow!("--allow-private-targets: {e}"))?;
    let trusted_proxies = hookflow_http::client::TrustedProxies::parse(&args.trusted_proxies)
        .map_err(|e| anyhow::anyhow!("--trusted-proxies: {e}"))?;
    let timeout = Duration::from_millis(args.delivery_timeout_ms);
    let args_metrics_listen = args.metrics_listen;
    let config = ServeConfig {
        database: db_config(args.db),
        listen: args.listen,
        admin_token: args.admin_token.filter(|t| !t.is_empty()),
        secret_key: args.secret_key.filter(|k| !k.is_empty()),
        secret_key_file: args.secret_key_file,
        delivery: DeliveryConfig { timeout, policy },
        dispatch: defaults::dispatch(
            args.concurrency,
            args.per_endpoint_concurrency,
            timeout,
            defaults::retry(args.max_retries, args.retry_base_ms, args.retry_max_ms),
        ),
        notify: NotifyConfig {
            smtp_url: args.smtp_url.filter(|u| !u.is_empty()),
            smtp_from: args.smtp_from,
            operator_email: args.notify_email.filter(|e| !e.is_empty()),
            webhook_url: args.notify_webhook_url.filter(|u| !u.is_empty()),
        },
        retention: RetentionPolicy {
            succeeded: days(args.retain_succeeded_days),
            failed: days(args.retain_failed_days),
            ..RetentionPolicy::default()
        },
    };
    let options = ServeOptions {
        metrics_listen: args_metrics_listen,
        trusted_proxies,
    };
    let running = hookflow::start_with(config, options).await?;
    if let Some(addr) = running.metrics_addr {
        println!("hookflow metrics on http://{addr}/metrics");
    }
    if let Some((email, password)) = &running.first_admin {
        println!(
            "first start: created the admin account {email} with password {password} \
             (shown once; sign in at http://{}/ and change it)",
            running.addr
        );
    }
    // Tests and scripts read this line to learn the port.
    println!("hookflow listening on http://{}", running.addr);
    shutdown_signal()
        .await
        .context("waiting for a shutdown signal")?;
    tracing::info!(target: "hookflow", "shutting down: finishing in-flight calls");
    running.shutdown();
    running.wait().await
}

fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 86_400)
}

async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
