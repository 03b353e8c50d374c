//! Send test: deliver one call of a trigger being edited now, and answer with the receiver's
//! response. Nothing is queued or logged; see `hookflow_engine::send_test`.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use hookflow_engine::model::{ShopId, TriggerId};
use hookflow_engine::send_test::{SendTestRequest, SendTestResult, SentRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::{parse_from, parse_value};
use crate::v1::payloads::EntityIdIn;
use crate::v1::schema;
use crate::v1::triggers::TriggerIn;
use crate::AppState;

/// A send test: the trigger as the editor holds it (saved or not), and what to render it for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendTestIn {
    /// The trigger as the editor holds it; what a read adds (`id`, `createdAt`, `updatedAt`)
    /// is ignored.
    pub trigger: TriggerIn,
    /// The saved trigger being edited: its stored credentials fill in the write-only fields
    /// the editor leaves out.
    #[serde(default)]
    #[schema(value_type = Option<schema::TriggerId>)]
    pub trigger_id: Option<TriggerId>,
    /// Which action to send (default the first); a trigger has at most 20 actions.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 19)]
    pub action_index: usize,
    /// With `entityId`: render against the latest stored event about that entity.
    #[serde(default)]
    #[schema(value_type = Option<schema::ShopId>)]
    pub shop_id: Option<ShopId>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub entity_id: Option<EntityIdIn>,
}

impl TryFrom<SendTestIn> for SendTestRequest {
    type Error = ApiError;

    fn try_from(input: SendTestIn) -> Result<SendTestRequest, ApiError> {
        Ok(SendTestRequest {
            trigger: input
                .trigger
                .into_draft()
                .map_err(crate::v1::triggers::rule_refused)?,
            trigger_id: input.trigger_id,
            action_index: input.action_index,
            shop_id: input.shop_id,
            entity_id: input.entity_id.map(String::from),
        })
    }
}

/// `POST /triggers/send-test`: `{"trigger": {...}, "triggerId"?, "actionIndex"?, "shopId"?,
/// "entityId"?}` → what was sent and what came back.
#[utoipa::path(
    post,
    path = "/triggers/send-test",
    tag = "triggers",
    operation_id = "send_test",
    summary = "Deliver one call of a trigger being edited, now",
    description = "Renders one action of the trigger (saved or not; with `triggerId` its stored credentials fill in what the editor leaves out) against the latest stored event about `entityId` in `shopId`, or the type's sample entity, and sends it through the same SSRF guard, signing and client certificate as queued calls. Nothing is queued or logged. The trigger is checked as saving checks it. It signs with the secret the trigger holds or is sent with, never a throwaway one: `\"hmacSecret\": \"generate\"` is refused.",
    request_body(content = SendTestIn, example = json!({"trigger": {"name": "Orders to ERP", "eventType": "OrderChanged", "shopId": 1, "actions": [{"type": "callWebhook", "url": "https://erp.example.com/hooks/orders"}]}, "actionIndex": 0})),
    responses((status = 200, description = "What was sent and the receiver's answer (or why there was none).", body = SendTestResultOut), (status = 403, description = "The caller's role is read-only.", body = crate::openapi::ErrorBody), (status = 404, description = "No such trigger, shop or stored entity for the caller.", body = crate::openapi::ErrorBody), (status = 422, description = "The trigger would not save (the error names the field; templates with line and column).", body = crate::openapi::ErrorBody)),
)]
async fn send_test(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<Json<SendTestResultOut>, ApiError> {
    let mut value = parse_value(&body)?;
    // A trigger read back may be sent as it is: what a read adds to a trigger is not input.
    if let Some(trigger) = value
        .get_mut("trigger")
        .and_then(serde_json::Value::as_object_mut)
    {
        for derived in ["id", "createdAt", "updatedAt"] {
            trigger.remove(derived);
        }
    }
    let input: SendTestIn = parse_from(value)?;
    // A test signs with the secret that will be saved; `"generate"` names none yet, and a
    // throwaway one would prove nothing about the receiver's configuration.
    if let Some(&index) = input.trigger.generating().first() {
        return Err(ApiError::Engine(hookflow_engine::EngineError::Invalid {
            field: format!("actions[{index}].hmacSecret"),
            message: "a send test signs with the secret that will be saved, and \"generate\" \
                      has none yet: send the secret itself (the editor makes one when you \
                      choose Generate), or save first"
                .into(),
        }));
    }
    let request = SendTestRequest::try_from(input)?;
    auth.require_write()?;
    // A shop owner admin tests only triggers of their shops, and only their shops' entities.
    if !auth.sees(request.trigger.shop_id) || request.shop_id.is_some_and(|s| !auth.sees(Some(s))) {
        return Err(ApiError::NotFound("no such shop".into()));
    }
    if let Some(id) = request.trigger_id {
        let existing = state.engine.get_trigger(id).await?;
        if !auth.sees(existing.draft.shop_id) {
            return Err(ApiError::NotFound(format!("trigger {id} does not exist")));
        }
    }
    Ok(Json(state.engine.send_test(request).await?.into()))
}

/// What was sent and what came back.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SendTestResult)]
pub struct SendTestResultOut {
    pub request: SentRequestOut,
    /// The receiver's HTTP status; `None` when there was no answer.
    pub status: Option<u16>,
    pub duration_ms: u64,
    /// `[name, value]` pairs.
    #[schema(value_type = Vec<Vec<String>>)]
    pub response_headers: Vec<(String, String)>,
    pub response_body: String,
    /// Why there was no answer (timeout, refused target, connection error), or why the call
    /// could not be rendered.
    pub error: Option<String>,
    /// A 2xx answer.
    pub success: bool,
}

impl From<SendTestResult> for SendTestResultOut {
    fn from(r: SendTestResult) -> SendTestResultOut {
        SendTestResultOut {
            request: r.request.into(),
            status: r.status,
            duration_ms: r.duration_ms,
            response_headers: r.response_headers,
            response_body: r.response_body,
            error: r.error,
            success: r.success,
        }
    }
}

/// The request as hookflow built it (credentials and signatures are added by the transport
/// and not shown).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = SentRequest)]
pub struct SentRequestOut {
    pub method: &'static str,
    pub url: String,
    /// `[name, value]` pairs.
    #[schema(value_type = Vec<Vec<String>>)]
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl From<SentRequest> for SentRequestOut {
    fn from(r: SentRequest) -> SentRequestOut {
        SentRequestOut {
            method: r.method,
            url: r.url,
            headers: r.headers,
            body: r.body,
        }
    }
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(send_test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_test_requests_read_the_documented_shape() {
        let input: SendTestIn = parse_from(serde_json::json!({
            "trigger": {"name": "t", "eventType": "OrderChanged", "shopId": 1,
                        "actions": [{"type": "callWebhook", "url": "https://h/"}]},
            "triggerId": 3, "actionIndex": 0, "shopId": 1, "entityId": "42"
        }))
        .unwrap();
        let request = SendTestRequest::try_from(input).unwrap();
        assert_eq!(request.trigger_id, Some(TriggerId(3)));
        assert_eq!(request.entity_id.as_deref(), Some("42"));
    }
}
