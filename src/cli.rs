//! The flags of `hookflow serve` (and the database flags other commands share), as a library
//! type: the binary parses them from its command line and environment, tests and embedders
//! from a list of flags, and both turn them into a [`ServeConfig`] in [`ServeArgs::into_config`],
//! so a flag means the same wherever it is given.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, FromArgMatches};
use hookflow_delivery::notify::NotifyConfig;
use hookflow_delivery::{DeliveryConfig, TargetPolicy};
use hookflow_engine::event_log::RetentionPolicy;
use hookflow_http::client::TrustedProxies;
use hookflow_storage::DbConfig;

use crate::{defaults, ServeConfig, ServeOptions};

// Where the database is. (No doc comments on these structs: clap would make them the about
// text of every command that flattens them.)
#[derive(Args, Debug)]
pub struct DbArgs {
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

// Everything `hookflow serve` is told.
#[derive(Args, Debug)]
pub struct ServeArgs {
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
    secret_key_file: Option<PathBuf>,
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
    /// Keep every trigger's activity: one row per trigger evaluated for an event (fired or
    /// not, and the rule clause that decided), kept as long as the event. `false` stops
    /// recording it (the Activity tab and `GET /api/v1/triggers/{id}/activity` then show
    /// nothing new).
    #[arg(long, env = "HOOKFLOW_TRIGGER_ACTIVITY", default_value_t = true, action = clap::ArgAction::Set)]
    trigger_activity: bool,
}

impl DbArgs {
    /// The database these flags name.
    pub fn config(self) -> DbConfig {
        DbConfig {
            url: self.database_url,
            max_connections: self.database_pool,
        }
    }
}

impl ServeArgs {
    /// Parses `serve`'s flags (`["--max-retries", "2"]`, no command name) with clap's own
    /// rules, as `hookflow serve` would with no `HOOKFLOW_*` variable set: the environment is
    /// not read, so the flags given are the whole configuration. The binary's global flags
    /// (`--config`, `--log`, `--log-format`) are not among them.
    pub fn from_flags<I, T>(flags: I) -> Result<ServeArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let command = ServeArgs::augment_args(clap::Command::new("serve"))
            .mut_args(|arg| arg.env(None::<&'static str>));
        let argv =
            std::iter::once(OsString::from("serve")).chain(flags.into_iter().map(Into::into));
        ServeArgs::from_arg_matches(&command.try_get_matches_from(argv)?)
    }

    /// The configuration these flags describe; fails on a list of networks that does not
    /// parse, naming its flag.
    pub fn into_config(self) -> anyhow::Result<(ServeConfig, ServeOptions)> {
        let policy = TargetPolicy::parse(&self.allow_private_targets)
            .map_err(|e| anyhow::anyhow!("--allow-private-targets: {e}"))?;
        let trusted_proxies = TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("--trusted-proxies: {e}"))?;
        let timeout = Duration::from_millis(self.delivery_timeout_ms);
        let retry = defaults::retry(self.max_retries, self.retry_base_ms, self.retry_max_ms);
        let config = ServeConfig {
            database: self.db.config(),
            listen: self.listen,
            admin_token: self.admin_token.filter(|t| !t.is_empty()),
            secret_key: self.secret_key.filter(|k| !k.is_empty()),
            secret_key_file: self.secret_key_file,
            delivery: DeliveryConfig { timeout, policy },
            dispatch: defaults::dispatch(
                self.concurrency,
                self.per_endpoint_concurrency,
                timeout,
                retry,
            ),
            notify: NotifyConfig {
                smtp_url: self.smtp_url.filter(|u| !u.is_empty()),
                smtp_from: self.smtp_from,
                operator_email: self.notify_email.filter(|e| !e.is_empty()),
                webhook_url: self.notify_webhook_url.filter(|u| !u.is_empty()),
            },
            retention: RetentionPolicy {
                succeeded: days(self.retain_succeeded_days),
                failed: days(self.retain_failed_days),
                ..RetentionPolicy::default()
            },
            trigger_activity: self.trigger_activity,
        };
        let options = ServeOptions {
            metrics_listen: self.metrics_listen,
            trusted_proxies,
            listener: None,
        };
        Ok((config, options))
    }
}

fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_given_as_a_list_become_the_same_config_the_defaults_fill_in() {
        let args = ServeArgs::from_flags(["--max-retries", "2", "--admin-token", "t"]).unwrap();
        let (config, options) = args.into_config().unwrap();
        assert_eq!(config.dispatch.retry.max_retries, 2);
        assert_eq!(config.admin_token.as_deref(), Some("t"));
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.database.url, "sqlite://hookflow.db?mode=rwc");
        assert_eq!(options.metrics_listen, None);
    }

    #[test]
    fn the_binarys_global_flags_and_bad_networks_are_refused() {
        assert!(ServeArgs::from_flags(["--log", "debug"]).is_err());
        let args = ServeArgs::from_flags(["--trusted-proxies", "not a network"]).unwrap();
        let err = args.into_config().unwrap_err().to_string();
        assert!(err.starts_with("--trusted-proxies:"), "{err}");
    }
}
