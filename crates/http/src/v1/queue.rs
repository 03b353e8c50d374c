//! The webhook queue as operators see it: list, detail with attempts, retry, cancel.

use axum::extract::{Path, Query, State};
use axum::Json;
use hookflow_engine::model::{Attempt, CallId, QueueFilter, QueueItem, ShopId, TriggerId};

use crate::v1::calls::{attempts_out, AttemptOut, CallStatusWire, QueueItemOut};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::params::Int;
use crate::v1::time_param;
use crate::AppState;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListParams {
    /// Calls in this state.
    #[param(value_type = Option<CallStatusWire>)]
    status: Option<String>,
    /// Calls of this trigger.
    #[serde(default, deserialize_with = "crate::params::optional")]
    trigger_id: Option<i64>,
    /// Calls for events of this type.
    event_type: Option<String>,
    /// Created at or after this RFC 3339 date-time.
    #[param(format = DateTime)]
    from: Option<String>,
    /// Created before this RFC 3339 date-time.
    #[param(format = DateTime)]
    to: Option<String>,
    /// `next` of the previous page.
    #[serde(default, deserialize_with = "crate::params::optional")]
    cursor: Option<i64>,
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    #[serde(default, deserialize_with = "crate::params::optional")]
    limit: Option<u32>,
    /// Calls of this shop's events.
    #[serde(default, deserialize_with = "crate::params::optional")]
    shop_id: Option<i64>,
    /// An entity id, or part of a URL.
    q: Option<String>,
}

/// A page of calls.
#[derive(Serialize, ToSchema)]
#[schema(as = QueuePage)]
struct Page {
    items: Vec<QueueItemOut>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    next: Option<String>,
}

/// A call with its attempt log.
#[derive(Serialize, ToSchema)]
#[schema(as = QueueItemDetail)]
struct ItemWithAttempts {
    #[serde(flatten)]
    item: QueueItemOut,
    #[serde(rename = "attemptLog")]
    attempts: Vec<AttemptOut>,
}

#[utoipa::path(
    get,
    path = "/queue",
    tag = "queue",
    operation_id = "list_queue",
    summary = "List calls",
    params(ListParams),
    responses((status = 200, description = "Calls newest first.", body = Page)),
)]
async fn list_queue(
    State(state): State<AppState>,
    auth: Auth,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "limit: must be 1 to {MAX_LIMIT}"
        )));
    }
    let filter = QueueFilter {
        status: p
            .status
            .map(|s| s.parse())
            .transpose()
            .map_err(|e: String| ApiError::BadRequest(format!("status: {e}")))?,
        trigger_id: p.trigger_id.map(TriggerId),
        event_type: p.event_type,
        from: time_param("from", p.from)?,
        to: time_param("to", p.to)?,
        before: p.cursor.map(CallId),
        limit,
        shop_id: p.shop_id.map(ShopId),
        shops: auth.0.shop_scope().map(<[ShopId]>::to_vec),
        search: p.q,
    };
    let items = state.engine.list_queue(&filter).await?;
    let next = (items.len() as u32 == limit)
        .then(|| items.last().map(|i| i.id.to_string()))
        .flatten();
    let items = items.into_iter().map(QueueItemOut::from).collect();
    Ok(Json(Page { items, next }))
}

/// The call with its attempts, when the caller sees its shop (404 as if it did not exist
/// otherwise).
pub(crate) async fn visible_call(
    state: &AppState,
    auth: &Auth,
    id: CallId,
) -> Result<(QueueItem, Vec<Attempt>), ApiError> {
    let (item, attempts) = state.engine.get_call(id).await?;
    auth.require_shop(item.shop_id, || format!("queue item {id} does not exist"))?;
    Ok((item, attempts))
}

#[utoipa::path(
    get,
    path = "/queue/{id}",
    tag = "queue",
    operation_id = "get_call",
    summary = "Get a call with its attempts",
    params(("id" = i64, Path, description = "The call's id.")),
    responses((status = 200, description = "The call and its attempt log.", body = ItemWithAttempts), (status = 404, description = "No such call.", body = crate::openapi::ErrorBody)),
)]
async fn get_item(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
) -> Result<Json<ItemWithAttempts>, ApiError> {
    let (item, attempts) = visible_call(&state, &auth, CallId(id)).await?;
    Ok(Json(ItemWithAttempts {
        item: item.into(),
        attempts: attempts_out(attempts),
    }))
}

