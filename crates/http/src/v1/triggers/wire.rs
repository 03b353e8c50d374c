//! A trigger as the API reads and writes it, apart from the engine's model of it.
//!
//! Credentials are write-only, and the types say so: an answer's [`SecretSet`] cannot hold a
//! stored secret (it says `{"set": true}`), and a request's [`SecretIn`] is either a new value
//! or such a marker, which keeps what is stored. So a trigger read back and sent again keeps
//! its secrets, and the list of secret fields is the list of fields of these two types.
//! What a read adds (`id`, `createdAt`, each action's `active` and `deactivatedAt`, a
//! certificate's `subject`, `issuer` and `notAfter`) is shown in answers and ignored in
//! actions sent back.

use std::collections::BTreeMap;

use hookflow_engine::accounts::Principal;
use hookflow_engine::model::{
    self as domain, Action, ActionRef, HmacSecret, Secret, ShopId, Timestamp, Trigger,
    TriggerDraft, TriggerId,
};
use hookflow_templating::rules::{Rule, RuleError};
use hookflow_templating::MimeType;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::v1::schema;

/// A trigger as an admin writes it (create, replace, send test).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerIn {
    /// 1 to 200 characters, not only blanks (spaces, tabs, line breaks); kept trimmed.
    #[schema(min_length = 1, max_length = 200, pattern = "[^ \\t\\n\\u000b\\f\\r]")]
    pub name: String,
    pub event_type: String,
    /// Null: every shop.
    #[serde(default)]
    #[schema(value_type = Option<schema::ShopId>)]
    pub shop_id: Option<ShopId>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// 1 (lowest) to 10 (highest), default 5: when calls wait, higher priority goes first.
    #[serde(default = "default_priority")]
    #[schema(minimum = 1, maximum = 10)]
    pub priority: i32,
    /// A minijinja expression (`entity.Total > 100`); a trigger has this or `rules`, or
    /// neither.
    #[serde(default)]
    pub condition: Option<String>,
    /// The condition as a rule tree (what the web UI's builder makes): groups `all`, `any`,
    /// `not` and clauses `{"field", "op", "value"}`. Checked against the event type's fields
    /// when saved; a 422 names the clause (`rules.all[1].any[0]`).
    #[serde(default)]
    #[schema(value_type = Option<schema::Rule>)]
    pub rules: Option<serde_json::Value>,
    /// 1 to 20 actions.
    #[schema(min_items = 1, max_items = 20)]
    pub actions: Vec<ActionIn>,
}

/// What a trigger does when it fires. Call Webhook is the one action hookflow ships.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ActionIn {
    CallWebhook(CallWebhookIn),
}

/// The Call Webhook action, as written.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallWebhookIn {
    /// May use merge fields after the host (`https://h/orders/{{ entity.OrderCode }}`);
    /// inserted values are percent-encoded.
    pub url: String,
    #[serde(default)]
    pub method: MethodWire,
    /// Without a template the event type's default payload is sent.
    #[serde(default)]
    pub payload: Option<PayloadWire>,
    /// Extra request headers: name to value template (`{"X-Order": "{{ entity.OrderCode }}"}`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Sent as `Authorization: Basic`.
    #[serde(default)]
    pub basic_auth: Option<BasicAuthIn>,
    /// Signs every call: a secret (`whsec_…`, or the receiver's own with `hubSha256`),
    /// `"generate"` for a new one, `""` to stop signing; left out (or sent back as read), the
    /// current secret stays.
    #[serde(default)]
    pub hmac_secret: Option<HmacSecretIn>,
    #[serde(default)]
    pub signature_scheme: SignatureSchemeWire,
    /// A client certificate (mTLS) presented to the receiver.
    #[serde(default)]
    pub client_certificate: Option<ClientCertificateIn>,
    /// Trust these CA certificates (PEM) for the receiver instead of the public web PKI.
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// At most one pending call per entity: a newer event replaces the pending call's payload.
    #[serde(default)]
    pub unique_queue_items: bool,
    /// Calls for one entity go out in the order their events came (default); `false` lets
    /// them overtake each other.
    #[serde(default = "yes")]
    pub ordered: bool,
    /// How failed calls are retried: a preset's name or custom values; default: the server's.
    #[serde(default)]
    pub retry_policy: Option<RetryPolicySpec>,
}

