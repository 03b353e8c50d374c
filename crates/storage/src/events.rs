//! Stored events: reads beyond ingest.

use hookflow_engine::model::{EventId, ShopId, Timestamp};
use hookflow_engine::store::{StoreError, StoredEvent};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use crate::entities::event;
use crate::{db_err, json_err};

pub(crate) fn to_stored(m: event::Model) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        id: EventId(m.id),
        shop_id: ShopId(m.shop_id),
        event_type: m.event_type,
        entity_id: m.entity_id,
        entity: serde_json::from_str(&m.entity_data).map_err(json_err)?,
        previous: m
            .previous_data
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(json_err)?,
        occurred_at: Timestamp(m.occurred_at),
    })
}

/// Served by the `events_entity` index (shop_id, entity_id, id).
pub(crate) async fn latest(
    db: &DatabaseConnection,
    shop: ShopId,
    entity_id: &str,
) -> Result<Option<StoredEvent>, StoreError> {
    event::Entity::find()
        .filter(event::Column::ShopId.eq(shop.0))
        .filter(event::Column::EntityId.eq(entity_id))
        .order_by_desc(event::Column::Id)
        .one(db)
        .await
        .map_err(db_err)?
        .map(to_stored)
        .transpose()
}
