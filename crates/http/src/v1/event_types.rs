//! The event catalogs: which catalogs and event types exist, what their default payload holds
//! (and its JSON Schema), and which merge fields their templates can read. Admins add, change
//! and delete custom event types here; they are listed beside the shipped ones.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use hookflow_engine::catalogs::EventTypeDraft;
use hookflow_engine::model::EventId;
use hookflow_engine::model::ShopId;
use hookflow_engine::templates::MergeFields;
use hookflow_templating::fields::MergeField;
use hookflow_templating::{CatalogInfo, EventType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::parse;
use crate::v1::Items;
use crate::AppState;

/// `?catalog=skladon`: one catalog's types. (Catalogs are shared by every shop: any caller
/// may read them; only admins change custom types.)
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// Only this catalog's types (`GET /api/v1/catalogs`).
    catalog: Option<String>,
}

#[utoipa::path(
    get,
    path = "/event-types",
    tag = "event-types",
    operation_id = "list_event_types",
    summary = "List the event types",
    params(ListParams),
    responses((status = 200, description = "The event types of every catalog (or of one), custom ones included.", body = crate::openapi::EventTypeList), (status = 404, description = "No such catalog.", body = crate::openapi::ErrorBody)),
)]
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

#[utoipa::path(
    get,
    path = "/catalogs",
    tag = "event-types",
    operation_id = "list_catalogs",
    summary = "List the catalogs",
    responses((status = 200, description = "The catalogs: the platforms's profiles.", body = crate::openapi::CatalogInfoList)),
)]
async fn list_catalogs(State(state): State<AppState>) -> Json<Items<CatalogInfo>> {
    Json(Items {
        items: state.engine.catalogs(),
    })
}

#[utoipa::path(
    post,
    path = "/event-types",
    tag = "event-types",
    operation_id = "create_event_type",
    summary = "Add a custom event type",
    request_body(content = EventTypeIn, example = json!({"name": "LoyaltyPointsChanged", "catalog": "shopctrl", "description": "A customer's loyalty points changed.", "schema": {"type": "object", "properties": {"CustomerId": {"type": "integer"}, "Points": {"type": "integer"}}}})),
    responses((status = 201, description = "The event type.", body = EventType), (status = 409, description = "The name is taken.", body = crate::openapi::ErrorBody), (status = 422, description = "An invalid field, schema or template.", body = crate::openapi::ErrorBody)),
)]
async fn create_event_type(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<(StatusCode, Json<EventType>), ApiError> {
    auth.require_admin()?;
    let draft: EventTypeIn = parse(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(state.engine.create_event_type(draft.into()).await?),
    ))
}

#[utoipa::path(
    put,
    path = "/event-types/{name}",
    tag = "event-types",
    operation_id = "update_event_type",
    summary = "Change a custom event type",
    params(("name" = String, Path, description = "An event type of the catalog, e.g. `OrderChanged`.")),
    request_body(content = EventTypeIn, example = json!({"description": "A customer's loyalty points changed.", "schema": {"type": "object", "properties": {"CustomerId": {"type": "integer"}, "Points": {"type": "integer"}}}})),
    responses((status = 200, description = "The event type.", body = EventType), (status = 404, description = "No such custom event type.", body = crate::openapi::ErrorBody), (status = 409, description = "A shipped event type cannot be changed.", body = crate::openapi::ErrorBody), (status = 422, description = "An invalid field, schema or template.", body = crate::openapi::ErrorBody)),
)]
async fn update_event_type(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<EventType>, ApiError> {
    auth.require_admin()?;
    let draft: EventTypeIn = parse(&body)?;
    Ok(Json(
        state.engine.update_event_type(&name, draft.into()).await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/event-types/{name}",
    tag = "event-types",
    operation_id = "delete_event_type",
    summary = "Delete a custom event type",
    params(("name" = String, Path, description = "An event type of the catalog, e.g. `OrderChanged`.")),
    responses((status = 204, description = "Deleted."), (status = 404, description = "No such custom event type.", body = crate::openapi::ErrorBody), (status = 409, description = "A shipped event type, or one triggers use.", body = crate::openapi::ErrorBody)),
)]
async fn delete_event_type(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    state.engine.delete_event_type(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/event-types/{name}",
    tag = "event-types",
    operation_id = "get_event_type",
    summary = "Get an event type",
    params(("name" = String, Path, description = "An event type of the catalog, e.g. `OrderChanged`.")),
    responses((status = 200, description = "The type and its default payload's fields.", body = EventType), (status = 404, description = "No such event type.", body = crate::openapi::ErrorBody)),
)]
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
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EntityParams {
    /// With `entityId`: the shop of the stored entity.
    #[serde(default, deserialize_with = "crate::params::optional")]
    shop_id: Option<i64>,
    /// With `shopId`: list this stored entity's fields and values.
    entity_id: Option<String>,
}

#[utoipa::path(
    get,
    path = "/event-types/{name}/merge-fields",
    tag = "event-types",
    operation_id = "list_merge_fields",
    summary = "List merge fields",
    description = "The merge fields a template of the type can read, with types and descriptions; with `shopId` and `entityId`, a stored entity's fields and current values (from the latest event about it).",
    params(("name" = String, Path, description = "An event type of the catalog, e.g. `OrderChanged`."), EntityParams),
    responses((status = 200, description = "The merge fields.", body = MergeFieldsOut), (status = 404, description = "No such event type, or no stored event about the entity.", body = crate::openapi::ErrorBody)),
)]
async fn merge_fields(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    params: Result<Query<EntityParams>, QueryRejection>,
) -> Result<Json<MergeFieldsOut>, ApiError> {
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
    Ok(Json(fields.into()))
}

