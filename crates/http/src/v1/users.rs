//! Users, the caller's own account (`/me`), and API tokens.
//!
//! Admins manage users; everyone reads their own account, changes their own password and
//! manages their own API tokens (admins anyone's).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use hookflow_engine::accounts::{ApiToken, Role, User};
use hookflow_engine::model::{ApiTokenId, ShopId, UserId};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::parse;
use crate::v1::Items;
use crate::AppState;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserIn {
    email: String,
    /// Generated (and answered once) when absent.
    #[serde(default)]
    password: Option<String>,
    role: Role,
    #[serde(default)]
    shops: Vec<ShopId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserPatch {
    role: Role,
    #[serde(default)]
    shops: Vec<ShopId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PasswordIn {
    password: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenIn {
    name: String,
    /// Admins may make a token for another user.
    #[serde(default)]
    user_id: Option<UserId>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenParams {
    /// Admins: every user's tokens.
    #[serde(default)]
    all: bool,
}

async fn me(auth: Auth) -> Json<Value> {
    let p = &auth.0;
    Json(json!({
        "id": p.user,
        "email": p.email,
        "role": p.role,
        "shops": p.shops,
        "canWrite": p.can_write(),
    }))
}

async fn list_users(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Items<User>>, ApiError> {
    auth.require_admin()?;
    Ok(Json(Items {
        items: state.engine.list_users().await?,
    }))
}

async fn create_user(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_admin()?;
    let input: UserIn = parse(&body)?;
    let (user, generated) = state
        .engine
        .create_user(
            &input.email,
            input.password.as_deref(),
            input.role,
            &input.shops,
        )
        .await?;
    let mut out = serde_json::to_value(&user).unwrap_or(Value::Null);
    if let Some(password) = generated {
        // Shown once: only its hash is kept.
        out["password"] = json!(password);
    }
    Ok((StatusCode::CREATED, Json(out)))
}

/// Admins read anyone; others only themselves (404 for the rest).
fn may_read_user(auth: &Auth, id: UserId) -> Result<(), ApiError> {
    if auth.0.is_admin() || auth.0.user == Some(id) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("user {id} does not exist")))
    }
}

async fn get_user(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<Json<User>, ApiError> {
    may_read_user(&auth, UserId(id))?;
    Ok(Json(state.engine.get_user(UserId(id)).await?))
}

async fn update_user(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<User>, ApiError> {
    auth.require_admin()?;
    let patch: UserPatch = parse(&body)?;
    let user = state
        .engine
        .update_user(UserId(id), patch.role, &patch.shops)
        .await?;
    // Cached tokens of this user carry the old role.
    state.auth.forget_tokens();
    Ok(Json(user))
}

async fn delete_user(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    state.engine.delete_user(UserId(id)).await?;
    state.auth.forget_tokens();
    Ok(StatusCode::NO_CONTENT)
}

async fn set_password(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    may_read_user(&auth, UserId(id))?;
    let input: PasswordIn = parse(&body)?;
    state
        .engine
        .set_password(UserId(id), &input.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_tokens(
    State(state): State<AppState>,
    auth: Auth,
    params: Result<Query<TokenParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Items<ApiToken>>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let owner = if params.all {
        auth.require_admin()?;
        None
    } else {
        Some(own_user(&auth)?)
    };
    Ok(Json(Items {
        items: state.engine.list_api_tokens(owner).await?,
    }))
}

fn own_user(auth: &Auth) -> Result<UserId, ApiError> {
    auth.0.user.ok_or_else(|| {
        ApiError::BadRequest(
            "the admin token belongs to no user; name one with userId, or use ?all=true".into(),
        )
    })
}

async fn create_token(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let input: TokenIn = parse(&body)?;
    let owner = match input.user_id {
        Some(user) if auth.0.user != Some(user) => {
            auth.require_admin()?;
            user
        }
        Some(user) => user,
        None => own_user(&auth)?,
    };
    let (token, secret) = state.engine.create_api_token(owner, &input.name).await?;
    let mut out = serde_json::to_value(&token).unwrap_or(Value::Null);
    // Shown once: only its digest is kept.
    out["token"] = json!(secret);
    Ok((StatusCode::CREATED, Json(out)))
}

async fn revoke_token(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let owner = if auth.0.is_admin() {
        None
    } else {
        Some(own_user(&auth)?)
    };
    state.engine.revoke_api_token(ApiTokenId(id), owner).await?;
    state.auth.forget_tokens();
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/me", get(me))
        .route("/users", get(list_users).post(create_user))
        .route(
            "/users/{id}",
            get(get_user).put(update_user).delete(delete_user),
        )
        .route("/users/{id}/password", put(set_password))
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", delete(revoke_token))
}
