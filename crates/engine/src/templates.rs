//! Template tooling for admins: the merge fields of an event type or of a real entity, the
//! JSON Schema of a type's default payload, and previews of a payload template.
//!
//! Previews and entity merge fields read the latest stored event about an entity
//! ([`crate::store::Store::latest_event`]), so admins write templates against data they know.

use std::sync::Arc;

use hookflow_templating::fields::{self, MergeField};
use hookflow_templating::schema::default_payload_schema;
use hookflow_templating::{EventType, MimeType, RenderContext, TemplateKind, TemplateSet};
use serde_json::{Map, Value};

use crate::model::{EventId, ShopId};
use crate::service::sample_entity;
use crate::{Engine, EngineError};

/// The sample event's entity id, shop and time (as in the save-time checks).
const SAMPLE_ENTITY_ID: &str = "1001";
const SAMPLE_SHOP_ID: i64 = 1;
const SAMPLE_SHOP_NAME: &str = "Sample shop";
const SAMPLE_OCCURRED_AT: &str = "2026-01-01T00:00:00Z";

/// The merge fields of an event type, or of one real entity (then with values).
#[derive(Debug, Clone)]
pub struct MergeFields {
    pub event_type: String,
    pub shop_id: Option<ShopId>,
    pub entity_id: Option<String>,
    /// The stored event the values come from.
    pub event_id: Option<EventId>,
    pub fields: Vec<MergeField>,
    /// The entity has more fields than are listed (2000); the rest are left out.
    pub truncated: bool,
}

/// Render `body` as a trigger of `event_type` would.
#[derive(Debug, Clone)]
pub struct PreviewRequest {
    pub event_type: String,
    pub mime_type: MimeType,
    pub body: String,
    /// With `entity_id`: render against the latest stored event about that entity.
    pub shop_id: Option<ShopId>,
    pub entity_id: Option<String>,
    /// Without a stored entity: render against this one (else the type's sample entity).
    pub entity: Option<Map<String, Value>>,
}

/// A rendered preview.
#[derive(Debug, Clone)]
pub struct Preview {
    pub mime_type: MimeType,
    /// The `Content-Type` the call would carry.
    pub content_type: &'static str,
    pub body: String,
}

impl Engine {
    /// An event type named in a path: unknown is a 404.
    fn path_event_type(&self, name: &str) -> Result<Arc<EventType>, EngineError> {
        self.catalog()
            .shared(name)
            .ok_or_else(|| EngineError::NoSuchEventType(name.to_owned()))
    }

    /// Every merge field a template of `event_type` can read, with types and descriptions.
    pub fn merge_fields(&self, event_type: &str) -> Result<MergeFields, EngineError> {
        let ty = self.path_event_type(event_type)?;
        Ok(MergeFields {
            event_type: ty.name.clone(),
            shop_id: None,
            entity_id: None,
            event_id: None,
            fields: fields::type_fields(&ty),
            truncated: false,
        })
    }

    /// The merge fields of a real entity with their current values, from the latest stored
    /// event about it.
    pub async fn entity_merge_fields(
        &self,
        event_type: &str,
        shop: ShopId,
        entity_id: &str,
    ) -> Result<MergeFields, EngineError> {
        let ty = self.path_event_type(event_type)?;
        let (ctx, event_id) = self.stored_context(&ty, shop, entity_id).await?;
        let (fields, truncated) = fields::entity_fields(&ctx);
        Ok(MergeFields {
            event_type: ty.name.clone(),
            shop_id: Some(shop),
            entity_id: Some(entity_id.to_owned()),
            event_id: Some(event_id),
            fields,
            truncated,
        })
    }

    /// The JSON Schema (draft 2020-12) of `event_type`'s default payload.
    pub fn payload_schema(&self, event_type: &str) -> Result<Value, EngineError> {
        let ty = self.path_event_type(event_type)?;
        Ok(default_payload_schema(&ty))
    }

    /// Renders a payload template against a stored entity, a given one, or the type's sample.
    pub async fn preview(&self, request: PreviewRequest) -> Result<Preview, EngineError> {
        let Some(ty) = self.catalog().shared(&request.event_type) else {
            return Err(EngineError::UnknownEventType {
                field: "eventType".into(),
                message: format!("unknown event type {:?}", request.event_type),
                catalog: None,
            });
        };
        let ctx = match (request.shop_id, request.entity_id) {
            (Some(shop), Some(entity_id)) => self.stored_context(&ty, shop, &entity_id).await?.0,
            (shop_id, entity_id) => {
                let (shop_id, shop_name) = match shop_id {
                    Some(id) => (id.0, self.get_shop(id).await?.name),
                    None => (SAMPLE_SHOP_ID, SAMPLE_SHOP_NAME.to_owned()),
                };
                RenderContext {
                    event_id: 1,
                    event_type: ty.clone(),
                    occurred_at: SAMPLE_OCCURRED_AT.to_owned(),
                    entity_id: entity_id.unwrap_or_else(|| SAMPLE_ENTITY_ID.to_owned()),
                    shop_id,
                    shop_name,
                    entity: Arc::new(request.entity.unwrap_or_else(|| sample_entity(&ty))),
                    previous: None,
                }
            }
        };
        // A render may take up to its budget's time (see `hookflow_templating::budget`): off
        // the async workers, so a hostile preview cannot stall other requests.
        let kind = TemplateKind::Payload(request.mime_type);
        let (source, ctx) = (request.body, ctx.into_value());
        let rendered = tokio::task::spawn_blocking(move || {
            TemplateSet::new().render_once(kind, &source, &ctx)
        })
        .await
        .map_err(|_| EngineError::Invalid {
            field: "body".into(),
            message: "the template could not be rendered".into(),
        })?;
        let body = rendered.map_err(|e| EngineError::Invalid {
            field: "body".into(),
            message: e.to_string(),
        })?;
        Ok(Preview {
            mime_type: request.mime_type,
            content_type: request.mime_type.content_type(),
            body,
        })
    }

    /// The context a trigger of `ty` would render with for the latest stored event about
    /// `entity_id` in `shop_id`.
    async fn stored_context(
        &self,
        ty: &Arc<EventType>,
        shop_id: ShopId,
        entity_id: &str,
    ) -> Result<(RenderContext, EventId), EngineError> {
        let shop = self.get_shop(shop_id).await?;
        let not_found = || {
            EngineError::NotFound(format!(
                "no event about {} {entity_id:?} is stored for shop {shop_id}; \
                 post one first, or preview with a given entity",
                ty.entity
            ))
        };
        let event = self
            .store
            .latest_event(shop_id, entity_id)
            .await?
            .ok_or_else(not_found)?;
        // Entity ids are unique per kind of entity only: an order and a product may share one.
        // The latest event must be about the same kind as the type asked for.
        if self
            .catalog()
            .get(&event.event_type)
            .is_some_and(|stored| stored.entity != ty.entity)
        {
            return Err(not_found());
        }
        let ctx = RenderContext {
            event_id: event.id.0,
            event_type: ty.clone(),
            occurred_at: event.occurred_at.to_rfc3339(),
            entity_id: event.entity_id,
            shop_id: shop.id.0,
            shop_name: shop.name,
            entity: Arc::new(event.entity),
            previous: None,
        };
        Ok((ctx, event.id))
    }
}
