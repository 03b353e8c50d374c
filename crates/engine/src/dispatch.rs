//! The delivery loop: claim due calls, send them concurrently, record the outcomes in batches.
//!
//! Claiming and recording are batched for the same reason ingest is group-committed: a round
//! trip to the database costs about the same for one row as for hundreds. A worker never holds a
//! database transaction while a call is on the wire; the lease on each claimed call is what
//! keeps other nodes away from it, and an expired lease returns it to the queue.
//!
//! One slow or dead endpoint must not hold the others back: [`HostSlots`] allows at most a few
//! calls on the wire per `host:port`, and claims skip endpoints that are full.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, info_span, warn, Instrument};

use crate::model::{Attempt, ClaimedCall, Completion, Next, Timestamp};
use crate::notify::{Notice, NoticeKind, Notifier};
use crate::policy::ActionPolicy;
use crate::redact;
use crate::retry::{classify, RetryPolicy, Verdict};
use crate::security::ActionIndex;
use crate::store::{ClaimFilter, CompleteOutcome, Handoff, Store, StoreError};
use crate::transport::{Delivery, Transport};

/// How the delivery loop runs.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Calls on the wire at once, per process.
    pub concurrency: usize,
    /// Calls on the wire at once per endpoint (`host:port`), per process.
    pub per_host: usize,
    /// Most calls claimed in one round trip.
    pub claim_batch: u32,
    /// Transactions written side by side by ingest and by the attempt recorder: one for
    /// SQLite (its writers take turns anyway), a few for PostgreSQL, where each commit waits
    /// for its WAL flush.
    pub committers: usize,
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
            per_host: 32,
            claim_batch: 256,
            committers: 1,
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
/// Most full endpoints a claim names to skip.
const MAX_SKIPPED_HOSTS: usize = 200;

/// Per-endpoint slots: at most `limit` calls on the wire per `host:port`.
pub struct HostSlots {
    limit: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl HostSlots {
    pub fn new(limit: usize) -> HostSlots {
        HostSlots {
            limit: limit.max(1),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn semaphore(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self
            .hosts
            .lock()
            .expect("host slots lock is never poisoned: no panics while held");
        if let Some(slots) = hosts.get(host) {
            return slots.clone();
        }
        hosts
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.limit)))
            .clone()
    }

    /// Free slots of an endpoint.
    pub fn room(&self, host: &str) -> usize {
        let hosts = self
            .hosts
            .lock()
            .expect("host slots lock is never poisoned: no panics while held");
        hosts
            .get(host)
            .map_or(self.limit, |s| s.available_permits())
    }

    /// What a claim may take now: endpoints with no free slot, and busy endpoints with the
    /// slots they have left (idle entries are dropped on the way). Endpoints in neither list
    /// have every slot free.
    pub fn occupancy(&self) -> (Vec<String>, Vec<(String, u32)>) {
        let mut hosts = self
            .hosts
            .lock()
            .expect("host slots lock is never poisoned: no panics while held");
        hosts.retain(|_, s| s.available_permits() < self.limit || Arc::strong_count(s) > 1);
        let mut full = Vec::new();
        let mut room = Vec::new();
        for (host, slots) in hosts.iter() {
            match slots.available_permits() {
                0 if full.len() < MAX_SKIPPED_HOSTS => full.push(host.clone()),
                0 => {}
                n if n < self.limit && room.len() < MAX_SKIPPED_HOSTS => {
                    room.push((host.clone(), n as u32))
                }
                _ => {}
            }
        }
        (full, room)
    }

    /// Endpoints with no free slot (idle entries are dropped on the way).
    pub fn full(&self) -> Vec<String> {
        let mut hosts = self
            .hosts
            .lock()
            .expect("host slots lock is never poisoned: no panics while held");
        hosts.retain(|_, s| s.available_permits() < self.limit || Arc::strong_count(s) > 1);
        hosts
            .iter()
            .filter(|(_, s)| s.available_permits() == 0)
            .map(|(h, _)| h.clone())
            .take(MAX_SKIPPED_HOSTS)
            .collect()
    }
}

