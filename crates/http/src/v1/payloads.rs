//! Payload previews: render a template as a trigger would, before saving it.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use hookflow_engine::model::ShopId;
use hookflow_engine::templates::{Preview, PreviewRequest};
use hookflow_templating::MimeType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::parse;
use crate::v1::schema;
use crate::AppState;

/// `POST /api/v1/payloads/preview`: render `body` as a trigger of `eventType` would.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = PreviewRequest)]
pub struct PreviewIn {
    pub event_type: String,
    pub mime_type: MimeType,
    pub body: String,
    /// With `entityId`: render against the latest stored event about that entity.
    #[serde(default)]
    #[schema(value_type = Option<schema::ShopId>)]
    pub shop_id: Option<ShopId>,
    #[serde(default)]
    pub entity_id: Option<EntityIdIn>,
    /// Without a stored entity: render against this one (else the type's sample entity).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub entity: Option<Map<String, Value>>,
}

impl From<PreviewIn> for PreviewRequest {
    fn from(p: PreviewIn) -> PreviewRequest {
        PreviewRequest {
            event_type: p.event_type,
            mime_type: p.mime_type,
            body: p.body,
            shop_id: p.shop_id,
            entity_id: p.entity_id.map(String::from),
            entity: p.entity,
        }
    }
}

/// An entity id as backends send it: a string or an integer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = EntityIdParam)]
pub enum EntityIdIn {
    Text(String),
    Number(i64),
}

impl From<EntityIdIn> for String {
    fn from(id: EntityIdIn) -> String {
        match id {
            EntityIdIn::Text(s) => s,
            EntityIdIn::Number(n) => n.to_string(),
        }
    }
}

/// A rendered preview.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Preview)]
pub struct PreviewOut {
    pub mime_type: MimeType,
    /// The `Content-Type` the call would carry.
    pub content_type: &'static str,
    pub body: String,
}

impl From<Preview> for PreviewOut {
    fn from(p: Preview) -> PreviewOut {
        PreviewOut {
            mime_type: p.mime_type,
            content_type: p.content_type,
            body: p.body,
        }
    }
}

#[utoipa::path(
    post,
    path = "/payloads/preview",
    tag = "payloads",
    operation_id = "preview_payload",
    summary = "Render a payload template",
    description = "Renders a template as a trigger would, without saving anything: against the latest stored event about `entityId` in `shopId`, else the given `entity`, else the type's sample entity. The render has the same budget as a trigger's: at most 64 MiB of values built, 100 000 loop iterations, 500 000 steps, 500 ms and a 1 MiB payload; a template over any of them answers 422 with the line. Each caller may preview 10 times at once, then once every 2 seconds (429 with Retry-After past that).",
    request_body(content = PreviewIn, example = json!({"eventType": "OrderChanged", "mimeType": "application/json", "body": "{\"order\": {{ entity.OrderCode }}}", "entity": {"OrderCode": "ORD-42"}})),
    responses((status = 200, description = "The rendered payload.", body = PreviewOut), (status = 404, description = "No stored event about the entity.", body = crate::openapi::ErrorBody), (status = 422, description = "An unknown event type, or a template that does not render (with line and column), including one over the render budget.", body = crate::openapi::ErrorBody), (status = 429, description = "Too many previews by this caller: retry after the seconds in Retry-After.", body = crate::openapi::ErrorBody)),
)]
async fn preview(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<Json<PreviewOut>, ApiError> {
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
    let request: PreviewIn = parse(&body)?;
    // A stored entity is shop data: only for callers who see the shop.
    if let Some(shop) = request.shop_id {
        if !auth.0.sees_shop(shop) {
            return Err(hookflow_engine::EngineError::UnknownShop(shop.0).into());
        }
    }
    Ok(Json(state.engine.preview(request.into()).await?.into()))
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(preview))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_requests_read_the_documented_shape() {
        let request: PreviewIn = serde_json::from_value(serde_json::json!({
            "eventType": "OrderChanged", "mimeType": "application/xml", "body": "<a/>",
            "shopId": 1, "entityId": 42
        }))
        .unwrap();
        assert_eq!(request.mime_type, MimeType::Xml);
        assert_eq!(request.shop_id, Some(ShopId(1)));
        assert_eq!(request.entity_id, Some(EntityIdIn::Number(42)));
        assert_eq!(
            PreviewRequest::from(request).entity_id.as_deref(),
            Some("42")
        );
        assert!(serde_json::from_value::<PreviewIn>(serde_json::json!({
            "eventType": "OrderChanged", "mimeType": "image/png", "body": ""
        }))
        .is_err());
    }
}
