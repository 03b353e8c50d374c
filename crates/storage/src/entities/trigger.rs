use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "triggers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub event_type: String,
    pub shop_id: Option<i64>,
    pub enabled: bool,
    pub priority: i32,
    pub condition: Option<String>,
    /// The rule tree's canonical JSON.
    pub rules: Option<String>,
    /// The actions as JSON (the API's shape).
    pub actions: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
