//! Sign-in and sign-out. The login form carries a CSRF token of its own (a double-submit
//! cookie, as there is no session yet); wrong credentials and rate limiting each get a clear
//! message on the form, with the email kept.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;

use crate::auth::{self, Session, SignInError};
use crate::ui::{local_path, render, FormData, UiError};
use crate::AppState;

#[derive(Deserialize)]
pub(crate) struct LoginParams {
    next: Option<String>,
    notice: Option<String>,
}

/// `GET /login`.
pub(crate) async fn form(
    headers: HeaderMap,
    Query(params): Query<LoginParams>,
) -> Result<Response, UiError> {
    let next = local_path(params.next.as_deref());
    login_page(
        &headers,
        StatusCode::OK,
        &next,
        "",
        None,
        params.notice.as_deref(),
    )
}

fn login_page(
    headers: &HeaderMap,
    status: StatusCode,
    next: &str,
    email: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Result<Response, UiError> {
    let (csrf, cookie) = auth::login_csrf(headers);
    let html = render::render(
        "login.html",
        context! { csrf, next, email, error, notice, nav => "login" },
    )?;
    let mut response = render::html_response(status, html);
    if let Some(cookie) = cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
}

/// `POST /login`: `email`, `password`, `_csrf`, `next`.
pub(crate) async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> Result<Response, UiError> {
    let form = FormData::parse(&body);
    let next = local_path(form.get("next"));
    let email = form.get("email").unwrap_or_default().to_owned();
    let password = form.all("password").next().unwrap_or_default().to_owned();
    // Without connection info (an app not served with it) all clients share one bucket.
    let peer: IpAddr = connect
        .map(|axum::Extension(ConnectInfo(addr))| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match auth::sign_in(&state, &headers, &email, &password, peer).await {
        Ok(cookie) => {
            let mut response = Redirect::to(&next).into_response();
            response.headers_mut().append(SET_COOKIE, cookie);
            Ok(response)
        }
        // 200, as a form shown again with its message: the browser logs 4xx pages as errors.
        Err(SignInError::WrongCredentials) => login_page(
            &headers,
            StatusCode::OK,
            &next,
            &email,
            Some("Wrong email or password."),
            None,
        ),
        Err(SignInError::RateLimited { retry_after_secs }) => {
            let message = format!(
                "Too many sign-in attempts. Try again in {}.",
                wait_text(retry_after_secs)
            );
            let mut response = login_page(
                &headers,
                StatusCode::TOO_MANY_REQUESTS,
                &next,
                &email,
                Some(&message),
                None,
            )?;
            if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
            Ok(response)
        }
        Err(SignInError::Internal) => login_page(
            &headers,
            StatusCode::INTERNAL_SERVER_ERROR,
            &next,
            &email,
            Some("Signing in failed on the server; see its log."),
            None,
        ),
    }
}

/// A wait as people say it: "14 minutes", "1 minute", "40 seconds" (rounded up).
fn wait_text(secs: u64) -> String {
    match secs {
        0..=1 => "1 second".to_owned(),
        2..=59 => format!("{secs} seconds"),
        60 => "1 minute".to_owned(),
        _ => format!("{} minutes", secs.div_ceil(60)),
    }
}

/// `POST /logout`: ends the session.
pub(crate) async fn logout(
    State(state): State<AppState>,
    // Signed in only: a stray POST without a session goes to the sign-in page.
    _session: Session,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let cookie = auth::sign_out(&state, &headers).await;
    let mut response = Redirect::to("/login?notice=signed_out").into_response();
    response.headers_mut().append(SET_COOKIE, cookie);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::wait_text;

    #[test]
    fn waits_read_as_people_say_them() {
        assert_eq!(wait_text(1), "1 second");
        assert_eq!(wait_text(40), "40 seconds");
        assert_eq!(wait_text(60), "1 minute");
        assert_eq!(wait_text(61), "2 minutes");
        assert_eq!(wait_text(900), "15 minutes");
    }
}
