//! The event log: what came in and what became of each call it queued; resending an event's
//! calls or many calls at once; and retention, which keeps the log (and the queue) from
//! growing forever.
//!
//! Retention runs in the background in small batches, each its own short transaction, so
//! delivery and ingest never wait long behind it.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info};

use crate::model::{Attempt, CallStatus, EventId, ShopId, Timestamp, TriggerId};
use crate::service::{Engine, EngineError};
use crate::store::{
    Activity, ActivityFilter, EventDetail, EventFilter, LoggedEvent, ResendFilter, Store,
    StoreError,
};

/// How long finished calls and events are kept, and how pruning paces itself.
#[derive(Debug, Clone)]
pub struct RetentionPolicy {
    /// Succeeded calls (and their attempts) go this long after their last change.
    pub succeeded: Duration,
    /// Failed, cancelled and skipped calls go this long after their last change.
    pub failed: Duration,
    /// How often pruning runs.
    pub interval: Duration,
    /// When the first run starts after start-up: soon, so that a node restarted often
    /// still prunes, but not while it is busy starting.
    pub first_run: Duration,
    /// Rows deleted per statement; each batch is its own transaction.
    pub batch: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            succeeded: Duration::from_secs(30 * 86_400),
            failed: Duration::from_secs(90 * 86_400),
            interval: Duration::from_secs(5 * 60),
            first_run: Duration::from_secs(20),
            batch: 500,
        }
    }
}

/// What one pruning run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub succeeded_calls: u64,
    pub other_calls: u64,
    pub events: u64,
}

/// Calls kept for [`RetentionPolicy::failed`]: finished without success.
const UNSUCCESSFUL: [CallStatus; 4] = [
    CallStatus::Failed,
    CallStatus::Cancelled,
    CallStatus::Skipped,
    CallStatus::Superseded,
];

/// An event's calls' attempt errors without URL credentials (`redact`).
fn redacted(mut event: LoggedEvent) -> LoggedEvent {
    for call in &mut event.calls {
        if let Some(log) = call.attempt_log.take() {
            call.attempt_log = Some(log.into_iter().map(Attempt::redacted).collect());
        }
    }
    event
}

impl Engine {
    /// A trigger's activity (its evaluations, newest first, with the calls they made); kept
    /// as long as the events are.
    pub async fn trigger_activity(
        &self,
        id: TriggerId,
        filter: &ActivityFilter,
    ) -> Result<Vec<Activity>, EngineError> {
        self.get_trigger(id).await?;
        Ok(self.store.trigger_activity(id, filter).await?)
    }

    /// The event log, newest first.
    pub async fn list_events(&self, filter: &EventFilter) -> Result<Vec<LoggedEvent>, EngineError> {
        let events = self.store.list_events(filter).await?;
        Ok(events.into_iter().map(redacted).collect())
    }

    pub async fn get_event(
        &self,
        id: EventId,
        detail: EventDetail,
    ) -> Result<LoggedEvent, EngineError> {
        self.store
            .get_event(id, detail)
            .await?
            .map(redacted)
            .ok_or_else(|| event_not_found(id))
    }

    /// Queues every call of an event again, due now and with a fresh set of attempts under
    /// its action's retry policy, like the retry of a single call; calls being delivered
    /// right now are left alone. Returns how many calls were queued.
    pub async fn resend_event(&self, id: EventId) -> Result<u64, EngineError> {
        let requeued = self
            .store
            .resend_event(id, &self.attempt_budget(None), Timestamp::now())
            .await?
            .ok_or_else(|| event_not_found(id))?;
        if requeued > 0 {
            self.queued.notify_one();
        }
        info!(event_id = %id, requeued, "event resent");
        Ok(requeued)
    }

    /// Queues every call matching the request again (one statement), due now with a fresh
    /// set of attempts under each call's action's retry policy. See [`ResendRequest::into_filter`] for what a request must say.
    pub async fn resend_calls(&self, request: ResendRequest) -> Result<u64, EngineError> {
        let filter = request.into_filter()?;
        let requeued = self
            .store
            .resend_calls(
                &filter,
                &self.attempt_budget(filter.trigger_id),
                Timestamp::now(),
            )
            .await?;
        if requeued > 0 {
            self.queued.notify_one();
        }
        info!(
            requeued,
            status = filter.status.as_str(),
            trigger_id = ?filter.trigger_id.map(|t| t.0),
            event_type = ?filter.event_type,
            "calls resent in bulk"
        );
        Ok(requeued)
    }

    /// Starts pruning in the background: shortly after start, then every
    /// [`RetentionPolicy::interval`]. It stops between batches once `shutdown` fires.
    pub fn spawn_retention(
        &self,
        policy: RetentionPolicy,
        shutdown: CancellationToken,
    ) -> JoinHandle<()> {
        tokio::spawn(run_retention(self.store.clone(), policy, shutdown))
    }
}

/// A bulk resend as asked for: every criterion optional, the status defaulting to `failed`.
#[derive(Debug, Clone, Default)]
pub struct ResendRequest {
    pub status: Option<CallStatus>,
    pub trigger_id: Option<TriggerId>,
    pub event_type: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub shop_id: Option<ShopId>,
    /// The caller's shops (`None`: every shop).
    pub shops: Option<Vec<ShopId>>,
}

