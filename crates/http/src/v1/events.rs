//! Events: ingest (one event or an array; answered only once committed), and the event log
//! (what came in and what became of its calls) with resending an event's calls.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hookflow_engine::model::{CallId, EventId, Ingested, ShopId, Timestamp, TriggerId};
use hookflow_engine::store::{EventDetail, EventFilter, LoggedCall, LoggedEvent};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::{integers_as_documented, parse_value};
use crate::params::Int;
use crate::v1::calls::{AttemptOut, CallStatusWire};
use crate::v1::{schema, time_param};
use crate::AppState;

/// A batch of up to 1000 events with sizeable entities fits.
const MAX_BODY: usize = 16 * 1024 * 1024;
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

#[utoipa::path(
    post,
    path = "/events",
    tag = "events",
    operation_id = "create_events",
    summary = "Ingest events",
    description = "One event or an array of up to 1000. Answered once the events and the calls they queued are committed.",
    request_body(content = crate::openapi::EventsIn, description = "One event, or an array of them.", example = json!({"eventType": "OrderChanged", "shopId": 1, "entityId": 42, "entityData": {"OrderId": 42, "OrderCode": "ORD-42", "Status": "Shipped", "Total": 129.9}, "idempotencyKey": "order-42-v7"})),
    responses((status = 202, description = "Accepted: `Ingested` for one event, `BatchIngested` for an array.", body = crate::openapi::IngestAnswer), (status = 413, description = "The body is larger than 16 MiB.", body = crate::openapi::ErrorBody), (status = 422, description = "An invalid event, an unknown event type or an unknown shop; `field` names it.", body = crate::openapi::ErrorBody), (status = 503, description = "The server is shutting down.", body = crate::openapi::ErrorBody)),
)]
async fn create_events(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth.require_write()?;
    let mut value = parse_value(&body)?;
    let batch = value.is_array();
    match &mut value {
        Value::Array(events) => events
            .iter_mut()
            .for_each(|e| integers_as_documented(e, "EventIn")),
        event => integers_as_documented(event, "EventIn"),
    }
    let ingested = state
        .engine
        .ingest_json_for(value, auth.0.shop_scope())
        .await?;
    let answer: Value = if batch {
        let total: u32 = ingested.iter().map(|i| i.calls_queued).sum();
        let events: Vec<IngestedOut> = ingested.into_iter().map(IngestedOut::from).collect();
        json!({"events": events, "callsQueued": total})
    } else {
        json!(IngestedOut::from(ingested[0]))
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListParams {
    /// One shop's events.
    #[serde(default, deserialize_with = "crate::params::optional")]
    shop_id: Option<i64>,
    /// Received at or after this RFC 3339 date-time.
    #[param(format = DateTime)]
    from: Option<String>,
    /// Received before this RFC 3339 date-time.
    #[param(format = DateTime)]
    to: Option<String>,
    /// `true`: events all of whose calls succeeded; `false`: events with a call that has not
    /// succeeded (yet).
    success: Option<bool>,
    /// Only events of this type.
    event_type: Option<String>,
    /// Only events about this entity.
    entity_id: Option<String>,
    /// `true`: events that queued at least one call; `false`: events that matched no trigger
    /// (or whose calls were pruned).
    has_calls: Option<bool>,
    /// Add each event's `entityData`, as the backend sent it.
    #[serde(default)]
    include_payload: bool,
    /// Add each call's `attemptLog`.
    #[serde(default)]
    include_attempts: bool,
    /// `next` of the previous page.
    #[serde(default, deserialize_with = "crate::params::optional")]
    cursor: Option<i64>,
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    #[serde(default, deserialize_with = "crate::params::optional")]
    limit: Option<u32>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DetailParams {
    /// Add the event's `entityData`, as the backend sent it.
    #[serde(default)]
    include_payload: bool,
    /// Add each call's `attemptLog`.
    #[serde(default)]
    include_attempts: bool,
}

/// A page of the event log.
#[derive(Serialize, ToSchema)]
#[schema(as = EventPage)]
struct Page {
    items: Vec<LoggedEventOut>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    next: Option<String>,
}

#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    operation_id = "list_events",
    summary = "List events (the event log)",
    params(ListParams),
    responses((status = 200, description = "Events newest first, each with what became of its calls.", body = Page)),
)]
async fn list_events(
    State(state): State<AppState>,
    auth: Auth,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "limit: must be 1 to {MAX_LIMIT}"
        )));
    }
    let filter = EventFilter {
        shop_id: p.shop_id.map(ShopId),
        shops: auth.0.shop_scope().map(<[ShopId]>::to_vec),
        from: time_param("from", p.from)?,
        to: time_param("to", p.to)?,
        success: p.success,
        event_type: p.event_type.filter(|t| !t.trim().is_empty()),
        entity_id: p.entity_id.filter(|e| !e.trim().is_empty()),
        has_calls: p.has_calls,
        before: p.cursor.map(EventId),
        limit,
        detail: EventDetail {
            payload: p.include_payload,
            attempts: p.include_attempts,
        },
    };
    let items = state.engine.list_events(&filter).await?;
    let next = (items.len() as u32 == limit)
        .then(|| items.last().map(|e| e.id.to_string()))
        .flatten();
    let items = items.into_iter().map(LoggedEventOut::from).collect();
    Ok(Json(Page { items, next }))
}

