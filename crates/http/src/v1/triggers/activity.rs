//! `GET /triggers/{id}/activity`: every evaluation of a trigger, newest first — whether it
//! fired for the event, what decided, and the calls it made.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use hookflow_engine::model::{CallId, EventId, ShopId, Timestamp, TriggerId};
use hookflow_engine::store::{Activity, ActivityCall, ActivityFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::params::Int;
use crate::v1::calls::CallStatusWire;
use crate::v1::triggers::visible_trigger;
use crate::v1::{schema, time_param};
use crate::AppState;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ActivityParams {
    /// `true`: only evaluations that fired; `false`: only those that did not.
    pub matched: Option<bool>,
    /// Evaluated at or after this RFC 3339 date-time.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Evaluated before this RFC 3339 date-time.
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Only events about this entity ("why didn't it fire for order 42?").
    pub entity_id: Option<String>,
    /// `next` of the previous page.
    #[serde(default, deserialize_with = "crate::params::optional")]
    pub cursor: Option<i64>,
    /// 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500)]
    #[serde(default, deserialize_with = "crate::params::optional")]
    pub limit: Option<u32>,
}

impl ActivityParams {
    pub(crate) fn filter(self) -> Result<ActivityFilter, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ApiError::BadRequest(format!(
                "limit: must be 1 to {MAX_LIMIT}"
            )));
        }
        Ok(ActivityFilter {
            matched: self.matched,
            from: time_param("from", self.from)?,
            to: time_param("to", self.to)?,
            entity_id: self.entity_id.filter(|e| !e.trim().is_empty()),
            before: self.cursor.map(EventId),
            limit,
        })
    }
}

/// A page of a trigger's activity.
#[derive(Serialize, ToSchema)]
#[schema(as = ActivityPage)]
pub(crate) struct ActivityPage {
    pub items: Vec<ActivityOut>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next: Option<String>,
}

/// One evaluation of the trigger.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Activity)]
pub struct ActivityOut {
    #[schema(value_type = schema::EventId)]
    pub event_id: EventId,
    #[schema(value_type = schema::ShopId)]
    pub shop_id: ShopId,
    pub entity_id: String,
    #[schema(value_type = schema::Timestamp)]
    pub evaluated_at: Timestamp,
    /// Whether the trigger fired.
    pub matched: bool,
    /// What decided: the rule clause read last (`rules.all[1]`; a dry run of the event shows
    /// every clause), `condition` for an expression, `null` for a trigger that always fires.
    pub decided_by: Option<String>,
    /// The calls it made, as they stand now.
    pub calls: Vec<ActivityCallOut>,
}

/// A call the trigger made for the event.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ActivityCall)]
pub struct ActivityCallOut {
    #[schema(value_type = schema::CallId)]
    pub id: CallId,
    pub action_index: i32,
    pub status: CallStatusWire,
    /// The HTTP status of the last attempt.
    pub status_code: Option<i32>,
}

impl From<ActivityCall> for ActivityCallOut {
    fn from(c: ActivityCall) -> ActivityCallOut {
        ActivityCallOut {
            id: c.id,
            action_index: c.action_index,
            status: c.status.into(),
            status_code: c.status_code,
        }
    }
}

impl From<Activity> for ActivityOut {
    fn from(a: Activity) -> ActivityOut {
        ActivityOut {
            event_id: a.event_id,
            shop_id: a.shop_id,
            entity_id: a.entity_id,
            evaluated_at: a.evaluated_at,
            matched: a.matched,
            decided_by: a.decided_by,
            calls: a.calls.into_iter().map(ActivityCallOut::from).collect(),
        }
    }
}

/// A page of activity and the cursor of the next.
pub(crate) fn page(items: Vec<Activity>, limit: u32) -> ActivityPage {
    let next = (items.len() as u32 == limit)
        .then(|| items.last().map(|a| a.event_id.to_string()))
        .flatten();
    ActivityPage {
        items: items.into_iter().map(ActivityOut::from).collect(),
        next,
    }
}

#[utoipa::path(
    get,
    path = "/triggers/{id}/activity",
    tag = "triggers",
    operation_id = "trigger_activity",
    summary = "A trigger's activity",
    description = "Every evaluation of the trigger (kept as long as the event log keeps the event), newest first: the event, whether the trigger fired, what decided, and the calls it made. A trigger for one shop is evaluated only for its shop's events.",
    params(("id" = i64, Path, description = "The trigger's id."), ActivityParams),
    responses((status = 200, description = "A page of evaluations.", body = ActivityPage), (status = 404, description = "No such trigger.", body = crate::openapi::ErrorBody)),
)]
pub(crate) async fn trigger_activity(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
    params: Result<Query<ActivityParams>, QueryRejection>,
) -> Result<Json<ActivityPage>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let filter = params.filter()?;
    let trigger = visible_trigger(&state, &auth, TriggerId(id)).await?;
    let items = state.engine.trigger_activity(trigger.id, &filter).await?;
    Ok(Json(page(items, filter.limit)))
}
