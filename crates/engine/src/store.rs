//! The storage the engine needs, as a trait; `hookflow-storage` implements it for SQLite and
//! PostgreSQL.

use std::sync::Arc;

use async_trait::async_trait;

use crate::dispatch::HostSlots;
use crate::model::{
    ActionRef, Attempt, CallId, CallStatus, ClaimedCall, Completion, EventId, Ingested, NewCall,
    NewEvent, QueueFilter, QueueItem, Shop, ShopId, Timestamp, Trigger, TriggerDraft, TriggerId,
};

/// A storage failure. The engine cannot act on its detail, only report it — and tell whether
/// the database could not be reached (then the request may simply be tried again later).
#[derive(Debug, Clone, thiserror::Error)]
#[error("storage: {message}")]
pub struct StoreError {
    pub message: String,
    /// The database could not be reached (refused, dropped or timed-out connections, a
    /// server shutting down): nothing was done, and trying again later may succeed.
    pub unavailable: bool,
}

impl StoreError {
    pub fn new(message: impl Into<String>) -> StoreError {
        StoreError {
            message: message.into(),
            unavailable: false,
        }
    }

    pub fn unavailable(message: impl Into<String>) -> StoreError {
        StoreError {
            message: message.into(),
            unavailable: true,
        }
    }
}

/// An event being ingested, as handed to a [`Planner`] inside the ingest transaction.
pub struct PlannedEvent<'a> {
    pub id: EventId,
    pub event: &'a NewEvent,
    pub shop: &'a Shop,
}

/// Turns a stored event into the calls to queue (matching and rendering). Runs inside the
/// ingest transaction, so what it returns is committed together with the event.
pub trait Planner: Send + Sync {
    /// Appends the event's calls to `out`, and to `evaluations` one entry per trigger that
    /// was evaluated for it (its activity).
    fn plan(
        &self,
        event: &PlannedEvent<'_>,
        out: &mut Vec<NewCall>,
        evaluations: &mut Vec<Evaluation>,
    );

    /// The trigger generation this planner was built from: the ingest transaction commits only
    /// while it is still the committed one (see [`IngestResult::TriggersMoved`]). `None`: a
    /// planner that does not follow the stored triggers (tests, a trigger being edited).
    fn generation(&self) -> Option<i64> {
        None
    }
}

/// One evaluation of one trigger for one event: its activity, kept with the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub event_id: EventId,
    pub trigger_id: TriggerId,
    pub matched: bool,
    /// What decided: the path of the rule clause read last (`rules.all[1]`), `condition` for
    /// an expression, `None` for a trigger without either (it always fires). Shared with the
    /// compiled trigger: recording it allocates nothing.
    pub decided_by: Option<Arc<str>>,
}

/// An event as stored.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: EventId,
    pub shop_id: ShopId,
    pub event_type: String,
    pub entity_id: String,
    pub entity: serde_json::Map<String, serde_json::Value>,
    /// The entity before the change, when the event carried it.
    pub previous: Option<serde_json::Map<String, serde_json::Value>>,
    pub occurred_at: Timestamp,
}

/// How many of the calls an ingest queues may skip the queue: they are stored already claimed
/// (in flight, leased until `lease_until`) and handed straight to this process's workers,
/// which saves a claim round trip per call while workers have room. If the process dies
/// before delivering them, their lease expires and any node delivers them.
#[derive(Clone)]
pub struct Handoff {
    pub max_calls: usize,
    pub lease_until: Timestamp,
    /// Per-endpoint room: a call is handed over only while its endpoint has a free slot.
    /// `None` = no limit (tests).
    pub hosts: Option<Arc<HostSlots>>,
}

impl Handoff {
    /// Hand nothing over.
    pub fn none() -> Handoff {
        Handoff {
            max_calls: 0,
            lease_until: Timestamp(0),
            hosts: None,
        }
    }
}

/// What a claim skips and caps.
#[derive(Debug, Clone, Default)]
pub struct ClaimFilter {
    /// Endpoints with no free slot in this process.
    pub full_hosts: Vec<String>,
    /// Endpoints with some calls on the wire: how many more each may get.
    pub room: Vec<(String, u32)>,
    /// Most calls claimed per other endpoint at once (0 = no cap).
    pub per_host: u32,
    /// Claim only for these endpoints (empty: for every endpoint). A freed slot claims for the
    /// endpoints with room only: a few candidate rows instead of a scan sized for every free
    /// slot of the process.
    pub only_hosts: Vec<String>,
}

