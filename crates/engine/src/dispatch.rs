//! The delivery loop: claim due calls, send them concurrently, record the outcomes in batches.
//!
//! Claiming and recording are batched for the same reason ingest is group-committed: a round
//! trip to the database costs about the same for one row as for hundreds. A worker never holds a
//! database transaction while a call is on the wire; the lease on each claimed call is what
//! keeps other nodes away from it, and an expired lease returns it to the queue.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info_span, warn, Instrument};

use crate::model::{Attempt, ClaimedCall, Completion, Next, Timestamp};
use crate::retry::{classify, RetryPolicy, Verdict};
use crate::security::SecurityIndex;
use crate::store::{Handoff, Store};
use crate::transport::{Delivery, Transport};

/// How the delivery loop runs.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Calls on the wire at once, per process.
    pub concurrency: usize,
    /// Most calls claimed in one round trip.
    pub claim_batch: u32,
    /// How long a claimed call stays ours. Longer than the delivery timeout, so a live worker
    /// never loses a call it is still sending; short enough that a crashed node's calls come
    /// back soon.
    pub lease: Duration,
    /// How often to look for due retries and other nodes' calls when nothing wakes us.
    pub poll_interval: Duration,
    pub retry: RetryPolicy,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            concurrency: 512,
            claim_batch: 256,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_millis(500),
            retry: RetryPolicy::default(),
        }
    }
}

/// How often expired leases are swept.
const LEASE_SWEEP: Duration = Duration::from_secs(5);
/// Outcomes written in one transaction at most.
const COMPLETE_BATCH: usize = 1024;

/// The link between ingest and the workers of this process: ingest may store fresh calls
/// already claimed and hand them over directly while workers have free slots.
pub struct Workers {
    /// Free delivery slots. Zero until a dispatcher runs; closed when it stops.
    permits: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Vec<ClaimedCall>>,
    lease: Duration,
}

/// The dispatcher's end of [`Workers`].
pub struct WorkerInbox {
    permits: Arc<Semaphore>,
    rx: mpsc::UnboundedReceiver<Vec<ClaimedCall>>,
}

impl Workers {
    pub fn new(lease: Duration) -> (Workers, WorkerInbox) {
        let permits = Arc::new(Semaphore::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Workers {
                permits: permits.clone(),
                tx,
                lease,
            },
            WorkerInbox { permits, rx },
        )
    }

    /// How many calls the next ingest may hand over, and their lease.
    pub fn handoff(&self, now: Timestamp) -> Handoff {
        let max_calls = if self.permits.is_closed() {
            0
        } else {
            self.permits.available_permits()
        };
        Handoff {
            max_calls,
            lease_until: now.plus_millis(self.lease.as_millis() as i64),
        }
    }

    /// Gives committed, already-claimed calls to the workers.
    pub fn hand(&self, calls: Vec<ClaimedCall>) {
        if calls.is_empty() {
            return;
        }
        if let Err(returned) = self.tx.send(calls) {
            // Only possible past shutdown: the calls are leased, so once the lease runs out
            // they are back in the queue for the next start (or another node).
            warn!(
                calls = returned.0.len(),
                "workers stopped; handed-off calls wait for their lease to expire"
            );
        }
    }
}

