//! Shops: the tenants events and triggers belong to, each with the catalog it uses and an API
//! key for the platform-compatible APIs (shown once, when made).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use hookflow_engine::model::{Shop, ShopId, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::parse;
use crate::params::Int;
use crate::v1::{schema, Items};
use crate::AppState;

/// A shop as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShopOut {
    #[schema(value_type = schema::ShopId)]
    pub id: ShopId,
    pub name: String,
    /// Where failure and deactivation notices for this shop go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_email: Option<String>,
    #[schema(value_type = schema::Timestamp)]
    pub created_at: Timestamp,
    /// The event catalog its events, triggers and subscriptions use (`shopctrl`, `skladon`,
    /// `flowretail`, `frontsystems`).
    pub catalog: String,
    /// Whether the shop has an API key for the compat APIs (never the key itself, except in
    /// the answer that made it).
    pub api_key: ApiKeyOut,
}

/// What reads show of a shop's API key: whether it is set, and its first characters so an
/// admin can tell keys apart. The key itself is shown once, when it is made.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ApiKeyInfo)]
pub struct ApiKeyOut {
    pub set: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The key itself: only in the answer that made it (shop creation, rotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl From<&Shop> for ShopOut {
    fn from(shop: &Shop) -> ShopOut {
        ShopOut {
            id: shop.id,
            name: shop.name.clone(),
            notification_email: shop.notification_email.clone(),
            created_at: shop.created_at,
            catalog: shop.catalog.clone(),
            api_key: ApiKeyOut {
                set: shop.api_key.set,
                prefix: shop.api_key.prefix.clone(),
                key: shop.api_key.key.as_ref().map(|k| k.expose().to_owned()),
            },
        }
    }
}

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
    responses((status = 201, description = "The shop.", body = ShopOut), (status = 422, description = "An invalid field.", body = crate::openapi::ErrorBody)),
)]
async fn create_shop(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<(StatusCode, Json<ShopOut>), ApiError> {
    auth.require_admin()?;
    let shop: ShopIn = parse(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(ShopOut::from(
            &state
                .engine
                .create_shop_with_key(
                    &shop.name,
                    shop.notification_email.as_deref(),
                    shop.catalog.as_deref(),
                )
                .await?
                .0,
        )),
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
) -> Result<Json<Items<ShopOut>>, ApiError> {
    let shops = state.engine.list_shops().await?;
    let items = shops
        .iter()
        .filter(|s| auth.0.sees_shop(s.id))
        .map(ShopOut::from)
        .collect();
    Ok(Json(Items { items }))
}

#[utoipa::path(
    get,
    path = "/shops/{id}",
    tag = "shops",
    operation_id = "get_shop",
    summary = "Get a shop",
    params(("id" = i64, Path, description = "The shop's id.")),
    responses((status = 200, description = "The shop.", body = ShopOut), (status = 404, description = "No such shop.", body = crate::openapi::ErrorBody)),
)]
async fn get_shop(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
) -> Result<Json<ShopOut>, ApiError> {
    auth.require_shop(ShopId(id), || format!("shop {id} does not exist"))?;
    Ok(Json(ShopOut::from(
        &state.engine.get_shop(ShopId(id)).await?,
    )))
}

#[utoipa::path(
    put,
    path = "/shops/{id}",
    tag = "shops",
    operation_id = "update_shop",
    summary = "Update a shop",
    params(("id" = i64, Path, description = "The shop's id.")),
    request_body(content = ShopIn, example = json!({"name": "Main shop", "notificationEmail": "ops@example.com"})),
    responses((status = 200, description = "The shop.", body = ShopOut), (status = 404, description = "No such shop.", body = crate::openapi::ErrorBody), (status = 409, description = "A new catalog while triggers of the old one exist.", body = crate::openapi::ErrorBody), (status = 422, description = "An invalid field.", body = crate::openapi::ErrorBody)),
)]
async fn update_shop(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
    body: Bytes,
) -> Result<Json<ShopOut>, ApiError> {
    auth.require_admin()?;
    let shop: ShopIn = parse(&body)?;
    let updated = state
        .engine
        .update_shop(ShopId(id), &shop.name, shop.notification_email.as_deref())
        .await?;
    match &shop.catalog {
        Some(catalog) if *catalog != updated.catalog => Ok(Json(ShopOut::from(
            &state.engine.set_shop_catalog(ShopId(id), catalog).await?,
        ))),
        _ => Ok(Json(ShopOut::from(&updated))),
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
    responses((status = 200, description = "The shop, with its new key.", body = ShopOut), (status = 404, description = "No such shop.", body = crate::openapi::ErrorBody)),
)]
async fn rotate_api_key(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
) -> Result<Json<ShopOut>, ApiError> {
    auth.require_shop(ShopId(id), || format!("shop {id} does not exist"))?;
    auth.require_write()?;
    Ok(Json(ShopOut::from(
        &state.engine.rotate_api_key(ShopId(id)).await?.0,
    )))
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_shops, create_shop))
        .routes(routes!(get_shop, update_shop))
        .routes(routes!(rotate_api_key))
}