/// A call that failed for good.
#[derive(Debug, Clone)]
pub struct FailedCall {
    pub call: CallId,
    pub action: ActionRef,
    pub status_code: Option<i32>,
    pub error: Option<String>,
}

/// What recording a batch of attempts led to, for alerts' notices.
#[derive(Debug, Default)]
pub struct CompleteOutcome {
    pub failed: Vec<FailedCall>,
    /// Actions deactivated by their policy (the call that tipped it over).
    pub deactivated: Vec<FailedCall>,
}

/// What an ingest transaction committed.
#[derive(Debug, Default)]
pub struct IngestOutcome {
    /// One entry per request, in order.
    pub results: Vec<Result<Vec<Ingested>, IngestRejection>>,
    /// Calls stored in flight for this process to deliver now (at most `Handoff::max_calls`).
    pub handed_off: Vec<ClaimedCall>,
    /// Calls folded into a pending call of the same action and entity (unique items).
    pub coalesced: u64,
    /// Calls stored pending because an earlier call of their entity is unfinished.
    pub blocked: u64,
}

/// How an ingest transaction ended.
#[derive(Debug)]
pub enum IngestResult {
    /// Committed.
    Committed(IngestOutcome),
    /// Nothing written: the triggers changed since the planner was built (its generation is
    /// not the committed one). Reload them and try again.
    TriggersMoved { generation: i64 },
}

impl IngestResult {
    /// The outcome, if it committed.
    pub fn committed(self) -> Option<IngestOutcome> {
        match self {
            IngestResult::Committed(outcome) => Some(outcome),
            IngestResult::TriggersMoved { .. } => None,
        }
    }
}

/// An alert: an action's calls fail for good. One open alert per action counts them.
#[derive(Debug, Clone)]
pub struct Alert {
    pub id: i64,
    pub action: ActionRef,
    pub shop_id: Option<ShopId>,
    /// The latest call that failed.
    pub call_id: Option<CallId>,
    pub kind: crate::notify::NoticeKind,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    /// How many failures this alert stands for.
    pub count: i32,
    pub acknowledged: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Why one ingest request was refused while others in its group commit went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestRejection {
    UnknownShop(ShopId),
}

/// What `cancel_call` found.
#[derive(Debug, Clone)]
pub enum CancelOutcome {
    Cancelled(QueueItem),
    /// The call had already finished (succeeded, failed or cancelled).
    Finished(QueueItem),
    NotFound,
}

/// What `retry_call` found.
#[derive(Debug, Clone)]
pub enum RetryOutcome {
    Queued(QueueItem),
    /// The call is being delivered right now.
    InFlight(QueueItem),
    NotFound,
}

/// How many attempts a resent call may make beyond those it has made: a fresh budget under
/// its action's retry policy. Actions without a policy of their own (and calls whose trigger
/// is gone) get the server's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptBudget {
    /// Attempts for calls of actions not listed.
    pub default: i32,
    /// Actions whose policy allows another number of attempts, and the attempts it allows.
    pub by_action: Vec<(ActionRef, i32)>,
}

impl AttemptBudget {
    /// The same budget for every call.
    pub fn uniform(attempts: i32) -> AttemptBudget {
        AttemptBudget {
            default: attempts,
            by_action: Vec::new(),
        }
    }

    /// The attempts a call of this action gets.
    pub fn for_action(&self, action: ActionRef) -> i32 {
        self.by_action
            .iter()
            .find(|(key, _)| *key == action)
            .map_or(self.default, |(_, n)| *n)
    }
}

/// Shops, triggers and event types: what events are matched against.
#[async_trait]
pub trait CatalogStore: Send + Sync {
    async fn create_shop(
        &self,
        name: &str,
        notification_email: Option<&str>,
        now: Timestamp,
    ) -> Result<Shop, StoreError>;
    async fn update_shop(
        &self,
        id: ShopId,
        name: &str,
        notification_email: Option<&str>,
    ) -> Result<Option<Shop>, StoreError>;
    async fn list_shops(&self) -> Result<Vec<Shop>, StoreError>;
    async fn get_shop(&self, id: ShopId) -> Result<Option<Shop>, StoreError>;

