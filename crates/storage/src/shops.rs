//! Shops: plain CRUD.

use hookflow_engine::model::{Shop, ShopId, Timestamp};
use hookflow_engine::store::StoreError;
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, QueryOrder, Set};

use crate::db_err;
use crate::entities::shop;

pub(crate) fn to_shop(m: shop::Model) -> Shop {
    Shop {
        id: ShopId(m.id),
        name: m.name,
        notification_email: m.notification_email,
        created_at: Timestamp(m.created_at),
    }
}

pub(crate) async fn create(
    db: &DatabaseConnection,
    name: &str,
    notification_email: Option<&str>,
    now: Timestamp,
) -> Result<Shop, StoreError> {
    let model = shop::ActiveModel {
        name: Set(name.to_owned()),
        notification_email: Set(notification_email.map(str::to_owned)),
        created_at: Set(now.0),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(db_err)?;
    Ok(to_shop(model))
}

pub(crate) async fn list(db: &DatabaseConnection) -> Result<Vec<Shop>, StoreError> {
    let rows = shop::Entity::find()
        .order_by_asc(shop::Column::Id)
        .all(db)
        .await
        .map_err(db_err)?;
    Ok(rows.into_iter().map(to_shop).collect())
}

pub(crate) async fn get(db: &DatabaseConnection, id: ShopId) -> Result<Option<Shop>, StoreError> {
    Ok(shop::Entity::find_by_id(id.0)
        .one(db)
        .await
        .map_err(db_err)?
        .map(to_shop))
}

pub(crate) async fn update(
    db: &DatabaseConnection,
    id: ShopId,
    name: &str,
    notification_email: Option<&str>,
) -> Result<Option<Shop>, StoreError> {
    let Some(existing) = shop::Entity::find_by_id(id.0)
        .one(db)
        .await
        .map_err(db_err)?
    else {
        return Ok(None);
    };
    let mut model: shop::ActiveModel = existing.into();
    model.name = Set(name.to_owned());
    model.notification_email = Set(notification_email.map(str::to_owned));
    Ok(Some(to_shop(model.update(db).await.map_err(db_err)?)))
}
