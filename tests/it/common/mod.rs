//! The end-to-end harness: the real `hookflow` binary on a fresh database (SQLite file or a new
//! PostgreSQL database), real HTTP receivers on 127.0.0.1, and waits on conditions with a
//! deadline instead of sleeps.
//!
//! - [`TestDb`]: one database per test; `TestApp`s started on it share it (restarts, two nodes).
//! - [`TestApp`]: a running `hookflow serve` plus request helpers for the API.
//! - [`Receiver`]: a recording webhook receiver that answers from a script of [`Reply`]s.
//! - [`both_backends!`]: writes a test once, runs it on SQLite and on PostgreSQL.
//!
//! Set `TEST_LOG=1` to see hookflow's log (debug level) live; without it the log is kept in
//! memory and printed when a test fails.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a condition may take before a wait gives up (and the test fails).
pub const WAIT: Duration = Duration::from_secs(15);
/// How long the binary may take to start listening.
const STARTUP: Duration = Duration::from_secs(30);
/// Where CI points the PostgreSQL variants; unset = those variants are skipped.
pub const POSTGRES_ENV: &str = "HOOKFLOW_TEST_POSTGRES_URL";

/// Runs an async test body on both backends. Each test becomes a module with two tests,
/// `<name>::sqlite` and `<name>::postgres`; the PostgreSQL one returns early (and says so) when
/// `HOOKFLOW_TEST_POSTGRES_URL` is unset. Attributes (`#[ignore = "..."]`) apply to both.
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

// ---------------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------------

