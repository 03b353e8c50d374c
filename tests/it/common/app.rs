//! Starting hookflow for a test: a [`TestApp`] is one running hookflow on a [`TestDb`], with the
//! test defaults and a test's own flags.
//!
//! Most tests start it in-process ([`TestApp::start_with`], `in_process`): fast and
//! debuggable. The tests that need a process of its own ([`TestApp::spawn_binary_with`],
//! `binary`) spawn the `hookflow` binary: kill -9, SIGTERM, the exit status, stdout, the log,
//! the memory. Both take the same flags and give the same [`TestApp`]; what only a process has
//! (`kill9`, `log`, `pid`, ...) panics on an in-process app, naming the way to start one.

use std::net::SocketAddr;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use crate::common::binary::Binary;
use crate::common::in_process::InProcess;
use crate::common::{Backend, TestDb};

/// The `--admin-token` test apps start with (a test may pass its own).
pub const TEST_ADMIN_TOKEN: &str = "test-admin-token";

/// How long hookflow may take to start listening.
pub(crate) const STARTUP: Duration = Duration::from_secs(30);

/// A running hookflow and a client for its API (see `api` for the requests).
pub struct TestApp {
    pub addr: SocketAddr,
    pub(super) client: reqwest::Client,
    /// The `--admin-token` it was started with; requests present it.
    pub(super) token: Option<String>,
    db: Arc<TestDb>,
    server: Server,
}

/// Where that hookflow runs.
enum Server {
    InProcess(InProcess),
    Binary(Binary),
}

/// Starts hookflow in-process with the default flags on a fresh database of `backend`.
pub async fn spawn_app(backend: Backend) -> TestApp {
    TestApp::start_with(&TestDb::new(backend).await, &[]).await
}

/// Starts hookflow in-process on a fresh database with extra flags (`["--max-retries", "2"]`).
pub async fn spawn_app_with(backend: Backend, extra: &[&str]) -> TestApp {
    TestApp::start_with(&TestDb::new(backend).await, extra).await
}

/// Spawns the `hookflow` binary with the default flags on a fresh database of `backend`.
pub async fn spawn_binary(backend: Backend) -> TestApp {
    TestApp::spawn_binary_with(&TestDb::new(backend).await, &[]).await
}

/// Whether hookflow's log is shown live (`TEST_LOG` set), at debug level.
pub(crate) fn live_log() -> bool {
    std::env::var_os("TEST_LOG").is_some()
}

impl TestApp {
    /// Starts hookflow in-process on `db`. `extra` is a list of `--flag value` pairs; a flag
    /// that is also a default replaces the default (`--allow-private-targets ""` turns the
    /// allowance off), and `--no-default FLAG` drops a default.
    pub async fn start_with(db: &Arc<TestDb>, extra: &[&str]) -> TestApp {
        let flags = flags(&db.url, extra);
        let (app, addr) = InProcess::start(db, &flags).await;
        TestApp::new(db, &flags, addr, Server::InProcess(app))
    }

    /// [`TestApp::start_with`], as a `hookflow serve` process of its own: for the tests that
    /// kill it, signal it, or read its exit status, stdout, log or memory.
    pub async fn spawn_binary_with(db: &Arc<TestDb>, extra: &[&str]) -> TestApp {
        let flags = flags(&db.url, extra);
        let (binary, addr) = Binary::spawn(db, &flags).await;
        TestApp::new(db, &flags, addr, Server::Binary(binary))
    }

    fn new(
        db: &Arc<TestDb>,
        flags: &[(String, String)],
        addr: SocketAddr,
        server: Server,
    ) -> TestApp {
        let token = flags
            .iter()
            .find(|(k, v)| k == "--admin-token" && !v.is_empty())
            .map(|(_, v)| v.clone());
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        TestApp {
            addr,
            client,
            token,
            db: db.clone(),
            server,
        }
    }

    /// The database this app runs on, to start another app on it.
    pub fn db(&self) -> Arc<TestDb> {
        self.db.clone()
    }

    /// Stops hookflow gracefully (SIGTERM for the binary) and waits until it has; panics unless
    /// it stopped cleanly.
    pub async fn stop(mut self) {
        match &mut self.server {
            Server::InProcess(app) => app.stop().await,
            Server::Binary(binary) => {
                binary.terminate();
                let status = binary.wait_exit(Duration::from_secs(30)).await;
                assert!(status.success(), "hookflow exited with {status}");
            }
        }
    }

    // ---- only a process of its own has these ----

    /// Everything hookflow wrote to stderr so far.
    pub fn log(&self) -> String {
        self.binary("log").log()
    }

    /// Whether hookflow's log has a line containing `text`.
    pub fn log_contains(&self, text: &str) -> bool {
        self.binary("log_contains").log_contains(text)
    }

    /// The first line hookflow printed to stdout before its address that contains `text`.
    pub fn stdout_line_containing(&self, text: &str) -> Option<String> {
        self.binary("stdout_line_containing")
            .stdout_line_containing(text)
    }

    /// The server process's id (for reading its memory from /proc).
    pub fn pid(&self) -> u32 {
        self.binary("pid").pid()
    }

    /// SIGKILL: the process dies at once, mid-whatever.
    pub async fn kill9(mut self) {
        self.binary_mut("kill9").kill9().await;
    }

    /// Sends SIGTERM (a graceful stop) without waiting for the exit.
    pub fn terminate(&self) {
        self.binary("terminate").terminate();
    }

    /// Waits for the process to exit on its own.
    pub async fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        self.binary_mut("wait_exit").wait_exit(deadline).await
    }

    fn binary(&self, what: &str) -> &Binary {
        match &self.server {
            Server::Binary(binary) => binary,
            Server::InProcess(_) => panic!("{}", needs_a_process(what)),
        }
    }

    fn binary_mut(&mut self, what: &str) -> &mut Binary {
        match &mut self.server {
            Server::Binary(binary) => binary,
            Server::InProcess(_) => panic!("{}", needs_a_process(what)),
        }
    }
}

fn needs_a_process(what: &str) -> String {
    format!(
        "TestApp::{what} needs hookflow as a process of its own: start it with \
         TestApp::spawn_binary_with (or spawn_binary)"
    )
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        match &self.server {
            Server::InProcess(app) => app.report(self.addr),
            Server::Binary(binary) => binary.report(self.addr),
        }
    }
}

/// The flags every test app gets unless the test overrides them.
fn default_flags(db_url: &str) -> Vec<(String, String)> {
    [
        ("--database-url", db_url),
        // The binary's; an in-process app is handed a listener on such a port instead.
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

/// The defaults with `extra` applied (see [`TestApp::start_with`]).
fn flags(db_url: &str, extra: &[&str]) -> Vec<(String, String)> {
    assert!(
        extra.len().is_multiple_of(2),
        "extra arguments come in --flag value pairs: {extra:?}"
    );
    let mut flags = default_flags(db_url);
    for pair in extra.chunks(2) {
        let (flag, value) = (pair[0].to_owned(), pair[1].to_owned());
        if flag == "--no-default" {
            // `["--no-default", "--admin-token"]`: start without that default flag.
            flags.retain(|(k, _)| *k != value);
            continue;
        }
        match flags.iter_mut().find(|(k, _)| *k == flag) {
            Some(slot) => slot.1 = value,
            None => flags.push((flag, value)),
        }
    }
    flags
}
