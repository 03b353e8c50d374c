//! Shops: the tenants events and triggers belong to, each with the catalog it uses and an API
//! key for the platform-compatible APIs (shown once, when made).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookflow_engine::model::{Shop, ShopId};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::parse;
use crate::v1::Items;
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
struct ShopIn {
    name: String,
    /// Where failure and deactivation notices for the shop go.
    #[serde(default)]
    notification_email: Option<String>,
    /// The catalog its events and triggers use; default `shopctrl`.
    #[serde(default)]
    catalog: Option<String>,
}

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

async fn list_shops(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Items<Shop>>, ApiError> {
    let mut items = state.engine.list_shops().await?;
    items.retain(|s| auth.0.sees_shop(s.id));
    Ok(Json(Items { items }))
}

async fn get_shop(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<Shop>, ApiError> {
    auth.require_shop(ShopId(id), || format!("shop {id} does not exist"))?;
    Ok(Json(state.engine.get_shop(ShopId(id)).await?))
}

async fn update_shop(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
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
async fn rotate_api_key(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<Shop>, ApiError> {
    auth.require_shop(ShopId(id), || format!("shop {id} does not exist"))?;
    auth.require_write()?;
    Ok(Json(state.engine.rotate_api_key(ShopId(id)).await?.0))
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/shops", get(list_shops).post(create_shop))
        .route("/shops/{id}", get(get_shop).put(update_shop))
        .route("/shops/{id}/api-key", post(rotate_api_key))
}
