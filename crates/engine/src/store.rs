//! The storage the engine needs, as a trait; `hookflow-storage` implements it for SQLite and
//! PostgreSQL.

use async_trait::async_trait;

use crate::model::{
    Attempt, CallId, ClaimedCall, Completion, EventId, Ingested, NewCall, NewEvent, QueueFilter,
    QueueItem, Shop, ShopId, Timestamp, Trigger, TriggerDraft, TriggerId,
};

/// A storage failure. The engine cannot act on its detail, only report it.
#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub struct StoreError(pub String);

/// An event being ingested, as handed to a [`Planner`] inside the ingest transaction.
pub struct PlannedEvent<'a> {
    pub id: EventId,
    pub event: &'a NewEvent,
    pub shop: &'a Shop,
}

/// Turns a stored event into the calls to queue (matching and rendering). Runs inside the
/// ingest transaction, so what it returns is committed together with the event.
pub trait Planner: Send + Sync {
    fn plan(&self, event: &PlannedEvent<'_>, out: &mut Vec<NewCall>);
}

/// An event as stored.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: EventId,
    pub shop_id: ShopId,
    pub event_type: String,
    pub entity_id: String,
    pub entity: serde_json::Map<String, serde_json::Value>,
    pub occurred_at: Timestamp,
}

/// How many of the calls an ingest queues may skip the queue: they are stored already claimed
/// (in flight, leased until `lease_until`) and handed straight to this process's workers,
/// which saves a claim round trip per call while workers have room. If the process dies
/// before delivering them, their lease expires and any node delivers them.
#[derive(Debug, Clone, Copy)]
pub struct Handoff {
    pub max_calls: usize,
    pub lease_until: Timestamp,
}

/// What an ingest transaction committed.
#[derive(Debug, Default)]
pub struct IngestOutcome {
    /// One entry per request, in order.
    pub results: Vec<Result<Vec<Ingested>, IngestRejection>>,
    /// Calls stored in flight for this process to deliver now (at most `Handoff::max_calls`).
    pub handed_off: Vec<ClaimedCall>,
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

#[async_trait]
pub trait Store: Send + Sync + 'static {
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

    /// Stores many ingest requests in one transaction: for each request, either all its
    /// events and the calls `planner` makes of them are committed, or it is rejected.
    /// Events whose idempotency key was seen before are answered with the first result.
    async fn ingest(
        &self,
        requests: &[Vec<NewEvent>],
        planner: &dyn Planner,
        handoff: Handoff,
        now: Timestamp,
    ) -> Result<IngestOutcome, StoreError>;

    /// Claims up to `limit` due pending calls, highest priority first, leasing them until
    /// `lease_until`. Concurrent claimers (other processes) never get the same call.
    async fn claim(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedCall>, StoreError>;
    /// Records attempts and moves their calls on. A call no longer in flight (cancelled while
    /// it was being sent) keeps its state; its attempt is still logged.
    async fn complete(&self, done: &[Completion], now: Timestamp) -> Result<(), StoreError>;
    /// Returns in-flight calls whose lease ran out (their worker died) to the queue.
    async fn release_expired_leases(&self, now: Timestamp) -> Result<u64, StoreError>;

    /// The latest stored event about an entity of a shop (for dynamic merge fields and
    /// previews): its type and the entity data the backend sent.
    async fn latest_event(
        &self,
        shop: ShopId,
        entity_id: &str,
    ) -> Result<Option<StoredEvent>, StoreError>;

    async fn list_queue(&self, filter: &QueueFilter) -> Result<Vec<QueueItem>, StoreError>;
    async fn get_call(&self, id: CallId) -> Result<Option<(QueueItem, Vec<Attempt>)>, StoreError>;
    /// Queues a call again now, with `extra_attempts` more attempts allowed.
    async fn retry_call(
        &self,
        id: CallId,
        extra_attempts: i32,
        now: Timestamp,
    ) -> Result<RetryOutcome, StoreError>;
    async fn cancel_call(&self, id: CallId, now: Timestamp) -> Result<CancelOutcome, StoreError>;
}
