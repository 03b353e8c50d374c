//! Shops: plain CRUD.

use hookflow_engine::model::{ApiKeyInfo, Shop, ShopId, Timestamp};
use hookflow_engine::store::StoreError;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};

use crate::db_err;
use crate::entities::shop;

pub(crate) fn to_shop(m: shop::Model) -> Shop {
    Shop {
        id: ShopId(m.id),
        name: m.name,
        notification_email: m.notification_email,
        created_at: Timestamp(m.created_at),
        catalog: m.catalog,
        api_key: ApiKeyInfo {
            set: m.api_key_hash.is_some(),
            prefix: m.api_key_prefix,
            key: None,
        },
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
        catalog: Set(default_catalog()),
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
    modify(db, id, |model| {
        model.name = Set(name.to_owned());
        model.notification_email = Set(notification_email.map(str::to_owned));
    })
    .await
}

/// Loads a shop, changes it and saves it; `None` when it does not exist.
async fn modify(
    db: &DatabaseConnection,
    id: ShopId,
    change: impl FnOnce(&mut shop::ActiveModel),
) -> Result<Option<Shop>, StoreError> {
    let Some(existing) = shop::Entity::find_by_id(id.0)
        .one(db)
        .await
        .map_err(db_err)?
    else {
        return Ok(None);
    };
    let mut model: shop::ActiveModel = existing.into();
    change(&mut model);
    Ok(Some(to_shop(model.update(db).await.map_err(db_err)?)))
}

/// New shops start in ShopCtrl's catalog (the column's default too).
fn default_catalog() -> String {
    "shopctrl".to_owned()
}

pub(crate) async fn set_catalog(
    db: &DatabaseConnection,
    id: ShopId,
    catalog: &str,
) -> Result<Option<Shop>, StoreError> {
    modify(db, id, |model| model.catalog = Set(catalog.to_owned())).await
}

pub(crate) async fn set_api_key(
    db: &DatabaseConnection,
    id: ShopId,
    hash: &str,
    prefix: &str,
) -> Result<Option<Shop>, StoreError> {
    modify(db, id, |model| {
        model.api_key_hash = Set(Some(hash.to_owned()));
        model.api_key_prefix = Set(Some(prefix.to_owned()));
    })
    .await
}

/// Served by the unique index `shops_api_key`.
pub(crate) async fn by_api_key(
    db: &DatabaseConnection,
    hash: &str,
) -> Result<Option<Shop>, StoreError> {
    Ok(shop::Entity::find()
        .filter(shop::Column::ApiKeyHash.eq(hash))
        .one(db)
        .await
        .map_err(db_err)?
        .map(to_shop))
}
