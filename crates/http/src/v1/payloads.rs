//! Payload previews: render a template as a trigger would, before saving it.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use hookflow_engine::templates::{Preview, PreviewRequest};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::parse;
use crate::AppState;

async fn preview(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<Json<Preview>, ApiError> {
    let request: PreviewRequest = parse(&body)?;
    // A stored entity is shop data: only for callers who see the shop.
    if let Some(shop) = request.shop_id {
        if !auth.0.sees_shop(shop) {
            return Err(hookflow_engine::EngineError::UnknownShop(shop.0).into());
        }
    }
    Ok(Json(state.engine.preview(request).await?))
}

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/payloads/preview", post(preview))
}