/// The link between ingest and the workers of this process: ingest may store fresh calls
/// already claimed and hand them over directly while workers (and their endpoints) have free
/// slots.
pub struct Workers {
    /// Free delivery slots. Zero until a dispatcher runs; closed when it stops.
    permits: Arc<Semaphore>,
    hosts: Arc<HostSlots>,
    followers: Arc<Followers>,
    tx: mpsc::UnboundedSender<Vec<ClaimedCall>>,
    /// The configured lease; handed-over calls get the same lease as claimed ones.
    lease: Duration,
    /// For the longest action timeout, which a lease must outlast.
    actions: Arc<RwLock<Arc<ActionIndex>>>,
}

/// How long after ingest last stored a waiting follower the loop keeps claiming after every
/// finished call; later followers are found by polling.
const FOLLOWERS_WINDOW_MS: i64 = 60_000;

/// Whether calls waiting behind an earlier call of their entity (ordered delivery) may exist.
#[derive(Default)]
struct Followers {
    /// Until when (ms) to expect them.
    until: AtomicI64,
}

impl Followers {
    fn waiting(&self, now: Timestamp) -> bool {
        self.until.load(AtomicOrdering::Relaxed) > now.0
    }
}

/// The dispatcher's end of [`Workers`].
pub struct WorkerInbox {
    permits: Arc<Semaphore>,
    hosts: Arc<HostSlots>,
    followers: Arc<Followers>,
    rx: mpsc::UnboundedReceiver<Vec<ClaimedCall>>,
}

impl Workers {
    pub fn new(
        lease: Duration,
        per_host: usize,
        actions: Arc<RwLock<Arc<ActionIndex>>>,
    ) -> (Workers, WorkerInbox) {
        let permits = Arc::new(Semaphore::new(0));
        let hosts = Arc::new(HostSlots::new(per_host));
        let followers = Arc::new(Followers::default());
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Workers {
                permits: permits.clone(),
                hosts: hosts.clone(),
                followers: followers.clone(),
                tx,
                lease,
                actions,
            },
            WorkerInbox {
                permits,
                hosts,
                followers,
                rx,
            },
        )
    }

    /// Ingest stored calls that wait for an earlier call of their entity: finished calls are
    /// then a reason to claim.
    pub fn note_followers(&self, now: Timestamp) {
        self.followers
            .until
            .fetch_max(now.0 + FOLLOWERS_WINDOW_MS, AtomicOrdering::Relaxed);
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
            lease_until: now.plus_millis(lease_for(self.lease, &self.actions).as_millis() as i64),
            hosts: Some(self.hosts.clone()),
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

/// What the delivery loop works with.
pub struct Dispatcher {
    pub store: Arc<dyn Store>,
    pub transport: Arc<dyn Transport>,
    pub config: DispatchConfig,
    /// Woken when calls are queued (or unblocked).
    pub queued: Arc<Notify>,
    pub inbox: WorkerInbox,
    /// Credentials and policies of every action.
    pub actions: Arc<RwLock<Arc<ActionIndex>>>,
    pub notifier: Option<Arc<dyn Notifier>>,
    /// Woken when an action was deactivated, so the triggers are reloaded.
    pub reload: Arc<Notify>,
}

/// How much longer than its longest attempt a lease lasts: the attempt's outcome must be
/// recorded before another node may take the call.
const LEASE_MARGIN: Duration = Duration::from_secs(10);

/// The lease of a claimed call: `configured`, or longer when an action allows its attempts
/// more time, so a live worker never loses a call it is still sending.
fn lease_for(configured: Duration, actions: &RwLock<Arc<ActionIndex>>) -> Duration {
    let longest = actions
        .read()
        .expect("action index lock is never poisoned: writers only swap an Arc")
        .longest_timeout();
    match longest {
        Some(t) => configured.max(t + LEASE_MARGIN),
        None => configured,
    }
}

/// Which endpoints a claim round claims for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    All,
    BusyEndpoints,
}

