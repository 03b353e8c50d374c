//! The domain types. Ids are newtypes, states are enums, times are UTC milliseconds.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use hookflow_templating::rules::Rule;
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
id_type!(
    /// A user account (of the web UI and the API).
    UserId
);
id_type!(
    /// A user's API token.
    ApiTokenId
);

/// One action of a trigger: the trigger and the action's position in its list, from 0 (a
/// trigger holds at most 20 actions, so a `u16` holds any and widens to the stored `i32`).
/// Calls, action states, alerts and retry policies belong to an action, so the two travel
/// together. Shown as `trigger/index` (`3/0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionRef {
    pub trigger: TriggerId,
    pub index: u16,
}

impl ActionRef {
    pub fn new(trigger: TriggerId, index: u16) -> ActionRef {
        ActionRef { trigger, index }
    }
}

impl fmt::Display for ActionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.trigger, self.index)
    }
}

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

/// Serialised as an RFC 3339 date-time with milliseconds, its one readable form (logs,
/// pages and the API alike).
impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

/// A shop: the tenant events, triggers and calls belong to.
#[derive(Debug, Clone)]
pub struct Shop {
    pub id: ShopId,
    pub name: String,
    /// Where failure and deactivation notices for this shop go.
    pub notification_email: Option<String>,
    pub created_at: Timestamp,
    /// The event catalog its events, triggers and subscriptions use (`shopctrl`, `skladon`,
    /// `flowretail`, `frontsystems`).
    pub catalog: String,
    /// Whether the shop has an API key for the compat APIs (never the key itself).
    pub api_key: ApiKeyInfo,
}

/// What reads show of a shop's API key: whether it is set, and its first characters so an
/// admin can tell keys apart. The key itself is shown once, when it is made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub set: bool,
    pub prefix: Option<String>,
    /// The key itself: only in the answer that made it (shop creation, rotation).
    pub key: Option<Secret>,
}

/// An event type an admin added to a catalog at run time.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomEventType {
    pub name: String,
    pub catalog: String,
    pub description: String,
    /// JSON Schema of the entity; events are validated against it at ingest.
    pub schema: Option<serde_json::Value>,
    /// Default payload template (JSON) for actions without a payload of their own.
    pub payload_template: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// HTTP method of a Call Webhook action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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

/// A credential: a basic-auth password, an HMAC secret, a client certificate's private key.
/// Its `Debug` shows no value and it has no `Serialize`: a trigger that reaches a log or an
/// answer cannot carry one. The outer layers decide, field by field, what their format shows
/// (the API `{"set": true}`, storage a sealed value); [`Secret::expose`] is the one way in.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the code that signs, authenticates or seals with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A payload template of an action.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadTemplate {
    pub mime_type: MimeType,
    pub body: String,
}

/// The Call Webhook action.
#[derive(Debug, Clone, PartialEq)]
pub struct CallWebhook {
    /// May use merge fields after the host (`https://h/orders/{{ entity.OrderCode }}`);
    /// inserted values are percent-encoded.
    pub url: String,
    pub method: Method,
    /// Without a template the event type's default payload is sent.
    pub payload: Option<PayloadTemplate>,
    /// Extra request headers: name to value template (`{"X-Order": "{{ entity.OrderCode }}"}`).
    pub headers: BTreeMap<String, String>,
    /// Sent as `Authorization: Basic`.
    pub basic_auth: Option<BasicAuth>,
    /// How calls are signed. In a draft, `None` keeps the stored keys; a saved action holds
    /// [`HmacSecret::Keys`] or nothing.
    pub hmac_secret: Option<HmacSecret>,
    pub signature_scheme: SignatureScheme,
    /// A client certificate (mTLS) presented to the receiver.
    pub client_certificate: Option<ClientCertificate>,
    /// Trust these CA certificates (PEM) for the receiver instead of the public web PKI.
    pub ca_pem: Option<String>,
    /// At most one pending call per entity: a newer event replaces the pending call's payload.
    pub unique_queue_items: bool,
    /// Calls for one entity go out in the order their events came (the default); `false` lets
    /// them overtake each other.
    pub ordered: bool,
    /// How failed calls are retried: a preset or custom values; `None`: the server's.
    pub retry_policy: Option<RetryPolicySpec>,
}

