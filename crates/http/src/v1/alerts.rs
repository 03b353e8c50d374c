//! Alerts: actions whose calls fail for good, one open alert per action with a count.

use axum::extract::{Path, Query, State};
use axum::Json;
use hookflow_engine::store::Alert;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::params::Int;
use crate::v1::Items;
use crate::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// `false`: open alerts; `true`: acknowledged ones; left out: all.
    acknowledged: Option<bool>,
}

#[utoipa::path(
    get,
    path = "/alerts",
    tag = "alerts",
    operation_id = "list_alerts",
    summary = "List alerts",
    params(ListParams),
    responses((status = 200, description = "Alerts, newest first.", body = crate::openapi::AlertList)),
)]
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

#[utoipa::path(
    post,
    path = "/alerts/{id}/ack",
    tag = "alerts",
    operation_id = "ack_alert",
    summary = "Acknowledge an alert",
    params(("id" = i64, Path, description = "The alert's id.")),
    responses((status = 200, description = "The alert, acknowledged.", body = Alert), (status = 404, description = "No such alert.", body = crate::openapi::ErrorBody)),
)]
async fn ack_alert(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
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

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_alerts))
        .routes(routes!(ack_alert))
}