/// Basic HTTP authentication of an action.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuthIn {
    pub username: String,
    /// Write-only: reads show `{"set": true}`; left out, or sent back so, it stays.
    #[serde(default)]
    pub password: Option<SecretIn>,
}

/// A client certificate (chain) and its private key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientCertificateIn {
    pub cert_pem: String,
    /// The private key (PKCS#8, RSA or EC), write-only: reads show `{"set": true}`; left
    /// out, or sent back so, it stays.
    #[serde(default)]
    pub key_pem: Option<SecretIn>,
}

/// A write-only value in a request: a new value, or the marker a read showed, which keeps
/// the stored one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(
    untagged,
    expecting = "a string, or {\"set\": true} to keep the stored value"
)]
pub enum SecretIn {
    Value(String),
    Kept(SecretKept),
}

impl SecretIn {
    /// The new value; `None` keeps the stored one.
    fn into_secret(self) -> Option<Secret> {
        match self {
            SecretIn::Value(value) => Some(Secret::new(value)),
            SecretIn::Kept(_) => None,
        }
    }
}

/// The HMAC secret field of a request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(
    untagged,
    expecting = "a secret, \"generate\", \"\" (stop signing), or {\"set\": true} to keep it"
)]
pub enum HmacSecretIn {
    /// A secret to sign with, `"generate"` for a new one, `""` to stop signing.
    Value(String),
    Kept(SecretKept),
}

impl HmacSecretIn {
    /// The phrase that asks hookflow to generate a secret.
    pub const GENERATE: &'static str = "generate";

    fn into_domain(self) -> Option<HmacSecret> {
        match self {
            HmacSecretIn::Kept(_) => None,
            HmacSecretIn::Value(value) if value.is_empty() => Some(HmacSecret::Remove),
            HmacSecretIn::Value(value) if value == Self::GENERATE => Some(HmacSecret::Generate),
            HmacSecretIn::Value(value) => Some(HmacSecret::Set(Secret::new(value))),
        }
    }

    pub fn generates(&self) -> bool {
        matches!(self, HmacSecretIn::Value(v) if v == Self::GENERATE)
    }
}

/// A stored secret in an answer: credentials are write-only. Sending it back unchanged keeps
/// the stored secret.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretSet {
    pub set: bool,
    /// HMAC secrets only: after a rotation, the previous secret is still signed with until then
    /// (Standard Webhooks; a hub signature switches to the new secret at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<schema::Timestamp>)]
    pub previous_valid_until: Option<Timestamp>,
    /// HMAC secrets only, and only in the answer of the save that sent `"generate"`: the new
    /// secret, to configure the receiver with (later: `reveal-secret`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A [`SecretSet`] sent back as a read showed it: the stored value stays. Its other fields are
/// ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SecretKept {
    #[allow(dead_code)] // What makes it a marker; its value does not matter.
    pub set: bool,
}

impl SecretSet {
    fn set() -> SecretSet {
        SecretSet {
            set: true,
            ..SecretSet::default()
        }
    }
}

/// HTTP method of a Call Webhook action.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[schema(as = Method)]
pub enum MethodWire {
    #[default]
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "GET")]
    Get,
}

