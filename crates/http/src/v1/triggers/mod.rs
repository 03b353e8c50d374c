//! Triggers: when an event of a type happens in a shop (and a condition holds), run actions.
//!
//! Credentials are write-only: answers say `{"set": true}` where a password, HMAC secret or
//! private key is stored, and a trigger read back and sent again keeps them (see `wire`).

pub(crate) mod activity;
mod dry_run;
mod wire;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use hookflow_engine::model::{Timestamp, Trigger, TriggerDraft, TriggerId};
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::parse;
use crate::params::Int;
use crate::AppState;

pub(crate) use wire::{Deactivated, MethodWire, TriggerIn, TriggerOut};

/// A trigger as the API shows it: secrets as `{"set": true}`, and each action's `active`
/// state (an action is deactivated by its retry policy or an admin).
pub(crate) fn trigger_out(
    state: &AppState,
    trigger: &Trigger,
    deactivated: &Deactivated,
) -> TriggerOut {
    let expression = state.engine.rule_expression(&trigger.draft);
    TriggerOut::new(trigger, deactivated, expression, Timestamp::now())
}

/// The answer to a save: the trigger as reads show it, plus the secrets it just generated, in
/// `hmacSecret.secret` (shown this once, like a new shop's API key).
fn saved_out(
    state: &AppState,
    trigger: &Trigger,
    deactivated: &Deactivated,
    generated: &[usize],
) -> Value {
    let mut out = trigger_out(state, trigger, deactivated);
    out.reveal_generated(trigger, generated);
    out.to_json()
}

/// A trigger from a request body, and the positions of the actions that asked for a new
/// HMAC secret.
fn draft_from(body: &Bytes) -> Result<(TriggerDraft, Vec<usize>), ApiError> {
    let input: TriggerIn = parse(body)?;
    let generating = input.generating();
    let draft = input.into_draft().map_err(rule_refused)?;
    Ok((draft, generating))
}

/// A rule tree that does not parse: 422 naming the clause.
pub(crate) fn rule_refused(e: hookflow_templating::rules::RuleError) -> ApiError {
    ApiError::Engine(hookflow_engine::EngineError::Invalid {
        field: e.path,
        message: e.message,
    })
}

/// The example body of create and replace in the OpenAPI document.
fn trigger_example() -> Value {
    json!({
        "name": "Orders to ERP",
        "eventType": "OrderChanged",
        "shopId": 1,
        "enabled": true,
        "priority": 5,
        "condition": "entity.Status == \"Shipped\" and entity.Total > 100",
        "actions": [{
            "type": "callWebhook",
            "url": "https://erp.example.com/hooks/orders",
            "method": "POST",
            "hmacSecret": "generate",
            "payload": {"mimeType": "application/json", "body": "{\"order\": {{ entity.OrderCode }}}"}
        }]
    })
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

#[utoipa::path(
    get,
    path = "/triggers",
    tag = "triggers",
    operation_id = "list_triggers",
    summary = "List triggers",
    responses((status = 200, description = "The triggers; secrets show as `{\"set\": true}`.", body = crate::openapi::TriggerList)),
)]
async fn list_triggers(State(state): State<AppState>, auth: Auth) -> Result<Json<Value>, ApiError> {
    let mut triggers = state.engine.list_triggers().await?;
    triggers.retain(|t| auth.sees(t.draft.shop_id));
    let down = state.engine.deactivated_actions().await?;
    Ok(Json(
        json!({"items": triggers.iter().map(|t| trigger_out(&state, t, &down).for_reader(&auth.0).to_json()).collect::<Vec<_>>()}),
    ))
}

#[utoipa::path(
    post,
    path = "/triggers",
    tag = "triggers",
    operation_id = "create_trigger",
    summary = "Create a trigger",
    description = "Templates and the condition are compiled and checked against a sample event of the type.",
    request_body(content = TriggerIn, example = trigger_example),
    responses((status = 201, description = "The trigger; secrets show as `{\"set\": true}`.", body = TriggerOut), (status = 422, description = "An invalid field, template or condition (with line and column), or an unknown event type or shop.", body = crate::openapi::ErrorBody)),
)]
async fn create_trigger(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_write()?;
    let (draft, generating) = draft_from(&body)?;
    check_draft_shop(&auth, &draft)?;
    let trigger = state.engine.create_trigger(draft).await?;
    Ok((
        StatusCode::CREATED,
        Json(saved_out(
            &state,
            &trigger,
            &state.engine.deactivated_actions().await?,
            &generating,
        )),
    ))
}

