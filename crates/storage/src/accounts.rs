//! Accounts: users and their shops, API tokens, sessions.

use std::collections::HashMap;

use async_trait::async_trait;
use hookflow_engine::accounts::{
    AccountStore, ApiToken, Role, StoredSession, User, SESSION_IDLE_MS, SESSION_MAX_MS,
};
use hookflow_engine::model::{ApiTokenId, ShopId, Timestamp, UserId};
use hookflow_engine::store::StoreError;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};

use crate::entities::{api_token, session, user, user_shop};
use crate::{db_err, DbStore};

/// A token's last use is written at most this often, so busy tokens cost no write per request.
const TOKEN_USE_RESOLUTION_MS: i64 = 60_000;

/// A session's expiry is pushed forward at most this often.
const SESSION_TOUCH_MS: i64 = 5 * 60_000;

fn role_of(text: &str) -> Result<Role, StoreError> {
    text.parse()
        .map_err(|e| StoreError::new(format!("stored role is corrupt: {e}")))
}

fn to_user(m: user::Model, shops: Vec<ShopId>) -> Result<User, StoreError> {
    Ok(User {
        id: UserId(m.id),
        email: m.email,
        role: role_of(&m.role)?,
        shops,
        created_at: Timestamp(m.created_at),
        must_change_password: m.must_change_password,
    })
}

fn to_token(m: api_token::Model) -> ApiToken {
    ApiToken {
        id: ApiTokenId(m.id),
        user_id: UserId(m.user_id),
        name: m.name,
        prefix: m.prefix,
        created_at: Timestamp(m.created_at),
        last_used_at: m.last_used_at.map(Timestamp),
        expires_at: m.expires_at.map(Timestamp),
    }
}

async fn shops_of(db: &impl ConnectionTrait, user: i64) -> Result<Vec<ShopId>, StoreError> {
    Ok(user_shop::Entity::find()
        .filter(user_shop::Column::UserId.eq(user))
        .order_by_asc(user_shop::Column::ShopId)
        .all(db)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(|m| ShopId(m.shop_id))
        .collect())
}

async fn load_user(db: &impl ConnectionTrait, id: i64) -> Result<Option<User>, StoreError> {
    let Some(model) = user::Entity::find_by_id(id).one(db).await.map_err(db_err)? else {
        return Ok(None);
    };
    let shops = shops_of(db, id).await?;
    to_user(model, shops).map(Some)
}

async fn set_shops(
    db: &impl ConnectionTrait,
    user: i64,
    shops: &[ShopId],
) -> Result<(), StoreError> {
    user_shop::Entity::delete_many()
        .filter(user_shop::Column::UserId.eq(user))
        .exec(db)
        .await
        .map_err(db_err)?;
    if shops.is_empty() {
        return Ok(());
    }
    let rows = shops.iter().map(|shop| user_shop::ActiveModel {
        user_id: Set(user),
        shop_id: Set(shop.0),
    });
    user_shop::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([user_shop::Column::UserId, user_shop::Column::ShopId])
                .do_nothing()
                .to_owned(),
        )
        .do_nothing()
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Signs a user out everywhere (a new password, a deleted account).
async fn end_sessions(db: &impl ConnectionTrait, user: UserId) -> Result<(), StoreError> {
    session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user.0))
        .exec(db)
        .await
        .map_err(db_err)?;
    Ok(())
}

#[async_trait]
impl AccountStore for DbStore {
    fn login_token_key(&self) -> Option<[u8; 32]> {
        self.secrets.as_deref().map(crate::SecretBox::login_key)
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        user::Entity::find().count(&self.db).await.map_err(db_err)
    }