/// How calls are signed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SignatureScheme)]
pub enum SignatureSchemeWire {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`.
    #[default]
    StandardWebhooks,
    /// `X-Hub-Signature-256: sha256=<hex>` of the raw body, keyed with the secret's UTF-8 bytes.
    HubSha256,
}

impl SignatureSchemeWire {
    fn is_default(&self) -> bool {
        *self == SignatureSchemeWire::StandardWebhooks
    }
}

/// A payload template of an action.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = PayloadTemplate)]
pub struct PayloadWire {
    pub mime_type: MimeType,
    pub body: String,
}

/// A retry policy as an admin chooses it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RetryPolicySpec {
    Preset(RetryPreset),
    Custom(CustomRetry),
}

/// The retry behaviour of the platforms hookflow replaces.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
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

/// Custom retry values; times are in seconds. Unset values come from `preset` when one is
/// named (a platform's behaviour with, say, a shorter schedule), else the server's defaults.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomRetry {
    /// Start from this preset's policy instead of the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<RetryPreset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 100)]
    pub max_retries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay: Option<f64>,
    /// Per-attempt timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
    /// The classes of unsuccessful outcomes retried: `3xx`, `4xx` (every 4xx), `408`, `429`,
    /// `5xx`, `timeout`, `connectionError`. Unset: the preset's, else hookflow's own
    /// (`408`, `429`, `5xx`, `timeout`, `connectionError`); the rest fail at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<Vec<String>>,
    /// Single 4xx statuses (400 to 499) retried besides `retryOn`'s classes.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "retryOn4xx")]
    #[schema(schema_with = four_xx_statuses)]
    pub retry_on_4xx: Vec<u16>,
    /// Deactivate the action after this many calls in a row failed for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub deactivate_after_failures: Option<u32>,
    /// Stop retrying a call this long after it was queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<f64>,
}

/// The schema of `retryOn4xx`: statuses 400 to 499.
fn four_xx_statuses() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(400))
                .maximum(Some(499)),
        )
        .description(Some(
            "Single 4xx statuses (400 to 499) retried besides `retryOn`'s classes.",
        ))
        .build()
}

/// A trigger as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerOut {
    #[schema(value_type = schema::TriggerId)]
    pub id: TriggerId,
    pub name: String,
    pub event_type: String,
    /// Null: every shop.
    #[schema(value_type = Option<schema::ShopId>)]
    pub shop_id: Option<ShopId>,
    pub enabled: bool,
    /// 1 (lowest) to 10 (highest): when calls wait, higher priority goes first.
    pub priority: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The rule tree, in its canonical form.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<schema::Rule>)]
    pub rules: Option<serde_json::Value>,
    /// Read-only: the expression `rules` compiles to (it gives the same verdict for every
    /// event, and can be saved as a `condition`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_expression: Option<String>,
    pub actions: Vec<ActionOut>,
    #[schema(value_type = schema::Timestamp)]
    pub created_at: Timestamp,
    #[schema(value_type = schema::Timestamp)]
    pub updated_at: Timestamp,
}

/// An action as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ActionOut {
    CallWebhook(CallWebhookOut),
}

/// The Call Webhook action as the API shows it: credentials as `{"set": true}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallWebhookOut {
    pub url: String,
    pub method: MethodWire,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<PayloadWire>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuthOut>,
    /// Shown as `{"set": true}` (with `previousValidUntil` during a rotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hmac_secret: Option<SecretSet>,
    #[serde(skip_serializing_if = "SignatureSchemeWire::is_default")]
    pub signature_scheme: SignatureSchemeWire,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<ClientCertificateOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unique_queue_items: bool,
    /// Shown when `false`.
    #[serde(skip_serializing_if = "Clone::clone")]
    pub ordered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicySpec>,
    /// `false` once the action was deactivated by its retry policy or an admin.
    pub active: bool,
    /// For a deactivated action: since when.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<schema::Timestamp>)]
    pub deactivated_at: Option<Timestamp>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BasicAuthOut {
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretSet>,
}

/// A client certificate as the API shows it: the key as `{"set": true}`, and what hookflow
/// read from the certificate when it was saved.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientCertificateOut {
    pub cert_pem: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_pem: Option<SecretSet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
}

fn default_priority() -> i32 {
    TriggerDraft::DEFAULT_PRIORITY
}

fn yes() -> bool {
    true
}

// ---- requests into the domain ----

impl TriggerIn {
    /// The draft it describes; a `rules` tree that does not parse is refused naming the
    /// clause at fault.
    pub fn into_draft(self) -> Result<TriggerDraft, RuleError> {
        let rules = match self.rules {
            None | Some(serde_json::Value::Null) => None,
            Some(rules) => Some(Rule::parse(&rules, "rules")?),
        };
        Ok(TriggerDraft {
            name: self.name,
            event_type: self.event_type,
            shop_id: self.shop_id,
            enabled: self.enabled,
            priority: self.priority,
            condition: self.condition,
            rules,
            actions: self.actions.into_iter().map(Action::from).collect(),
        })
    }

