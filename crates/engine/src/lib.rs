//! The engine: hookflow's domain and its two loops.
//!
//! # Layout
//! - [`model`]: ids, timestamps, shops, triggers, events, queued calls, attempts.
//! - [`event`]: parsing incoming events at the edge into [`model::NewEvent`]s.
//! - [`store`]: the [`store::Store`] trait that storage implements.
//! - [`transport`]: the [`transport::Transport`] trait that delivery implements.
//! - [`retry`]: outcome classification and the retry schedule.
//! - `policy`: per-action queue policy (retries, attempt timeout, deactivation) and the
//!   presets that reproduce the platforms hookflow replaces.
//! - [`security`]: an action's credentials (basic auth, signing keys, TLS identity), resolved
//!   when a call is sent and never copied into the queue.
//! - [`triggers`]: compiled triggers, matching and rendering an event into calls.
//! - [`queue`]: the queue's policy, pure: unique items, order, slots, retries, recovery.
//! - `ingest`: the group-committing ingest loop.
//! - [`dispatch`]: the delivery loop (claim, send, record).
//! - [`notify`]: notices to people (a call failed for good, an action was deactivated); the
//!   engine decides when, a [`notify::Notifier`] decides how.
//! - [`redact`]: credentials out of URLs (userinfo, query values) wherever a URL is shown or
//!   logged.
//! - [`metrics`]: Prometheus counters and histograms the loops update, gauges read at scrape.
//! - [`event_log`]: the event log, resends, and retention (pruning in the background).
//! - [`explain`]: which triggers of its type an event fires, and why the others do not.
//! - [`dashboard`]: calls per minute, queue depth and failing actions for the web UI.
//! - [`send_test`]: one call of a trigger being edited, sent now and recorded nowhere.
//! - [`dry_run`]: a trigger evaluated for one entity: its rule's trace and the calls it would
//!   make as they would go out (or sent), recorded nowhere.
//! - [`templates`]: template tooling for admins: merge fields, a payload's JSON Schema,
//!   previews against the latest stored event about an entity.
//! - [`accounts`]: users, roles, API tokens, sessions, and the [`accounts::Principal`] a
//!   request acts as.
//! - [`login_tokens`]: the signed tokens a platform API's login hands out (Skladon's).
//! - [`catalogs`]: which catalog a shop uses and its API key, custom event types, and the
//!   checks that keep events and triggers inside their shop's catalog.
//! - [`text`]: names and email addresses checked as the API's document states them.
//! - [`service`]: [`Engine`], the one facade the HTTP layer and the CLI call.
//!
//! The engine knows no SQL and no HTTP: it compiles and tests without a database or network.

pub mod accounts;
pub mod catalogs;
pub mod dashboard;
pub mod dispatch;
pub mod dry_run;
pub mod event;
pub mod event_log;
pub mod explain;
pub(crate) mod ingest;
pub mod login_tokens;
pub mod metrics;
pub mod model;
pub mod notify;
pub(crate) mod policy;
pub mod queue;
pub mod redact;
pub mod retry;
pub mod security;
pub mod send_test;
pub mod service;
pub mod store;
pub mod templates;
pub mod text;
pub mod transport;
pub mod triggers;

pub use service::{Engine, EngineConfig, EngineError};
