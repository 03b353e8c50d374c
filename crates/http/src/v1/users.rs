//! Users, the caller's own account (`/me`), and API tokens.
//!
//! Admins manage users; everyone reads their own account, changes their own password and
//! manages their own API tokens (admins anyone's).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use hookflow_engine::accounts::{ApiToken, Role, User};
use hookflow_engine::model::{ApiTokenId, ShopId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::json::parse;
use crate::openapi::ErrorBody;
use crate::params::Int;
use crate::v1::{schema, Items};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserIn {
    /// One `@` with text on both sides and no blanks; kept trimmed, in lower case.
    #[schema(
        max_length = 254,
        pattern = "^[ \\t\\n\\u000b\\f\\r]*[^@ \\t\\n\\u000b\\f\\r]+@[^@ \\t\\n\\u000b\\f\\r]+[ \\t\\n\\u000b\\f\\r]*$"
    )]
    email: String,
    /// 10 to 1024 characters. Generated (and answered once) when absent.
    #[serde(default)]
    #[schema(min_length = 10, max_length = 1024)]
    password: Option<String>,
    role: RoleWire,
    /// The shops a shop owner admin (or a restricted viewer) acts for.
    #[serde(default)]
    #[schema(value_type = Vec<schema::ShopId>)]
    shops: Vec<ShopId>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserPatch {
    role: RoleWire,
    #[serde(default)]
    #[schema(value_type = Vec<schema::ShopId>)]
    shops: Vec<ShopId>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PasswordIn {
    /// 10 to 1024 characters.
    #[schema(min_length = 10, max_length = 1024)]
    password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenIn {
    /// 1 to 100 characters, not only blanks; kept trimmed.
    #[schema(min_length = 1, max_length = 100, pattern = "[^ \\t\\n\\u000b\\f\\r]")]
    name: String,
    /// Admins may make a token for another user.
    #[serde(default)]
    #[schema(value_type = Option<schema::UserId>)]
    user_id: Option<UserId>,
    /// Days until the token expires (1 to 3650); absent: it lasts until revoked.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3650)]
    expires_in_days: Option<u32>,
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenParams {
    /// Admins: every user's tokens.
    #[serde(default)]
    all: bool,
}

#[utoipa::path(
    get,
    path = "/me",
    tag = "users",
    operation_id = "get_me",
    summary = "Who the caller is",
    responses((status = 200, description = "The caller.", body = crate::openapi::Me)),
)]
async fn me(auth: Auth) -> Json<Value> {
    let p = &auth.0;
    Json(json!({
        "id": p.user,
        "email": p.email,
        "role": RoleWire::from(p.role),
        "shops": p.shops,
        "canWrite": p.can_write(),
    }))
}

#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    operation_id = "list_users",
    summary = "List users",
    responses((status = 200, description = "The users.", body = crate::openapi::UserList)),
)]
async fn list_users(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Items<UserOut>>, ApiError> {
    auth.require_admin()?;
    let users = state.engine.list_users().await?;
    Ok(Json(Items {
        items: users.into_iter().map(UserOut::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    operation_id = "create_user",
    summary = "Create a user",
    request_body(content = UserIn, example = json!({"email": "ops@example.com", "role": "shop_owner_admin", "shops": [1]})),
    responses((status = 201, description = "The user; with a generated password, once.", body = crate::openapi::CreatedUser), (status = 409, description = "The email is taken.", body = ErrorBody), (status = 422, description = "An invalid field.", body = ErrorBody)),
)]
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
            input.role.into(),
            &input.shops,
        )
        .await?;
    let mut out = serde_json::to_value(UserOut::from(user)).unwrap_or(Value::Null);
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

#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "users",
    operation_id = "get_user",
    summary = "Get a user",
    params(("id" = i64, Path, description = "The user's id.")),
    responses((status = 200, description = "The user.", body = UserOut), (status = 404, description = "No such user (or not yours to see).", body = ErrorBody)),
)]
async fn get_user(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
) -> Result<Json<UserOut>, ApiError> {
    may_read_user(&auth, UserId(id))?;
    Ok(Json(state.engine.get_user(UserId(id)).await?.into()))
}

#[utoipa::path(
    put,
    path = "/users/{id}",
    tag = "users",
    operation_id = "update_user",
    summary = "Change a user's role and shops",
    params(("id" = i64, Path, description = "The user's id.")),
    request_body(content = UserPatch, example = json!({"role": "viewer", "shops": [1, 2]})),
    responses((status = 200, description = "The user.", body = UserOut), (status = 404, description = "No such user.", body = ErrorBody), (status = 409, description = "The last admin cannot be demoted.", body = ErrorBody), (status = 422, description = "An invalid field.", body = ErrorBody)),
)]
async fn update_user(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
    body: Bytes,
) -> Result<Json<UserOut>, ApiError> {
    auth.require_admin()?;
    let patch: UserPatch = parse(&body)?;
    let user = state
        .engine
        .update_user(UserId(id), patch.role.into(), &patch.shops)
        .await?;
    // Cached tokens of this user carry the old role.
    state.auth.forget_tokens();
    Ok(Json(user.into()))
}