/// What woke the loop.
enum Wake {
    /// Calls handed over by ingest, already claimed.
    Handed(Vec<ClaimedCall>),
    /// Something may be due: calls were queued, a batch was recorded, a retry fell due, the
    /// poll came round, or a slot freed up while calls were left behind.
    Look,
    /// A slot freed up while an endpoint with calls on the wire had calls left behind: claim
    /// for the endpoints with room.
    Freed,
    /// A slot freed up, but the last claim left nothing behind.
    Idle,
    Shutdown,
}

/// The delivery loop's state. Claims follow freed slots and handed-over calls; the poll only
/// finds work that other nodes (or the clock) scheduled.
struct DispatchLoop {
    /// Where calls are claimed from and outcomes recorded.
    store: Arc<dyn Store>,
    /// Sends the calls.
    transport: Arc<dyn Transport>,
    config: DispatchConfig,
    /// Ingest stored calls in the queue (not handed over): a reason to claim.
    queued: Arc<Notify>,
    /// The recorder committed a batch: finished calls may unblock their entity's next call.
    freed: Arc<Notify>,
    /// Credentials and policies of every action, as of the last trigger reload.
    actions: Arc<RwLock<Arc<ActionIndex>>>,
    /// Free delivery slots of this process (shared with ingest's handoff).
    permits: Arc<Semaphore>,
    /// Free slots per endpoint (shared with ingest's handoff).
    hosts: Arc<HostSlots>,
    /// Whether calls wait behind an earlier call of their entity.
    followers: Arc<Followers>,
    /// Calls ingest handed over.
    rx: mpsc::UnboundedReceiver<Vec<ClaimedCall>>,
    /// Calls on the wire.
    inflight: JoinSet<()>,
    /// Outcomes on their way to the recorders.
    done: mpsc::Sender<Completion>,
    /// When this process's retries are due (ms), so the loop wakes for them instead of
    /// waiting for the poll. The recorder adds them once committed.
    retries_due: Arc<Mutex<BinaryHeap<Reverse<i64>>>>,
    /// The `now` of the last claim: retries due before it were served by it.
    last_claim: Timestamp,
    /// The last claim may have left due calls behind: it took all it asked for, or found no
    /// free slot. Then a freed slot is a reason for a claim over every endpoint, at once.
    left_behind: bool,
    /// An endpoint got as many calls as it had room for, or was skipped as full: more of its
    /// calls may be due. Then a freed slot claims for the endpoints with room, at once.
    hosts_behind: bool,
    /// When expired leases were last swept.
    last_sweep: tokio::time::Instant,
}

