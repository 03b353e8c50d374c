//! The event catalogs: which catalogs and event types exist, what their default payload holds
//! (and its JSON Schema), and which merge fields their templates can read. Admins add, change
//! and delete custom event types here; they are listed beside the shipped ones.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hookflow_engine::catalogs::EventTypeDraft;
use hookflow_engine::model::ShopId;
use hookflow_engine::templates::MergeFields;
use hookflow_templating::{CatalogInfo, EventType};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::parse;
use crate::v1::Items;
use crate::AppState;

/// `?catalog=skladon`: one catalog's types. (Catalogs are shared by every shop: any caller
/// may read them; only admins change custom types.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    catalog: Option<String>,
}

async fn list_event_types(
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Items<EventType>>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let catalog = state.engine.catalog();
    if let Some(name) = &params.catalog {
        if catalog.info(name).is_none() {
            return Err(ApiError::NotFound(format!("unknown catalog {name:?}")));
        }
    }
    Ok(Json(Items {
        items: catalog
            .iter()
            .filter(|t| params.catalog.as_ref().is_none_or(|c| *c == t.catalog))
            .cloned()
            .collect(),
    }))
}

async fn list_catalogs(State(state): State<AppState>) -> Json<Items<CatalogInfo>> {
    Json(Items {
        items: state.engine.catalogs(),
    })
}

async fn create_event_type(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<(StatusCode, Json<EventType>), ApiError> {
    auth.require_admin()?;
    let draft: EventTypeDraft = parse(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(state.engine.create_event_type(draft).await?),
    ))
}

async fn update_event_type(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<EventType>, ApiError> {
    auth.require_admin()?;
    let draft: EventTypeDraft = parse(&body)?;
    Ok(Json(state.engine.update_event_type(&name, draft).await?))
}

async fn delete_event_type(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    state.engine.delete_event_type(&name).await?;
    Ok(StatusCode::NO_CONTENT)
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
        .route("/catalogs", get(list_catalogs))
        .route(
            "/event-types",
            get(list_event_types).post(create_event_type),
        )
        .route(
            "/event-types/{name}",
            get(get_event_type)
                .put(update_event_type)
                .delete(delete_event_type),
        )
        .route("/event-types/{name}/merge-fields", get(merge_fields))
        .route("/event-types/{name}/schema", get(schema))
}