#[utoipa::path(
    post,
    path = "/queue/{id}/retry",
    tag = "queue",
    operation_id = "retry_call",
    summary = "Send a call again",
    description = "Queues the call again (a succeeded one too), due now, with a fresh set of attempts.",
    params(("id" = i64, Path, description = "The call's id.")),
    responses((status = 200, description = "The call, queued.", body = QueueItemOut), (status = 404, description = "No such call.", body = crate::openapi::ErrorBody), (status = 409, description = "The call is being delivered right now.", body = crate::openapi::ErrorBody)),
)]
async fn retry_item(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
) -> Result<Json<QueueItemOut>, ApiError> {
    auth.require_write()?;
    visible_call(&state, &auth, CallId(id)).await?;
    Ok(Json(state.engine.retry_call(CallId(id)).await?.into()))
}

#[utoipa::path(
    post,
    path = "/queue/{id}/cancel",
    tag = "queue",
    operation_id = "cancel_call",
    summary = "Cancel a call",
    params(("id" = i64, Path, description = "The call's id.")),
    responses((status = 200, description = "The call, cancelled.", body = QueueItemOut), (status = 404, description = "No such call.", body = crate::openapi::ErrorBody), (status = 409, description = "The call has already finished.", body = crate::openapi::ErrorBody)),
)]
async fn cancel_item(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
) -> Result<Json<QueueItemOut>, ApiError> {
    auth.require_write()?;
    visible_call(&state, &auth, CallId(id)).await?;
    Ok(Json(state.engine.cancel_call(CallId(id)).await?.into()))
}

/// `POST /queue/resend`: which calls to queue again. The status defaults to `failed`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResendIn {
    /// Calls of this trigger.
    trigger_id: Option<i64>,
    /// Calls in this state (default `failed`; `in_flight` cannot be resent).
    #[schema(value_type = Option<CallStatusWire>)]
    status: Option<String>,
    /// Calls for events of this type.
    event_type: Option<String>,
    /// Created at or after this RFC 3339 date-time.
    #[schema(format = DateTime)]
    from: Option<String>,
    /// Created before this RFC 3339 date-time.
    #[schema(format = DateTime)]
    to: Option<String>,
    /// Calls of this shop's events.
    shop_id: Option<i64>,
}

/// Queues every call matching the filter again, in one statement: `{"requeued": n}`.
#[utoipa::path(
    post,
    path = "/queue/resend",
    tag = "queue",
    operation_id = "resend_calls",
    summary = "Send matching calls again",
    description = "Queues every call matching the filter again, in one statement. At least one field is required; `status` defaults to `failed`, and `in_flight` cannot be resent. Calls whose action is deactivated are left as they are (not counted); reactivating the action with `requeueFailed=true` sends them.",
    request_body(content = ResendIn, example = json!({"triggerId": 3, "status": "failed", "from": "2026-11-27T00:00:00Z"})),
    responses((status = 200, description = "How many calls were queued.", body = crate::openapi::Requeued), (status = 422, description = "No criterion, or a status that cannot be resent.", body = crate::openapi::ErrorBody)),
)]
async fn resend(
    State(state): State<AppState>,
    auth: Auth,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth.require_write()?;
    let body: ResendIn = crate::json::parse(&body)?;
    let request = hookflow_engine::event_log::ResendRequest {
        status: body
            .status
            .map(|s| s.parse())
            .transpose()
            .map_err(|e: String| ApiError::BadRequest(format!("status: {e}")))?,
        trigger_id: body.trigger_id.map(TriggerId),
        event_type: body.event_type,
        from: time_param("from", body.from)?,
        to: time_param("to", body.to)?,
        shop_id: body.shop_id.map(ShopId),
        shops: auth.0.shop_scope().map(<[ShopId]>::to_vec),
    };
    let requeued = state.engine.resend_calls(request).await?;
    Ok(Json(serde_json::json!({ "requeued": requeued })))
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_queue))
        .routes(routes!(resend))
        .routes(routes!(get_item))
        .routes(routes!(retry_item))
        .routes(routes!(cancel_item))
}
