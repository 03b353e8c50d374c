//! The end-to-end harness: hookflow on a fresh database (a SQLite file or a new PostgreSQL
//! database), real HTTP receivers on 127.0.0.1, and waits on conditions with a deadline instead
//! of sleeps.
//!
//! - `db`: [`TestDb`], one database per test, and [`both_backends!`], which runs a test on
//!   SQLite and on PostgreSQL.
//! - `app`: [`TestApp`], a running hookflow: in-process by default (`in_process`), or the
//!   `hookflow` binary (`binary`) for the tests that need a process of its own.
//! - `api`: the request helpers of a [`TestApp`].
//! - `receiver`: [`Receiver`], a recording webhook receiver that answers from a script of
//!   [`Reply`]s.
//! - `fixtures`: request bodies and assertions on answers.
//! - `wait`: [`wait_until`] and friends.
//!
//! Set `TEST_LOG=1` to see hookflow's log (debug level) live; without it the log is kept in
//! memory and printed when a test fails.

#![allow(dead_code)]

#[macro_use]
mod db;
mod api;
mod app;
mod binary;
mod fixtures;
mod in_process;
mod receiver;
mod wait;

pub use api::{answer, RequestBody};
pub use app::{spawn_app, spawn_app_with, spawn_binary, TestApp, TEST_ADMIN_TOKEN};
pub use db::{Backend, TestDb};
pub use fixtures::{assert_error, event, id, parse_time, sorted, webhook_trigger, JsonExt};
pub use receiver::{Gate, Receiver, Recorded, Reply};
pub use wait::{wait_for, wait_until, WAIT};
