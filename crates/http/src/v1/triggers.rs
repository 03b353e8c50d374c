//! Triggers: when an event of a type happens in a shop (and a condition holds), run actions.
//!
//! Credentials are write-only: answers say `{"set": true}` where a password, HMAC secret or
//! private key is stored, and a trigger read back and sent again keeps them.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use hookflow_engine::model::{Timestamp, Trigger, TriggerDraft, TriggerId};
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::{parse_from, parse_value};
use crate::AppState;

/// Where secrets live in an action, and how a read shows them.
const SECRET_FIELDS: &[(&str, &str)] =
    &[("basicAuth", "password"), ("clientCertificate", "keyPem")];

/// Deactivated actions, by (trigger, action index), with when.
type Deactivated = Vec<(TriggerId, i32, Timestamp)>;

/// A trigger as the API shows it: secrets replaced by `{"set": true}`, and each action's
/// `active` state (an action is deactivated by its retry policy or an admin).
pub(crate) fn trigger_out(trigger: &Trigger, deactivated: &Deactivated) -> Value {
    let mut value = serde_json::to_value(trigger).unwrap_or(Value::Null);
    if let Some(actions) = value.get_mut("actions").and_then(Value::as_array_mut) {
        for (index, action) in actions.iter_mut().enumerate() {
            let down = deactivated
                .iter()
                .find(|(t, a, _)| *t == trigger.id && *a == index as i32);
            if let Some(object) = action.as_object_mut() {
                object.insert("active".into(), json!(down.is_none()));
                if let Some((_, _, at)) = down {
                    object.insert("deactivatedAt".into(), json!(at.to_rfc3339()));
                }
            }
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
    // What reads add is not input.
    if let Some(actions) = value.get_mut("actions").and_then(Value::as_array_mut) {
        for action in actions.iter_mut().filter_map(Value::as_object_mut) {
            action.remove("active");
            action.remove("deactivatedAt");
        }
    }
    parse_from(value)
}

/// The trigger, when the caller sees its shop (404 as if it did not exist otherwise).
pub(crate) async fn visible_trigger(
    state: &AppState,
    auth: &Auth,
    id: TriggerId,
) -> Result<Trigger, ApiError> {
    let trigger = state.engine.get_trigger(id).await?;
    if !auth.sees(trigger.draft.shop_id) {
        return Err(ApiError::NotFound(format!("trigger {id} does not exist")));
    }
    Ok(trigger)
}

/// A trigger may only be saved for a shop the caller sees (422 as for a shop that does not
/// exist otherwise); one for every shop only by callers who see every shop.
fn check_draft_shop(auth: &Auth, draft: &TriggerDraft) -> Result<(), ApiError> {
    if auth.sees(draft.shop_id) {
        return Ok(());
    }
    let message = match draft.shop_id {
        Some(shop) => format!("shop {shop} does not exist"),
        None => "a trigger for every shop needs a caller who sees every shop; set shopId".into(),
    };
    Err(ApiError::Engine(hookflow_engine::EngineError::Invalid {
        field: "shopId".into(),
        message,
    }))
}

async fn list_triggers(State(state): State<AppState>, auth: Auth) -> Result<Json<Value>, ApiError> {
    let mut triggers = state.engine.list_triggers().await?;
    triggers.retain(|t| auth.sees(t.draft.shop_id));
    let down = state.engine.deactivated_actions().await?;
    Ok(Json(
        json!({"items": triggers.iter().map(|t| trigger_out(t, &down)).collect::<Vec<_>>()}),
    ))
}

async fn create_trigger(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_write()?;
    let draft = draft_from(&body)?;
    check_draft_shop(&auth, &draft)?;
    let trigger = state.engine.create_trigger(draft).await?;
    Ok((
        StatusCode::CREATED,
        Json(trigger_out(
            &trigger,
            &state.engine.deactivated_actions().await?,
        )),
    ))
}

async fn get_trigger(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let trigger = visible_trigger(&state, &auth, TriggerId(id)).await?;
    Ok(Json(trigger_out(
        &trigger,
        &state.engine.deactivated_actions().await?,
    )))
}

async fn update_trigger(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth.require_write()?;
    visible_trigger(&state, &auth, TriggerId(id)).await?;
    let draft = draft_from(&body)?;
    check_draft_shop(&auth, &draft)?;
    let trigger = state.engine.update_trigger(TriggerId(id), draft).await?;
    Ok(Json(trigger_out(
        &trigger,
        &state.engine.deactivated_actions().await?,
    )))
}

async fn delete_trigger(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    auth.require_write()?;
    visible_trigger(&state, &auth, TriggerId(id)).await?;
    state.engine.delete_trigger(TriggerId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Shows an action's current HMAC secret, for configuring the receiver.
async fn reveal_secret(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, index)): Path<(i64, usize)>,
) -> Result<Json<Value>, ApiError> {
    auth.require_write()?;
    visible_trigger(&state, &auth, TriggerId(id)).await?;
    let secret = state.engine.reveal_secret(TriggerId(id), index).await?;
    Ok(Json(json!({"hmacSecret": secret})))
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ActivateParams {
    #[serde(default)]
    requeue_failed: bool,
}

fn activate_params(
    params: Result<Query<ActivateParams>, axum::extract::rejection::QueryRejection>,
) -> Result<ActivateParams, ApiError> {
    params
        .map(|Query(p)| p)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

async fn activate_trigger(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    params: Result<Query<ActivateParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    auth.require_write()?;
    visible_trigger(&state, &auth, TriggerId(id)).await?;
    let p = activate_params(params)?;
    let (trigger, requeued) = state
        .engine
        .set_trigger_active(TriggerId(id), true, p.requeue_failed)
        .await?;
    let mut out = trigger_out(&trigger, &state.engine.deactivated_actions().await?);
    out["requeued"] = json!(requeued);
    Ok(Json(out))
}

async fn deactivate_trigger(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    auth.require_write()?;
    visible_trigger(&state, &auth, TriggerId(id)).await?;
    let (trigger, _) = state
        .engine
        .set_trigger_active(TriggerId(id), false, false)
        .await?;
    Ok(Json(trigger_out(
        &trigger,
        &state.engine.deactivated_actions().await?,
    )))
}

async fn activate_action(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, index)): Path<(i64, usize)>,
    params: Result<Query<ActivateParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    auth.require_write()?;
    visible_trigger(&state, &auth, TriggerId(id)).await?;
    let p = activate_params(params)?;
    let requeued = state
        .engine
        .set_action_active(TriggerId(id), index, true, p.requeue_failed)
        .await?;
    Ok(Json(json!({"active": true, "requeued": requeued})))
}

async fn deactivate_action(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, index)): Path<(i64, usize)>,
) -> Result<Json<Value>, ApiError> {
    auth.require_write()?;
    visible_trigger(&state, &auth, TriggerId(id)).await?;
    state
        .engine
        .set_action_active(TriggerId(id), index, false, false)
        .await?;
    Ok(Json(json!({"active": false})))
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
        .route("/triggers/{id}/activate", put(activate_trigger))
        .route("/triggers/{id}/deactivate", put(deactivate_trigger))
        .route(
            "/triggers/{id}/actions/{index}/activate",
            put(activate_action),
        )
        .route(
            "/triggers/{id}/actions/{index}/deactivate",
            put(deactivate_action),
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