    async fn list_triggers(&self) -> Result<Vec<Trigger>, StoreError>;
    async fn get_trigger(&self, id: TriggerId) -> Result<Option<Trigger>, StoreError>;
    async fn create_trigger(
        &self,
        draft: &TriggerDraft,
        now: Timestamp,
    ) -> Result<Trigger, StoreError>;
    async fn update_trigger(
        &self,
        id: TriggerId,
        draft: &TriggerDraft,
        now: Timestamp,
    ) -> Result<Option<Trigger>, StoreError>;
    async fn delete_trigger(&self, id: TriggerId) -> Result<bool, StoreError>;

    /// The trigger generation as committed: moved by every change to what events match
    /// (triggers, action activation, event types).
    async fn trigger_generation(&self) -> Result<i64, StoreError>;

    /// Fires when another node may have changed the triggers (PostgreSQL `LISTEN`); `None`
    /// where only this process writes them.
    fn trigger_changes(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }

    // ---- catalogs: a shop's catalog and API key, custom event types ----

    async fn set_shop_catalog(&self, id: ShopId, catalog: &str)
        -> Result<Option<Shop>, StoreError>;
    /// Replaces the shop's API key (stored as a hash; `prefix` is what reads show).
    async fn set_shop_api_key(
        &self,
        id: ShopId,
        hash: &str,
        prefix: &str,
    ) -> Result<Option<Shop>, StoreError>;
    async fn shop_by_api_key(&self, hash: &str) -> Result<Option<Shop>, StoreError>;
    async fn list_event_types(&self) -> Result<Vec<crate::model::CustomEventType>, StoreError>;
    /// `false` when a custom type of that name exists.
    async fn create_event_type(
        &self,
        ty: &crate::model::CustomEventType,
    ) -> Result<bool, StoreError>;
    /// `false` when there is no custom type of that name.
    async fn update_event_type(
        &self,
        ty: &crate::model::CustomEventType,
    ) -> Result<bool, StoreError>;
    async fn delete_event_type(&self, name: &str) -> Result<bool, StoreError>;
}