    /// The positions of the actions that ask for a new HMAC secret: the answer to that save
    /// shows it once.
    pub fn generating(&self) -> Vec<usize> {
        self.actions
            .iter()
            .enumerate()
            .filter(|(_, ActionIn::CallWebhook(a))| {
                a.hmac_secret.as_ref().is_some_and(HmacSecretIn::generates)
            })
            .map(|(i, _)| i)
            .collect()
    }
}

impl From<ActionIn> for Action {
    fn from(ActionIn::CallWebhook(a): ActionIn) -> Action {
        Action::CallWebhook(domain::CallWebhook {
            url: a.url,
            method: a.method.into(),
            payload: a.payload.map(Into::into),
            headers: a.headers,
            basic_auth: a.basic_auth.map(|b| domain::BasicAuth {
                username: b.username,
                password: b.password.and_then(SecretIn::into_secret),
            }),
            hmac_secret: a.hmac_secret.and_then(HmacSecretIn::into_domain),
            signature_scheme: a.signature_scheme.into(),
            client_certificate: a.client_certificate.map(|c| domain::ClientCertificate {
                cert_pem: c.cert_pem,
                key_pem: c.key_pem.and_then(SecretIn::into_secret),
                // Described by hookflow when saved.
                subject: None,
                issuer: None,
                not_after: None,
            }),
            ca_pem: a.ca_pem,
            unique_queue_items: a.unique_queue_items,
            ordered: a.ordered,
            retry_policy: a.retry_policy.map(Into::into),
        })
    }
}

impl From<MethodWire> for domain::Method {
    fn from(m: MethodWire) -> domain::Method {
        match m {
            MethodWire::Post => domain::Method::Post,
            MethodWire::Get => domain::Method::Get,
        }
    }
}

impl From<domain::Method> for MethodWire {
    fn from(m: domain::Method) -> MethodWire {
        match m {
            domain::Method::Post => MethodWire::Post,
            domain::Method::Get => MethodWire::Get,
        }
    }
}

impl From<SignatureSchemeWire> for domain::SignatureScheme {
    fn from(s: SignatureSchemeWire) -> domain::SignatureScheme {
        match s {
            SignatureSchemeWire::StandardWebhooks => domain::SignatureScheme::StandardWebhooks,
            SignatureSchemeWire::HubSha256 => domain::SignatureScheme::HubSha256,
        }
    }
}

impl From<domain::SignatureScheme> for SignatureSchemeWire {
    fn from(s: domain::SignatureScheme) -> SignatureSchemeWire {
        match s {
            domain::SignatureScheme::StandardWebhooks => SignatureSchemeWire::StandardWebhooks,
            domain::SignatureScheme::HubSha256 => SignatureSchemeWire::HubSha256,
        }
    }
}

impl From<PayloadWire> for domain::PayloadTemplate {
    fn from(p: PayloadWire) -> domain::PayloadTemplate {
        domain::PayloadTemplate {
            mime_type: p.mime_type,
            body: p.body,
        }
    }
}

impl From<&domain::PayloadTemplate> for PayloadWire {
    fn from(p: &domain::PayloadTemplate) -> PayloadWire {
        PayloadWire {
            mime_type: p.mime_type,
            body: p.body.clone(),
        }
    }
}

impl From<RetryPreset> for domain::RetryPreset {
    fn from(p: RetryPreset) -> domain::RetryPreset {
        match p {
            RetryPreset::Shopctrl => domain::RetryPreset::Shopctrl,
            RetryPreset::Skladon => domain::RetryPreset::Skladon,
            RetryPreset::Flowretail => domain::RetryPreset::Flowretail,
            RetryPreset::Frontsystems => domain::RetryPreset::Frontsystems,
        }
    }
}

impl From<domain::RetryPreset> for RetryPreset {
    fn from(p: domain::RetryPreset) -> RetryPreset {
        match p {
            domain::RetryPreset::Shopctrl => RetryPreset::Shopctrl,
            domain::RetryPreset::Skladon => RetryPreset::Skladon,
            domain::RetryPreset::Flowretail => RetryPreset::Flowretail,
            domain::RetryPreset::Frontsystems => RetryPreset::Frontsystems,
        }
    }
}

impl From<RetryPolicySpec> for domain::RetryPolicySpec {
    fn from(spec: RetryPolicySpec) -> domain::RetryPolicySpec {
        match spec {
            RetryPolicySpec::Preset(p) => domain::RetryPolicySpec::Preset(p.into()),
            RetryPolicySpec::Custom(c) => domain::RetryPolicySpec::Custom(domain::CustomRetry {
                preset: c.preset.map(Into::into),
                max_retries: c.max_retries,
                initial_delay: c.initial_delay,
                max_delay: c.max_delay,
                timeout: c.timeout,
                retry_on: c.retry_on,
                retry_on_4xx: c.retry_on_4xx,
                deactivate_after_failures: c.deactivate_after_failures,
                max_age: c.max_age,
            }),
        }
    }
}

impl From<&domain::RetryPolicySpec> for RetryPolicySpec {
    fn from(spec: &domain::RetryPolicySpec) -> RetryPolicySpec {
        match spec {
            domain::RetryPolicySpec::Preset(p) => RetryPolicySpec::Preset((*p).into()),
            domain::RetryPolicySpec::Custom(c) => RetryPolicySpec::Custom(CustomRetry {
                preset: c.preset.map(Into::into),
                max_retries: c.max_retries,
                initial_delay: c.initial_delay,
                max_delay: c.max_delay,
                timeout: c.timeout,
                retry_on: c.retry_on.clone(),
                retry_on_4xx: c.retry_on_4xx.clone(),
                deactivate_after_failures: c.deactivate_after_failures,
                max_age: c.max_age,
            }),
        }
    }
}

// ---- the domain out to answers ----

/// When each deactivated action went down.
pub type Deactivated = [(ActionRef, Timestamp)];

impl TriggerOut {
    /// `trigger` as answers show it at `now`, with each action's state from `deactivated`
    /// and the expression its rules compile to.
    pub fn new(
        trigger: &Trigger,
        deactivated: &Deactivated,
        rule_expression: Option<String>,
        now: Timestamp,
    ) -> TriggerOut {
        let draft = &trigger.draft;
        TriggerOut {
            id: trigger.id,
            name: draft.name.clone(),
            event_type: draft.event_type.clone(),
            shop_id: draft.shop_id,
            enabled: draft.enabled,
            priority: draft.priority,
            condition: draft.condition.clone(),
            rules: draft.rules.as_ref().map(Rule::to_json),
            rule_expression,
            actions: draft
                .actions
                .iter()
                .enumerate()
                .map(|(index, Action::CallWebhook(call))| {
                    let down = deactivated
                        .iter()
                        .find(|(a, _)| a.trigger == trigger.id && usize::from(a.index) == index)
                        .map(|(_, at)| *at);
                    ActionOut::CallWebhook(CallWebhookOut::new(call, down, now))
                })
                .collect(),
            created_at: trigger.created_at,
            updated_at: trigger.updated_at,
        }
    }

