//! `POST /triggers/{id}/dry-run` and `POST /triggers/dry-run`: a trigger evaluated for one
//! entity, clause by clause, with the calls it would make (and, with `"send": true`, what the
//! receivers answered).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use hookflow_engine::dry_run::{DryRun, DryRunCall, DryRunInput, DryRunRequest};
use hookflow_engine::model::{EventId, ShopId, TriggerDraft, TriggerId};
use hookflow_templating::rules::TraceStep;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::{parse_from, parse_value};
use crate::params::Int;
use crate::v1::payloads::EntityIdIn;
use crate::v1::schema;
use crate::v1::send_test::{SendTestResultOut, SentRequestOut};
use crate::v1::triggers::{rule_refused, visible_trigger, TriggerIn};
use crate::AppState;

/// What to evaluate a saved trigger for: the latest stored event about `entityId` in
/// `shopId`, or an entity given as it is (`entityData`, and `previousData` for rules on what
/// changed); the type's sample entity when neither is given.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DryRunIn {
    #[serde(default)]
    #[schema(value_type = Option<schema::ShopId>)]
    pub shop_id: Option<ShopId>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub entity_id: Option<EntityIdIn>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub entity_data: Option<Map<String, Value>>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub previous_data: Option<Map<String, Value>>,
    /// Also send the calls (when the trigger fires), as *Send test* does.
    #[serde(default)]
    pub send: bool,
}

/// A dry run of a trigger being edited: the trigger (as saved; `triggerId` fills in its
/// stored credentials) and what to evaluate it for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DraftDryRunIn {
    pub trigger: TriggerIn,
    #[serde(default)]
    #[schema(value_type = Option<schema::TriggerId>)]
    pub trigger_id: Option<TriggerId>,
    #[serde(default)]
    #[schema(value_type = Option<schema::ShopId>)]
    pub shop_id: Option<ShopId>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub entity_id: Option<EntityIdIn>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub entity_data: Option<Map<String, Value>>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub previous_data: Option<Map<String, Value>>,
    #[serde(default)]
    pub send: bool,
}

/// Whether the trigger fires for the entity, why, and what it would send.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DryRun)]
pub struct DryRunOut {
    pub matched: bool,
    /// Every rule clause with the value it saw (a `where` rule's clauses once per item, up to
    /// 20 items); one step for a condition; empty for a trigger that always fires.
    pub trace: Vec<TraceStepOut>,
    /// The calls it would make (none when it does not fire).
    pub calls: Vec<DryRunCallOut>,
    /// The stored event evaluated (with `entityId`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<schema::EventId>)]
    pub event_id: Option<EventId>,
}

/// One clause as the dry run evaluated it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = TraceStep)]
pub struct TraceStepOut {
    /// The clause's path (`rules.all[1].any[0]`); a `where` clause adds the item tested
    /// (`… (item 2)`).
    pub path: String,
    /// The field read (with the item's index inside a `where`: `entity.Lines[2].Sku`).
    pub field: String,
    pub op: &'static str,
    /// The clause's value, as written.
    pub expected: Option<Value>,
    /// What the entity held there (`null`: no value; a list operator shows the item count).
    pub actual: Value,
    /// For `changed`, `changedTo` and `changedFrom`: the value in `previousData`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<Value>,
    pub result: bool,
    /// Why, where the values alone do not say (no `previousData`, items not shown, a
    /// condition that failed to evaluate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl From<TraceStep> for TraceStepOut {
    fn from(s: TraceStep) -> TraceStepOut {
        TraceStepOut {
            path: s.path,
            field: s.field,
            op: s.op,
            expected: s.expected,
            actual: s.actual,
            previous: s.previous,
            result: s.result,
            note: s.note,
        }
    }
}

/// One call as it would go out: hookflow's headers and signatures included, credentials
/// masked.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DryRunCall)]
pub struct DryRunCallOut {
    pub action_index: usize,
    pub method: &'static str,
    pub url: String,
    /// `[name, value]` pairs, in the order they are sent.
    #[schema(value_type = Vec<Vec<String>>)]
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// The payload's type (`application/json`, …); `null` for a GET.
    pub mime_type: Option<String>,
    /// Why the call could not be rendered: it would be recorded as failed, not sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// With `"send": true`: what the receiver answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<SendTestResultOut>,
}