impl Dispatcher {
    /// Runs until `shutdown` fires, then stops claiming, delivers what was handed over, lets
    /// in-flight calls finish, records their outcomes and returns. Stop ingest before firing
    /// `shutdown`, so that nothing is handed over afterwards.
    pub async fn run(self, shutdown: CancellationToken) {
        let Dispatcher {
            store,
            transport,
            config,
            queued,
            inbox,
            actions,
            notifier,
            reload,
        } = self;
        let freed = Arc::new(Notify::new());
        let (done, done_rx) = mpsc::channel::<Completion>(config.concurrency.max(1) * 2);
        let retries_due: Arc<Mutex<BinaryHeap<Reverse<i64>>>> = Arc::default();
        let done_rx = Arc::new(tokio::sync::Mutex::new(done_rx));
        let recorders: Vec<_> = (0..config.committers.max(1))
            .map(|_| {
                tokio::spawn(record(
                    store.clone(),
                    done_rx.clone(),
                    freed.clone(),
                    notifier.clone(),
                    reload.clone(),
                    retries_due.clone(),
                ))
            })
            .collect();
        inbox.permits.add_permits(config.concurrency.max(1));
        let mut lp = DispatchLoop {
            store,
            transport,
            config,
            queued,
            freed,
            actions,
            permits: inbox.permits,
            hosts: inbox.hosts,
            followers: inbox.followers,
            rx: inbox.rx,
            inflight: JoinSet::new(),
            done,
            retries_due,
            last_claim: Timestamp(0),
            left_behind: true,
            hosts_behind: false,
            last_sweep: tokio::time::Instant::now() - LEASE_SWEEP,
        };
        let mut look = Some(Claim::All);
        while !shutdown.is_cancelled() {
            lp.sweep_leases().await;
            let claimed = match look {
                Some(scope) => lp.claim_round(scope).await,
                None => Ok(()),
            };
            if claimed.is_err() {
                tokio::select! {
                    _ = tokio::time::sleep(lp.config.poll_interval) => {}
                    _ = shutdown.cancelled() => {}
                }
                continue;
            }
            look = match lp.wait_for_work(&shutdown).await {
                Wake::Handed(calls) => {
                    for call in calls {
                        lp.start_call(call);
                    }
                    None
                }
                Wake::Look => Some(Claim::All),
                Wake::Freed => Some(Claim::BusyEndpoints),
                Wake::Idle => None,
                Wake::Shutdown => break,
            };
        }
        lp.drain().await;
        for recorder in recorders {
            let _ = recorder.await;
        }
    }
}

impl DispatchLoop {
    /// Returns calls whose lease ran out (a node died with them on the wire) to the queue,
    /// every few seconds.
    async fn sweep_leases(&mut self) {
        if self.last_sweep.elapsed() < LEASE_SWEEP {
            return;
        }
        self.last_sweep = tokio::time::Instant::now();
        match self.store.release_expired_leases(Timestamp::now()).await {
            Ok(0) => {}
            Ok(n) => warn!(calls = n, "returned calls with expired leases to the queue"),
            Err(err) => error!(error = %err, "could not sweep expired leases"),
        }
    }

    /// The lease a claim takes: the configured one, or longer when an action allows its
    /// attempts more time, so a live worker never loses a call it is still sending.
    fn lease(&self) -> Duration {
        lease_for(self.config.lease, &self.actions)
    }

    /// Claims due calls for the free slots, endpoint by endpoint, and starts them; repeats
    /// while claims come back full and slots are free. `BusyEndpoints`: only for endpoints
    /// with calls on the wire and room for more (a freed slot).
    async fn claim_round(&mut self, mut scope: Claim) -> Result<(), StoreError> {
        loop {
            while let Ok(calls) = self.rx.try_recv() {
                for call in calls {
                    self.start_call(call);
                }
            }
            let free = self.permits.available_permits();
            if free == 0 {
                self.left_behind = true;
                return Ok(());
            }
            if self.left_behind {
                // Calls may wait for any endpoint: look at all of them.
                scope = Claim::All;
            }
            let (full_hosts, room) = self.hosts.occupancy();
            let mut limit = (free as u32).min(self.config.claim_batch);
            let mut only_hosts = Vec::new();
            if scope == Claim::BusyEndpoints {
                if room.is_empty() {
                    self.hosts_behind = !full_hosts.is_empty();
                    return Ok(());
                }
                limit = limit.min(room.iter().map(|(_, n)| *n).sum());
                only_hosts = room.iter().map(|(h, _)| h.clone()).collect();
            }
            let now = Timestamp::now();
            if scope == Claim::All {
                self.last_claim = now;
            }
            let lease_until = now.plus_millis(self.lease().as_millis() as i64);
            let filter = ClaimFilter {
                full_hosts,
                room,
                per_host: self.hosts.limit() as u32,
                only_hosts,
            };
            let calls = match self.store.claim(now, lease_until, limit, &filter).await {
                Ok(calls) => calls,
                Err(err) => {
                    error!(error = %err, "could not claim calls");
                    self.left_behind = true;
                    return Err(err);
                }
            };
            let saturated = calls.len() as u32 == limit;
            if scope == Claim::All {
                self.left_behind = saturated;
            }
            self.hosts_behind = !filter.full_hosts.is_empty() || endpoint_filled(&calls, &filter);
            for call in calls {
                self.start_call(call);
            }
            if !(saturated && self.permits.available_permits() > 0) {
                return Ok(());
            }
        }
    }