    async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        role: Role,
        shops: &[ShopId],
        must_change_password: bool,
        now: Timestamp,
    ) -> Result<Option<User>, StoreError> {
        let txn = self.writer.begin().await.map_err(db_err)?;
        let taken = user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(&txn)
            .await
            .map_err(db_err)?;
        if taken.is_some() {
            return Ok(None);
        }
        let model = user::ActiveModel {
            email: Set(email.to_owned()),
            password_hash: Set(password_hash.to_owned()),
            role: Set(role.as_str().to_owned()),
            must_change_password: Set(must_change_password),
            created_at: Set(now.0),
            updated_at: Set(now.0),
            ..Default::default()
        }
        .insert(&txn)
        .await;
        // A concurrent creation of the same email loses on the unique index.
        let model = match model {
            Ok(model) => model,
            Err(err) if err.to_string().to_lowercase().contains("unique") => return Ok(None),
            Err(err) => return Err(db_err(err)),
        };
        set_shops(&txn, model.id, shops).await?;
        txn.commit().await.map_err(db_err)?;
        let mut shops = shops.to_vec();
        shops.sort();
        shops.dedup();
        to_user(model, shops).map(Some)
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let users = user::Entity::find()
            .order_by_asc(user::Column::Email)
            .all(&self.db)
            .await
            .map_err(db_err)?;
        // Two queries for the whole page, not one per user.
        let mut shops: HashMap<i64, Vec<ShopId>> = HashMap::new();
        for row in user_shop::Entity::find()
            .order_by_asc(user_shop::Column::ShopId)
            .all(&self.db)
            .await
            .map_err(db_err)?
        {
            shops
                .entry(row.user_id)
                .or_default()
                .push(ShopId(row.shop_id));
        }
        users
            .into_iter()
            .map(|m| {
                let own = shops.remove(&m.id).unwrap_or_default();
                to_user(m, own)
            })
            .collect()
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        load_user(&self.db, id.0).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>, StoreError> {
        let Some(model) = user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(&self.db)
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        let shops = shops_of(&self.db, model.id).await?;
        let hash = model.password_hash.clone();
        Ok(Some((to_user(model, shops)?, hash)))
    }

    async fn update_user(
        &self,
        id: UserId,
        role: Role,
        shops: &[ShopId],
        now: Timestamp,
    ) -> Result<Option<User>, StoreError> {
        let txn = self.writer.begin().await.map_err(db_err)?;
        let Some(existing) = user::Entity::find_by_id(id.0)
            .one(&txn)
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        let mut model: user::ActiveModel = existing.into();
        model.role = Set(role.as_str().to_owned());
        model.updated_at = Set(now.0);
        model.update(&txn).await.map_err(db_err)?;
        set_shops(&txn, id.0, shops).await?;
        let user = load_user(&txn, id.0).await?;
        txn.commit().await.map_err(db_err)?;
        Ok(user)
    }

    async fn set_password(
        &self,
        id: UserId,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let txn = self.writer.begin().await.map_err(db_err)?;
        let updated = user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, password_hash.into())
            .col_expr(user::Column::MustChangePassword, false.into())
            .col_expr(user::Column::UpdatedAt, now.0.into())
            .filter(user::Column::Id.eq(id.0))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        end_sessions(&txn, id).await?;
        txn.commit().await.map_err(db_err)?;
        Ok(updated.rows_affected > 0)
    }

    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        let txn = self.writer.begin().await.map_err(db_err)?;
        end_sessions(&txn, id).await?;
        api_token::Entity::delete_many()
            .filter(api_token::Column::UserId.eq(id.0))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        user_shop::Entity::delete_many()
            .filter(user_shop::Column::UserId.eq(id.0))
            .exec(&txn)
            .await
            .map_err(db_err)?;
        let deleted = user::Entity::delete_by_id(id.0)
            .exec(&txn)
            .await
            .map_err(db_err)?;
        txn.commit().await.map_err(db_err)?;
        Ok(deleted.rows_affected > 0)
    }

    async fn create_api_token(
        &self,
        user: UserId,
        name: &str,
        digest: &str,
        prefix: &str,
        expires_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<ApiToken, StoreError> {
        let model = api_token::ActiveModel {
            user_id: Set(user.0),
            name: Set(name.to_owned()),
            digest: Set(digest.to_owned()),
            prefix: Set(prefix.to_owned()),
            created_at: Set(now.0),
            last_used_at: Set(None),
            expires_at: Set(expires_at.map(|t| t.0)),
            ..Default::default()
        }
        .insert(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(to_token(model))
    }

    async fn list_api_tokens(&self, user: Option<UserId>) -> Result<Vec<ApiToken>, StoreError> {
        let mut query = api_token::Entity::find().order_by_desc(api_token::Column::Id);
        if let Some(user) = user {
            query = query.filter(api_token::Column::UserId.eq(user.0));
        }
        Ok(query
            .all(&self.db)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(to_token)
            .collect())
    }

    async fn revoke_api_token(
        &self,
        id: ApiTokenId,
        owner: Option<UserId>,
    ) -> Result<bool, StoreError> {
        let mut delete = api_token::Entity::delete_many().filter(api_token::Column::Id.eq(id.0));
        if let Some(owner) = owner {
            delete = delete.filter(api_token::Column::UserId.eq(owner.0));
        }
        let deleted = delete.exec(&self.writer).await.map_err(db_err)?;
        Ok(deleted.rows_affected > 0)
    }

    async fn user_by_token(
        &self,
        digest: &str,
        now: Timestamp,
    ) -> Result<Option<(User, Option<Timestamp>)>, StoreError> {
        let Some(token) = api_token::Entity::find()
            .filter(api_token::Column::Digest.eq(digest))
            .one(&self.db)
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        if token.expires_at.is_some_and(|at| at <= now.0) {
            return Ok(None);
        }
        if token
            .last_used_at
            .is_none_or(|t| now.0 - t >= TOKEN_USE_RESOLUTION_MS)
        {
            api_token::Entity::update_many()
                .col_expr(api_token::Column::LastUsedAt, now.0.into())
                .filter(api_token::Column::Id.eq(token.id))
                .exec(&self.writer)
                .await
                .map_err(db_err)?;
        }
        Ok(load_user(&self.db, token.user_id)
            .await?
            .map(|u| (u, token.expires_at.map(Timestamp))))
    }

    async fn create_session(
        &self,
        digest: &str,
        user: UserId,
        csrf: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        // Sign-ins are rare: a good moment to drop sessions that ran out.
        session::Entity::delete_many()
            .filter(session::Column::ExpiresAt.lt(now.0))
            .exec(&self.writer)
            .await
            .map_err(db_err)?;
        session::ActiveModel {
            digest: Set(digest.to_owned()),
            user_id: Set(user.0),
            csrf: Set(csrf.to_owned()),
            created_at: Set(now.0),
            expires_at: Set(now.0 + SESSION_IDLE_MS),
        }
        .insert(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn session(
        &self,
        digest: &str,
        now: Timestamp,
    ) -> Result<Option<StoredSession>, StoreError> {
        let Some(found) = session::Entity::find_by_id(digest.to_owned())
            .one(&self.db)
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        if found.expires_at <= now.0 || now.0 - found.created_at >= SESSION_MAX_MS {
            return Ok(None);
        }
        let Some(user) = load_user(&self.db, found.user_id).await? else {
            return Ok(None);
        };
        let mut expires_at = found.expires_at;
        if now.0 + SESSION_IDLE_MS - expires_at >= SESSION_TOUCH_MS {
            expires_at = now.0 + SESSION_IDLE_MS;
            session::Entity::update_many()
                .col_expr(session::Column::ExpiresAt, expires_at.into())
                .filter(session::Column::Digest.eq(digest))
                .exec(&self.writer)
                .await
                .map_err(db_err)?;
        }
        Ok(Some(StoredSession {
            user,
            csrf: found.csrf,
            expires_at: Timestamp(expires_at),
        }))
    }

    async fn delete_session(&self, digest: &str) -> Result<(), StoreError> {
        session::Entity::delete_by_id(digest.to_owned())
            .exec(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