    /// The trigger as `principal` reads it: a read-only role sees each action's URL without
    /// its credentials (query values masked, merge fields kept; `redact::url_template`). A role
    /// that may write sees the URL as configured: it is what they edit, and what they send back
    /// is saved as it is, so a masked value would overwrite the secret; they could also change
    /// the host and keep the query, so hiding it from them would protect nothing.
    pub fn for_reader(mut self, principal: &Principal) -> TriggerOut {
        if !principal.can_write() {
            for action in &mut self.actions {
                let ActionOut::CallWebhook(call) = action;
                call.url = hookflow_engine::redact::url_template(&call.url);
            }
        }
        self
    }

    /// Shows the secrets of the actions at `positions` (those a save just generated), once.
    pub fn reveal_generated(&mut self, trigger: &Trigger, positions: &[usize]) {
        for &index in positions {
            let (Some(Action::CallWebhook(call)), Some(ActionOut::CallWebhook(shown))) = (
                trigger.draft.actions.get(index),
                self.actions.get_mut(index),
            ) else {
                continue;
            };
            if let (Some(HmacSecret::Keys(keys)), Some(secret)) =
                (&call.hmac_secret, shown.hmac_secret.as_mut())
            {
                secret.secret = Some(keys.current.expose().to_owned());
            }
        }
    }