    /// Puts a claimed call on the wire in a task of its own, under its slots.
    fn start_call(&mut self, call: ClaimedCall) {
        let transport = self.transport.clone();
        let done = self.done.clone();
        // Usually a slot is free (we only take as many calls as there are); a call handed
        // over while the slots were being claimed waits for one, under its lease.
        let permit = self.permits.clone().try_acquire_owned().ok();
        let permits = self.permits.clone();
        let host = self.hosts.semaphore(&call.target_host);
        let host_permit = host.clone().try_acquire_owned().ok();
        let (credentials, policy) = {
            let index = self
                .actions
                .read()
                .expect("action index lock is never poisoned: writers only swap an Arc");
            (
                index.get(call.action.trigger, i32::from(call.action.index)),
                index.policy(call.action.trigger, i32::from(call.action.index)),
            )
        };
        let span = info_span!("deliver", call_id = %call.id, webhook_id = %call.webhook_id);
        self.inflight.spawn(
            async move {
                let _permit = wait_for(permit, permits).await;
                let _host = wait_for(host_permit, host).await;
                let delivery = transport
                    .deliver(&call, credentials.as_deref(), policy.timeout)
                    .await;
                let completion = conclude(&call, delivery, &policy);
                crate::metrics::observe_attempt(&call, &completion);
                // The recorder outlives every sender; a failed send means we are past
                // shutdown and the lease will hand the call back.
                let _ = done.send(completion).await;
            }
            .instrument(span),
        );
    }

    /// Waits for a reason to claim, or for calls handed over.
    async fn wait_for_work(&mut self, shutdown: &CancellationToken) -> Wake {
        while self.inflight.try_join_next().is_some() {}
        let wait = idle_wait(
            &self.retries_due,
            self.last_claim,
            self.config.poll_interval,
        );
        let watch_slots = !self.inflight.is_empty();
        tokio::select! {
            Some(calls) = self.rx.recv() => Wake::Handed(calls),
            _ = self.queued.notified() => Wake::Look,
            _ = self.freed.notified() => {
                if self.left_behind || self.followers.waiting(Timestamp::now()) {
                    Wake::Look
                } else {
                    Wake::Idle
                }
            }
            Some(_) = self.inflight.join_next(), if watch_slots => {
                // A slot is free: claim for it if the last claim left calls behind.
                if self.left_behind {
                    Wake::Look
                } else if self.hosts_behind {
                    Wake::Freed
                } else {
                    Wake::Idle
                }
            }
            _ = tokio::time::sleep(wait) => Wake::Look,
            _ = shutdown.cancelled() => Wake::Shutdown,
        }
    }

    /// After shutdown: what was handed over is delivered, calls on the wire finish and are
    /// recorded; nothing new is claimed.
    async fn drain(mut self) {
        self.permits.close();
        self.rx.close();
        while let Some(calls) = self.rx.recv().await {
            for call in calls {
                self.start_call(call);
            }
        }
        while self.inflight.join_next().await.is_some() {}
    }
}