impl ResendRequest {
    /// Checks the request: it must name at least one criterion (an empty one would resend
    /// every failed call there is, which is rarely what a slip of the keyboard means), and
    /// calls in flight cannot be resent.
    pub fn into_filter(self) -> Result<ResendFilter, EngineError> {
        let ResendRequest {
            status,
            trigger_id,
            event_type,
            from,
            to,
            shop_id,
            shops,
        } = self;
        if status.is_none()
            && trigger_id.is_none()
            && event_type.is_none()
            && from.is_none()
            && to.is_none()
            && shop_id.is_none()
        {
            return Err(EngineError::Invalid {
                field: "filter".into(),
                message: "name at least one of triggerId, status, eventType, shopId, from, to"
                    .into(),
            });
        }
        let status = status.unwrap_or(CallStatus::Failed);
        if status == CallStatus::InFlight {
            return Err(EngineError::Invalid {
                field: "status".into(),
                message: "calls in flight are being delivered and cannot be resent".into(),
            });
        }
        // `to` at or before `from` is an empty range: it selects nothing, like any range no call
        // falls in (the API's document cannot state an order between two fields).
        Ok(ResendFilter {
            status,
            trigger_id,
            event_type,
            from,
            to,
            shop_id,
            shops,
        })
    }
}

fn event_not_found(id: EventId) -> EngineError {
    EngineError::NotFound(format!("event {id} does not exist"))
}

async fn run_retention(
    store: Arc<dyn Store>,
    policy: RetentionPolicy,
    shutdown: CancellationToken,
) {
    let mut wait = policy.first_run;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
        wait = policy.interval;
        match prune(store.as_ref(), &policy, Timestamp::now(), &shutdown).await {
            Ok(p) if p == Pruned::default() => debug!("retention: nothing to prune"),
            Ok(p) => info!(
                succeeded_calls = p.succeeded_calls,
                other_calls = p.other_calls,
                events = p.events,
                "retention: pruned"
            ),
            Err(err) => error!(error = %err, "retention: could not prune; trying again later"),
        }
    }
}

/// One pruning run: old succeeded calls, old unsuccessful calls, then events older than both
/// bounds that have no calls left. Batch after batch until a batch comes back short, yielding
/// in between so that other writers (on SQLite: other holders of the write turn) get in.
pub async fn prune(
    store: &dyn Store,
    policy: &RetentionPolicy,
    now: Timestamp,
    shutdown: &CancellationToken,
) -> Result<Pruned, StoreError> {
    let before =
        |age: Duration| now.plus_millis(-i64::try_from(age.as_millis()).unwrap_or(i64::MAX));
    let batch = policy.batch.max(1);
    let mut pruned = Pruned::default();
    let succeeded_before = before(policy.succeeded);
    pruned.succeeded_calls = drain(batch, shutdown, || {
        store.prune_calls(&[CallStatus::Succeeded], succeeded_before, batch)
    })
    .await?;
    let failed_before = before(policy.failed);
    pruned.other_calls = drain(batch, shutdown, || {
        store.prune_calls(&UNSUCCESSFUL, failed_before, batch)
    })
    .await?;
    let events_before = before(policy.succeeded.max(policy.failed));
    pruned.events = drain(batch, shutdown, || store.prune_events(events_before, batch)).await?;
    Ok(pruned)
}

/// Runs `step` until it deletes fewer than `batch` rows (or shutdown); returns the total.
async fn drain<F, Fut>(
    batch: u32,
    shutdown: &CancellationToken,
    mut step: F,
) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    loop {
        let n = step().await?;
        total += n;
        if n < u64::from(batch) || shutdown.is_cancelled() {
            return Ok(total);
        }
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_resend_needs_a_criterion_and_defaults_to_failed_calls() {
        assert!(matches!(
            ResendRequest::default().into_filter(),
            Err(EngineError::Invalid { field, .. }) if field == "filter"
        ));
        let filter = ResendRequest {
            trigger_id: Some(TriggerId(3)),
            ..ResendRequest::default()
        }
        .into_filter()
        .unwrap();
        assert_eq!(filter.status, CallStatus::Failed);
        let filter = ResendRequest {
            status: Some(CallStatus::Succeeded),
            ..ResendRequest::default()
        }
        .into_filter()
        .unwrap();
        assert_eq!(filter.status, CallStatus::Succeeded);
    }

    #[test]
    fn calls_in_flight_cannot_be_resent_in_bulk() {
        assert!(matches!(
            ResendRequest {
                status: Some(CallStatus::InFlight),
                ..ResendRequest::default()
            }
            .into_filter(),
            Err(EngineError::Invalid { field, .. }) if field == "status"
        ));
    }

    #[test]
    fn a_bulk_resend_window_that_ends_where_it_starts_is_empty_not_an_error() {
        // The document cannot order two fields, so an empty window is a window like any other:
        // it selects no call (the store's `from <= created_at < to`).
        let filter = ResendRequest {
            from: Some(Timestamp(10)),
            to: Some(Timestamp(5)),
            ..ResendRequest::default()
        }
        .into_filter()
        .unwrap();
        assert_eq!(
            (filter.from, filter.to),
            (Some(Timestamp(10)), Some(Timestamp(5)))
        );
    }

    #[tokio::test]
    async fn draining_stops_at_the_first_short_batch() {
        let mut batches = vec![500u64, 500, 17, 500].into_iter();
        let total = drain(500, &CancellationToken::new(), || {
            let n = batches.next().unwrap_or(0);
            async move { Ok(n) }
        })
        .await
        .unwrap();
        assert_eq!(total, 1017);
    }

    #[tokio::test]
    async fn draining_stops_between_batches_on_shutdown() {
        let shutdown = CancellationToken::new();
        let mut calls = 0;
        let total = drain(10, &shutdown, || {
            calls += 1;
            shutdown.cancel();
            async { Ok(10) }
        })
        .await
        .unwrap();
        assert_eq!((total, calls), (10, 1));
    }
}
