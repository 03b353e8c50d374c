use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "action_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub trigger_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub action_index: i32,
    /// Calls in a row that failed for good (reset by a success).
    pub consecutive_failures: i32,
    pub deactivated_at: Option<i64>,
    pub deactivated_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