/// Whether a claim gave some endpoint all the calls it had room for (then more of its calls
/// may be due).
fn endpoint_filled(calls: &[ClaimedCall], filter: &ClaimFilter) -> bool {
    if calls.is_empty() {
        return false;
    }
    let mut per_host: HashMap<&str, u32> = HashMap::new();
    for call in calls {
        *per_host.entry(call.target_host.as_str()).or_default() += 1;
    }
    per_host.iter().any(|(host, n)| {
        let room = filter
            .room
            .iter()
            .find(|(h, _)| h == host)
            .map_or(filter.per_host, |(_, r)| *r);
        room > 0 && *n >= room
    })
}

/// A slot: the one taken up front, or the next one to free up. A closed semaphore (shutdown)
/// lets the call through: it is already claimed and should go out.
async fn wait_for(
    taken: Option<OwnedSemaphorePermit>,
    slots: Arc<Semaphore>,
) -> Option<OwnedSemaphorePermit> {
    match taken {
        Some(permit) => Some(permit),
        None => slots.acquire_owned().await.ok(),
    }
}

/// How long to wait for work: until the next poll, or until this process's next retry is due.
/// Retries due by `last_claim` were served by that claim and are forgotten.
fn idle_wait(
    retries_due: &Mutex<BinaryHeap<Reverse<i64>>>,
    last_claim: Timestamp,
    poll: Duration,
) -> Duration {
    let mut due = retries_due
        .lock()
        .expect("retry heap lock is never poisoned: no panics while held");
    while due.peek().is_some_and(|Reverse(at)| *at <= last_claim.0) {
        due.pop();
    }
    match due.peek() {
        Some(Reverse(at)) => {
            Duration::from_millis((at - Timestamp::now().0).max(1) as u64).min(poll)
        }
        None => poll,
    }
}

