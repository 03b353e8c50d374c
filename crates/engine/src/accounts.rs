// TEMPORARY: replaced by main's accounts.rs at merge.
//! Accounts (the auth contract's names), stubbed so the web UI compiles before main's
//! accounts land.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use crate::model::ShopId;
use crate::model::Timestamp;
use crate::{Engine, EngineError};

/// A user account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A user's API token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiTokenId(pub i64);

impl fmt::Display for ApiTokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    ShopOwnerAdmin,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::ShopOwnerAdmin, Role::Viewer];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ShopOwnerAdmin => "shop_owner_admin",
            Role::Viewer => "viewer",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}"))
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub role: Role,
    pub shops: Vec<ShopId>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Option<UserId>,
    pub email: String,
    pub role: Role,
    pub shops: Vec<ShopId>,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
    pub fn can_write(&self) -> bool {
        matches!(self.role, Role::Admin | Role::ShopOwnerAdmin)
    }
    pub fn sees_shop(&self, shop: ShopId) -> bool {
        self.shop_scope().is_none_or(|s| s.contains(&shop))
    }
    pub fn shop_scope(&self) -> Option<&[ShopId]> {
        if self.is_admin() || (self.role == Role::Viewer && self.shops.is_empty()) {
            None
        } else {
            Some(&self.shops)
        }
    }
}

fn stub() -> EngineError {
    EngineError::Conflict("accounts are not available in this build".into())
}

impl Engine {
    pub async fn create_user(
        &self,
        _email: &str,
        _password: Option<&str>,
        _role: Role,
        _shops: &[ShopId],
    ) -> Result<(User, Option<String>), EngineError> {
        Err(stub())
    }
    pub async fn list_users(&self) -> Result<Vec<User>, EngineError> {
        Ok(Vec::new())
    }
    pub async fn get_user(&self, _id: UserId) -> Result<User, EngineError> {
        Err(stub())
    }
    pub async fn update_user(
        &self,
        _id: UserId,
        _role: Role,
        _shops: &[ShopId],
    ) -> Result<User, EngineError> {
        Err(stub())
    }
    pub async fn set_password(&self, _id: UserId, _password: &str) -> Result<(), EngineError> {
        Err(stub())
    }
    pub async fn delete_user(&self, _id: UserId) -> Result<(), EngineError> {
        Err(stub())
    }
    pub async fn create_api_token(
        &self,
        _user: UserId,
        _name: &str,
    ) -> Result<(ApiToken, String), EngineError> {
        Err(stub())
    }
    pub async fn list_api_tokens(
        &self,
        _user: Option<UserId>,
    ) -> Result<Vec<ApiToken>, EngineError> {
        Ok(Vec::new())
    }
    pub async fn revoke_api_token(
        &self,
        _id: ApiTokenId,
        _owner: Option<UserId>,
    ) -> Result<(), EngineError> {
        Err(stub())
    }
}
