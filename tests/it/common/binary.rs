//! `hookflow serve` as a process of its own, for the tests that need one: a kill -9, a SIGTERM
//! and its drain, the exit status, what the process writes to stdout and stderr (its log), its
//! memory. The others run hookflow in-process (`in_process`), which is faster.

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::common::app::{live_log, STARTUP};
use crate::common::TestDb;

/// A running `hookflow serve` process; killed if still running when dropped.
pub(crate) struct Binary {
    child: Child,
    /// Every line it wrote to stderr so far: its log.
    log: Arc<Mutex<Vec<String>>>,
    /// What it printed to stdout before its address line.
    stdout: Vec<String>,
}

impl Binary {
    /// Spawns `hookflow serve` with `flags` on `db`; returns it once it reports its address.
    pub(crate) async fn spawn(db: &TestDb, flags: &[(String, String)]) -> (Binary, SocketAddr) {
        let mut child = command(db, flags)
            .spawn()
            .expect("starting the hookflow binary");
        let log = keep_log(&mut child);
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        match tokio::time::timeout(STARTUP, read_address(&mut lines)).await {
            Ok(Some((addr, stdout))) => {
                // Drain stdout so the process never blocks on a full pipe.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                (Binary { child, log, stdout }, addr)
            }
            outcome => {
                let why = match outcome {
                    Err(_) => "timed out",
                    Ok(_) => "stdout closed",
                };
                let _ = child.start_kill();
                let status = child.wait().await;
                // Let the log reader catch up with what the process wrote before dying.
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "hookflow did not report its address ({why}; exit: {status:?}); its log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        }
    }

    /// Everything it wrote to stderr so far.
    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Whether its log has a line containing `text`.
    pub(crate) fn log_contains(&self, text: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(text))
    }

    /// The first line it printed to stdout before its address that contains `text`.
    pub(crate) fn stdout_line_containing(&self, text: &str) -> Option<String> {
        self.stdout.iter().find(|l| l.contains(text)).cloned()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("hookflow is still running")
    }

    /// SIGKILL: the process dies at once, mid-whatever.
    pub(crate) async fn kill9(&mut self) {
        self.child.start_kill().expect("sending SIGKILL");
        self.child
            .wait()
            .await
            .expect("waiting for hookflow to die");
    }

    /// Sends SIGTERM (a graceful stop) without waiting for the exit.
    pub(crate) fn terminate(&self) {
        let pid = self.pid();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM {pid} failed: {status}");
    }

    /// Waits for the process to exit on its own.
    pub(crate) async fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        match tokio::time::timeout(deadline, self.child.wait()).await {
            Ok(status) => status.expect("waiting for hookflow"),
            Err(_) => panic!(
                "hookflow did not exit within {deadline:?}; its log:\n{}",
                self.log()
            ),
        }
    }

    /// Prints the end of its log, for a test that failed.
    pub(crate) fn report(&self, addr: SocketAddr) {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(300)..];
        eprintln!(
            "---- hookflow at {addr} (log, last {} lines) ----\n{}\n---- end of hookflow log ----",
            tail.len(),
            tail.join("\n")
        );
    }
}

/// `hookflow serve` with `flags` and nothing from the test's environment: a `HOOKFLOW_*`
/// variable of whoever runs the tests must not change what a test starts.
fn command(db: &TestDb, flags: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookflow"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HOOKFLOW_") {
            command.env_remove(key);
        }
    }
    command
        .arg("serve")
        .args(flags.iter().flat_map(|(k, v)| [k, v]))
        .env("HOOKFLOW_LOG", if live_log() { "debug" } else { "info" })
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(key) = db.secret_key() {
        command.env("HOOKFLOW_SECRET_KEY", key);
    }
    command
}

/// Keeps the child's stderr: in memory for assertions and failure reports, and live under
/// `TEST_LOG`.
fn keep_log(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take().expect("stderr is piped");
    let sink = log.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if live_log() {
                eprintln!("[hookflow] {line}");
            }
            sink.lock().unwrap().push(line);
        }
    });
    log
}

/// Reads stdout up to the `hookflow listening on` line: the address, and the lines before it.
async fn read_address(
    lines: &mut Lines<BufReader<ChildStdout>>,
) -> Option<(SocketAddr, Vec<String>)> {
    let mut before = Vec::new();
    while let Some(line) = lines.next_line().await.ok()? {
        if let Some(rest) = line.strip_prefix("hookflow listening on http://") {
            return Some((rest.trim().parse().ok()?, before));
        }
        before.push(line);
    }
    None
}
