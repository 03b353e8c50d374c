use sea_orm::entity::prelude::*;

/// One evaluation of a trigger for an event (its activity); deleted with the event.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "trigger_evaluations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub trigger_id: i64,
    pub matched: bool,
    /// The rule clause read last (`rules.all[1]`), `condition`, or NULL (no condition).
    pub decided_by: Option<String>,
    /// UTC milliseconds.
    pub evaluated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
