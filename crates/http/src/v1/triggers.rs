//! Triggers: when an event of a type happens in a shop (and a condition holds), run actions.
//!
//! Credentials are write-only: answers say `{"set": true}` where a password, HMAC secret or
//! private key is stored, and a trigger read back and sent again keeps them.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookflow_engine::model::{Trigger, TriggerDraft, TriggerId};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::json::{parse_from, parse_value};
use crate::AppState;

/// Where secrets live in an action, and how a read shows them.
const SECRET_FIELDS: &[(&str, &str)] =
    &[("basicAuth", "password"), ("clientCertificate", "keyPem")];

/// A trigger as the API shows it: secrets replaced by `{"set": true}`.
pub(crate) fn trigger_out(trigger: &Trigger) -> Value {
    let mut value = serde_json::to_value(trigger).unwrap_or(Value::Null);
    if let Some(actions) = value.get_mut("actions").and_then(Value::as_array_mut) {
        for action in actions {
            for (object, field) in SECRET_FIELDS {
                if let Some(secret) = action.get_mut(*object).and_then(|o| o.get_mut(*field)) {
                    *secret = json!({"set": true});
                }
            }
            if let Some(hmac) = action.get_mut("hmacSecret") {
                let rotating_until = hmac
                    .get("previousValidUntil")
                    .and_then(Value::as_i64)
                    .map(|ms| hookflow_engine::model::Timestamp(ms).to_rfc3339());
                *hmac = match rotating_until {
                    Some(until) => json!({"set": true, "previousValidUntil": until}),
                    None => json!({"set": true}),
                };
            }
        }
    }
    value
}

/// Drops `{"set": true}` markers from input, so that sending back what a read returned keeps
/// the stored secrets.
fn strip_masks(value: &mut Value) {
    let Some(actions) = value.get_mut("actions").and_then(Value::as_array_mut) else {
        return;
    };
    let is_mask = |v: &Value| {
        v.as_object()
            .is_some_and(|o| o.get("set").is_some_and(Value::is_boolean))
    };
    for action in actions {
        if action.get("hmacSecret").is_some_and(is_mask) {
            action.as_object_mut().map(|o| o.remove("hmacSecret"));
        }
        for (object, field) in SECRET_FIELDS {
            if let Some(obj) = action.get_mut(*object).and_then(Value::as_object_mut) {
                if obj.get(*field).is_some_and(is_mask) {
                    obj.remove(*field);
                }
                // Descriptions hookflow filled in are not input.
                if *object == "clientCertificate" {
                    for derived in ["subject", "issuer", "notAfter"] {
                        obj.remove(derived);
                    }
                }
            }
        }
    }
}

fn draft_from(body: &Bytes) -> Result<TriggerDraft, ApiError> {
    let mut value = parse_value(body)?;
    strip_masks(&mut value);
    parse_from(value)
}

async fn list_triggers(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let triggers = state.engine.list_triggers().await?;
    Ok(Json(
        json!({"items": triggers.iter().map(trigger_out).collect::<Vec<_>>()}),
    ))
}

async fn create_trigger(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let draft = draft_from(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(trigger_out(&state.engine.create_trigger(draft).await?)),
    ))
}

async fn get_trigger(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(trigger_out(
        &state.engine.get_trigger(TriggerId(id)).await?,
    )))
}

async fn update_trigger(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let draft = draft_from(&body)?;
    Ok(Json(trigger_out(
        &state.engine.update_trigger(TriggerId(id), draft).await?,
    )))
}

async fn delete_trigger(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.engine.delete_trigger(TriggerId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Shows an action's current HMAC secret, for configuring the receiver.
async fn reveal_secret(
    State(state): State<AppState>,
    Path((id, index)): Path<(i64, usize)>,
) -> Result<Json<Value>, ApiError> {
    let secret = state.engine.reveal_secret(TriggerId(id), index).await?;
    Ok(Json(json!({"hmacSecret": secret})))
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/triggers", get(list_triggers).post(create_trigger))
        .route(
            "/triggers/{id}",
            get(get_trigger).put(update_trigger).delete(delete_trigger),
        )
        .route(
            "/triggers/{id}/actions/{index}/reveal-secret",
            post(reveal_secret),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_dropped_from_input() {
        let mut v = json!({"actions": [{"type": "callWebhook", "url": "https://x/",
            "basicAuth": {"username": "u", "password": {"set": true}},
            "hmacSecret": {"set": true},
            "clientCertificate": {"certPem": "C", "keyPem": {"set": true}, "subject": "CN=x"}}]});
        strip_masks(&mut v);
        assert_eq!(v["actions"][0]["basicAuth"], json!({"username": "u"}));
        assert!(v["actions"][0].get("hmacSecret").is_none());
        assert_eq!(
            v["actions"][0]["clientCertificate"],
            json!({"certPem": "C"})
        );
    }
}
