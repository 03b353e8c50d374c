//! What the API shows of webhook calls: queue items, their attempts and states. The queue
//! routes, the event log, the web UI's queue pages and the compat APIs all read calls in the
//! engine's types and show them in these.

use hookflow_engine::model::{
    Attempt, CallId, CallStatus, EventId, QueueItem, ShopId, Timestamp, TriggerId,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::v1::schema;
use crate::v1::triggers::MethodWire;

/// The state of a queued call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = CallStatus)]
pub enum CallStatusWire {
    Pending,
    InFlight,
    Succeeded,
    Failed,
    Cancelled,
    /// Not sent: its action was deactivated when the event came (kept for the event log and
    /// for requeueing on reactivation).
    Skipped,
    /// Not sent (again): a newer call of its unique action and entity replaced it while it
    /// waited (see `superseded_by`), and carries the newer payload.
    Superseded,
}

impl From<CallStatus> for CallStatusWire {
    fn from(status: CallStatus) -> CallStatusWire {
        match status {
            CallStatus::Pending => CallStatusWire::Pending,
            CallStatus::InFlight => CallStatusWire::InFlight,
            CallStatus::Succeeded => CallStatusWire::Succeeded,
            CallStatus::Failed => CallStatusWire::Failed,
            CallStatus::Cancelled => CallStatusWire::Cancelled,
            CallStatus::Skipped => CallStatusWire::Skipped,
            CallStatus::Superseded => CallStatusWire::Superseded,
        }
    }
}

/// One delivery attempt, as logged.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Attempt)]
pub struct AttemptOut {
    pub attempt: i32,
    #[schema(value_type = schema::Timestamp)]
    pub started_at: Timestamp,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    /// The request headers as sent by this attempt, `[name, value]` pairs (`webhook-id`,
    /// `webhook-timestamp` and signatures included; credentials masked). Empty for attempts
    /// logged before hookflow recorded them, and for attempts that sent nothing.
    #[schema(value_type = Vec<Vec<String>>)]
    pub request_headers: Vec<(String, String)>,
    /// `[name, value]` pairs.
    #[schema(value_type = Vec<Vec<String>>)]
    pub response_headers: Vec<(String, String)>,
    pub response_body: String,
    pub error: Option<String>,
}

impl From<Attempt> for AttemptOut {
    fn from(a: Attempt) -> AttemptOut {
        AttemptOut {
            attempt: a.attempt,
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            request_headers: a.request_headers,
            response_headers: a.response_headers,
            response_body: a.response_body,
            error: a.error,
        }
    }
}

/// Attempts as the API shows them.
pub fn attempts_out(attempts: Vec<Attempt>) -> Vec<AttemptOut> {
    attempts.into_iter().map(AttemptOut::from).collect()
}

/// A queue item as operators see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = QueueItem)]
pub struct QueueItemOut {
    #[schema(value_type = schema::CallId)]
    pub id: CallId,
    pub webhook_id: String,
    #[schema(value_type = schema::EventId)]
    pub event_id: EventId,
    #[schema(value_type = schema::TriggerId)]
    pub trigger_id: TriggerId,
    pub action_index: i32,
    #[schema(value_type = schema::ShopId)]
    pub shop_id: ShopId,
    pub event_type: String,
    pub entity_id: String,
    pub method: MethodWire,
    pub url: String,
    /// `[name, value]` pairs, as sent.
    #[schema(value_type = Vec<Vec<String>>)]
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub priority: i32,
    pub status: CallStatusWire,
    pub attempts: i32,
    pub max_attempts: i32,
    #[schema(value_type = schema::Timestamp)]
    pub next_attempt_at: Timestamp,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    /// Older calls of its unique action and entity this call replaced (counting theirs).
    pub coalesced: i32,
    /// `superseded`: the newer call that replaced this one.
    #[schema(value_type = Option<schema::CallId>)]
    pub superseded_by: Option<CallId>,
    #[schema(value_type = schema::Timestamp)]
    pub created_at: Timestamp,
    #[schema(value_type = schema::Timestamp)]
    pub updated_at: Timestamp,
}

impl From<QueueItem> for QueueItemOut {
    fn from(i: QueueItem) -> QueueItemOut {
        QueueItemOut {
            id: i.id,
            webhook_id: i.webhook_id,
            event_id: i.event_id,
            trigger_id: i.trigger_id,
            action_index: i.action_index,
            shop_id: i.shop_id,
            event_type: i.event_type,
            entity_id: i.entity_id,
            method: i.method.into(),
            url: i.url,
            headers: i.headers,
            body: i.body,
            priority: i.priority,
            status: i.status.into(),
            attempts: i.attempts,
            max_attempts: i.max_attempts,
            next_attempt_at: i.next_attempt_at,
            last_status_code: i.last_status_code,
            last_error: i.last_error,
            coalesced: i.coalesced,
            superseded_by: i.superseded_by,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}
