//! Alerts: actions whose calls fail for good, one open alert per action with a count.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use hookflow_engine::store::Alert;
use serde::Deserialize;

use crate::error::ApiError;
use crate::v1::Items;
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    acknowledged: Option<bool>,
}

async fn list_alerts(
    State(state): State<AppState>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Items<Alert>>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(Json(Items {
        items: state.engine.list_alerts(p.acknowledged).await?,
    }))
}

async fn ack_alert(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Alert>, ApiError> {
    Ok(Json(state.engine.ack_alert(id).await?))
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(list_alerts))
        .route("/alerts/{id}/ack", post(ack_alert))
}
