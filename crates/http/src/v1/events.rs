//! Events: ingest (one event or an array; answered only once committed), and the event log
//! (what came in and what became of its calls) with resending an event's calls.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hookflow_engine::model::{EventId, ShopId};
use hookflow_engine::store::{EventDetail, EventFilter, LoggedEvent};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::parse_value;
use crate::v1::time_param;
use crate::AppState;

/// A batch of up to 1000 events with sizeable entities fits.
const MAX_BODY: usize = 16 * 1024 * 1024;
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

async fn create_events(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth.require_write()?;
    let value = parse_value(&body)?;
    let batch = value.is_array();
    let ingested = state
        .engine
        .ingest_json_for(value, auth.0.shop_scope())
        .await?;
    let answer: Value = if batch {
        let total: u32 = ingested.iter().map(|i| i.calls_queued).sum();
        json!({"events": ingested, "callsQueued": total})
    } else {
        json!(ingested[0])
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListParams {
    shop_id: Option<i64>,
    from: Option<String>,
    to: Option<String>,
    success: Option<bool>,
    #[serde(default)]
    include_payload: bool,
    #[serde(default)]
    include_attempts: bool,
    cursor: Option<i64>,
    limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DetailParams {
    #[serde(default)]
    include_payload: bool,
    #[serde(default)]
    include_attempts: bool,
}

#[derive(Serialize)]
struct Page {
    items: Vec<LoggedEvent>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    next: Option<String>,
}

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
    Ok(Json(Page { items, next }))
}

async fn get_event(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    params: Result<Query<DetailParams>, QueryRejection>,
) -> Result<Json<LoggedEvent>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let detail = EventDetail {
        payload: p.include_payload,
        attempts: p.include_attempts,
    };
    let event = state.engine.get_event(EventId(id), detail).await?;
    auth.require_shop(event.shop_id, || format!("event {id} does not exist"))?;
    Ok(Json(event))
}

/// Queues all the event's calls again (those in flight excepted); the body is ignored.
async fn resend_event(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
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

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/events",
            post(create_events)
                .layer(DefaultBodyLimit::max(MAX_BODY))
                .get(list_events),
        )
        .route("/events/{id}", get(get_event))
        .route("/events/{id}/resend", post(resend_event))
}
