//! Alerts: actions whose calls fail for good, one open alert per action with a count.

use axum::extract::{Path, Query, State};
use axum::Json;
use hookflow_engine::model::{CallId, ShopId, Timestamp, TriggerId};
use hookflow_engine::notify::NoticeKind;
use hookflow_engine::store::Alert;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::params::Int;
use crate::v1::{schema, Items};
use crate::AppState;

/// An alert as the API shows it: an action's calls fail for good. One open alert per action
/// counts them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertOut {
    pub id: i64,
    #[schema(value_type = schema::TriggerId)]
    pub trigger_id: TriggerId,
    pub action_index: u16,
    #[schema(value_type = Option<schema::ShopId>)]
    pub shop_id: Option<ShopId>,
    /// The latest call that failed.
    #[schema(value_type = Option<schema::CallId>)]
    pub call_id: Option<CallId>,
    pub kind: AlertKind,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    /// How many failures this alert stands for.
    pub count: i32,
    pub acknowledged: bool,
    #[schema(value_type = schema::Timestamp)]
    pub created_at: Timestamp,
    #[schema(value_type = schema::Timestamp)]
    pub updated_at: Timestamp,
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum AlertKind {
    /// A call ran out of attempts (or failed without retry).
    CallFailed,
    /// The action stopped receiving calls until an admin reactivates it.
    ActionDeactivated,
}

impl From<&Alert> for AlertOut {
    fn from(a: &Alert) -> AlertOut {
        AlertOut {
            id: a.id,
            trigger_id: a.action.trigger,
            action_index: a.action.index,
            shop_id: a.shop_id,
            call_id: a.call_id,
            kind: match a.kind {
                NoticeKind::CallFailed => AlertKind::CallFailed,
                NoticeKind::ActionDeactivated => AlertKind::ActionDeactivated,
            },
            last_status_code: a.last_status_code,
            last_error: a.last_error.clone(),
            count: a.count,
            acknowledged: a.acknowledged,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

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
) -> Result<Json<Items<AlertOut>>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let alerts = state.engine.list_alerts(p.acknowledged).await?;
    let items = alerts
        .iter()
        .filter(|a| auth.sees(a.shop_id))
        .map(AlertOut::from)
        .collect();
    Ok(Json(Items { items }))
}

#[utoipa::path(
    post,
    path = "/alerts/{id}/ack",
    tag = "alerts",
    operation_id = "ack_alert",
    summary = "Acknowledge an alert",
    params(("id" = i64, Path, description = "The alert's id.")),
    responses((status = 200, description = "The alert, acknowledged.", body = AlertOut), (status = 404, description = "No such alert.", body = crate::openapi::ErrorBody)),
)]
async fn ack_alert(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
) -> Result<Json<AlertOut>, ApiError> {
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
    Ok(Json(AlertOut::from(&state.engine.ack_alert(id).await?)))
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_alerts))
        .routes(routes!(ack_alert))
}
