//! Shops: the tenants events and triggers belong to.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hookflow_engine::model::{Shop, ShopId};
use serde::Deserialize;

use crate::error::ApiError;
use crate::json::parse;
use crate::v1::Items;
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShopIn {
    name: String,
}

async fn create_shop(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Shop>), ApiError> {
    let shop: ShopIn = parse(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(state.engine.create_shop(&shop.name).await?),
    ))
}

async fn list_shops(State(state): State<AppState>) -> Result<Json<Items<Shop>>, ApiError> {
    Ok(Json(Items {
        items: state.engine.list_shops().await?,
    }))
}

async fn get_shop(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Shop>, ApiError> {
    Ok(Json(state.engine.get_shop(ShopId(id)).await?))
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/shops", get(list_shops).post(create_shop))
        .route("/shops/{id}", get(get_shop))
}
