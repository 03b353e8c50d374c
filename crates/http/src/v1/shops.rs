//! Shops: the tenants events and triggers belong to.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
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
                .create_shop(&shop.name, shop.notification_email.as_deref())
                .await?,
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
    Ok(Json(
        state
            .engine
            .update_shop(ShopId(id), &shop.name, shop.notification_email.as_deref())
            .await?,
    ))
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/shops", get(list_shops).post(create_shop))
        .route("/shops/{id}", get(get_shop).put(update_shop))
}