#[utoipa::path(
    get,
    path = "/event-types/{name}/schema",
    tag = "event-types",
    operation_id = "get_payload_schema",
    summary = "Get the default payload's JSON Schema",
    params(("name" = String, Path, description = "An event type of the catalog, e.g. `OrderChanged`.")),
    responses((status = 200, description = "A JSON Schema (draft 2020-12) of the type's default payload.", body = Object), (status = 404, description = "No such event type.", body = crate::openapi::ErrorBody)),
)]
async fn schema(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(state.engine.payload_schema(&name)?))
}

/// A custom event type as an admin writes it (`POST/PUT /api/v1/event-types`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = EventTypeDraft)]
pub struct EventTypeIn {
    /// Required on create; on update it must be absent or the same. 1 to 100 letters, digits,
    /// `_`, `-` or `.`, starting with a letter.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[A-Za-z][A-Za-z0-9_.-]*$"
    )]
    pub name: Option<String>,
    /// Default `shopctrl`.
    #[serde(default)]
    #[schema(pattern = "^(shopctrl|skladon|flowretail|frontsystems)$")]
    pub catalog: Option<String>,
    /// At most 1000 characters.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub description: String,
    /// JSON Schema of the entity backends send; checked to be a valid schema.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    /// Default payload template (JSON with merge fields).
    #[serde(default)]
    pub payload_template: Option<String>,
}

impl From<EventTypeIn> for EventTypeDraft {
    fn from(d: EventTypeIn) -> EventTypeDraft {
        EventTypeDraft {
            name: d.name,
            catalog: d.catalog,
            description: d.description,
            schema: d.schema,
            payload_template: d.payload_template,
        }
    }
}

/// The merge fields of an event type, or of one real entity (then with values).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = MergeFields)]
pub struct MergeFieldsOut {
    pub event_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::v1::schema::ShopId>)]
    pub shop_id: Option<ShopId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    /// The stored event the values come from.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::v1::schema::EventId>)]
    pub event_id: Option<EventId>,
    pub fields: Vec<MergeField>,
    /// The entity has more fields than are listed (2000); the rest are left out.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl From<MergeFields> for MergeFieldsOut {
    fn from(m: MergeFields) -> MergeFieldsOut {
        MergeFieldsOut {
            event_type: m.event_type,
            shop_id: m.shop_id,
            entity_id: m.entity_id,
            event_id: m.event_id,
            fields: m.fields,
            truncated: m.truncated,
        }
    }
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_catalogs))
        .routes(routes!(list_event_types, create_event_type))
        .routes(routes!(
            get_event_type,
            update_event_type,
            delete_event_type
        ))
        .routes(routes!(merge_fields))
        .routes(routes!(schema))
}
