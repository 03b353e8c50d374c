use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub shop_id: i64,
    pub event_type: String,
    pub entity_id: String,
    /// The entity as the backend sent it (JSON).
    pub entity_data: String,
    /// The entity before the change (JSON), when the event carried it.
    pub previous_data: Option<String>,
    pub occurred_at: i64,
    pub received_at: i64,
    pub idempotency_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
