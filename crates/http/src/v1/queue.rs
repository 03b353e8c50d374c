//! The webhook queue as operators see it: list, detail with attempts, retry, cancel.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use hookflow_engine::model::{Attempt, CallId, QueueFilter, QueueItem, ShopId, TriggerId};
use serde::{Deserialize, Serialize};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::v1::time_param;
use crate::AppState;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListParams {
    status: Option<String>,
    trigger_id: Option<i64>,
    event_type: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<i64>,
    limit: Option<u32>,
    shop_id: Option<i64>,
    /// An entity id, or part of a URL.
    q: Option<String>,
}

#[derive(Serialize)]
struct Page {
    items: Vec<QueueItem>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    next: Option<String>,
}

#[derive(Serialize)]
struct ItemWithAttempts {
    #[serde(flatten)]
    item: QueueItem,
    #[serde(rename = "attemptLog")]
    attempts: Vec<Attempt>,
}

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

async fn get_item(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<ItemWithAttempts>, ApiError> {
    let (item, attempts) = visible_call(&state, &auth, CallId(id)).await?;
    Ok(Json(ItemWithAttempts { item, attempts }))
}

async fn retry_item(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<QueueItem>, ApiError> {
    auth.require_write()?;
    visible_call(&state, &auth, CallId(id)).await?;
    Ok(Json(state.engine.retry_call(CallId(id)).await?))
}

async fn cancel_item(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<QueueItem>, ApiError> {
    auth.require_write()?;
    visible_call(&state, &auth, CallId(id)).await?;
    Ok(Json(state.engine.cancel_call(CallId(id)).await?))
}

/// `POST /queue/resend`: which calls to queue again. The status defaults to `failed`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResendIn {
    trigger_id: Option<i64>,
    status: Option<String>,
    event_type: Option<String>,
    from: Option<String>,
    to: Option<String>,
    shop_id: Option<i64>,
}

/// Queues every call matching the filter again, in one statement: `{"requeued": n}`.
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

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/queue", get(list_queue))
        .route("/queue/resend", post(resend))
        .route("/queue/{id}", get(get_item))
        .route("/queue/{id}/retry", post(retry_item))
        .route("/queue/{id}/cancel", post(cancel_item))
}
