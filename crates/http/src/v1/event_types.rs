//! The event catalog: which event types exist, what their default payload holds (and its JSON
//! Schema), and which merge fields their templates can read.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use hookflow_engine::model::ShopId;
use hookflow_engine::templates::MergeFields;
use hookflow_templating::EventType;
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::v1::Items;
use crate::AppState;

async fn list_event_types(State(state): State<AppState>) -> Json<Items<EventType>> {
    Json(Items {
        items: state.engine.catalog().iter().cloned().collect(),
    })
}

async fn get_event_type(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<EventType>, ApiError> {
    state
        .engine
        .catalog()
        .get(&name)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("unknown event type {name:?}")))
}

/// `?shopId=..&entityId=..`: list a real entity's fields and values instead of the catalog's.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EntityParams {
    shop_id: Option<i64>,
    entity_id: Option<String>,
}

async fn merge_fields(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    params: Result<Query<EntityParams>, QueryRejection>,
) -> Result<Json<MergeFields>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    // A stored entity is shop data: only for callers who see the shop.
    if let Some(shop) = params.shop_id {
        auth.require_shop(ShopId(shop), || format!("shop {shop} does not exist"))?;
    }
    let fields = match (params.shop_id, params.entity_id) {
        (None, None) => state.engine.merge_fields(&name)?,
        (Some(shop), Some(entity_id)) if !entity_id.is_empty() => {
            state
                .engine
                .entity_merge_fields(&name, ShopId(shop), &entity_id)
                .await?
        }
        _ => {
            return Err(ApiError::BadRequest(
                "shopId and entityId go together: give both to list a stored entity's fields, \
                 or neither for the event type's"
                    .into(),
            ))
        }
    };
    Ok(Json(fields))
}

async fn schema(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(state.engine.payload_schema(&name)?))
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/event-types", get(list_event_types))
        .route("/event-types/{name}", get(get_event_type))
        .route("/event-types/{name}/merge-fields", get(merge_fields))
        .route("/event-types/{name}/schema", get(schema))
}