impl From<DryRunCall> for DryRunCallOut {
    fn from(c: DryRunCall) -> DryRunCallOut {
        let request = SentRequestOut::from(c.request);
        DryRunCallOut {
            action_index: c.action_index,
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
            mime_type: c.mime_type.map(|m| m.as_str().to_owned()),
            error: c.error,
            response: c.sent.map(SendTestResultOut::from),
        }
    }
}

impl From<DryRun> for DryRunOut {
    fn from(d: DryRun) -> DryRunOut {
        DryRunOut {
            matched: d.matched,
            trace: d.trace.into_iter().map(TraceStepOut::from).collect(),
            calls: d.calls.into_iter().map(DryRunCallOut::from).collect(),
            event_id: d.event_id,
        }
    }
}

/// The input of either route, as the engine takes it.
fn input(
    shop_id: Option<ShopId>,
    entity_id: Option<EntityIdIn>,
    entity_data: Option<Map<String, Value>>,
    previous_data: Option<Map<String, Value>>,
) -> Result<DryRunInput, ApiError> {
    let entity_id = entity_id.map(String::from);
    match (shop_id, entity_id, entity_data) {
        (Some(shop_id), Some(entity_id), None) => {
            if previous_data.is_some() {
                return Err(invalid(
                    "previousData",
                    "a stored event brings its own previousData; give entityData with it to \
                     evaluate a pasted entity",
                ));
            }
            Ok(DryRunInput::Stored { shop_id, entity_id })
        }
        (None, Some(_), None) => Err(invalid(
            "shopId",
            "an entityId is looked up in a shop: give its shopId too",
        )),
        (shop_id, entity_id, entity) => Ok(DryRunInput::Given {
            entity,
            previous: previous_data,
            shop_id,
            entity_id,
        }),
    }
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::Engine(hookflow_engine::EngineError::Invalid {
        field: field.into(),
        message: message.into(),
    })
}

/// What a dry run may see and do: a read-only role may not run one (it renders credentials
/// into requests and may send them), and a shop owner only in their shops.
fn check_access(auth: &Auth, draft: &TriggerDraft, input: &DryRunInput) -> Result<(), ApiError> {
    auth.require_write()?;
    let shop = match input {
        DryRunInput::Stored { shop_id, .. } => Some(*shop_id),
        DryRunInput::Given { shop_id, .. } => *shop_id,
    };
    if !auth.sees(draft.shop_id) || shop.is_some_and(|s| !auth.sees(Some(s))) {
        return Err(ApiError::NotFound("no such shop".into()));
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/triggers/{id}/dry-run",
    tag = "triggers",
    operation_id = "dry_run_trigger",
    summary = "Evaluate a saved trigger for one entity",
    description = "Evaluates the trigger's rules (or condition) for the latest stored event about `entityId` in `shopId`, or for `entityData` (and `previousData`) as given, or the type's sample entity, and answers every clause with the value it saw and each call it would make, exactly as it would go out (hookflow's headers and signatures included, credentials masked). Nothing is queued or logged. With `\"send\": true` the calls are also delivered, as *Send test* does, and each carries the receiver's answer.",
    params(("id" = i64, Path, description = "The trigger's id.")),
    request_body(content = DryRunIn, example = json!({"shopId": 1, "entityId": "42"})),
    responses((status = 200, description = "The verdict, the trace and the calls.", body = DryRunOut), (status = 403, description = "The caller's role is read-only.", body = crate::openapi::ErrorBody), (status = 404, description = "No such trigger, shop or stored entity for the caller.", body = crate::openapi::ErrorBody), (status = 422, description = "The trigger no longer saves as it is, or the input is contradictory (the error names the field).", body = crate::openapi::ErrorBody)),
)]
pub(crate) async fn dry_run_trigger(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
    body: Bytes,
) -> Result<Json<DryRunOut>, ApiError> {
    let trigger = visible_trigger(&state, &auth, TriggerId(id)).await?;
    let body: DryRunIn = parse_from(parse_value(&body)?)?;
    let input = input(
        body.shop_id,
        body.entity_id,
        body.entity_data,
        body.previous_data,
    )?;
    check_access(&auth, &trigger.draft, &input)?;
    let request = DryRunRequest {
        trigger: trigger.draft,
        trigger_id: Some(trigger.id),
        input,
        send: body.send,
    };
    Ok(Json(state.engine.dry_run(request).await?.into()))
}