#[utoipa::path(
    get,
    path = "/events/{id}",
    tag = "events",
    operation_id = "get_event",
    summary = "Get an event",
    params(("id" = i64, Path, description = "The event's id."), DetailParams),
    responses((status = 200, description = "The event with its calls.", body = LoggedEventOut), (status = 404, description = "No such event.", body = crate::openapi::ErrorBody)),
)]
async fn get_event(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
    params: Result<Query<DetailParams>, QueryRejection>,
) -> Result<Json<LoggedEventOut>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let detail = EventDetail {
        payload: p.include_payload,
        attempts: p.include_attempts,
    };
    let event = state.engine.get_event(EventId(id), detail).await?;
    auth.require_shop(event.shop_id, || format!("event {id} does not exist"))?;
    Ok(Json(event.into()))
}

/// Queues all the event's calls again (those in flight, and those of a deactivated action,
/// excepted); the body is ignored.
#[utoipa::path(
    post,
    path = "/events/{id}/resend",
    tag = "events",
    operation_id = "resend_event",
    summary = "Send all of an event's calls again",
    description = "Queues every call of the event again, due now, with a fresh set of attempts; a call being delivered is left alone, and so is a call whose action is deactivated (it stays as it was, usually `skipped`; reactivating the action with `requeueFailed=true` sends it). A body is ignored.",
    params(("id" = i64, Path, description = "The event's id.")),
    responses((status = 200, description = "How many calls were queued.", body = crate::openapi::Requeued), (status = 404, description = "No such event.", body = crate::openapi::ErrorBody)),
)]
async fn resend_event(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
) -> Result<Json<Value>, ApiError> {
    auth.require_write()?;
    let event = state
        .engine
        .get_event(EventId(id), EventDetail::default())
        .await?;
    auth.require_shop(event.shop_id, || format!("event {id} does not exist"))?;
    let requeued = state.engine.resend_event(EventId(id)).await?;
    Ok(Json(json!({ "requeued": requeued })))
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    let (schemas, paths, events) = routes!(create_events, list_events);
    OpenApiRouter::new()
        // The larger body limit is for ingest; a GET has no body.
        .routes((
            schemas,
            paths,
            events.layer(DefaultBodyLimit::max(MAX_BODY)),
        ))
        .routes(routes!(get_event))
        .routes(routes!(resend_event))
}

/// What ingest answers for one event.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Ingested)]
pub struct IngestedOut {
    #[schema(value_type = schema::EventId)]
    pub event_id: EventId,
    pub calls_queued: u32,
    /// The idempotency key was seen before: this is the first result and nothing was queued.
    pub duplicate: bool,
}

impl From<Ingested> for IngestedOut {
    fn from(i: Ingested) -> IngestedOut {
        IngestedOut {
            event_id: i.event_id,
            calls_queued: i.calls_queued,
            duplicate: i.duplicate,
        }
    }
}

/// An event as the event log shows it: what came in, and what became of each call it queued.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LoggedEvent)]
pub struct LoggedEventOut {
    #[schema(value_type = schema::EventId)]
    pub id: EventId,
    pub event_type: String,
    #[schema(value_type = schema::ShopId)]
    pub shop_id: ShopId,
    pub entity_id: String,
    #[schema(value_type = schema::Timestamp)]
    pub occurred_at: Timestamp,
    #[schema(value_type = schema::Timestamp)]
    pub received_at: Timestamp,
    /// Only with `includePayload`.
    #[serde(rename = "entityData", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub entity: Option<serde_json::Map<String, Value>>,
    /// Only with `includePayload`, and when the event carried it: the entity before the
    /// change.
    #[serde(rename = "previousData", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub previous: Option<serde_json::Map<String, Value>>,
    pub calls: Vec<LoggedCallOut>,
}

impl From<LoggedEvent> for LoggedEventOut {
    fn from(e: LoggedEvent) -> LoggedEventOut {
        LoggedEventOut {
            id: e.id,
            event_type: e.event_type,
            shop_id: e.shop_id,
            entity_id: e.entity_id,
            occurred_at: e.occurred_at,
            received_at: e.received_at,
            entity: e.entity,
            previous: e.previous,
            calls: e.calls.into_iter().map(LoggedCallOut::from).collect(),
        }
    }
}

/// One call of a logged event.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LoggedCall)]
pub struct LoggedCallOut {
    #[schema(value_type = schema::CallId)]
    pub id: CallId,
    #[schema(value_type = schema::TriggerId)]
    pub trigger_id: TriggerId,
    pub action_index: i32,
    pub status: CallStatusWire,
    /// The HTTP status of the last attempt.
    pub status_code: Option<i32>,
    pub success: bool,
    pub attempts: i32,
    /// Only with `includeAttempts`.
    #[serde(rename = "attemptLog", skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<AttemptOut>>,
}

impl From<LoggedCall> for LoggedCallOut {
    fn from(c: LoggedCall) -> LoggedCallOut {
        LoggedCallOut {
            id: c.id,
            trigger_id: c.trigger_id,
            action_index: c.action_index,
            status: c.status.into(),
            status_code: c.status_code,
            success: c.success,
            attempts: c.attempts,
            attempt_log: c.attempt_log.map(crate::v1::calls::attempts_out),
        }
    }
}