impl CallWebhook {
    /// A POST to `url` with every other setting at its default (calls in order, unsigned).
    pub fn to(url: impl Into<String>) -> CallWebhook {
        CallWebhook {
            url: url.into(),
            method: Method::Post,
            payload: None,
            headers: BTreeMap::new(),
            basic_auth: None,
            hmac_secret: None,
            signature_scheme: SignatureScheme::StandardWebhooks,
            client_certificate: None,
            ca_pem: None,
            unique_queue_items: false,
            ordered: true,
            retry_policy: None,
        }
    }
}

/// A retry policy as an admin chooses it.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryPolicySpec {
    Preset(RetryPreset),
    Custom(CustomRetry),
}

/// The retry behaviour of the platforms hookflow replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryPreset {
    /// Any unsuccessful answer is retried, up to 10 times; then an alert.
    Shopctrl,
    /// No successful status: retried with exponentially growing intervals, up to 20 times
    /// within 48 hours; then the action is deactivated and an email sent.
    Skladon,
    /// 10 s timeout; below 300 succeeds, 4xx fails at once (408 and 429 too), anything else
    /// (3xx included) and timeouts up to 10 retries.
    Flowretail,
    /// No automatic retry: a failed call waits in the event log for a resend.
    Frontsystems,
}

impl RetryPreset {
    pub const ALL: [RetryPreset; 4] = [
        RetryPreset::Shopctrl,
        RetryPreset::Skladon,
        RetryPreset::Flowretail,
        RetryPreset::Frontsystems,
    ];

    /// The preset's name, as catalogs and admins write it.
    pub fn name(self) -> &'static str {
        match self {
            RetryPreset::Shopctrl => "shopctrl",
            RetryPreset::Skladon => "skladon",
            RetryPreset::Flowretail => "flowretail",
            RetryPreset::Frontsystems => "frontsystems",
        }
    }

    pub fn from_name(name: &str) -> Option<RetryPreset> {
        RetryPreset::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Custom retry values; times are in seconds. Unset values come from `preset` when one is
/// named (a platform's behaviour with, say, a shorter schedule), else the server's defaults.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CustomRetry {
    /// Start from this preset's policy instead of the server's.
    pub preset: Option<RetryPreset>,
    pub max_retries: Option<u32>,
    pub initial_delay: Option<f64>,
    pub max_delay: Option<f64>,
    /// Per-attempt timeout.
    pub timeout: Option<f64>,
    /// The classes of unsuccessful outcomes retried: `3xx`, `4xx` (every 4xx), `408`, `429`,
    /// `5xx`, `timeout`, `connectionError`. Unset: the preset's, else hookflow's own
    /// (`408`, `429`, `5xx`, `timeout`, `connectionError`); the rest fail at once.
    pub retry_on: Option<Vec<String>>,
    /// Single 4xx statuses retried besides `retry_on`'s classes.
    pub retry_on_4xx: Vec<u16>,
    /// Deactivate the action after this many calls in a row failed for good.
    pub deactivate_after_failures: Option<u32>,
    /// Stop retrying a call this long after it was queued.
    pub max_age: Option<f64>,
}

/// Basic HTTP authentication of an action. In a draft a missing password keeps the stored
/// one; a saved action always holds one.
#[derive(Debug, Clone, PartialEq)]
pub struct BasicAuth {
    pub username: String,
    pub password: Option<Secret>,
}

/// The HMAC secret of an action: what a saved action holds ([`HmacSecret::Keys`]), or what a
/// draft asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum HmacSecret {
    /// The signing keys, with the previous one still valid for a while after a rotation.
    Keys(SigningKeys),
    /// A draft asks for a new random secret.
    Generate,
    /// A draft signs with this secret from now on (a rotation when it differs from the stored
    /// one).
    Set(Secret),
    /// A draft stops signing.
    Remove,
}