#[utoipa::path(
    delete,
    path = "/users/{id}",
    tag = "users",
    operation_id = "delete_user",
    summary = "Delete a user",
    params(("id" = i64, Path, description = "The user's id.")),
    responses((status = 204, description = "Deleted."), (status = 404, description = "No such user.", body = ErrorBody), (status = 409, description = "The last admin cannot be deleted.", body = ErrorBody)),
)]
async fn delete_user(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    state.engine.delete_user(UserId(id)).await?;
    state.auth.forget_tokens();
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put,
    path = "/users/{id}/password",
    tag = "users",
    operation_id = "set_password",
    summary = "Set a user's password",
    description = "Admins, or the user themself; ends the user's sessions.",
    params(("id" = i64, Path, description = "The user's id.")),
    request_body(content = PasswordIn, example = json!({"password": "correct horse battery staple"})),
    responses((status = 204, description = "Set."), (status = 404, description = "No such user (or not yours to change).", body = ErrorBody), (status = 422, description = "Too short.", body = ErrorBody)),
)]
async fn set_password(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
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

#[utoipa::path(
    get,
    path = "/tokens",
    tag = "users",
    operation_id = "list_tokens",
    summary = "List API tokens",
    description = "The caller's own tokens; with `all=true` (admins) everyone's. The `--admin-token` belongs to no user, so without `all=true` its list is empty.",
    params(TokenParams),
    responses((status = 200, description = "The tokens (never their secrets).", body = crate::openapi::ApiTokenList)),
)]
async fn list_tokens(
    State(state): State<AppState>,
    auth: Auth,
    params: Result<Query<TokenParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Items<ApiTokenOut>>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let owner = if params.all {
        auth.require_admin()?;
        None
    } else {
        match auth.0.user {
            Some(user) => Some(user),
            // The admin token belongs to no user, so it has no tokens of its own.
            None => return Ok(Json(Items { items: Vec::new() })),
        }
    };
    let tokens = state.engine.list_api_tokens(owner).await?;
    Ok(Json(Items {
        items: tokens.into_iter().map(ApiTokenOut::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/tokens",
    tag = "users",
    operation_id = "create_token",
    summary = "Create an API token",
    description = "A token for the caller, or (admins) for the user `userId` names. The `--admin-token` belongs to no user: with it, `userId` is required (422 without).",
    request_body(content = TokenIn, example = json!({"name": "ERP sync", "expiresInDays": 90})),
    responses((status = 201, description = "The token, with its secret, once.", body = crate::openapi::CreatedToken), (status = 404, description = "No such user.", body = ErrorBody), (status = 422, description = "An invalid field.", body = ErrorBody)),
)]
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
        None => auth.0.user.ok_or_else(|| {
            ApiError::Engine(hookflow_engine::EngineError::Invalid {
                field: "userId".into(),
                message: "is required with the admin token, which belongs to no user".into(),
            })
        })?,
    };
    let (token, secret) = state
        .engine
        .create_api_token(owner, &input.name, input.expires_in_days)
        .await?;
    let mut out = serde_json::to_value(ApiTokenOut::from(token)).unwrap_or(Value::Null);
    // Shown once: only its digest is kept.
    out["token"] = json!(secret);
    Ok((StatusCode::CREATED, Json(out)))
}

#[utoipa::path(
    delete,
    path = "/tokens/{id}",
    tag = "users",
    operation_id = "revoke_token",
    summary = "Revoke an API token",
    params(("id" = i64, Path, description = "The token's id.")),
    responses((status = 204, description = "Revoked."), (status = 404, description = "No such token (or not yours).", body = ErrorBody)),
)]
async fn revoke_token(
    State(state): State<AppState>,
    auth: Auth,
    Path(Int(id)): Path<Int<i64>>,
) -> Result<StatusCode, ApiError> {
    // Only users hold tokens: a caller who is no user is the admin token, which may revoke any.
    let owner = if auth.0.is_admin() { None } else { auth.0.user };
    state.engine.revoke_api_token(ApiTokenId(id), owner).await?;
    state.auth.forget_tokens();
    Ok(StatusCode::NO_CONTENT)
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Role)]
pub enum RoleWire {
    /// Every shop, users and settings.
    Admin,
    /// Triggers, queue and alerts of the shops assigned to them.
    ShopOwnerAdmin,
    /// Read-only.
    Viewer,
}

