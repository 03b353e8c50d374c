//! The signed-in user's own account: who they are, and a new password. A password hookflow
//! generated (the first start's admin, or a user added without one) must be changed here before
//! any other page opens (`auth::identify` sends them here).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use hookflow_engine::EngineError;
use minijinja::context;

use crate::auth::{self, Session};
use crate::ui::admin::NoticeParams;
use crate::ui::{render, FormData, UiError};
use crate::AppState;

/// `GET /account/password`.
pub(crate) async fn show(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Query(params): axum::extract::Query<NoticeParams>,
) -> Result<Response, UiError> {
    page(&state, &session, params.notice, None).await
}

async fn page(
    state: &AppState,
    session: &Session,
    notice: Option<String>,
    error: Option<(String, String)>,
) -> Result<Response, UiError> {
    let p = &session.principal;
    let shops = match p.shop_scope() {
        None => Vec::new(),
        Some(ids) => state
            .engine
            .list_shops()
            .await?
            .into_iter()
            .filter(|s| ids.contains(&s.id))
            .map(|s| s.name)
            .collect(),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut response = render::page(
        session,
        "account.html",
        "account",
        context! {
            notice,
            email => p.email.clone(),
            role => p.role.as_str(),
            all_shops => p.shop_scope().is_none(),
            shops,
            has_user => p.user.is_some(),
            must_change => p.must_change_password,
            error => error.map(|(field, message)| context! { field, message }),
        },
    )?;
    *response.status_mut() = status;
    Ok(response)
}

/// `POST /account/password`: `current`, `password`, `repeat`. Every session of the user ends
/// (a new password does that); this browser gets a new one, so they stay signed in here.
pub(crate) async fn change_password(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let form = FormData::parse(&body);
    let Some(user) = session.principal.user else {
        return Err(UiError::BadRequest(
            "the admin token has no password; sign in as a user".into(),
        ));
    };
    let current = form.all("current").next().unwrap_or_default();
    let password = form.all("password").next().unwrap_or_default();
    let repeat = form.all("repeat").next().unwrap_or_default();
    if password != repeat {
        let message = "the two new passwords differ".to_owned();
        return page(&state, &session, None, Some(("repeat".into(), message))).await;
    }
    match state
        .engine
        .change_own_password(user, current, password)
        .await
    {
        Ok(()) => {}
        Err(EngineError::Invalid { field, message }) => {
            let field = if field == "currentPassword" {
                "current".to_owned()
            } else {
                field
            };
            return page(&state, &session, None, Some((field, message))).await;
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(user = %user, "password changed by its user");
    let cookie = auth::start_session(&state, &headers, user).await?;
    // A notice code, not a flash: the flash is sealed with the session that just ended.
    let mut response = Redirect::to("/account/password?notice=password_changed").into_response();
    response.headers_mut().append(SET_COOKIE, cookie);
    Ok(response)
}