/// An action's signing keys (Standard Webhooks `whsec_<base64>` secrets, or a hub receiver's
/// own secret).
#[derive(Debug, Clone, PartialEq)]
pub struct SigningKeys {
    pub current: Secret,
    /// The key before the last rotation, still signed with until `previous_valid_until`.
    pub previous: Option<Secret>,
    /// UTC milliseconds.
    pub previous_valid_until: Option<i64>,
}

/// How calls are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SignatureScheme {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`.
    #[default]
    StandardWebhooks,
    /// `X-Hub-Signature-256: sha256=<hex>` of the raw body, keyed with the secret's UTF-8 bytes.
    HubSha256,
}

/// A client certificate (chain) and its private key. In a draft a missing key keeps the
/// stored one. The descriptive fields are filled in by hookflow when it is saved.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientCertificate {
    pub cert_pem: String,
    pub key_pem: Option<Secret>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub not_after: Option<String>,
}

/// What a trigger does when it fires. Call Webhook is the one action hookflow ships.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    CallWebhook(CallWebhook),
}

/// A trigger as an admin writes it (and, once saved, with its credentials resolved).
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerDraft {
    /// 1 to 200 characters, not only blanks; kept trimmed.
    pub name: String,
    pub event_type: String,
    /// `None`: every shop.
    pub shop_id: Option<ShopId>,
    pub enabled: bool,
    /// 1 (lowest) to 10 (highest): when calls wait, higher priority goes first.
    pub priority: i32,
    /// A minijinja expression; a trigger has this or `rules`, or neither.
    pub condition: Option<String>,
    /// A structured rule (the builder's), checked against the event type when saved.
    pub rules: Option<Rule>,
    /// 1 to 20 actions.
    pub actions: Vec<Action>,
}

impl TriggerDraft {
    /// The default priority of a trigger.
    pub const DEFAULT_PRIORITY: i32 = 5;

    /// An enabled trigger for every shop at the default priority, without a condition.
    pub fn new(
        name: impl Into<String>,
        event_type: impl Into<String>,
        actions: Vec<Action>,
    ) -> Self {
        TriggerDraft {
            name: name.into(),
            event_type: event_type.into(),
            shop_id: None,
            enabled: true,
            priority: TriggerDraft::DEFAULT_PRIORITY,
            condition: None,
            rules: None,
            actions,
        }
    }
}

/// A stored trigger.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub id: TriggerId,
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
    /// The entity before the change (`previousData`), for rules on what changed.
    pub previous: Option<serde_json::Map<String, serde_json::Value>>,
    pub occurred_at: Timestamp,
    pub idempotency_key: Option<String>,
}

/// What ingest answers for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    pub event_id: EventId,
    pub calls_queued: u32,
    /// The idempotency key was seen before: this is the first result and nothing was queued.
    pub duplicate: bool,
}

/// The state of a queued call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
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

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Pending => "pending",
            CallStatus::InFlight => "in_flight",
            CallStatus::Succeeded => "succeeded",
            CallStatus::Failed => "failed",
            CallStatus::Cancelled => "cancelled",
            CallStatus::Skipped => "skipped",
            CallStatus::Superseded => "superseded",
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
            "skipped" => Ok(CallStatus::Skipped),
            "superseded" => Ok(CallStatus::Superseded),
            other => Err(format!(
                "unknown status {other:?}: use pending, in_flight, succeeded, failed, cancelled, skipped or superseded"
            )),
        }
    }
}