impl From<Role> for RoleWire {
    fn from(role: Role) -> RoleWire {
        match role {
            Role::Admin => RoleWire::Admin,
            Role::ShopOwnerAdmin => RoleWire::ShopOwnerAdmin,
            Role::Viewer => RoleWire::Viewer,
        }
    }
}

impl From<RoleWire> for Role {
    fn from(role: RoleWire) -> Role {
        match role {
            RoleWire::Admin => Role::Admin,
            RoleWire::ShopOwnerAdmin => Role::ShopOwnerAdmin,
            RoleWire::Viewer => Role::Viewer,
        }
    }
}

/// A user account.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = User)]
pub struct UserOut {
    #[schema(value_type = schema::UserId)]
    pub id: UserId,
    pub email: String,
    pub role: RoleWire,
    /// The shops a shop owner admin (or a restricted viewer) acts for.
    #[schema(value_type = Vec<schema::ShopId>)]
    pub shops: Vec<ShopId>,
    #[schema(value_type = schema::Timestamp)]
    pub created_at: Timestamp,
    /// Its password was generated by hookflow (the first start's, or when an admin added the
    /// user without one): the web UI asks for a new one before anything else.
    pub must_change_password: bool,
}

impl From<User> for UserOut {
    fn from(u: User) -> UserOut {
        UserOut {
            id: u.id,
            email: u.email,
            role: u.role.into(),
            shops: u.shops,
            created_at: u.created_at,
            must_change_password: u.must_change_password,
        }
    }
}

/// A user's API token as listed: never the token itself, which is shown once at creation.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ApiToken)]
pub struct ApiTokenOut {
    #[schema(value_type = schema::ApiTokenId)]
    pub id: ApiTokenId,
    #[schema(value_type = schema::UserId)]
    pub user_id: UserId,
    pub name: String,
    /// The first characters of the token, so its owner can tell tokens apart.
    pub prefix: String,
    #[schema(value_type = schema::Timestamp)]
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<schema::Timestamp>)]
    pub last_used_at: Option<Timestamp>,
    /// After this the token is refused; absent: it does not expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<schema::Timestamp>)]
    pub expires_at: Option<Timestamp>,
}

impl From<ApiToken> for ApiTokenOut {
    fn from(t: ApiToken) -> ApiTokenOut {
        ApiTokenOut {
            id: t.id,
            user_id: t.user_id,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            expires_at: t.expires_at,
        }
    }
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(set_password))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
}