/// Ingest and the queue: events with their calls, claims, attempts, leases, alerts.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Stores many ingest requests in one transaction: for each request, either all its
    /// events and the calls `planner` makes of them are committed, or it is rejected.
    /// Events whose idempotency key was seen before are answered with the first result.
    /// Nothing is written when the planner's generation is not the committed one.
    async fn ingest(
        &self,
        requests: &[Vec<NewEvent>],
        planner: &dyn Planner,
        handoff: Handoff,
        now: Timestamp,
    ) -> Result<IngestResult, StoreError>;

    /// Claims up to `limit` due pending calls, highest priority first, leasing them until
    /// `lease_until`. Concurrent claimers (other processes) never get the same call.
    async fn claim(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
        filter: &ClaimFilter,
    ) -> Result<Vec<ClaimedCall>, StoreError>;
    /// Records attempts and moves their calls on. A call no longer in flight (cancelled while
    /// it was being sent) keeps its state; its attempt is still logged. Calls that failed for
    /// good raise (or add to) their action's alert, and may deactivate the action.
    async fn complete(
        &self,
        done: &[Completion],
        now: Timestamp,
    ) -> Result<CompleteOutcome, StoreError>;

    /// Alerts, newest first; `acknowledged` filters.
    async fn list_alerts(&self, acknowledged: Option<bool>) -> Result<Vec<Alert>, StoreError>;
    async fn ack_alert(&self, id: i64, now: Timestamp) -> Result<Option<Alert>, StoreError>;
    /// Actions deactivated by their policy or an admin, with when.
    async fn deactivated_actions(&self) -> Result<Vec<(ActionRef, Timestamp)>, StoreError>;
    /// Deactivates (with a reason) or reactivates an action.
    async fn set_action_active(
        &self,
        action: ActionRef,
        active: bool,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<(), StoreError>;
    /// Queues again the failed and skipped calls of a trigger (one action, or all) created
    /// since `since`, with a fresh budget of attempts; returns how many.
    async fn requeue_failed(
        &self,
        trigger: TriggerId,
        action_index: Option<i32>,
        since: Timestamp,
        budget: &AttemptBudget,
        now: Timestamp,
    ) -> Result<u64, StoreError>;
    /// Returns in-flight calls whose lease ran out (their worker died) to the queue, due at
    /// once, with their attempt count and `webhook-id`; their attempt log says the attempt
    /// was interrupted.
    async fn release_expired_leases(&self, now: Timestamp) -> Result<u64, StoreError>;
    /// Returns every in-flight call to the queue as `release_expired_leases` does, whatever
    /// its lease: for a SQLite start, when the one process that could hold them is gone.
    async fn recover_in_flight(&self, now: Timestamp) -> Result<u64, StoreError>;

    async fn list_queue(&self, filter: &QueueFilter) -> Result<Vec<QueueItem>, StoreError>;
    /// When each of `calls` last went out (its latest attempt's start); calls never sent are
    /// missing. One grouped query over `attempts_queue_item`.
    async fn last_sent(&self, calls: &[CallId]) -> Result<Vec<(CallId, Timestamp)>, StoreError>;
    async fn get_call(&self, id: CallId) -> Result<Option<(QueueItem, Vec<Attempt>)>, StoreError>;
    /// Queues a call again now, with a fresh budget of attempts.
    async fn retry_call(
        &self,
        id: CallId,
        budget: &AttemptBudget,
        now: Timestamp,
    ) -> Result<RetryOutcome, StoreError>;
    async fn cancel_call(&self, id: CallId, now: Timestamp) -> Result<CancelOutcome, StoreError>;
    /// Deletes up to `limit` calls in one of `statuses` that last changed before `before`,
    /// with their attempts, in one short transaction. Returns how many calls went.
    async fn prune_calls(
        &self,
        statuses: &[CallStatus],
        before: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError>;

    /// What the queue holds now, for the metrics scrape: calls per state of
    /// [`crate::metrics::QUEUE_STATES`] and priority, and when the longest-waiting due pending
    /// call became due. One grouped query over the claim index.
    async fn queue_stats(&self, now: Timestamp) -> Result<crate::metrics::QueueStats, StoreError>;

    /// The dashboard's numbers within `shops` (`None` = every shop): delivery attempts since
    /// `since` per minute and outcome (over `attempts_minute`), unfinished calls per state
    /// and the oldest pending call (over `queue_items_status`).
    async fn dashboard_stats(
        &self,
        since: Timestamp,
        shops: Option<&[ShopId]>,
    ) -> Result<crate::dashboard::DashboardStats, StoreError>;
    /// The latest call of every trigger (one index seek per trigger, in one statement).
    async fn last_calls(&self) -> Result<Vec<crate::dashboard::LastCall>, StoreError>;
}

/// The event log: stored events, resends and retention.
#[async_trait]
pub trait EventLogStore: Send + Sync {
    /// The latest stored event about an entity of a shop (for dynamic merge fields and
    /// previews): its type and the entity data the backend sent.
    async fn latest_event(
        &self,
        shop: ShopId,
        entity_id: &str,
    ) -> Result<Option<StoredEvent>, StoreError>;

    /// The event log: events newest first, each with its calls. The calls of a whole page
    /// are loaded at once, never event by event.
    async fn list_events(&self, filter: &EventFilter) -> Result<Vec<LoggedEvent>, StoreError>;
    async fn get_event(
        &self,
        id: EventId,
        detail: EventDetail,
    ) -> Result<Option<LoggedEvent>, StoreError>;
    /// Queues every call of an event again now, as `retry_call` does, except calls in flight.
    /// Returns how many were queued; `None` when there is no such event.
    async fn resend_event(
        &self,
        id: EventId,
        budget: &AttemptBudget,
        now: Timestamp,
    ) -> Result<Option<u64>, StoreError>;
    /// Queues every call matching `filter` again now, in one statement, as `retry_call` does.
    async fn resend_calls(
        &self,
        filter: &ResendFilter,
        budget: &AttemptBudget,
        now: Timestamp,
    ) -> Result<u64, StoreError>;
    /// Deletes up to `limit` events received before `before` that have no calls left (their
    /// triggers' evaluations go with them).
    async fn prune_events(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError>;
    /// A trigger's activity: its evaluations, newest event first, each with the calls it made.
    async fn trigger_activity(
        &self,
        trigger: TriggerId,
        filter: &ActivityFilter,
    ) -> Result<Vec<Activity>, StoreError>;
}

/// Which of a trigger's evaluations to list.
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    /// Only those that fired (`true`) or did not.
    pub matched: Option<bool>,
    /// Evaluated at or after.
    pub from: Option<Timestamp>,
    /// Evaluated before.
    pub to: Option<Timestamp>,
    /// Only events about this entity.
    pub entity_id: Option<String>,
    /// Only events older than this one (the next page).
    pub before: Option<EventId>,
    pub limit: u32,
}

/// One evaluation of a trigger, with its event and the calls it made.
#[derive(Debug, Clone)]
pub struct Activity {
    pub event_id: EventId,
    pub shop_id: ShopId,
    pub entity_id: String,
    pub evaluated_at: Timestamp,
    pub matched: bool,
    /// See [`Evaluation::decided_by`].
    pub decided_by: Option<String>,
    pub calls: Vec<ActivityCall>,
}

/// A call a trigger made for an event, as it stands.
#[derive(Debug, Clone)]
pub struct ActivityCall {
    pub id: CallId,
    pub action_index: i32,
    pub status: CallStatus,
    /// The HTTP status of the last attempt.
    pub status_code: Option<i32>,
}

/// Everything the engine stores, by aggregate. Implemented for every type that implements
/// the four parts.
pub trait Store:
    crate::accounts::AccountStore + CatalogStore + QueueStore + EventLogStore + Send + Sync + 'static
{
}

impl<T> Store for T where
    T: crate::accounts::AccountStore
        + CatalogStore
        + QueueStore
        + EventLogStore
        + Send
        + Sync
        + 'static
{
}

// ---- the event log ----

/// What the event log shows besides an event and the state of its calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventDetail {
    /// The entity data the backend sent.
    pub payload: bool,
    /// Each call's attempt log.
    pub attempts: bool,
}

