//! The `hookflow` command line. Parsing only; the work happens in the library.
//!
//! Settings come from flags, environment variables, a configuration file (`--config`, see
//! `config`) and defaults, in that order of precedence.

mod config;

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use hookflow::bench;
use hookflow::cli::{DbArgs, ServeArgs};
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
                hookflow::open_store(&db.config()).await?;
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
            Command::User { command } => user(command).await,
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

async fn user(command: UserCommand) -> anyhow::Result<()> {
    let UserCommand::Add {
        email,
        role,
        shops,
        password,
        db,
    } = command;
    let store = hookflow::open_store(&db.config()).await?;
    let shops: Vec<_> = shops
        .into_iter()
        .map(hookflow_engine::model::ShopId)
        .collect();
    let (user, generated) =
        hookflow_engine::accounts::create_user(&store, &email, password.as_deref(), role, &shops)
            .await?;
    println!("created user {} ({}, {})", user.id, user.email, user.role);
    if let Some(password) = generated {
        println!("password: {password}");
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

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (config, options) = args.into_config()?;
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

async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
