//! Alerts: actions whose calls fail for good, one open alert per action with a count.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use hookflow_engine::store::Alert;
use serde::Deserialize;

use crate::auth::Auth;
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
    auth: Auth,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Items<Alert>>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let mut items = state.engine.list_alerts(p.acknowledged).await?;
    items.retain(|a| auth.sees(a.shop_id));
    Ok(Json(Items { items }))
}

async fn ack_alert(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<Alert>, ApiError> {
    auth.require_write()?;
    // Alerts are few (one open per action): finding one among them costs less than a query
    // of its own.
    let alert = state
        .engine
        .list_alerts(None)
        .await?
        .into_iter()
        .find(|a| a.id == id);
    if !alert.is_some_and(|a| auth.sees(a.shop_id)) {
        return Err(ApiError::NotFound(format!("alert {id} does not exist")));
    }
    Ok(Json(state.engine.ack_alert(id).await?))
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(list_alerts))
        .route("/alerts/{id}/ack", post(ack_alert))
}