    /// The answer's JSON. Keys are in alphabetical order, as hookflow has always sent them.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a trigger answer always serialises")
    }
}

impl CallWebhookOut {
    fn new(call: &domain::CallWebhook, deactivated_at: Option<Timestamp>, now: Timestamp) -> Self {
        CallWebhookOut {
            url: call.url.clone(),
            method: call.method.into(),
            payload: call.payload.as_ref().map(Into::into),
            headers: call.headers.clone(),
            basic_auth: call.basic_auth.as_ref().map(|b| BasicAuthOut {
                username: b.username.clone(),
                password: b.password.as_ref().map(|_| SecretSet::set()),
            }),
            hmac_secret: match &call.hmac_secret {
                Some(HmacSecret::Keys(keys)) => Some(shown_keys(call, keys, now)),
                _ => None,
            },
            signature_scheme: call.signature_scheme.into(),
            client_certificate: call
                .client_certificate
                .as_ref()
                .map(|c| ClientCertificateOut {
                    cert_pem: c.cert_pem.clone(),
                    key_pem: c.key_pem.as_ref().map(|_| SecretSet::set()),
                    subject: c.subject.clone(),
                    issuer: c.issuer.clone(),
                    not_after: c.not_after.clone(),
                }),
            ca_pem: call.ca_pem.clone(),
            unique_queue_items: call.unique_queue_items,
            ordered: call.ordered,
            retry_policy: call.retry_policy.as_ref().map(Into::into),
            active: deactivated_at.is_none(),
            deactivated_at,
        }
    }
}