#[utoipa::path(
    get,
    path = "/triggers/{id}",
    tag = "triggers",
    operation_id = "get_trigger",
    summary = "Get a trigger",
    params(("id" = i64, Path, description = "The trigger's id.")),
    responses((status = 200, description = "The trigger; secrets show as `{\"set\": true}`.", body = TriggerOut), (status = 404, description = "No such trigger.", body = crate::openapi::ErrorBody)),
)]
async fn get_trigger(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
) -> Result<Json<Value>, ApiError> {
    let trigger = visible_trigger(&state, &auth, TriggerId(id)).await?;
    Ok(Json(
        trigger_out(&state, &trigger, &state.engine.deactivated_actions().await?)
            .for_reader(&auth.0)
            .to_json(),
    ))
}

#[utoipa::path(
    put,
    path = "/triggers/{id}",
    tag = "triggers",
    operation_id = "update_trigger",
    summary = "Replace a trigger",
    description = "Secrets left out, or sent back as `{\"set\": true}`, keep their stored values.",
    params(("id" = i64, Path, description = "The trigger's id.")),
    request_body(content = TriggerIn, example = trigger_example),
    responses((status = 200, description = "The trigger.", body = TriggerOut), (status = 404, description = "No such trigger.", body = crate::openapi::ErrorBody), (status = 422, description = "An invalid field, template or condition, or an unknown event type or shop.", body = crate::openapi::ErrorBody)),
)]
async fn update_trigger(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth.require_write()?;
    visible_trigger(&state, &auth, TriggerId(id)).await?;
    let (draft, generating) = draft_from(&body)?;
    check_draft_shop(&auth, &draft)?;
    let trigger = state.engine.update_trigger(TriggerId(id), draft).await?;
    Ok(Json(saved_out(
        &state,
        &trigger,
        &state.engine.deactivated_actions().await?,
        &generating,
    )))
}

#[utoipa::path(
    delete,
    path = "/triggers/{id}",
    tag = "triggers",
    operation_id = "delete_trigger",
    summary = "Delete a trigger",
    params(("id" = i64, Path, description = "The trigger's id.")),
    responses((status = 204, description = "Deleted."), (status = 404, description = "No such trigger.", body = crate::openapi::ErrorBody)),
)]
async fn delete_trigger(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
) -> Result<StatusCode, ApiError> {
    auth.require_write()?;
    visible_trigger(&state, &auth, TriggerId(id)).await?;
    state.engine.delete_trigger(TriggerId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Shows an action's current HMAC secret, for configuring the receiver. Each reveal is logged
/// (target `hookflow::audit`: who, which trigger and action; never the secret).
#[utoipa::path(
    post,
    path = "/triggers/{id}/actions/{index}/reveal-secret",
    tag = "triggers",
    operation_id = "reveal_secret",
    summary = "Show an action's HMAC secret",
    description = "The current secret, for configuring the receiver. Callers who may write only; each reveal is logged with who asked and which action (never the secret). A body is ignored.",
    params(("id" = i64, Path, description = "The trigger's id."), ("index" = u32, Path, description = "The action's position in `actions`, from 0.")),
    responses((status = 200, description = "The secret.", body = crate::openapi::RevealedSecret), (status = 403, description = "The caller's role is read-only.", body = crate::openapi::ErrorBody), (status = 404, description = "No such trigger or action.", body = crate::openapi::ErrorBody)),
)]
async fn reveal_secret(
    State(state): State<AppState>,
    auth: Auth,
    Path((Int(id), Int(index))): Path<(Int<i64>, Int<usize>)>,
) -> Result<Json<Value>, ApiError> {
    let who = auth.require_write()?;
    visible_trigger(&state, &auth, TriggerId(id)).await?;
    let secret = state.engine.reveal_secret(TriggerId(id), index).await?;
    // Who saw which secret, for the audit trail; never the value.
    tracing::info!(
        target: "hookflow::audit",
        user = %who.email,
        trigger_id = id,
        action = index,
        "HMAC secret revealed"
    );
    Ok(Json(json!({"hmacSecret": secret.expose()})))
}