/// Which events the event log lists. Results are newest first; `before` is the cursor.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub shop_id: Option<ShopId>,
    /// The caller's shops (`None`: every shop).
    pub shops: Option<Vec<ShopId>>,
    /// Received at or after.
    pub from: Option<Timestamp>,
    /// Received before.
    pub to: Option<Timestamp>,
    /// `Some(true)`: only events all of whose calls succeeded; `Some(false)`: only events with
    /// a call that has not (yet) succeeded.
    pub success: Option<bool>,
    /// Only events of this type.
    pub event_type: Option<String>,
    /// Only events about this entity.
    pub entity_id: Option<String>,
    /// `Some(true)`: only events that queued at least one call; `Some(false)`: only events
    /// that matched nothing (or whose calls were pruned).
    pub has_calls: Option<bool>,
    pub before: Option<EventId>,
    pub limit: u32,
    pub detail: EventDetail,
}

/// An event as the event log shows it: what came in, and what became of each call it queued.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub id: EventId,
    pub event_type: String,
    pub shop_id: ShopId,
    pub entity_id: String,
    pub occurred_at: Timestamp,
    pub received_at: Timestamp,
    /// Only with [`EventDetail::payload`].
    pub entity: Option<serde_json::Map<String, serde_json::Value>>,
    /// Only with [`EventDetail::payload`], and when the event carried it.
    pub previous: Option<serde_json::Map<String, serde_json::Value>>,
    pub calls: Vec<LoggedCall>,
}

/// One call of a logged event.
#[derive(Debug, Clone)]
pub struct LoggedCall {
    pub id: CallId,
    pub trigger_id: TriggerId,
    pub action_index: i32,
    pub status: CallStatus,
    /// The HTTP status of the last attempt.
    pub status_code: Option<i32>,
    pub success: bool,
    pub attempts: i32,
    /// Only with [`EventDetail::attempts`].
    pub attempt_log: Option<Vec<Attempt>>,
}

/// Which calls a bulk resend queues again. Times are the calls' creation times, as in the
/// queue listing. Calls in flight are never matched.
#[derive(Debug, Clone)]
pub struct ResendFilter {
    pub status: CallStatus,
    pub trigger_id: Option<TriggerId>,
    pub event_type: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub shop_id: Option<ShopId>,
    /// The caller's shops (`None`: every shop): a resend never touches others' calls.
    pub shops: Option<Vec<ShopId>>,
}