/// Runs until `shutdown` fires, then stops claiming, delivers what was handed over, lets
/// in-flight calls finish, records their outcomes and returns. Stop ingest before firing
/// `shutdown`, so that nothing is handed over afterwards.
pub async fn run(
    store: Arc<dyn Store>,
    transport: Arc<dyn Transport>,
    config: DispatchConfig,
    queued: Arc<Notify>,
    inbox: WorkerInbox,
    security: Arc<RwLock<Arc<SecurityIndex>>>,
    shutdown: CancellationToken,
) {
    let WorkerInbox { permits, mut rx } = inbox;
    let (done_tx, done_rx) = mpsc::channel::<Completion>(config.concurrency.max(1) * 2);
    let recorder = tokio::spawn(record(store.clone(), done_rx));
    let mut inflight: JoinSet<()> = JoinSet::new();
    let mut last_sweep = tokio::time::Instant::now() - LEASE_SWEEP;
    permits.add_permits(config.concurrency.max(1));
    // When this process's retries are due (ms), so the loop wakes for them instead of waiting
    // for the next poll; retries scheduled by other nodes are found by polling.
    let retries_due: Arc<Mutex<BinaryHeap<Reverse<i64>>>> = Arc::default();
    let spawn = |inflight: &mut JoinSet<()>, call: ClaimedCall| {
        let retries_due = retries_due.clone();
        let transport = transport.clone();
        let done = done_tx.clone();
        let policy = config.retry;
        // Usually a slot is free (we only take as many calls as there are); a call handed
        // over while the slots were being claimed waits for one, under its lease.
        let permit = permits.clone().try_acquire_owned().ok();
        let permits = permits.clone();
        let credentials = security
            .read()
            .expect("security lock is never poisoned: writers only swap an Arc")
            .get(call.trigger_id, call.action_index);
        let span = info_span!("deliver", call_id = %call.id, webhook_id = %call.webhook_id);
        inflight.spawn(
            async move {
                let _permit = match permit {
                    Some(p) => Some(p),
                    None => permits.acquire_owned().await.ok(),
                };
                let delivery = transport.deliver(&call, credentials.as_deref()).await;
                let completion = conclude(&call, delivery, &policy);
                if let Next::RetryAt(at) = completion.next {
                    retries_due
                        .lock()
                        .expect("retry heap lock is never poisoned: no panics while held")
                        .push(Reverse(at.0));
                }
                debug!(next = ?completion.next, "attempt done");
                // The recorder outlives every sender; a failed send means we are past
                // shutdown and the lease will hand the call back.
                let _ = done.send(completion).await;
            }
            .instrument(span),
        );
    };

    loop {
        if shutdown.is_cancelled() {
            break;
        }
        if last_sweep.elapsed() >= LEASE_SWEEP {
            last_sweep = tokio::time::Instant::now();
            match store.release_expired_leases(Timestamp::now()).await {
                Ok(0) => {}
                Ok(n) => warn!(calls = n, "returned calls with expired leases to the queue"),
                Err(err) => error!(error = %err, "could not sweep expired leases"),
            }
        }
        while inflight.try_join_next().is_some() {}
        while let Ok(calls) = rx.try_recv() {
            for call in calls {
                spawn(&mut inflight, call);
            }
        }
        let free = permits.available_permits();
        let mut claimed_full = false;
        if free > 0 {
            let limit = (free as u32).min(config.claim_batch);
            let now = Timestamp::now();
            let lease_until = now.plus_millis(config.lease.as_millis() as i64);
            match store.claim(now, lease_until, limit).await {
                Ok(calls) => {
                    claimed_full = calls.len() as u32 == limit;
                    for call in calls {
                        spawn(&mut inflight, call);
                    }
                }
                Err(err) => {
                    error!(error = %err, "could not claim calls");
                    tokio::select! {
                        _ = tokio::time::sleep(config.poll_interval) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    continue;
                }
            }
        }
        if claimed_full && permits.available_permits() > 0 {
            continue;
        }
        tokio::select! {
            Some(calls) = rx.recv() => {
                for call in calls {
                    spawn(&mut inflight, call);
                }
            }
            _ = queued.notified() => {}
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
            _ = tokio::time::sleep(idle_wait(&retries_due, config.poll_interval)) => {}
            _ = shutdown.cancelled() => {}
        }
    }

    // Drain: what was handed over is delivered, calls on the wire finish and are recorded;
    // nothing new is claimed.
    permits.close();
    rx.close();
    while let Some(calls) = rx.recv().await {
        for call in calls {
            spawn(&mut inflight, call);
        }
    }
    while inflight.join_next().await.is_some() {}
    drop(done_tx);
    let _ = recorder.await;
}

/// How long to wait for work: until the next poll, or until this process's next retry is due
/// (a little after, so that its completion has been recorded).
fn idle_wait(retries_due: &Mutex<BinaryHeap<Reverse<i64>>>, poll: Duration) -> Duration {
    let now = Timestamp::now().0;
    let mut due = retries_due
        .lock()
        .expect("retry heap lock is never poisoned: no panics while held");
    // Retries already due are served by this wake-up's claim.
    while due.peek().is_some_and(|Reverse(at)| *at <= now) {
        due.pop();
    }
    match due.peek() {
        Some(Reverse(at)) => Duration::from_millis((at - now + 5) as u64).min(poll),
        None => poll,
    }
}

/// Decides what an attempt means for its call.
fn conclude(call: &ClaimedCall, delivery: Delivery, policy: &RetryPolicy) -> Completion {
    let attempt_no = call.attempts + 1;
    let error = delivery
        .failure
        .as_ref()
        .map(|(_, message)| message.clone());
    let next = match classify(&delivery) {
        Verdict::Success => Next::Succeeded,
        Verdict::Fail => Next::Failed,
        Verdict::Retry if attempt_no >= call.max_attempts => Next::Failed,
        Verdict::Retry => {
            let retry_no = attempt_no as u32; // attempt 1 failed → retry 1
            let delay = policy.delay(retry_no, delivery.retry_after, &mut rand::thread_rng());
            Next::RetryAt(Timestamp::now().plus_millis(delay.as_millis() as i64))
        }
    };
    Completion {
        call: call.id,
        attempt: Attempt {
            attempt: attempt_no,
            started_at: delivery.started_at,
            duration_ms: delivery.duration.as_millis() as i64,
            status_code: delivery.status.map(i32::from),
            response_headers: delivery.response_headers,
            response_body: delivery.response_body,
            error,
        },
        next,
    }
}

/// Writes outcomes in batches. If the database is briefly unavailable the batch is retried;
/// the calls stay in flight meanwhile and, at worst, their leases expire and they are sent
/// again (at-least-once).
async fn record(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Completion>) {
    let mut batch = Vec::with_capacity(COMPLETE_BATCH);
    while rx.recv_many(&mut batch, COMPLETE_BATCH).await > 0 {
        let mut tries = 0;
        loop {
            match store.complete(&batch, Timestamp::now()).await {
                Ok(()) => break,
                Err(err) if tries < 5 => {
                    tries += 1;
                    warn!(error = %err, tries, "could not record attempts; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(err) => {
                    error!(error = %err, calls = batch.len(), "giving up recording attempts; leases will resend them");
                    break;
                }
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CallId, Method};
    use crate::transport::FailureKind;

    fn call(attempts: i32) -> ClaimedCall {
        ClaimedCall {
            id: CallId(1),
            trigger_id: crate::model::TriggerId(1),
            action_index: 0,
            webhook_id: "msg_1".into(),
            method: Method::Post,
            url: "http://x/".into(),
            headers: vec![],
            body: None,
            attempts,
            max_attempts: 3,
            created_at: Timestamp(0),
        }
    }

    fn delivery(status: Option<u16>, failure: Option<FailureKind>) -> Delivery {
        Delivery {
            started_at: Timestamp(0),
            duration: Duration::from_millis(5),
            status,
            response_headers: vec![],
            response_body: String::new(),
            failure: failure.map(|k| (k, "boom".into())),
            retry_after: None,
        }
    }

    #[test]
    fn retries_until_the_attempts_run_out() {
        let policy = RetryPolicy {
            max_retries: 2,
            base: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
        };
        assert!(matches!(
            conclude(&call(0), delivery(Some(500), None), &policy).next,
            Next::RetryAt(_)
        ));
        assert!(matches!(
            conclude(
                &call(1),
                delivery(None, Some(FailureKind::Timeout)),
                &policy
            )
            .next,
            Next::RetryAt(_)
        ));
        assert_eq!(
            conclude(&call(2), delivery(Some(500), None), &policy).next,
            Next::Failed
        );
        assert_eq!(
            conclude(&call(0), delivery(Some(404), None), &policy).next,
            Next::Failed
        );
        let ok = conclude(&call(1), delivery(Some(200), None), &policy);
        assert_eq!(ok.next, Next::Succeeded);
        assert_eq!(ok.attempt.attempt, 2);
        assert_eq!(
            conclude(
                &call(0),
                delivery(None, Some(FailureKind::Connection)),
                &policy
            )
            .attempt
            .error
            .as_deref(),
            Some("boom")
        );
    }
}
