//! Send test: deliver one call of a trigger being edited now, and answer with the receiver's
//! response. Nothing is queued or logged; see `hookflow_engine::send_test`.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use hookflow_engine::send_test::{SendTestRequest, SendTestResult};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::{parse_from, parse_value};
use crate::AppState;

/// `POST /triggers/send-test`: `{"trigger": {...}, "triggerId"?, "actionIndex"?, "shopId"?,
/// "entityId"?}` → what was sent and what came back.
#[utoipa::path(
    post,
    path = "/triggers/send-test",
    tag = "triggers",
    operation_id = "send_test",
    summary = "Deliver one call of a trigger being edited, now",
    description = "Renders one action of the trigger (saved or not; with `triggerId` its stored credentials fill in what the editor leaves out) against the latest stored event about `entityId` in `shopId`, or the type's sample entity, and sends it through the same SSRF guard, signing and client certificate as queued calls. Nothing is queued or logged. The trigger is checked as saving checks it. It signs with the secret the trigger holds or is sent with, never a throwaway one: `\"hmacSecret\": \"generate\"` is refused.",
    request_body(content = SendTestRequest, example = json!({"trigger": {"name": "Orders to ERP", "eventType": "OrderChanged", "shopId": 1, "actions": [{"type": "callWebhook", "url": "https://erp.example.com/hooks/orders"}]}, "actionIndex": 0})),
    responses((status = 200, description = "What was sent and the receiver's answer (or why there was none).", body = SendTestResult), (status = 403, description = "The caller's role is read-only.", body = crate::openapi::ErrorBody), (status = 404, description = "No such trigger, shop or stored entity for the caller.", body = crate::openapi::ErrorBody), (status = 422, description = "The trigger would not save (the error names the field; templates with line and column).", body = crate::openapi::ErrorBody)),
)]
async fn send_test(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<Json<SendTestResult>, ApiError> {
    let mut value = parse_value(&body)?;
    if let Some(trigger) = value.get_mut("trigger") {
        // A trigger read back carries `{"set": true}` for its stored secrets, and what a read
        // adds; the editor may send it as it is.
        crate::v1::triggers::strip_masks(trigger);
        if let Some(object) = trigger.as_object_mut() {
            for derived in ["id", "createdAt", "updatedAt"] {
                object.remove(derived);
            }
        }
        if let Some(actions) = trigger
            .get_mut("actions")
            .and_then(serde_json::Value::as_array_mut)
        {
            for action in actions.iter_mut().filter_map(|a| a.as_object_mut()) {
                action.remove("active");
                action.remove("deactivatedAt");
            }
        }
    }
    // A test signs with the secret that will be saved; `"generate"` names none yet, and a
    // throwaway one would prove nothing about the receiver's configuration.
    let generating = value
        .pointer("/trigger/actions")
        .and_then(serde_json::Value::as_array)
        .and_then(|actions| {
            actions
                .iter()
                .position(|a| a.get("hmacSecret").and_then(|s| s.as_str()) == Some("generate"))
        });
    if let Some(index) = generating {
        return Err(ApiError::Engine(hookflow_engine::EngineError::Invalid {
            field: format!("actions[{index}].hmacSecret"),
            message: "a send test signs with the secret that will be saved, and \"generate\" \
                      has none yet: send the secret itself (the editor makes one when you \
                      choose Generate), or save first"
                .into(),
        }));
    }
    let request: SendTestRequest = parse_from(value)?;
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
    Ok(Json(state.engine.send_test(request).await?))
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(send_test))
}
