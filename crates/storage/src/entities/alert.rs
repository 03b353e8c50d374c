use hookflow_engine::notify::NoticeKind;
use sea_orm::entity::prelude::*;

stored_enum! {
    /// `alerts.kind`: what the alert is about ([`NoticeKind`], whose notice it raises).
    Kind <=> NoticeKind, stored in "alerts"."kind" {
        CallFailed = "callFailed",
        ActionDeactivated = "actionDeactivated",
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub trigger_id: i64,
    pub action_index: i32,
    pub shop_id: Option<i64>,
    pub call_id: Option<i64>,
    pub kind: Kind,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub count: i32,
    pub acknowledged: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