#[utoipa::path(
    post,
    path = "/triggers/dry-run",
    tag = "triggers",
    operation_id = "dry_run_draft",
    summary = "Evaluate a trigger being edited for one entity",
    description = "As `POST /triggers/{id}/dry-run`, for the trigger in the body (saved or not; with `triggerId` its stored credentials fill in what the editor leaves out). The trigger is checked as saving checks it.",
    request_body(content = DraftDryRunIn, example = json!({"trigger": {"name": "Shipped orders", "eventType": "OrderChanged", "shopId": 1, "rules": {"field": "entity.OrderCode", "op": "startsWith", "value": "ORD-"}, "actions": [{"type": "callWebhook", "url": "https://erp.example.com/hooks/orders"}]}, "entityData": {"OrderId": 42, "OrderCode": "ORD-42"}})),
    responses((status = 200, description = "The verdict, the trace and the calls.", body = DryRunOut), (status = 403, description = "The caller's role is read-only.", body = crate::openapi::ErrorBody), (status = 404, description = "No such trigger, shop or stored entity for the caller.", body = crate::openapi::ErrorBody), (status = 422, description = "The trigger would not save (the error names the field, a rule its clause), or the input is contradictory.", body = crate::openapi::ErrorBody)),
)]
pub(crate) async fn dry_run_draft(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<Json<DryRunOut>, ApiError> {
    let mut value = parse_value(&body)?;
    // A trigger read back may be sent as it is: what a read adds is not input.
    if let Some(trigger) = value.get_mut("trigger").and_then(Value::as_object_mut) {
        for derived in ["id", "createdAt", "updatedAt", "ruleExpression"] {
            trigger.remove(derived);
        }
    }
    let body: DraftDryRunIn = parse_from(value)?;
    if let Some(&index) = body.trigger.generating().first() {
        return Err(invalid(
            &format!("actions[{index}].hmacSecret"),
            "a dry run signs with the secret that will be saved, and \"generate\" has none \
             yet: send the secret itself, or save first",
        ));
    }
    let draft = body.trigger.into_draft().map_err(rule_refused)?;
    let input = input(
        body.shop_id,
        body.entity_id,
        body.entity_data,
        body.previous_data,
    )?;
    check_access(&auth, &draft, &input)?;
    if let Some(id) = body.trigger_id {
        visible_trigger(&state, &auth, id).await?;
    }
    let request = DryRunRequest {
        trigger: draft,
        trigger_id: body.trigger_id,
        input,
        send: body.send,
    };
    Ok(Json(state.engine.dry_run(request).await?.into()))
}

/// A rule to check against an event type.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleCheckIn {
    pub event_type: String,
    #[schema(value_type = schema::Rule)]
    pub rules: Value,
}

/// A rule that saves: the expression it compiles to.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = RuleCheck)]
pub struct RuleCheckOut {
    /// The minijinja expression with the same verdict for every event (it can be saved as a
    /// trigger's `condition`).
    pub expression: String,
    /// Clauses, nested ones included.
    pub clauses: usize,
}

#[utoipa::path(
    post,
    path = "/triggers/rules/check",
    tag = "triggers",
    operation_id = "check_rules",
    summary = "Check a rule tree against an event type",
    description = "Checks `rules` as saving a trigger of `eventType` would (every field known or typed, every operator and value fitting it) and answers the expression it compiles to. Nothing is stored.",
    request_body(content = RuleCheckIn, example = json!({"eventType": "OrderChanged", "rules": {"field": "entity.OrderCode", "op": "startsWith", "value": "ORD-"}})),
    responses((status = 200, description = "The rule saves; its expression.", body = RuleCheckOut), (status = 422, description = "The rule does not fit the type (the error names the clause, `rules.all[1].any[0]`), or the type is unknown.", body = crate::openapi::ErrorBody)),
)]
pub(crate) async fn check_rules(
    State(state): State<AppState>,
    _auth: Auth,
    body: Bytes,
) -> Result<Json<RuleCheckOut>, ApiError> {
    let body: RuleCheckIn = parse_from(parse_value(&body)?)?;
    let rule =
        hookflow_templating::rules::Rule::parse(&body.rules, "rules").map_err(rule_refused)?;
    let (expression, clauses) = state.engine.check_rule(&body.event_type, &rule)?;
    Ok(Json(RuleCheckOut {
        expression,
        clauses,
    }))
}
