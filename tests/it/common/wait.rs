//! Waiting on a condition with a deadline, never sleeping a guessed time: a test polls what it
//! can observe (an API answer, a receiver's count) and fails, saying what it waited for, when
//! the deadline passes.

use std::time::{Duration, Instant};

/// How long a condition may take before a wait gives up (and the test fails).
pub const WAIT: Duration = Duration::from_secs(15);

/// How often a wait looks again: often enough not to slow a test down, seldom enough not to
/// load the server it polls.
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` until it holds; panics with `what` after `deadline`.
pub async fn wait_until(deadline: Duration, what: &str, check: impl AsyncFnMut() -> bool) {
    if poll(deadline, check, |holds| *holds).await.is_err() {
        panic!("timed out after {deadline:?} waiting until {what}");
    }
}

/// Polls `probe` until it yields a value; panics with `what` after `deadline`.
pub async fn wait_for<T>(
    deadline: Duration,
    what: &str,
    probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    match poll(deadline, probe, Option::is_some).await {
        Ok(Some(value)) => value,
        _ => panic!("timed out after {deadline:?} waiting for {what}"),
    }
}

/// Polls `probe` until `done` holds for what it returns: `Ok` with that, or, once `deadline`
/// has passed, `Err` with the last value seen (for the caller's failure message).
pub async fn poll<T>(
    deadline: Duration,
    mut probe: impl AsyncFnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> Result<T, T> {
    let end = Instant::now() + deadline;
    loop {
        let value = probe().await;
        if done(&value) {
            return Ok(value);
        }
        if Instant::now() >= end {
            return Err(value);
        }
        tokio::time::sleep(POLL).await;
    }
}
