//! Administration: users (role and shops), shops (catalog and API key), and API tokens. Users and shops are for
//! admins; the tokens page shows every user's tokens to admins and their own to everyone
//! else. A new token's secret and a generated password are shown once, on the page the form
//! leads to, and never stored in the clear; so is a shop's API key, when the shop is made and
//! when it is rotated.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use hookflow_engine::accounts::Role;
use hookflow_engine::model::{ApiTokenId, ShopId, UserId};
use hookflow_engine::EngineError;
use minijinja::context;
use serde::Deserialize;

use crate::auth::Session;
use crate::ui::{path_id, redirect_with_notice, render, require_admin, FormData, UiError};
use crate::v1::shops::ShopOut;
use crate::v1::users::{ApiTokenOut, UserOut};
use crate::AppState;

#[derive(Deserialize)]
pub(crate) struct NoticeParams {
    pub(crate) notice: Option<String>,
}

fn role_choices() -> Vec<(&'static str, &'static str)> {
    Role::ALL
        .into_iter()
        .map(|r| {
            (
                r.as_str(),
                match r {
                    Role::Admin => "Admin — every shop, users and settings",
                    Role::ShopOwnerAdmin => {
                        "Shop owner admin — triggers, queue and alerts of their shops"
                    }
                    Role::Viewer => "Viewer — read only",
                },
            )
        })
        .collect()
}

/// Every shop, as the API shows it (the pages render the same shape).
async fn shops_shown(state: &AppState) -> Result<Vec<ShopOut>, UiError> {
    Ok(state
        .engine
        .list_shops()
        .await?
        .iter()
        .map(ShopOut::from)
        .collect())
}

fn shops_of(form: &FormData) -> Result<Vec<ShopId>, UiError> {
    form.all("shops")
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .map(ShopId)
                .map_err(|_| UiError::BadRequest(format!("shops: {s:?} is not a shop id")))
        })
        .collect()
}

fn role_of(form: &FormData) -> Result<Role, UiError> {
    form.get("role")
        .unwrap_or_default()
        .parse()
        .map_err(UiError::BadRequest)
}

/// `GET /users`.
pub(crate) async fn users(
    State(state): State<AppState>,
    session: Session,
    Query(params): Query<NoticeParams>,
) -> Result<Response, UiError> {
    require_admin(&session.principal)?;
    users_page(&state, &session, params.notice, None, None).await
}

/// The users page; `refused`: why the last change was not made (shown above the list, with
/// its status), so a refusal never ends on a bare error page.
async fn users_page(
    state: &AppState,
    session: &Session,
    notice: Option<String>,
    created: Option<(String, String)>,
    refused: Option<(StatusCode, String)>,
) -> Result<Response, UiError> {
    let users = state.engine.list_users().await?;
    let shops = shops_shown(state).await?;
    let status = refused.as_ref().map_or(StatusCode::OK, |(s, _)| *s);
    let mut response = render::page(
        session,
        "users.html",
        "users",
        context! {
            users => users.into_iter().map(UserOut::from).collect::<Vec<_>>(),
            shops,
            roles => role_choices(),
            notice,
            me => session.principal.user,
            refused => refused.map(|(_, message)| message),
            created => created.map(|(email, password)| context! { email, password }),
        },
    )?;
    *response.status_mut() = status;
    Ok(response)
}

