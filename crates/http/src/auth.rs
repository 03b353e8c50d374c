// TEMPORARY: replaced by main's auth.rs at merge.
//! The auth contract's names, stubbed: one development session (`hookflow_session=dev`)
//! signed in as an admin with the admin token (or `dev`) as password.

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hookflow_engine::accounts::{Principal, Role};

use crate::{ApiError, AppState};

pub struct Auth(pub Principal);

pub struct Session {
    pub principal: Principal,
    pub csrf: String,
}

pub enum SignInError {
    WrongCredentials,
    RateLimited { retry_after_secs: u64 },
    Internal,
}

fn dev_principal() -> Principal {
    Principal {
        user: None,
        email: "dev@localhost".into(),
        role: Role::Admin,
        shops: Vec::new(),
    }
}

fn has_session(headers: &HeaderMap) -> bool {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(';').any(|c| c.trim() == "hookflow_session=dev"))
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;
    async fn from_request_parts(_: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Auth(dev_principal()))
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        if has_session(&parts.headers) {
            return Ok(Session {
                principal: dev_principal(),
                csrf: "devcsrf".into(),
            });
        }
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut response = StatusCode::SEE_OTHER.into_response();
        let location = format!("/login?next={}", next.replace('&', "%26"));
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(LOCATION, value);
        }
        Err(response)
    }
}

pub async fn sign_in(
    state: &AppState,
    _headers: &HeaderMap,
    _email: &str,
    password: &str,
    _client: IpAddr,
) -> Result<HeaderValue, SignInError> {
    let ok = password == "dev" || state.admin_token.as_deref() == Some(password);
    if password == "slow" {
        return Err(SignInError::RateLimited {
            retry_after_secs: 60,
        });
    }
    if !ok {
        return Err(SignInError::WrongCredentials);
    }
    Ok(HeaderValue::from_static(
        "hookflow_session=dev; HttpOnly; SameSite=Lax; Path=/",
    ))
}

pub async fn sign_out(_state: &AppState, _headers: &HeaderMap) -> HeaderValue {
    HeaderValue::from_static("hookflow_session=; Max-Age=0; HttpOnly; SameSite=Lax; Path=/")
}

pub fn login_csrf(_headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    (
        "logincsrf".into(),
        Some(HeaderValue::from_static(
            "hookflow_login_csrf=logincsrf; HttpOnly; SameSite=Lax; Path=/",
        )),
    )
}