/// Signing keys as answers show them: set, and the end of a rotation window while it lasts,
/// where the previous secret is still signed with (Standard Webhooks; hub signatures switch
/// at once).
fn shown_keys(call: &domain::CallWebhook, keys: &domain::SigningKeys, now: Timestamp) -> SecretSet {
    let standard = call.signature_scheme == domain::SignatureScheme::StandardWebhooks;
    SecretSet {
        previous_valid_until: keys
            .previous_valid_until
            .filter(|ms| standard && *ms > now.0)
            .map(Timestamp),
        ..SecretSet::set()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(value: serde_json::Value) -> TriggerDraft {
        crate::json::parse_from::<TriggerIn>(value)
            .unwrap()
            .into_draft()
            .unwrap()
    }

    #[test]
    fn triggers_read_the_documented_shape() {
        let draft = parse(json!({
            "name": "Orders to ERP", "eventType": "OrderChanged", "shopId": 1, "priority": 5,
            "condition": "entity.Status == \"Shipped\"",
            "actions": [{"type": "callWebhook", "url": "https://erp.example.com/h", "method": "GET"}]
        }));
        assert!(draft.enabled);
        let Action::CallWebhook(action) = &draft.actions[0];
        assert_eq!(action.method, domain::Method::Get);
        assert!(action.payload.is_none() && action.ordered);
    }

    #[test]
    fn markers_sent_back_keep_the_stored_secrets() {
        let draft = parse(
            json!({"name": "t", "eventType": "OrderChanged", "actions": [
            {"type": "callWebhook", "url": "https://x/",
             "basicAuth": {"username": "u", "password": {"set": true}},
             "hmacSecret": {"set": true, "previousValidUntil": "2026-01-01T00:00:00Z"},
             "clientCertificate": {"certPem": "C", "keyPem": {"set": true}, "subject": "CN=x"},
             "active": false, "deactivatedAt": "2026-01-01T00:00:00Z"},
            {"type": "callWebhook", "url": "https://y/", "hmacSecret": "generate",
             "basicAuth": {"username": "u", "password": "p"}},
            {"type": "callWebhook", "url": "https://z/", "hmacSecret": ""}]}),
        );
        let calls: Vec<_> = draft
            .actions
            .iter()
            .map(|Action::CallWebhook(c)| c)
            .collect();
        assert_eq!(calls[0].basic_auth.as_ref().unwrap().password, None);
        assert_eq!(calls[0].hmac_secret, None);
        let cert = calls[0].client_certificate.as_ref().unwrap();
        assert!(cert.key_pem.is_none() && cert.subject.is_none());
        assert_eq!(calls[1].hmac_secret, Some(HmacSecret::Generate));
        assert_eq!(
            calls[1].basic_auth.as_ref().unwrap().password,
            Some(Secret::new("p"))
        );
        assert_eq!(calls[2].hmac_secret, Some(HmacSecret::Remove));
    }

    #[test]
    fn answers_show_that_a_secret_is_set_never_the_secret() {
        let mut call = domain::CallWebhook::to("https://x/");
        call.basic_auth = Some(domain::BasicAuth {
            username: "erp".into(),
            password: Some(Secret::new("s3cret")),
        });
        call.hmac_secret = Some(HmacSecret::Keys(domain::SigningKeys {
            current: Secret::new("whsec_new"),
            previous: Some(Secret::new("whsec_old")),
            previous_valid_until: Some(2_000),
        }));
        call.client_certificate = Some(domain::ClientCertificate {
            cert_pem: "CERT".into(),
            key_pem: Some(Secret::new("KEY")),
            subject: Some("CN=a".into()),
            issuer: None,
            not_after: None,
        });
        let trigger = Trigger {
            id: TriggerId(3),
            draft: TriggerDraft::new("t", "OrderChanged", vec![Action::CallWebhook(call)]),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        };
        let out = TriggerOut::new(&trigger, &[], None, Timestamp(1_000)).to_json();
        let text = out.to_string();
        for secret in ["s3cret", "whsec_new", "whsec_old", "KEY"] {
            assert!(!text.contains(secret), "{secret} shown: {text}");
        }
        let action = &out["actions"][0];
        assert_eq!(action["basicAuth"]["password"], json!({"set": true}));
        assert_eq!(action["clientCertificate"]["keyPem"], json!({"set": true}));
        assert_eq!(
            action["hmacSecret"]["previousValidUntil"],
            json!("1970-01-01T00:00:02Z")
        );
        assert_eq!(action["active"], json!(true));
        // After the window, and once generated.
        let mut later = TriggerOut::new(
            &trigger,
            &[(
                ActionRef {
                    trigger: TriggerId(3),
                    index: 0,
                },
                Timestamp(5),
            )],
            None,
            Timestamp(3_000),
        );
        later.reveal_generated(&trigger, &[0]);
        let later = later.to_json();
        assert_eq!(
            later["actions"][0]["hmacSecret"],
            json!({"set": true, "secret": "whsec_new"})
        );
        assert_eq!(later["actions"][0]["active"], json!(false));
    }
}
