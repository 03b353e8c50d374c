//! Payload previews: render a template as a trigger would, before saving it.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use hookflow_engine::templates::{Preview, PreviewRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::parse;
use crate::AppState;

#[utoipa::path(
    post,
    path = "/payloads/preview",
    tag = "payloads",
    operation_id = "preview_payload",
    summary = "Render a payload template",
    description = "Renders a template as a trigger would, without saving anything: against the latest stored event about `entityId` in `shopId`, else the given `entity`, else the type's sample entity. The render has the same budget as a trigger's: at most 64 MiB of values built, 100 000 loop iterations, 500 000 steps, 500 ms and a 1 MiB payload; a template over any of them answers 422 with the line. Each caller may preview 10 times at once, then once every 2 seconds (429 with Retry-After past that).",
    request_body(content = PreviewRequest, example = json!({"eventType": "OrderChanged", "mimeType": "application/json", "body": "{\"order\": {{ entity.OrderCode }}}", "entity": {"OrderCode": "ORD-42"}})),
    responses((status = 200, description = "The rendered payload.", body = Preview), (status = 404, description = "No stored event about the entity.", body = crate::openapi::ErrorBody), (status = 422, description = "An unknown event type, or a template that does not render (with line and column), including one over the render budget.", body = crate::openapi::ErrorBody), (status = 429, description = "Too many previews by this caller: retry after the seconds in Retry-After.", body = crate::openapi::ErrorBody)),
)]
async fn preview(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<Json<Preview>, ApiError> {
    let caller = match auth.0.user {
        Some(user) => format!("user {}", user.0),
        None => auth.0.email.clone(),
    };
    if let Err(retry_after) = state.previews.take(&caller) {
        return Err(ApiError::TooManyRequests {
            message: format!(
                "too many previews: each caller may render 10 at once, then one every 2 \
                 seconds; retry in {retry_after} s"
            ),
            retry_after,
        });
    }
    let request: PreviewRequest = parse(&body)?;
    // A stored entity is shop data: only for callers who see the shop.
    if let Some(shop) = request.shop_id {
        if !auth.0.sees_shop(shop) {
            return Err(hookflow_engine::EngineError::UnknownShop(shop.0).into());
        }
    }
    Ok(Json(state.engine.preview(request).await?))
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(preview))
}