#[derive(serde::Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ActivateParams {
    /// Activation only: queue again what failed or was skipped while it was down.
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

#[utoipa::path(
    put,
    path = "/triggers/{id}/activate",
    tag = "triggers",
    operation_id = "activate_trigger",
    summary = "Enable a trigger",
    params(("id" = i64, Path, description = "The trigger's id."), ActivateParams),
    responses((status = 200, description = "The trigger, and the calls queued again.", body = crate::openapi::TriggerActivated), (status = 404, description = "No such trigger.", body = crate::openapi::ErrorBody)),
)]
async fn activate_trigger(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
    params: Result<Query<ActivateParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    auth.require_write()?;
    visible_trigger(&state, &auth, TriggerId(id)).await?;
    let p = activate_params(params)?;
    let (trigger, requeued) = state
        .engine
        .set_trigger_active(TriggerId(id), true, p.requeue_failed)
        .await?;
    let mut out =
        trigger_out(&state, &trigger, &state.engine.deactivated_actions().await?).to_json();
    out["requeued"] = json!(requeued);
    Ok(Json(out))
}

#[utoipa::path(
    put,
    path = "/triggers/{id}/deactivate",
    tag = "triggers",
    operation_id = "deactivate_trigger",
    summary = "Disable a trigger",
    params(("id" = i64, Path, description = "The trigger's id.")),
    responses((status = 200, description = "The trigger.", body = TriggerOut), (status = 404, description = "No such trigger.", body = crate::openapi::ErrorBody)),
)]
async fn deactivate_trigger(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
) -> Result<Json<Value>, ApiError> {
    auth.require_write()?;
    visible_trigger(&state, &auth, TriggerId(id)).await?;
    let (trigger, _) = state
        .engine
        .set_trigger_active(TriggerId(id), false, false)
        .await?;
    Ok(Json(
        trigger_out(&state, &trigger, &state.engine.deactivated_actions().await?).to_json(),
    ))
}

#[utoipa::path(
    put,
    path = "/triggers/{id}/actions/{index}/activate",
    tag = "triggers",
    operation_id = "activate_action",
    summary = "Reactivate an action",
    params(("id" = i64, Path, description = "The trigger's id."), ("index" = u32, Path, description = "The action's position in `actions`, from 0."), ActivateParams),
    responses((status = 200, description = "The action's state.", body = crate::openapi::ActionState), (status = 404, description = "No such trigger or action.", body = crate::openapi::ErrorBody)),
)]
async fn activate_action(
    State(state): State<AppState>,
    auth: Auth,
    Path((Int(id), Int(index))): Path<(Int<i64>, Int<usize>)>,
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

#[utoipa::path(
    put,
    path = "/triggers/{id}/actions/{index}/deactivate",
    tag = "triggers",
    operation_id = "deactivate_action",
    summary = "Deactivate an action",
    params(("id" = i64, Path, description = "The trigger's id."), ("index" = u32, Path, description = "The action's position in `actions`, from 0.")),
    responses((status = 200, description = "The action's state.", body = crate::openapi::ActionState), (status = 404, description = "No such trigger or action.", body = crate::openapi::ErrorBody)),
)]
async fn deactivate_action(
    State(state): State<AppState>,
    auth: Auth,
    Path((Int(id), Int(index))): Path<(Int<i64>, Int<usize>)>,
) -> Result<Json<Value>, ApiError> {
    auth.require_write()?;
    visible_trigger(&state, &auth, TriggerId(id)).await?;
    state
        .engine
        .set_action_active(TriggerId(id), index, false, false)
        .await?;
    Ok(Json(json!({"active": false})))
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_triggers, create_trigger))
        .routes(routes!(get_trigger, update_trigger, delete_trigger))
        .routes(routes!(reveal_secret))
        .routes(routes!(activate_trigger))
        .routes(routes!(deactivate_trigger))
        .routes(routes!(activate_action))
        .routes(routes!(deactivate_action))
        .routes(routes!(dry_run::dry_run_draft))
        .routes(routes!(dry_run::check_rules))
        .routes(routes!(dry_run::dry_run_trigger))
        .routes(routes!(activity::trigger_activity))
}
