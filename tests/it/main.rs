//! hookflow end to end: the real server (in-process, or the binary where a test needs a
//! process), real databases, real HTTP receivers.
//!
//! Every test runs on SQLite and, when `HOOKFLOW_TEST_POSTGRES_URL` is set, on PostgreSQL
//! (`<test>::sqlite`, `<test>::postgres`). See `common` for the harness.

#[macro_use]
mod common;

mod accounts;
mod browser;
mod catalogs;
mod compat_frontsystems;
mod compat_skladon;
mod config;
mod delivery;
mod durability;
mod event_log;
mod faults;
mod faults_ingest;
mod hostile_templates;
mod ingest;
mod notifications;
mod observability;
mod openapi;
mod queue;
mod queue_policy;
mod receivers;
mod rules;
mod security;
mod sign_in;
mod templates;
mod triggers;
