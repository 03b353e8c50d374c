//! Group commit: concurrent ingest requests share one transaction.
//!
//! Every request waits for its event to be committed before it is answered (an accepted event
//! is durable), but a commit costs about the same for one event as for hundreds. So requests
//! queue on a bounded channel and one task commits whatever has gathered, then answers them all.

use std::sync::{Arc, OnceLock, RwLock, Weak};

use tokio::sync::{mpsc, oneshot, Notify};
use tracing::{error, warn};

use crate::dispatch::Workers;
use crate::model::{Ingested, NewEvent, Timestamp};
use crate::service::Engine;
use crate::store::{Handoff, IngestOutcome, IngestRejection, IngestResult, Store, StoreError};
use crate::triggers::CompiledTriggers;

/// Most requests committed together. Large enough to amortise a commit, small enough that one
/// transaction does not hold SQLite's write lock for long.
const MAX_GROUP: usize = 256;
/// Requests that may wait for a commit before callers feel backpressure.
const QUEUE_DEPTH: usize = 4096;

/// Why an ingest request was not committed.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("shop {0} does not exist")]
    UnknownShop(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("hookflow is shutting down")]
    ShuttingDown,
}

struct Job {
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<Vec<Ingested>, IngestError>>,
}

/// The handle requests submit through.
#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<Job>,
}

impl Ingestor {
    /// Starts the committing task. It ends when every handle is dropped.
    pub fn start(
        store: Arc<dyn Store>,
        triggers: Arc<RwLock<Arc<CompiledTriggers>>>,
        reloader: Arc<OnceLock<Weak<Engine>>>,
        queued: Arc<Notify>,
        workers: Arc<Workers>,
        committers: usize,
    ) -> (Ingestor, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        // Several committers take turns at the channel and commit side by side: on PostgreSQL a
        // commit waits for its WAL flush, and others can gather meanwhile. (On SQLite one is
        // enough: writers take turns anyway.)
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let entities = Arc::new(EntityLocks::new(committers));
        let tasks: Vec<_> = (0..committers.max(1))
            .map(|_| {
                tokio::spawn(run(
                    store.clone(),
                    Matching {
                        triggers: triggers.clone(),
                        reloader: reloader.clone(),
                    },
                    queued.clone(),
                    workers.clone(),
                    rx.clone(),
                    entities.clone(),
                ))
            })
            .collect();
        let task = tokio::spawn(async move {
            for task in tasks {
                let _ = task.await;
            }
        });
        (Ingestor { tx }, task)
    }

    /// Stores, matches and queues the events; returns once they are committed.
    pub async fn submit(&self, events: Vec<NewEvent>) -> Result<Vec<Ingested>, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job { events, reply })
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        answer.await.map_err(|_| IngestError::ShuttingDown)?
    }
}

/// Striped locks over (shop, entity): held by a committer from before its transaction reads
/// the queue until it commits. With one committer there is nothing to take turns with.
struct EntityLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl EntityLocks {
    fn new(committers: usize) -> EntityLocks {
        // Many stripes: two batches of a few dozen entities then rarely share one.
        let stripes = if committers > 1 { 4096 } else { 0 };
        EntityLocks {
            stripes: (0..stripes).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    /// Locks the stripes of every entity in the batch, in stripe order (so two committers
    /// can never wait on each other in a circle).
    async fn lock(&self, requests: &[Vec<NewEvent>]) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        if self.stripes.is_empty() {
            return Vec::new();
        }
        let mut wanted: Vec<usize> = requests
            .iter()
            .flatten()
            .map(|e| {
                let mut h = std::hash::DefaultHasher::new();
                std::hash::Hash::hash(&(e.shop_id, e.entity_id.as_str()), &mut h);
                (std::hash::Hasher::finish(&h) % self.stripes.len() as u64) as usize
            })
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut guards = Vec::with_capacity(wanted.len());
        for stripe in wanted {
            guards.push(self.stripes[stripe].lock().await);
        }
        guards
    }
}

/// The triggers ingest matches against, and the way to reload them when the ingest
/// transaction finds them behind the committed ones.
struct Matching {
    triggers: Arc<RwLock<Arc<CompiledTriggers>>>,
    /// Set once the engine exists (it owns the catalog the triggers compile against).
    reloader: Arc<OnceLock<Weak<Engine>>>,
}

impl Matching {
    fn current(&self) -> Arc<CompiledTriggers> {
        self.triggers
            .read()
            .expect("trigger lock is never poisoned: writers only swap an Arc")
            .clone()
    }

