use hookflow_engine::model::{CallStatus, Method as CallMethod};
use sea_orm::entity::prelude::*;

stored_enum! {
    /// `queue_items.status`: [`CallStatus`] as stored.
    Status <=> CallStatus, stored in "queue_items"."status" {
        Pending = "pending",
        InFlight = "in_flight",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
        Skipped = "skipped",
        Superseded = "superseded",
    }
}

stored_enum! {
    /// `queue_items.method`: the call's HTTP method ([`CallMethod`]) as stored.
    Method <=> CallMethod, stored in "queue_items"."method" {
        Post = "POST",
        Get = "GET",
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "queue_items")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub webhook_id: String,
    pub event_id: i64,
    pub trigger_id: i64,
    pub action_index: i32,
    pub shop_id: i64,
    pub event_type: String,
    pub entity_id: String,
    pub method: Method,
    pub url: String,
    /// Request headers as a JSON array of `[name, value]` pairs.
    pub headers: String,
    pub body: Option<String>,
    pub priority: i32,
    pub status: Status,
    pub attempts: i32,
    pub max_attempts: i32,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub coalesced: i32,
    pub target_host: String,
    pub ordered: bool,
    /// A superseded unique call: the newer call of its action and entity that replaced it.
    pub superseded_by: Option<i64>,
    /// Queued as a unique item: a newer call of its action and entity supersedes it.
    pub unique_item: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
