//! Shops: the tenants events and triggers belong to, each with the catalog it uses and an API
//! key for the platform-compatible APIs (shown once, when made).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use hookflow_engine::model::{Shop, ShopId};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::parse;
use crate::params::Int;
use crate::v1::Items;
use crate::AppState;

/// A shop as an admin writes it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
struct ShopIn {
    /// 1 to 200 characters, not only blanks; kept trimmed.
    #[schema(min_length = 1, max_length = 200, pattern = "[^ \\t\\n\\u000b\\f\\r]")]
    name: String,
    /// Where failure and deactivation notices for the shop go (blank: nowhere).
    #[serde(default)]
    #[schema(
        max_length = 254,
        pattern = "^([ \\t\\n\\u000b\\f\\r]*|[ \\t\\n\\u000b\\f\\r]*[^@ \\t\\n\\u000b\\f\\r]+@[^@ \\t\\n\\u000b\\f\\r]+[ \\t\\n\\u000b\\f\\r]*)$"
    )]
    notification_email: Option<String>,
    /// The catalog its events and triggers use; default `shopctrl`.
    #[serde(default)]
    #[schema(pattern = "^(shopctrl|skladon|flowretail|frontsystems)$")]
    catalog: Option<String>,
}

#[utoipa::path(
    post,
    path = "/shops",
    tag = "shops",
    operation_id = "create_shop",
    summary = "Create a shop",
    request_body(content = ShopIn, example = json!({"name": "Main shop", "notificationEmail": "ops@example.com"})),
    responses((status = 201, description = "The shop.", body = Shop), (status = 422, description = "An invalid field.", body = crate::openapi::ErrorBody)),
)]
async fn create_shop(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<(StatusCode, Json<Shop>), ApiError> {
    auth.require_admin()?;
    let shop: ShopIn = parse(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(
            state
                .engine
                .create_shop_with_key(
                    &shop.name,
                    shop.notification_email.as_deref(),
                    shop.catalog.as_deref(),
                )
                .await?
                .0,
        ),
    ))
}

#[utoipa::path(
    get,
    path = "/shops",
    tag = "shops",
    operation_id = "list_shops",
    summary = "List shops",
    responses((status = 200, description = "The shops.", body = crate::openapi::ShopList)),
)]
async fn list_shops(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Items<Shop>>, ApiError> {
    let mut items = state.engine.list_shops().await?;
    items.retain(|s| auth.0.sees_shop(s.id));
    Ok(Json(Items { items }))
}

#[utoipa::path(
    get,
    path = "/shops/{id}",
    tag = "shops",
    operation_id = "get_shop",
    summary = "Get a shop",
    params(("id" = i64, Path, description = "The shop's id.")),
    responses((status = 200, description = "The shop.", body = Shop), (status = 404, description = "No such shop.", body = crate::openapi::ErrorBody)),
)]
async fn get_shop(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
) -> Result<Json<Shop>, ApiError> {
    auth.require_shop(ShopId(id), || format!("shop {id} does not exist"))?;
    Ok(Json(state.engine.get_shop(ShopId(id)).await?))
}

#[utoipa::path(
    put,
    path = "/shops/{id}",
    tag = "shops",
    operation_id = "update_shop",
    summary = "Update a shop",
    params(("id" = i64, Path, description = "The shop's id.")),
    request_body(content = ShopIn, example = json!({"name": "Main shop", "notificationEmail": "ops@example.com"})),
    responses((status = 200, description = "The shop.", body = Shop), (status = 404, description = "No such shop.", body = crate::openapi::ErrorBody), (status = 409, description = "A new catalog while triggers of the old one exist.", body = crate::openapi::ErrorBody), (status = 422, description = "An invalid field.", body = crate::openapi::ErrorBody)),
)]
async fn update_shop(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
    body: Bytes,
) -> Result<Json<Shop>, ApiError> {
    auth.require_admin()?;
    let shop: ShopIn = parse(&body)?;
    let updated = state
        .engine
        .update_shop(ShopId(id), &shop.name, shop.notification_email.as_deref())
        .await?;
    match &shop.catalog {
        Some(catalog) if *catalog != updated.catalog => Ok(Json(
            state.engine.set_shop_catalog(ShopId(id), catalog).await?,
        )),
        _ => Ok(Json(updated)),
    }
}

/// `POST /shops/{id}/api-key`: a new key (the old one stops working); the answer is the only
/// place it is shown. Whoever may change things in the shop may rotate its key.
#[utoipa::path(
    post,
    path = "/shops/{id}/api-key",
    tag = "shops",
    operation_id = "rotate_api_key",
    summary = "Make a new API key for the compat APIs",
    description = "The old key stops working; the answer is the only place the new one is shown (`apiKey.key`). A body is ignored.",
    params(("id" = i64, Path, description = "The shop's id.")),
    responses((status = 200, description = "The shop, with its new key.", body = Shop), (status = 404, description = "No such shop.", body = crate::openapi::ErrorBody)),
)]
async fn rotate_api_key(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
) -> Result<Json<Shop>, ApiError> {
    auth.require_shop(ShopId(id), || format!("shop {id} does not exist"))?;
    auth.require_write()?;
    Ok(Json(state.engine.rotate_api_key(ShopId(id)).await?.0))
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_shops, create_shop))
        .routes(routes!(get_shop, update_shop))
        .routes(routes!(rotate_api_key))
}
