use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shops")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub notification_email: Option<String>,
    pub created_at: i64,
    pub catalog: String,
    /// SHA-256 of the shop's API key (hex); the key itself is never stored.
    pub api_key_hash: Option<String>,
    /// The key's first characters, for reads.
    pub api_key_prefix: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
