//! Custom event types: plain CRUD. The schema is stored as JSON text.

use hookflow_engine::model::{CustomEventType, Timestamp};
use hookflow_engine::store::StoreError;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set,
};

use crate::entities::event_type;
use crate::{db_err, json_err};

fn to_type(m: event_type::Model) -> Result<CustomEventType, StoreError> {
    Ok(CustomEventType {
        name: m.name,
        catalog: m.catalog,
        description: m.description,
        schema: m
            .schema
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(json_err)?,
        payload_template: m.payload_template,
        created_at: Timestamp(m.created_at),
        updated_at: Timestamp(m.updated_at),
    })
}

pub(crate) async fn list(db: &DatabaseConnection) -> Result<Vec<CustomEventType>, StoreError> {
    event_type::Entity::find()
        .order_by_asc(event_type::Column::Name)
        .all(db)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(to_type)
        .collect()
}

async fn find(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<event_type::Model>, StoreError> {
    event_type::Entity::find()
        .filter(event_type::Column::Name.eq(name))
        .one(db)
        .await
        .map_err(db_err)
}

pub(crate) async fn create(
    db: &impl ConnectionTrait,
    ty: &CustomEventType,
) -> Result<bool, StoreError> {
    if find(db, &ty.name).await?.is_some() {
        return Ok(false);
    }
    let inserted = event_type::ActiveModel {
        name: Set(ty.name.clone()),
        catalog: Set(ty.catalog.clone()),
        description: Set(ty.description.clone()),
        schema: Set(ty.schema.as_ref().map(|s| s.to_string())),
        payload_template: Set(ty.payload_template.clone()),
        created_at: Set(ty.created_at.0),
        updated_at: Set(ty.updated_at.0),
        ..Default::default()
    }
    .insert(db)
    .await;
    match inserted {
        Ok(_) => Ok(true),
        // Another request created it between the check and the insert (unique name).
        Err(_) if find(db, &ty.name).await?.is_some() => Ok(false),
        Err(err) => Err(db_err(err)),
    }
}

pub(crate) async fn update(
    db: &impl ConnectionTrait,
    ty: &CustomEventType,
) -> Result<bool, StoreError> {
    let Some(existing) = find(db, &ty.name).await? else {
        return Ok(false);
    };
    let mut model: event_type::ActiveModel = existing.into();
    model.catalog = Set(ty.catalog.clone());
    model.description = Set(ty.description.clone());
    model.schema = Set(ty.schema.as_ref().map(|s| s.to_string()));
    model.payload_template = Set(ty.payload_template.clone());
    model.updated_at = Set(ty.updated_at.0);
    model.update(db).await.map_err(db_err)?;
    Ok(true)
}

pub(crate) async fn delete(db: &impl ConnectionTrait, name: &str) -> Result<bool, StoreError> {
    let result = event_type::Entity::delete_many()
        .filter(event_type::Column::Name.eq(name))
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(result.rows_affected > 0)
}