/// `POST /users`: `email`, `role`, `shops` (repeated), `password` (empty = generate one).
pub(crate) async fn create_user(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> Result<Response, UiError> {
    let form = FormData::parse(&body);
    require_admin(&session.principal)?;
    let email = form.get("email").unwrap_or_default();
    let role = role_of(&form)?;
    let shops = shops_of(&form)?;
    let password = form.get("password");
    let (user, generated) = state
        .engine
        .create_user(email, password, role, &shops)
        .await?;
    match generated {
        // Shown once, here: the page is not a redirect target, so it is never in history.
        Some(password) => {
            users_page(
                &state,
                &session,
                Some(format!("User {} created.", user.email)),
                Some((user.email, password)),
                None,
            )
            .await
        }
        None => Ok(redirect_with_notice(
            "/users",
            &format!("User {} created.", user.email),
        )),
    }
}

/// `POST /users/{id}`: `role`, `shops`, and optionally a new `password`.
pub(crate) async fn update_user(
    State(state): State<AppState>,
    session: Session,
    id: Path<String>,
    body: Bytes,
) -> Result<Response, UiError> {
    let form = FormData::parse(&body);
    require_admin(&session.principal)?;
    let id = UserId(path_id(id)?);
    let user = state
        .engine
        .update_user(id, role_of(&form)?, &shops_of(&form)?)
        .await?;
    if let Some(password) = form.get("password") {
        state.engine.set_password(id, password).await?;
    }
    Ok(redirect_with_notice(
        "/users",
        &format!("User {} saved.", user.email),
    ))
}

/// `POST /users/{id}/delete`.
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    session: Session,
    id: Path<String>,
) -> Result<Response, UiError> {
    require_admin(&session.principal)?;
    let id = UserId(path_id(id)?);
    if session.principal.user == Some(id) {
        let refused = (
            StatusCode::BAD_REQUEST,
            "You cannot delete your own account: another admin can.".to_owned(),
        );
        return users_page(&state, &session, None, None, Some(refused)).await;
    }
    match state.engine.delete_user(id).await {
        Ok(()) => Ok(redirect_with_notice("/users", "User deleted.")),
        Err(EngineError::Conflict(message)) => {
            let refused = (StatusCode::CONFLICT, format!("Not deleted: {message}."));
            users_page(&state, &session, None, None, Some(refused)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /shops`.
pub(crate) async fn shops(
    State(state): State<AppState>,
    session: Session,
    Query(params): Query<NoticeParams>,
) -> Result<Response, UiError> {
    require_admin(&session.principal)?;
    shops_page(
        &state,
        &session,
        ShopsPage {
            notice: params.notice,
            ..ShopsPage::default()
        },
    )
    .await
}

/// What a shops page shows besides the list: a notice, an API key shown once, or a field
/// the server refused (beside that shop's field).
#[derive(Default)]
struct ShopsPage {
    notice: Option<String>,
    /// (shop name, key, whether it replaced an older key).
    key: Option<(String, String, bool)>,
    /// (shop id, or `None` for the new-shop form; field; message).
    error: Option<(Option<ShopId>, String, String)>,
}

async fn shops_page(
    state: &AppState,
    session: &Session,
    page: ShopsPage,
) -> Result<Response, UiError> {
    let shops = shops_shown(state).await?;
    let catalogs = state.engine.catalogs();
    let status = match &page.error {
        Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
        None => StatusCode::OK,
    };
    let mut response = render::page(
        session,
        "shops.html",
        "shops",
        context! {
            shops,
            catalogs,
            notice => page.notice,
            key => page.key.map(|(shop, key, rotated)| context! { shop, key, rotated }),
            error => page.error.map(|(shop, field, message)| context! {
                shop => shop.map(|s| s.0),
                field,
                message,
            }),
        },
    )?;
    *response.status_mut() = status;
    Ok(response)
}

/// A refusal the page can show beside a field; anything else is an error page.
fn field_error(e: EngineError) -> Result<(String, String, StatusCode), UiError> {
    match e {
        EngineError::Invalid { field, message }
        | EngineError::UnknownEventType { field, message, .. } => {
            Ok((field, message, StatusCode::UNPROCESSABLE_ENTITY))
        }
        EngineError::Conflict(message) => Ok((String::new(), message, StatusCode::CONFLICT)),
        e => Err(e.into()),
    }
}

/// `POST /shops`: `name`, `notification_email`, `catalog`. The new shop's API key is shown
/// once, on the page this answers with (not a redirect, so it is never in history).
pub(crate) async fn create_shop(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> Result<Response, UiError> {
    let form = FormData::parse(&body);
    require_admin(&session.principal)?;
    let created = state
        .engine
        .create_shop_with_key(
            form.get("name").unwrap_or_default(),
            form.get("notification_email"),
            form.get("catalog"),
        )
        .await;
    match created {
        Ok((shop, key)) => {
            shops_page(
                &state,
                &session,
                ShopsPage {
                    notice: Some(format!(
                        "Shop {} created (id {}, {} catalog).",
                        shop.name, shop.id, shop.catalog
                    )),
                    key: Some((shop.name, key, false)),
                    error: None,
                },
            )
            .await
        }
        Err(e) => {
            let (field, message, status) = field_error(e)?;
            let mut response = shops_page(
                &state,
                &session,
                ShopsPage {
                    error: Some((None, field, message)),
                    ..ShopsPage::default()
                },
            )
            .await?;
            *response.status_mut() = status;
            Ok(response)
        }
    }
}

/// `POST /shops/{id}`: `name`, `notification_email`, `catalog`. A catalog change the engine
/// refuses (409: the shop has triggers of its current catalog) is shown beside the field.
pub(crate) async fn update_shop(
    State(state): State<AppState>,
    session: Session,
    id: Path<String>,
    body: Bytes,
) -> Result<Response, UiError> {
    let form = FormData::parse(&body);
    require_admin(&session.principal)?;
    let id = ShopId(path_id(id)?);
    let saved = async {
        let shop = state
            .engine
            .update_shop(
                id,
                form.get("name").unwrap_or_default(),
                form.get("notification_email"),
            )
            .await?;
        match form.get("catalog") {
            Some(catalog) if catalog != shop.catalog => {
                state.engine.set_shop_catalog(id, catalog).await
            }
            _ => Ok(shop),
        }
    }
    .await;
    match saved {
        Ok(shop) => Ok(redirect_with_notice(
            "/shops",
            &format!("Shop {} saved.", shop.name),
        )),
        Err(e) => {
            let (field, message, status) = field_error(e)?;
            // A 409 here is the catalog change (name and email were saved already).
            let field = if field.is_empty() {
                "catalog".to_owned()
            } else {
                field
            };
            let mut response = shops_page(
                &state,
                &session,
                ShopsPage {
                    error: Some((Some(id), field, message)),
                    ..ShopsPage::default()
                },
            )
            .await?;
            *response.status_mut() = status;
            Ok(response)
        }
    }
}

/// `POST /shops/{id}/api-key`: replaces the shop's API key and shows the new one once.
pub(crate) async fn rotate_api_key(
    State(state): State<AppState>,
    session: Session,
    id: Path<String>,
) -> Result<Response, UiError> {
    require_admin(&session.principal)?;
    let id = ShopId(path_id(id)?);
    let (shop, key) = state.engine.rotate_api_key(id).await?;
    shops_page(
        &state,
        &session,
        ShopsPage {
            notice: Some(format!("Shop {} has a new API key.", shop.name)),
            key: Some((shop.name, key, true)),
            error: None,
        },
    )
    .await
}

/// `GET /tokens`.
pub(crate) async fn tokens(
    State(state): State<AppState>,
    session: Session,
    Query(params): Query<NoticeParams>,
) -> Result<Response, UiError> {
    tokens_page(&state, &session, params.notice, None).await
}

async fn tokens_page(
    state: &AppState,
    session: &Session,
    notice: Option<String>,
    created: Option<(String, String)>,
) -> Result<Response, UiError> {
    let p = &session.principal;
    let tokens = if p.is_admin() {
        state.engine.list_api_tokens(None).await?
    } else {
        match p.user {
            Some(user) => state.engine.list_api_tokens(Some(user)).await?,
            None => Vec::new(),
        }
    };
    let emails: HashMap<i64, String> = if p.is_admin() {
        state
            .engine
            .list_users()
            .await?
            .into_iter()
            .map(|u| (u.id.0, u.email))
            .collect()
    } else {
        HashMap::new()
    };
    let now = hookflow_engine::model::Timestamp::now();
    let rows: Vec<_> = tokens
        .iter()
        .map(|t| {
            context! {
                token => ApiTokenOut::from(t.clone()),
                owner => emails.get(&t.user_id.0).cloned().unwrap_or_else(|| p.email.clone()),
                mine => p.user == Some(t.user_id),
                expired => t.expires_at.is_some_and(|e| e <= now),
            }
        })
        .collect();
    render::page(
        session,
        "tokens.html",
        "tokens",
        context! {
            rows,
            notice,
            has_user => p.user.is_some(),
            expiry_choices => TOKEN_EXPIRY_CHOICES,
            created => created.map(|(name, secret)| context! { name, secret }),
        },
    )
}

/// What the token form offers, in days (0: never); 90 is preselected.
const TOKEN_EXPIRY_CHOICES: [(u32, &str); 6] = [
    (7, "7 days"),
    (30, "30 days"),
    (90, "90 days"),
    (180, "180 days"),
    (365, "1 year"),
    (0, "never (until revoked)"),
];

/// `POST /tokens`: `name`, `expires` (days; 0: never). A token of one's own, for the REST API.
pub(crate) async fn create_token(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> Result<Response, UiError> {
    let form = FormData::parse(&body);
    let Some(user) = session.principal.user else {
        return Err(UiError::BadRequest(
            "the admin token has no user to own API tokens; sign in as a user".into(),
        ));
    };
    let name = form.get("name").unwrap_or_default();
    let expires: u32 = match form.get("expires").unwrap_or("90") {
        "" => 90,
        days => days.parse().map_err(|_| {
            UiError::BadRequest(format!("expires: {days:?} is not a number of days"))
        })?,
    };
    let (token, secret) = state
        .engine
        .create_api_token(user, name, (expires > 0).then_some(expires))
        .await?;
    tokens_page(
        &state,
        &session,
        Some(format!("Token {} created.", token.name)),
        Some((token.name, secret)),
    )
    .await
}

/// `POST /tokens/{id}/revoke`: one's own token, or any token for an admin.
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    session: Session,
    id: Path<String>,
) -> Result<Response, UiError> {
    let id = ApiTokenId(path_id(id)?);
    let owner = if session.principal.is_admin() {
        None
    } else {
        match session.principal.user {
            Some(user) => Some(user),
            None => return Err(UiError::NotFound(format!("token {id} does not exist"))),
        }
    };
    state.engine.revoke_api_token(id, owner).await?;
    Ok(redirect_with_notice("/tokens", "Token revoked."))
}