/// A call ready to be queued: the fully rendered request plus its bookkeeping.
#[derive(Debug, Clone)]
pub struct NewCall {
    pub webhook_id: String,
    pub event_id: EventId,
    /// The action that made the call.
    pub action: ActionRef,
    pub shop_id: ShopId,
    pub event_type: String,
    pub entity_id: String,
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub priority: i32,
    /// `Pending`; `Failed` when the payload could not be rendered; `Skipped` when the action
    /// is deactivated.
    pub status: CallStatus,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    /// Coalesce with a pending call of the same action and entity.
    pub unique: bool,
    /// Wait for earlier unfinished calls of the same action and entity.
    pub ordered: bool,
    /// `host:port` of the URL, for the per-endpoint concurrency limit.
    pub target_host: String,
    /// Newer events already folded into this call (unique items).
    pub coalesced: i32,
}

/// A call a worker has claimed and must deliver.
#[derive(Debug, Clone)]
pub struct ClaimedCall {
    pub id: CallId,
    /// The action that made the call: its credentials are looked up when it is sent, so
    /// they are never copied into the queue.
    pub action: ActionRef,
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
    /// `host:port`, for the per-endpoint concurrency limit.
    pub target_host: String,
    /// The lease it was claimed under: its outcome is recorded only while the call is still
    /// held under this lease (not if it ran out and the call went to another worker).
    pub lease_until: Timestamp,
}

/// One delivery attempt, as logged.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub attempt: i32,
    pub started_at: Timestamp,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    /// The request headers as sent by this attempt, `[name, value]` pairs (`webhook-id`,
    /// `webhook-timestamp` and signatures included; credentials masked). Empty for attempts
    /// logged before hookflow recorded them, and for attempts that sent nothing.
    pub request_headers: Vec<(String, String)>,
    /// `[name, value]` pairs.
    pub response_headers: Vec<(String, String)>,
    pub response_body: String,
    pub error: Option<String>,
}

impl Attempt {
    /// The attempt as every reader sees it: no URL credentials in its error.
    pub fn redacted(mut self) -> Attempt {
        self.error = self.error.map(|e| crate::redact::urls_in(&e).into_owned());
        self
    }
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
    pub action: ActionRef,
    /// Deactivate the action once this many calls in a row failed for good.
    pub deactivate_after: Option<u32>,
    /// The policy ran out and deactivates the action now (Skladon's behaviour).
    pub deactivate_now: bool,
    /// The lease the call was claimed under (see [`ClaimedCall::lease_until`]).
    pub lease_until: Timestamp,
    pub attempt: Attempt,
    pub next: Next,
}

/// A queue item as operators see it.
#[derive(Debug, Clone)]
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
    /// `[name, value]` pairs, as sent.
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub priority: i32,
    pub status: CallStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    pub next_attempt_at: Timestamp,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    /// Older calls of its unique action and entity this call replaced (counting theirs).
    pub coalesced: i32,
    /// `superseded`: the newer call that replaced this one.
    pub superseded_by: Option<CallId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl QueueItem {
    /// The call as every reader sees it: no credentials in its URL or its last error
    /// (`redact`). The queue keeps the URL as it is sent.
    pub fn redacted(mut self) -> QueueItem {
        self.url = crate::redact::url(&self.url);
        self.last_error = self
            .last_error
            .map(|e| crate::redact::urls_in(&e).into_owned());
        self
    }
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
    /// One shop's calls.
    pub shop_id: Option<ShopId>,
    /// The caller's shops (`None`: every shop): a listing never shows others.
    pub shops: Option<Vec<ShopId>>,
    /// Calls whose entity id is this, or whose URL contains it.
    pub search: Option<String>,
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
    fn a_secret_never_shows_in_debug_output() {
        let auth = BasicAuth {
            username: "erp".into(),
            password: Some(Secret::new("s3cret")),
        };
        let shown = format!("{auth:?}");
        assert!(
            shown.contains("erp") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert_eq!(auth.password.unwrap().expose(), "s3cret");
    }

    #[test]
    fn a_new_call_webhook_keeps_calls_in_order() {
        let call = CallWebhook::to("https://erp.example.com/h");
        assert!(call.ordered && call.hmac_secret.is_none());
        assert_eq!(call.method, Method::Post);
    }
}