    /// Commits a group against the triggers as committed: when they moved on since they were
    /// loaded, nothing was written; reload and try again. (A change per attempt at most, so
    /// this ends unless triggers change faster than a reload.)
    async fn commit(
        &self,
        store: &dyn Store,
        requests: &[Vec<NewEvent>],
        handoff: impl Fn() -> Handoff,
        now: Timestamp,
    ) -> Result<IngestOutcome, StoreError> {
        loop {
            let planner = self.current();
            match store
                .ingest(requests, planner.as_ref(), handoff(), now)
                .await?
            {
                IngestResult::Committed(outcome) => return Ok(outcome),
                IngestResult::TriggersMoved { generation } => {
                    let engine = self.reloader.get().and_then(Weak::upgrade).ok_or_else(|| {
                        StoreError::new("the triggers changed while hookflow is stopping")
                    })?;
                    if let Err(err) = engine.reload_behind(generation).await {
                        return Err(StoreError::new(format!("reloading triggers: {err}")));
                    }
                }
            }
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    matching: Matching,
    queued: Arc<Notify>,
    workers: Arc<Workers>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    entities: Arc<EntityLocks>,
) {
    let mut jobs = Vec::with_capacity(MAX_GROUP);
    let mut requests = Vec::with_capacity(MAX_GROUP);
    loop {
        let got = rx.lock().await.recv_many(&mut jobs, MAX_GROUP).await;
        if got == 0 {
            break;
        }
        let (events, replies): (Vec<_>, Vec<_>) =
            jobs.drain(..).map(|j| (j.events, j.reply)).unzip();
        requests.clear();
        requests.extend(events);
        // Group commits that share an entity take turns, so the later one sees the earlier
        // one's calls (ordering, coalescing); the others commit side by side.
        let _entities = entities.lock(&requests).await;
        let now = Timestamp::now();
        match matching
            .commit(store.as_ref(), &requests, || workers.handoff(now), now)
            .await
        {
            Ok(outcome) => answer(&requests, outcome, replies, &queued, &workers, now),
            Err(err) if err.unavailable || requests.len() == 1 => {
                error!(error = %err, requests = requests.len(), "ingest transaction failed");
                for reply in replies {
                    let _ = reply.send(Err(IngestError::Store(err.clone())));
                }
            }
            Err(err) => {
                // One member may hold what the database refuses: commit them one by one, so
                // only the culprit fails.
                warn!(error = %err, requests = requests.len(), "group commit failed; committing its requests one by one");
                for (request, reply) in requests.drain(..).zip(replies) {
                    let one = std::slice::from_ref(&request);
                    let now = Timestamp::now();
                    match matching
                        .commit(store.as_ref(), one, || workers.handoff(now), now)
                        .await
                    {
                        Ok(outcome) => answer(one, outcome, vec![reply], &queued, &workers, now),
                        Err(err) => {
                            error!(error = %err, "ingest transaction failed");
                            let _ = reply.send(Err(IngestError::Store(err)));
                        }
                    }
                }
            }
        }
    }
}

/// Answers the requests of a committed group and hands its claimed calls to the workers.
fn answer(
    requests: &[Vec<NewEvent>],
    outcome: IngestOutcome,
    replies: Vec<oneshot::Sender<Result<Vec<Ingested>, IngestError>>>,
    queued: &Notify,
    workers: &Workers,
    now: Timestamp,
) {
    crate::metrics::global().ingested(requests, &outcome.results, outcome.coalesced);
    let handed = outcome.handed_off.len();
    workers.hand(outcome.handed_off);
    let mut queued_calls = 0usize;
    for (result, reply) in outcome.results.into_iter().zip(replies) {
        let answer =
            result.map_err(|IngestRejection::UnknownShop(shop)| IngestError::UnknownShop(shop.0));
        if let Ok(ingested) = &answer {
            queued_calls += ingested
                .iter()
                .filter(|i| !i.duplicate)
                .map(|i| i.calls_queued as usize)
                .sum::<usize>();
        }
        let _ = reply.send(answer);
    }
    if outcome.blocked > 0 {
        workers.note_followers(now);
    }
    // Calls that were not handed over wait in the queue: wake a claimer.
    if queued_calls > handed {
        queued.notify_one();
    }
}
