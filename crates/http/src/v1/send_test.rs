//! Send test: deliver one call of a trigger being edited now, and answer with the receiver's
//! response. Nothing is queued or logged; see `hookflow_engine::send_test`.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use hookflow_engine::send_test::{SendTestRequest, SendTestResult};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::{parse_from, parse_value};
use crate::AppState;

/// `POST /triggers/send-test`: `{"trigger": {...}, "triggerId"?, "actionIndex"?, "shopId"?,
/// "entityId"?}` → what was sent and what came back.
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

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/triggers/send-test", post(send_test))
}