/// Polls `check` until it holds; panics with `what` after `deadline`.
pub async fn wait_until(deadline: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let end = Instant::now() + deadline;
    loop {
        if check().await {
            return;
        }
        if Instant::now() >= end {
            panic!("timed out after {deadline:?} waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `probe` until it yields a value; panics with `what` after `deadline`.
pub async fn wait_for<T>(
    deadline: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if Instant::now() >= end {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Databases
// ---------------------------------------------------------------------------------------------

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
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("creating a temporary directory");
                let url = format!("sqlite://{}/hookflow.db?mode=rwc", dir.path().display());
                Arc::new(TestDb {
                    backend,
                    url,
                    _dir: Some(dir),
                    pg: None,
                })
            }
            Backend::Postgres => {
                let admin = std::env::var(POSTGRES_ENV)
                    .unwrap_or_else(|_| panic!("{POSTGRES_ENV} must be set for PostgreSQL tests"));
                let name = format!("hf_test_{}", uuid::Uuid::new_v4().simple());
                let conn = sea_orm::Database::connect(admin.as_str())
                    .await
                    .unwrap_or_else(|e| panic!("connecting to {admin}: {e}"));
                use sea_orm::ConnectionTrait;
                conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
                let _ = conn.close().await;
                let mut url = reqwest::Url::parse(&admin)
                    .unwrap_or_else(|e| panic!("{POSTGRES_ENV} is not a URL: {e}"));
                url.set_path(&format!("/{name}"));
                Arc::new(TestDb {
                    backend,
                    url: url.to_string(),
                    _dir: None,
                    pg: Some((admin, name)),
                })
            }
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
                use sea_orm::ConnectionTrait;
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

// ---------------------------------------------------------------------------------------------
// The app
// ---------------------------------------------------------------------------------------------

/// A running `hookflow serve`.
pub struct TestApp {
    pub addr: SocketAddr,
    base: String,
    child: Child,
    client: reqwest::Client,
    db: Arc<TestDb>,
    log: Arc<Mutex<Vec<String>>>,
    /// What it printed to stdout before its address line.
    stdout: Vec<String>,
    /// The `--admin-token` it was started with; requests present it.
    token: Option<String>,
}

/// The `--admin-token` test apps start with (a test may pass its own).
pub const TEST_ADMIN_TOKEN: &str = "test-admin-token";

/// The flags every test app gets unless the test overrides them.
fn default_args(db_url: &str) -> Vec<(String, String)> {
    [
        ("--database-url", db_url),
        ("--listen", "127.0.0.1:0"),
        ("--allow-private-targets", "127.0.0.0/8"),
        ("--retry-base-ms", "100"),
        ("--retry-max-ms", "1000"),
        ("--delivery-timeout-ms", "2000"),
        // The API always needs a caller; requests present this token unless told otherwise.
        ("--admin-token", TEST_ADMIN_TOKEN),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Starts hookflow with the default flags on a fresh database of `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    TestApp::start_with(&TestDb::new(backend).await, &[]).await
}

/// Starts hookflow on a fresh database with extra flags (`["--max-retries", "2"]`).
pub async fn spawn_app_with(backend: Backend, extra: &[&str]) -> TestApp {
    TestApp::start_with(&TestDb::new(backend).await, extra).await
}

impl TestApp {
    /// Starts hookflow on `db`. `extra` is a list of `--flag value` pairs; a flag that is also a
    /// default replaces the default (`--allow-private-targets ""` turns the allowance off), and
    /// `--no-default FLAG` drops a default.
    pub async fn start_with(db: &Arc<TestDb>, extra: &[&str]) -> TestApp {
        assert!(
            extra.len().is_multiple_of(2),
            "extra arguments come in --flag value pairs: {extra:?}"
        );
        let mut args = default_args(&db.url);
        for pair in extra.chunks(2) {
            let (flag, value) = (pair[0].to_owned(), pair[1].to_owned());
            if flag == "--no-default" {
                // `["--no-default", "--admin-token"]`: start without that default flag.
                args.retain(|(k, _)| *k != value);
                continue;
            }
            match args.iter_mut().find(|(k, _)| *k == flag) {
                Some(slot) => slot.1 = value,
                None => args.push((flag, value)),
            }
        }
        let token = args
            .iter()
            .find(|(k, v)| k == "--admin-token" && !v.is_empty())
            .map(|(_, v)| v.clone());
        let live_log = std::env::var_os("TEST_LOG").is_some();
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookflow"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("HOOKFLOW_") {
                command.env_remove(key);
            }
        }
        command
            .arg("serve")
            .args(args.iter().flat_map(|(k, v)| [k, v]))
            .env("HOOKFLOW_LOG", if live_log { "debug" } else { "info" })
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if db.backend == Backend::Postgres {
            // PostgreSQL has no database file to keep a key beside; test processes share
            // this one instead of racing to create ./hookflow.key.
            command.env(
                "HOOKFLOW_SECRET_KEY",
                "dGVzdCBrZXkgZm9yIGhvb2tmbG93IGUyZSB0ZXN0cyE=",
            );
        }
        let mut child = command.spawn().expect("starting the hookflow binary");

        // Keep the log: live under TEST_LOG, and in memory for failure reports.
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = log.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if live_log {
                    eprintln!("[hookflow] {line}");
                }
                sink.lock().unwrap().push(line);
            }
        });

        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let mut stdout = Vec::new();
        let read_addr = async {
            while let Some(line) = lines.next_line().await.ok()? {
                if let Some(rest) = line.strip_prefix("hookflow listening on http://") {
                    return rest.trim().parse::<SocketAddr>().ok();
                }
                stdout.push(line);
            }
            None
        };
        let addr = match tokio::time::timeout(STARTUP, read_addr).await {
            Ok(Some(addr)) => addr,
            outcome => {
                let _ = child.start_kill();
                let status = child.wait().await;
                // Let the log reader catch up with what the process wrote before dying.
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "hookflow did not report its address ({}; exit: {status:?}); its log:\n{}",
                    if outcome.is_err() {
                        "timed out"
                    } else {
                        "stdout closed"
                    },
                    log.lock().unwrap().join("\n")
                );
            }
        };
        // Drain stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        TestApp {
            addr,
            base: format!("http://{addr}"),
            child,
            client,
            db: db.clone(),
            log,
            stdout,
            token,
        }
    }

    /// The database this app runs on, to start another app on it.
    pub fn db(&self) -> Arc<TestDb> {
        self.db.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything hookflow wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The first line hookflow printed to stdout before its address that contains `text`.
    pub fn stdout_line_containing(&self, text: &str) -> Option<String> {
        self.stdout.iter().find(|l| l.contains(text)).cloned()
    }

    /// A user of `role` for `shops`, made over the API as the admin, and an API token of
    /// theirs: `(user id, token)`.
    pub async fn user_with_token(&self, email: &str, role: &str, shops: &[i64]) -> (i64, String) {
        let (status, user) = self
            .post_json(
                "/api/v1/users",
                json!({"email": email, "role": role, "shops": shops}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        let (status, token) = self
            .post_json(
                "/api/v1/tokens",
                json!({"name": "tests", "userId": id(&user)}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{token}");
        (id(&user), token["token"].as_str().unwrap().to_owned())
    }

    /// Whether hookflow's log has a line containing `text`.
    /// The server process's id (for reading its memory from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id().expect("hookflow is still running")
    }

    pub fn log_contains(&self, text: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(text))
    }

    // ---- process control ----

    /// SIGKILL: the process dies at once, mid-whatever.
    pub async fn kill9(mut self) {
        self.child.start_kill().expect("sending SIGKILL");
        self.child
            .wait()
            .await
            .expect("waiting for hookflow to die");
    }

    /// Sends SIGTERM (a graceful stop) without waiting for the exit.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("hookflow is still running");
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM {pid} failed: {status}");
    }

    /// Waits for the process to exit on its own.
    pub async fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        match tokio::time::timeout(deadline, self.child.wait()).await {
            Ok(status) => status.expect("waiting for hookflow"),
            Err(_) => panic!(
                "hookflow did not exit within {deadline:?}; its log:\n{}",
                self.log()
            ),
        }
    }

    /// SIGTERM, then waits for the exit.
    pub async fn stop(mut self) -> ExitStatus {
        self.terminate();
        self.wait_exit(Duration::from_secs(30)).await
    }

    // ---- requests ----

    /// Sends a request; the answer body is parsed as JSON (`Null` when empty, a string when not
    /// JSON).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<RequestBody>,
    ) -> (StatusCode, Value) {
        self.request_as(self.token.as_deref(), method, path, body)
            .await
    }

    /// [`TestApp::request`] presenting `token` (or none) instead of the app's admin token.
    pub async fn request_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<RequestBody>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method.clone(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        match body {
            Some(RequestBody::Json(value)) => request = request.json(&value),
            Some(RequestBody::Raw(text)) => {
                request = request
                    .header("content-type", "application/json")
                    .body(text)
            }
            None => {}
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, None).await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(RequestBody::Json(body)))
            .await
    }

    /// POSTs a body as-is (for malformed JSON).
    pub async fn post_raw(&self, path: &str, body: &str) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(RequestBody::Raw(body.to_owned())))
            .await
    }

    pub async fn put_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::PUT, path, Some(RequestBody::Json(body)))
            .await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::DELETE, path, None).await
    }

    /// Creates a shop and returns its id.
    pub async fn create_shop(&self, name: &str) -> i64 {
        let (status, body) = self
            .post_json("/api/v1/shops", json!({ "name": name }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "creating shop {name}: {body}");
        body["id"].as_i64().expect("a shop has an id")
    }

    /// Creates a trigger (asserting 201) and returns it.
    pub async fn create_trigger(&self, trigger: Value) -> Value {
        let (status, body) = self.post_json("/api/v1/triggers", trigger.clone()).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "creating trigger {trigger}: {body}"
        );
        body
    }

    /// POSTs one event or an array to `/api/v1/events`.
    pub async fn post_events(&self, events: Value) -> (StatusCode, Value) {
        self.post_json("/api/v1/events", events).await
    }

    /// POSTs one event, asserting 202; returns the answer.
    pub async fn post_event(&self, event: Value) -> Value {
        let (status, body) = self.post_events(event.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "posting {event}: {body}");
        body
    }

    /// `GET /api/v1/queue?<query>` (asserting 200): `{"items", "next"}`.
    pub async fn queue(&self, query: &str) -> Value {
        let path = if query.is_empty() {
            "/api/v1/queue".to_owned()
        } else {
            format!("/api/v1/queue?{query}")
        };
        let (status, body) = self.get_json(&path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// The items of one queue page.
    pub async fn queue_items(&self, query: &str) -> Vec<Value> {
        self.queue(query).await["items"]
            .as_array()
            .expect("a queue page has items")
            .clone()
    }

    /// Calls pending or on the wire, as `hookflow_queue_depth` on `/metrics` counts them: one
    /// grouped query, so one snapshot (two list queries can miss a call moving between them).
    pub async fn unfinished_calls(&self) -> u64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("scraping /metrics")
            .text()
            .await
            .expect("the metrics text");
        text.lines()
            .filter(|l| l.starts_with("hookflow_queue_depth{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// `GET /api/v1/queue/{id}` (asserting 200): the item with its `attemptLog`.
    pub async fn queue_item(&self, id: i64) -> Value {
        let (status, body) = self.get_json(&format!("/api/v1/queue/{id}")).await;
        assert_eq!(status, StatusCode::OK, "GET queue item {id}: {body}");
        body
    }

    /// Waits until queue item `id` has `status`; returns it (with its attempt log).
    pub async fn wait_for_queue_status(&self, id: i64, status: &str) -> Value {
        let end = Instant::now() + WAIT;
        loop {
            let last = self.queue_item(id).await;
            if last["status"] == status {
                return last;
            }
            if Instant::now() >= end {
                panic!("queue item {id} did not become {status} within {WAIT:?}; it is {last:#}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until queue item `id` satisfies `check`; returns it (with its attempt log).
    pub async fn wait_for_item(
        &self,
        id: i64,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let end = Instant::now() + WAIT;
        loop {
            let last = self.queue_item(id).await;
            if check(&last) {
                return last;
            }
            if Instant::now() >= end {
                panic!(
                    "timed out after {WAIT:?} waiting until {what}; queue item {id} is {last:#}"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the queue listing for `query` holds exactly `count` items; returns them.
    pub async fn wait_for_queue_count(&self, query: &str, count: usize) -> Vec<Value> {
        let end = Instant::now() + WAIT;
        loop {
            let last = self.queue_items(query).await;
            if last.len() == count {
                return last;
            }
            if Instant::now() >= end {
                panic!(
                    "queue?{query} did not reach {count} items within {WAIT:?}; it has {}: {:#}",
                    last.len(),
                    Value::Array(last)
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The one queue item of the only call an event queued.
    pub async fn only_item(&self, query: &str) -> Value {
        let items = self.queue_items(query).await;
        assert_eq!(
            items.len(),
            1,
            "expected one queue item for {query}: {items:#?}"
        );
        items.into_iter().next().unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(300)..];
            eprintln!(
                "---- hookflow at {} (log, last {} lines) ----\n{}\n---- end of hookflow log ----",
                self.addr,
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

pub enum RequestBody {
    Json(Value),
    Raw(String),
}

// ---------------------------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------------------------

/// A trigger calling `url` (POST, default payload) on every `event_type`, in every shop.
pub fn webhook_trigger(event_type: &str, url: &str) -> Value {
    json!({
        "name": format!("{event_type} to {url}"),
        "eventType": event_type,
        "actions": [{"type": "callWebhook", "url": url}],
    })
}

/// An event without extras.
pub fn event(event_type: &str, shop_id: i64, entity_id: impl Into<Value>, data: Value) -> Value {
    json!({
        "eventType": event_type,
        "shopId": shop_id,
        "entityId": entity_id.into(),
        "entityData": data,
    })
}

/// `value.with(json!({...}))`: a copy with the patch's top-level keys set.
pub trait JsonExt {
    fn with(self, patch: Value) -> Value;
}

impl JsonExt for Value {
    fn with(mut self, patch: Value) -> Value {
        let (Some(target), Value::Object(patch)) = (self.as_object_mut(), patch) else {
            panic!("with() patches a JSON object with a JSON object");
        };
        for (k, v) in patch {
            target.insert(k, v);
        }
        self
    }
}

/// The `id` of a JSON object, as i64.
pub fn id(value: &Value) -> i64 {
    value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer id in {value}"))
}

/// Asserts an API error: status, `error.code`, and returns `error.message`.
#[track_caller]
pub fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str) -> String {
    let (got, body) = answer;
    assert_eq!(*got, status, "unexpected status; body: {body}");
    assert_eq!(body["error"]["code"], code, "unexpected error code: {body}");
    body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("error without a message: {body}"))
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// The receiver
// ---------------------------------------------------------------------------------------------

/// Opens held replies when the test says so (see [`Reply::held`]).
#[derive(Clone)]
pub struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

impl Gate {
    pub fn new() -> Gate {
        Gate(Arc::new(tokio::sync::watch::channel(false).0))
    }

    /// Releases every reply waiting on this gate, now and later.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    async fn pass(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new()
    }
}

/// How the receiver answers one request.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub delay: Option<Duration>,
    pub gate: Option<Gate>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// Answers `status` at once.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            delay: None,
            gate: None,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// Answers 200 after `delay`.
    pub fn delay(delay: Duration) -> Reply {
        Reply::status(200).after(delay)
    }

    /// Answers 200 once `gate` is opened.
    pub fn held(gate: &Gate) -> Reply {
        Reply {
            gate: Some(gate.clone()),
            ..Reply::status(200)
        }
    }

    /// The same reply, sent only after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = Some(delay);
        self
    }

    pub fn body(mut self, body: &str) -> Reply {
        self.body = body.to_owned();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn webhook_id(&self) -> &str {
        self.header("webhook-id")
            .unwrap_or_else(|| panic!("request without webhook-id: {self:?}"))
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("the body is UTF-8")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }
}

struct ReceiverState {
    requests: Vec<Recorded>,
    script: VecDeque<Reply>,
    default: Reply,
}

/// A real HTTP server on 127.0.0.1 that records every request and answers from its script,
/// then with its default reply (200 unless set).
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Answers 200 to everything.
    pub async fn start() -> Receiver {
        Receiver::with_script(Vec::new()).await
    }

    /// Answers with `script` in order, then 200.
    pub async fn with_script(script: Vec<Reply>) -> Receiver {
        Receiver::scripted(script, Reply::status(200)).await
    }

    /// Answers `reply` to everything.
    pub async fn always(reply: Reply) -> Receiver {
        Receiver::scripted(Vec::new(), reply).await
    }

    /// Answers with `script` in order, then `default`.
    pub async fn scripted(script: Vec<Reply>, default: Reply) -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState {
            requests: Vec::new(),
            script: script.into(),
            default,
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the receiver");
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new()
            .fallback(receive)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver { addr, state, task }
    }

    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().unwrap().requests.len()
    }

    /// Appends replies to the script.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Changes the reply once the script is used up.
    pub fn set_default(&self, reply: Reply) {
        self.state.lock().unwrap().default = reply;
    }

    /// Waits until at least `n` requests arrived; returns all of them.
    pub async fn wait_for_requests(&self, n: usize, deadline: Duration) -> Vec<Recorded> {
        let end = Instant::now() + deadline;
        loop {
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            if Instant::now() >= end {
                panic!(
                    "the receiver got {} of {n} requests within {deadline:?}: {:#?}",
                    requests.len(),
                    requests
                        .iter()
                        .map(|r| format!("{} {}", r.method, r.path))
                        .collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    axum::extract::State(state): axum::extract::State<Arc<Mutex<ReceiverState>>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        at,
    };
    let reply = {
        let mut state = state.lock().unwrap();
        state.requests.push(recorded);
        match state.script.pop_front() {
            Some(reply) => reply,
            None => state.default.clone(),
        }
    };
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(gate) = &reply.gate {
        gate.pass().await;
    }
    let mut response = axum::response::Response::new(axum::body::Body::from(reply.body));
    *response.status_mut() = axum::http::StatusCode::from_u16(reply.status).expect("valid status");
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}

/// An RFC 3339 time from the API.
#[track_caller]
pub fn parse_time(value: &Value) -> std::time::SystemTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time string: {value}"));
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"));
    std::time::SystemTime::from(t)
}

/// The items, sorted: for comparing results whose order does not matter.
pub fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}
