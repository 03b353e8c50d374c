//! The domain types. Ids are newtypes, states are enums, times are UTC milliseconds.

use std::fmt;
use std::str::FromStr;

use hookflow_templating::MimeType;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A shop (tenant): events and triggers belong to one.
    ShopId
);
id_type!(
    /// A trigger.
    TriggerId
);
id_type!(
    /// A stored event.
    EventId
);
id_type!(
    /// A queued webhook call.
    CallId
);

/// A point in time, as UTC milliseconds since the Unix epoch (how it is stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp((OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64)
    }

    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        Some(Timestamp((t.unix_timestamp_nanos() / 1_000_000) as i64))
    }

    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(self.0 as i128 * 1_000_000)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default()
    }

    pub fn plus_millis(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shop {
    pub id: ShopId,
    pub name: String,
    pub created_at: Timestamp,
}

/// HTTP method of a Call Webhook action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    #[default]
    Post,
    Get,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Get => "GET",
        }
    }
}

impl FromStr for Method {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "POST" => Ok(Method::Post),
            "GET" => Ok(Method::Get),
            _ => Err(()),
        }
    }
}

/// A payload template of an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PayloadTemplate {
    pub mime_type: MimeType,
    pub body: String,
}

/// The Call Webhook action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallWebhook {
    pub url: String,
    #[serde(default)]
    pub method: Method,
    /// Without a template the event type's default payload is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<PayloadTemplate>,
}

/// What a trigger does when it fires. Call Webhook is the one action hookflow ships.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Action {
    CallWebhook(CallWebhook),
}

/// A trigger as an admin writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerDraft {
    pub name: String,
    pub event_type: String,
    /// `None` = every shop.
    #[serde(default)]
    pub shop_id: Option<ShopId>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Higher runs first in the queue.
    #[serde(default)]
    pub priority: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    pub actions: Vec<Action>,
}

fn yes() -> bool {
    true
}

/// A stored trigger.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    pub id: TriggerId,
    #[serde(flatten)]
    pub draft: TriggerDraft,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A validated incoming event.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: String,
    pub shop_id: ShopId,
    pub entity_id: String,
    pub entity: serde_json::Map<String, serde_json::Value>,
    pub occurred_at: Timestamp,
    pub idempotency_key: Option<String>,
}

/// What ingest answers for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingested {
    pub event_id: EventId,
    pub calls_queued: u32,
    /// The idempotency key was seen before: this is the first result and nothing was queued.
    pub duplicate: bool,
}

/// The state of a queued call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Pending,
    InFlight,
    Succeeded,
    Failed,
    Cancelled,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Pending => "pending",
            CallStatus::InFlight => "in_flight",
            CallStatus::Succeeded => "succeeded",
            CallStatus::Failed => "failed",
            CallStatus::Cancelled => "cancelled",
        }
    }
}

impl FromStr for CallStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(CallStatus::Pending),
            "in_flight" => Ok(CallStatus::InFlight),
            "succeeded" => Ok(CallStatus::Succeeded),
            "failed" => Ok(CallStatus::Failed),
            "cancelled" => Ok(CallStatus::Cancelled),
            other => Err(format!(
                "unknown status {other:?}: use pending, in_flight, succeeded, failed or cancelled"
            )),
        }
    }
}

/// A call ready to be queued: the fully rendered request plus its bookkeeping.
#[derive(Debug, Clone)]
pub struct NewCall {
    pub webhook_id: String,
    pub event_id: EventId,
    pub trigger_id: TriggerId,
    pub action_index: i32,
    pub shop_id: ShopId,
    pub event_type: String,
    pub entity_id: String,
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub priority: i32,
    /// `Pending`, or `Failed` when the payload could not be rendered.
    pub status: CallStatus,
    pub max_attempts: i32,
    pub last_error: Option<String>,
}

/// A call a worker has claimed and must deliver.
#[derive(Debug, Clone)]
pub struct ClaimedCall {
    pub id: CallId,
    pub webhook_id: String,
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Attempts made before this one.
    pub attempts: i32,
    pub max_attempts: i32,
    /// When the queue item was created: the start of its end-to-end latency.
    pub created_at: Timestamp,
}

/// One delivery attempt, as logged.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempt: i32,
    pub started_at: Timestamp,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: String,
    pub error: Option<String>,
}

/// What happens to a call after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Succeeded,
    RetryAt(Timestamp),
    Failed,
}

/// An attempt's record and the call's next state, written together.
#[derive(Debug, Clone)]
pub struct Completion {
    pub call: CallId,
    pub attempt: Attempt,
    pub next: Next,
}

/// A queue item as operators see it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueItem {
    pub id: CallId,
    pub webhook_id: String,
    pub event_id: EventId,
    pub trigger_id: TriggerId,
    pub action_index: i32,
    pub shop_id: ShopId,
    pub event_type: String,
    pub entity_id: String,
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub priority: i32,
    pub status: CallStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    pub next_attempt_at: Timestamp,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Filters of the queue listing. Results are newest first; `before` is the cursor.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    pub status: Option<CallStatus>,
    pub trigger_id: Option<TriggerId>,
    pub event_type: Option<String>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub before: Option<CallId>,
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        let t = Timestamp::parse_rfc3339("2026-11-27T10:20:30.123Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-27T10:20:30.123Z");
        assert!(Timestamp::parse_rfc3339("yesterday").is_none());
    }

    #[test]
    fn triggers_read_the_documented_shape() {
        let draft: TriggerDraft = serde_json::from_value(serde_json::json!({
            "name": "Orders to ERP", "eventType": "OrderChanged", "shopId": 1, "priority": 5,
            "condition": "entity.Status == \"Shipped\"",
            "actions": [{"type": "callWebhook", "url": "https://erp.example.com/h", "method": "GET"}]
        }))
        .unwrap();
        assert!(draft.enabled);
        let Action::CallWebhook(action) = &draft.actions[0];
        assert_eq!(action.method, Method::Get);
        assert!(action.payload.is_none());
    }
}
