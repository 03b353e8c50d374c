//! hookflow started inside the test process with `hookflow::start_with`, on a listener the test
//! bound itself: no process to spawn, no address to read from stdout, and a backtrace or a
//! debugger sees the server's frames too. Most tests run this way.
//!
//! The test's flags go through the binary's own definitions (`hookflow::cli::ServeArgs`), so
//! they mean what they mean to `hookflow serve`; the environment is not read, as the binary is
//! started without `HOOKFLOW_*` variables.
//!
//! The log: one tracing subscriber for the test process, writing into memory (and to stderr too
//! under `TEST_LOG`); its end is printed when a test fails. nextest runs every test in a process
//! of its own, so that log is the test's. A test that asserts on log lines spawns the binary,
//! whose log is its own whatever runs the tests.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use hookflow::cli::ServeArgs;
use tracing_subscriber::EnvFilter;

use crate::common::app::{live_log, STARTUP};
use crate::common::TestDb;

/// A hookflow running on the test's runtime; asked to stop when dropped.
pub(crate) struct InProcess {
    /// `None` once stopped.
    running: Option<hookflow::Running>,
}

/// How long a graceful stop may take: in-flight calls finish first.
const STOP: Duration = Duration::from_secs(30);

impl InProcess {
    /// Starts hookflow with `flags` on `db`, listening on a port of 127.0.0.1 it is handed.
    pub(crate) async fn start(db: &TestDb, flags: &[(String, String)]) -> (InProcess, SocketAddr) {
        capture_log();
        let args =
            ServeArgs::from_flags(flags.iter().flat_map(|(k, v)| [k, v])).unwrap_or_else(|e| {
                panic!(
                    "`hookflow serve` refuses these flags ({e}); `--config`, `--log` and \
                 `--log-format` are the binary's: start it with TestApp::spawn_binary_with"
                )
            });
        let (mut config, mut options) = args
            .into_config()
            .unwrap_or_else(|e| panic!("`hookflow serve` refuses these flags: {e:#}"));
        if config.secret_key.is_none() {
            // What the binary gets as HOOKFLOW_SECRET_KEY: below the flags.
            config.secret_key = db.secret_key().map(str::to_owned);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the API's listener");
        options.listener = Some(listener);
        let running =
            match tokio::time::timeout(STARTUP, hookflow::start_with(config, options)).await {
                Ok(Ok(running)) => running,
                Ok(Err(err)) => panic!("hookflow did not start: {err:#}\n{}", log_tail()),
                Err(_) => panic!("hookflow did not start within {STARTUP:?}\n{}", log_tail()),
            };
        let addr = running.addr;
        let app = InProcess {
            running: Some(running),
        };
        (app, addr)
    }

    /// Stops hookflow as a SIGTERM stops the binary: the API closes, in-flight calls finish.
    /// Panics unless it stops cleanly.
    pub(crate) async fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        running.shutdown();
        match tokio::time::timeout(STOP, running.wait()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => panic!("hookflow stopped on an error: {err:#}\n{}", log_tail()),
            Err(_) => panic!("hookflow did not stop within {STOP:?}\n{}", log_tail()),
        }
    }

    /// Prints the end of the test process's log, for a test that failed; once, however many
    /// apps the test started.
    pub(crate) fn report(&self, addr: SocketAddr) {
        static REPORTED: AtomicBool = AtomicBool::new(false);
        if !REPORTED.swap(true, Ordering::Relaxed) {
            eprintln!("---- hookflow at {addr}, in-process ----\n{}", log_tail());
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        // Nothing can be awaited here: ask it to stop; the test's runtime ends the rest when
        // the test returns.
        if let Some(running) = &self.running {
            running.shutdown();
        }
    }
}

/// Every log line of the in-process apps so far.
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Installs the process's tracing subscriber (once): the binary's filter (`info`, `debug`
/// under `TEST_LOG`), plain text, into [`LOG`].
fn capture_log() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let filter = if live_log() { "debug" } else { "info" };
        // Fails only when the test installed a subscriber of its own; then that one logs.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(filter))
            .with_ansi(false)
            .with_writer(LogLines::default)
            .try_init();
    });
}

/// The last lines of [`LOG`], framed.
fn log_tail() -> String {
    let log = LOG.lock().unwrap_or_else(|e| e.into_inner());
    let tail = &log[log.len().saturating_sub(300)..];
    format!(
        "---- hookflow log (in-process, last {} lines) ----\n{}\n---- end of hookflow log ----",
        tail.len(),
        tail.join("\n")
    )
}

/// One log event as it is written; its lines go to [`LOG`] when it is complete.
#[derive(Default)]
struct LogLines(Vec<u8>);

impl Write for LogLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLines {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let mut log = LOG.lock().unwrap_or_else(|e| e.into_inner());
        for line in text.lines() {
            if live_log() {
                eprintln!("[hookflow] {line}");
            }
            log.push(line.to_owned());
        }
    }
}