/// Decides what an attempt means for its call, under its action's policy.
fn conclude(call: &ClaimedCall, delivery: Delivery, policy: &ActionPolicy) -> Completion {
    let attempt_no = call.attempts + 1;
    // The attempt log, the call's last error, the log line and notices all show this: a URL
    // a transport quotes in it loses its credentials here.
    let error = delivery
        .failure
        .as_ref()
        .map(|(_, message)| redact::urls_in(message).into_owned());
    let mut exhausted = false;
    let next = match classify(&delivery, &policy.retry_on) {
        Verdict::Success => Next::Succeeded,
        Verdict::Fail => Next::Failed,
        Verdict::Retry if attempt_no >= call.max_attempts => {
            exhausted = true;
            Next::Failed
        }
        Verdict::Retry => {
            let retry_no = attempt_no as u32; // attempt 1 failed → retry 1
            let delay = policy
                .retry
                .delay(retry_no, delivery.retry_after, &mut rand::thread_rng());
            let at = Timestamp::now().plus_millis(delay.as_millis() as i64);
            // A resent call has a budget beyond its policy's (the attempts it made before,
            // plus a fresh set): its age window starts again with the resend, and as the
            // queue keeps no resend time, its retry count alone bounds it.
            let resent = call.max_attempts > policy.retry.max_attempts();
            let too_old = !resent
                && policy
                    .max_age
                    .is_some_and(|age| at.0 > call.created_at.0 + age.as_millis() as i64);
            if too_old {
                exhausted = true;
                Next::Failed
            } else {
                Next::RetryAt(at)
            }
        }
    };
    Completion {
        call: call.id,
        action: call.action,
        deactivate_after: policy.deactivate_after,
        deactivate_now: exhausted && policy.deactivate_when_exhausted,
        lease_until: call.lease_until,
        attempt: Attempt {
            attempt: attempt_no,
            started_at: delivery.started_at,
            duration_ms: delivery.duration.as_millis() as i64,
            status_code: delivery.status.map(i32::from),
            request_headers: delivery.request_headers,
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
async fn record(
    store: Arc<dyn Store>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Completion>>>,
    freed: Arc<Notify>,
    notifier: Option<Arc<dyn Notifier>>,
    reload: Arc<Notify>,
    retries_due: Arc<Mutex<BinaryHeap<Reverse<i64>>>>,
) {
    let mut batch = Vec::with_capacity(COMPLETE_BATCH);
    loop {
        if rx.lock().await.recv_many(&mut batch, COMPLETE_BATCH).await == 0 {
            break;
        }
        let mut tries = 0;
        let outcome = loop {
            match store.complete(&batch, Timestamp::now()).await {
                Ok(outcome) => break Some(outcome),
                Err(err) if tries < 5 => {
                    tries += 1;
                    warn!(error = %err, tries, "could not record attempts; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(err) => {
                    error!(error = %err, calls = batch.len(), "giving up recording attempts; leases will resend them");
                    break None;
                }
            }
        };
        if outcome.is_some() {
            remember_retries(&retries_due, &batch, Timestamp::now());
        }
        batch.clear();
        // A finished call may unblock the next call of its entity (ordered delivery).
        freed.notify_one();
        if let Some(outcome) = outcome {
            if !outcome.deactivated.is_empty() {
                reload.notify_one();
            }
            if let Some(notifier) = &notifier {
                send_notices(store.as_ref(), notifier.as_ref(), outcome).await;
            }
        }
    }
}

/// Notes when the retries of a just-recorded batch can be claimed: once due and committed,
/// whichever is later. A claim that began before the commit (`now`) did not see them, however
/// late it ran, so each entry is kept past every claim begun until now (see `idle_wait`);
/// recording that took longer than a retry's delay must not leave the retry for the next poll.
fn remember_retries(
    retries_due: &Mutex<BinaryHeap<Reverse<i64>>>,
    batch: &[Completion],
    now: Timestamp,
) {
    let visible = now.0 + 1;
    let mut due = retries_due
        .lock()
        .expect("retry heap lock is never poisoned: no panics while held");
    for c in batch {
        if let Next::RetryAt(at) = c.next {
            due.push(Reverse(at.0.max(visible)));
        }
    }
}

/// Tells people about calls that failed for good and actions that were deactivated.
async fn send_notices(store: &dyn Store, notifier: &dyn Notifier, outcome: CompleteOutcome) {
    for failed in outcome.failed {
        match notice(store, NoticeKind::CallFailed, &failed).await {
            Ok(notice) => notifier.notify(&notice).await,
            Err(err) => warn!(error = %err, "could not prepare a failure notice"),
        }
    }
    for failed in outcome.deactivated {
        info!(trigger_id = %failed.action.trigger, action = failed.action.index, "action deactivated by its retry policy");
        match notice(store, NoticeKind::ActionDeactivated, &failed).await {
            Ok(notice) => notifier.notify(&notice).await,
            Err(err) => warn!(error = %err, "could not prepare a deactivation notice"),
        }
    }
}

async fn notice(
    store: &dyn Store,
    kind: NoticeKind,
    failed: &crate::store::FailedCall,
) -> Result<Notice, crate::store::StoreError> {
    let item = store.get_call(failed.call).await?.map(|(item, _)| item);
    let trigger = store.get_trigger(failed.action.trigger).await?;
    let shop_id = item
        .as_ref()
        .map(|i| i.shop_id)
        .or(trigger.as_ref().and_then(|t| t.draft.shop_id));
    let shop = match shop_id {
        Some(id) => store.get_shop(id).await?,
        None => None,
    };
    Ok(Notice {
        kind,
        shop_id,
        shop_email: shop.and_then(|s| s.notification_email),
        trigger_id: failed.action.trigger,
        trigger_name: trigger.map(|t| t.draft.name).unwrap_or_default(),
        action_index: i32::from(failed.action.index),
        url: item.map(|i| redact::url(&i.url)).unwrap_or_default(),
        call_id: Some(failed.call),
        last_status_code: failed.status_code,
        last_error: failed.error.clone(),
        at: Timestamp::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ActionRef, CallId, Method, TriggerId};
    use crate::transport::FailureKind;

    fn call(attempts: i32) -> ClaimedCall {
        ClaimedCall {
            id: CallId(1),
            action: ActionRef::new(TriggerId(1), 0),
            webhook_id: "msg_1".into(),
            method: Method::Post,
            url: "http://x/".into(),
            headers: vec![],
            body: None,
            attempts,
            max_attempts: 3,
            created_at: Timestamp::now(),
            target_host: "x:80".into(),
            lease_until: Timestamp::now(),
        }
    }

    fn delivery(status: Option<u16>, failure: Option<FailureKind>) -> Delivery {
        Delivery {
            started_at: Timestamp(0),
            request_headers: vec![],
            duration: Duration::from_millis(5),
            status,
            response_headers: vec![],
            response_body: String::new(),
            failure: failure.map(|k| (k, "boom".into())),
            retry_after: None,
        }
    }

    #[test]
    fn a_retry_recorded_after_a_claim_began_is_not_left_for_the_next_poll() {
        // The retry fell due at 1 000, while its attempt was still being recorded; a claim
        // began at 1 010, before the recording committed at 1 020, so it could not see it.
        let poll = Duration::from_millis(500);
        let heap = Mutex::new(BinaryHeap::new());
        let completion = conclude(&call(0), delivery(Some(503), None), &policy());
        let recorded = Completion {
            next: Next::RetryAt(Timestamp(1_000)),
            ..completion
        };
        remember_retries(&heap, &[recorded], Timestamp(1_020));
        // The dispatcher looks again at once, rather than after a poll interval.
        let wait = idle_wait(&heap, Timestamp(1_010), poll);
        assert!(wait < Duration::from_millis(5), "{wait:?}");
        // A claim begun after the commit serves it; then it is forgotten.
        assert_eq!(idle_wait(&heap, Timestamp(1_021), poll), poll);
    }

    fn policy() -> ActionPolicy {
        ActionPolicy::server(RetryPolicy {
            max_retries: 2,
            base: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
        })
    }

    #[test]
    fn retries_until_the_attempts_run_out() {
        let policy = policy();
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

    #[test]
    fn policies_retry_chosen_4xx_stop_at_max_age_and_deactivate() {
        let mut p = policy();
        p.retry_on.codes = vec![409];
        assert!(matches!(
            conclude(&call(0), delivery(Some(409), None), &p).next,
            Next::RetryAt(_)
        ));
        p.max_age = Some(Duration::from_millis(1));
        p.deactivate_when_exhausted = true;
        let done = conclude(&call(0), delivery(Some(500), None), &p);
        assert_eq!(
            done.next,
            Next::Failed,
            "a retry past the call's max age is not scheduled"
        );
        assert!(done.deactivate_now);
        let not_exhausted = conclude(&call(0), delivery(Some(404), None), &p);
        assert!(
            !not_exhausted.deactivate_now,
            "a 4xx failure is not an exhausted policy"
        );
        // A resent call (3 attempts made, 3 more allowed) starts a new age window.
        let resent = ClaimedCall {
            max_attempts: 6,
            created_at: Timestamp(0),
            ..call(3)
        };
        let done = conclude(&resent, delivery(Some(500), None), &p);
        assert!(matches!(done.next, Next::RetryAt(_)), "{:?}", done.next);
        assert!(!done.deactivate_now);
    }

    #[test]
    fn endpoints_have_a_few_slots_each() {
        let slots = HostSlots::new(2);
        let a = slots.semaphore("a:80");
        let _one = a.clone().try_acquire_owned().unwrap();
        assert_eq!(slots.room("a:80"), 1);
        assert!(slots.full().is_empty());
        let _two = a.clone().try_acquire_owned().unwrap();
        assert_eq!(slots.full(), vec!["a:80".to_string()]);
        assert_eq!(slots.room("b:80"), 2);
    }
}
