use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attempts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub queue_item_id: i64,
    pub attempt: i32,
    pub started_at: i64,
    pub duration_ms: i64,
    pub status_code: Option<i32>,
    /// Response headers as a JSON array of `[name, value]` pairs.
    pub response_headers: String,
    pub response_body: String,
    pub error: Option<String>,
    /// The request headers as sent (JSON `[name, value]` pairs, credentials masked); `None`
    /// for attempts logged before they were recorded, or interrupted ones.
    pub request_headers: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
