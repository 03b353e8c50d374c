//! Event ingest: one event or an array; answered only once committed.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::json::parse_value;
use crate::AppState;

/// A batch of up to 1000 events with sizeable entities fits.
const MAX_BODY: usize = 16 * 1024 * 1024;

async fn create_events(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let value = parse_value(&body)?;
    let batch = value.is_array();
    let ingested = state.engine.ingest_json(value).await?;
    let answer: Value = if batch {
        let total: u32 = ingested.iter().map(|i| i.calls_queued).sum();
        json!({"events": ingested, "callsQueued": total})
    } else {
        json!(ingested[0])
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

pub(crate) fn router() -> Router<AppState> {
    Router::new().route(
        "/events",
        post(create_events).layer(DefaultBodyLimit::max(MAX_BODY)),
    )
}
