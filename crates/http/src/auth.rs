//! Who is asking, and may they: bearer tokens, sign-in sessions, CSRF, login rate limits.
//!
//! One middleware ([`identify`]) runs on every request. It resolves the caller once — the
//! `--admin-token`, a user's API token, or the `hookflow_session` cookie of the web UI — and
//! enforces CSRF on cookie-authenticated writes, so no form or script can forget it. Handlers
//! then take [`Auth`] (the API: 401 without a caller) or [`Session`] (the UI: a redirect to the
//! sign-in page), and check roles and shops with the engine's [`Principal`].
//!
//! CSRF: a write (POST, PUT, PATCH, DELETE) that carries the session cookie must carry the
//! session's token in the `x-csrf-token` header or in a urlencoded form field `_csrf`. The
//! sign-in form has no session yet, so it uses a double-submit cookie (`hookflow_login_csrf`).
//! Bearer-token calls carry no ambient credentials and need no CSRF token.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};
use hookflow_engine::accounts::{random_secret, Principal};
use hookflow_engine::model::{ShopId, Timestamp};
use tracing::warn;

use crate::client::{client_address, TrustedProxies};
use crate::error::ApiError;
use crate::sign_in_limits::SignInLimits;
use crate::AppState;

/// The UI's session cookie.
pub const SESSION_COOKIE: &str = "hookflow_session";
/// The sign-in form's double-submit CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "hookflow_login_csrf";
/// The header scripts send the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field forms send the CSRF token in.
pub const CSRF_FIELD: &str = "_csrf";

/// How long an API token's owner is remembered: a revocation on another node takes effect
/// within this time (on this node at once), and a busy token costs no query per request.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
/// Largest form body searched for a CSRF field.
const FORM_LIMIT: usize = 2 * 1024 * 1024;

/// The caller of a request, as [`identify`] found it.
#[derive(Debug, Clone)]
pub(crate) enum Identity {
    /// A bearer token: the `--admin-token` or a user's API token.
    Bearer(Principal),
    /// The UI's session cookie, with the session's CSRF token.
    Session { principal: Principal, csrf: String },
    /// A bearer token that matches nothing.
    BadToken,
}

/// Shared state of authentication: the sign-in limits, the proxies whose forwarded headers
/// name the client, and the token cache.
#[derive(Default)]
pub struct AuthState {
    pub(crate) sign_ins: SignInLimits,
    trusted_proxies: TrustedProxies,
    /// A token's principal (`None`: unknown), when it was looked up, and when it expires.
    tokens: Mutex<HashMap<String, CachedToken>>,
}

type CachedToken = (Option<Principal>, Instant, Option<Timestamp>);

impl AuthState {
    /// Authentication believing the forwarded headers of `trusted_proxies`.
    pub fn new(trusted_proxies: TrustedProxies) -> AuthState {
        AuthState {
            trusted_proxies,
            ..AuthState::default()
        }
    }

    /// The client of a request from `peer` (see [`client_address`]).
    pub(crate) fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        client_address(peer, headers, &self.trusted_proxies)
    }

    /// Forgets cached tokens (after a revocation or a user change on this node).
    pub(crate) fn forget_tokens(&self) {
        self.tokens
            .lock()
            .expect("token cache lock is never poisoned: no panics while held")
            .clear();
    }
}

/// Resolves the caller of every request and refuses cookie-authenticated writes without the
/// CSRF token (403).
pub(crate) async fn identify(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let identity = match resolve(&state, request.headers()).await {
        Ok(identity) => identity,
        Err(err) => return err.into_response(),
    };
    let unsafe_method = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if unsafe_method {
        let expected = match &identity {
            Some(Identity::Session { csrf, .. }) => Some(csrf.clone()),
            // The sign-in form: no session yet, the double-submit cookie instead.
            None if request.uri().path() == "/login" => {
                Some(cookie_value(request.headers(), LOGIN_CSRF_COOKIE).unwrap_or_default())
            }
            _ => None,
        };
        if let Some(expected) = expected {
            let (checked, presented) = match csrf_presented(request).await {
                Ok(found) => found,
                Err(response) => return response,
            };
            request = checked;
            let valid = !expected.is_empty()
                && presented
                    .as_deref()
                    .is_some_and(|p| constant_time_eq(p.as_bytes(), expected.as_bytes()));
            if !valid {
                return csrf_refused(&request);
            }
        }
    }
    if let Some(Identity::Session { principal, .. }) = &identity {
        if principal.must_change_password {
            if let Some(refused) = password_change_first(&request) {
                return refused;
            }
        }
    }
    if let Some(identity) = identity {
        request.extensions_mut().insert(identity);
    }
    next.run(request).await
}

/// Where a user whose password hookflow generated may go before choosing their own: the
/// password form (and its API route), signing out, and who they are. Pages elsewhere send them to the form; the
/// API (with the session cookie) answers 403.
const BEFORE_PASSWORD_CHANGE: [&str; 3] = [ACCOUNT_PASSWORD_PATH, "/logout", "/api/v1/me"];

/// The UI page where users change their own password.
pub(crate) const ACCOUNT_PASSWORD_PATH: &str = "/account/password";

fn password_change_first(request: &Request) -> Option<Response> {
    let path = request.uri().path();
    let own_password_api = path.starts_with("/api/v1/users/") && path.ends_with("/password");
    if BEFORE_PASSWORD_CHANGE.contains(&path) || own_password_api {
        return None;
    }
    if path.starts_with("/api/") {
        return Some(
            ApiError::Forbidden(
                "choose your own password first: the one you signed in with was generated \
                 (PUT /api/v1/users/{id}/password, or the web UI)"
                    .into(),
            )
            .into_response(),
        );
    }
    Some((StatusCode::SEE_OTHER, [(LOCATION, ACCOUNT_PASSWORD_PATH)]).into_response())
}

async fn resolve(state: &AppState, headers: &HeaderMap) -> Result<Option<Identity>, ApiError> {
    if let Some(token) = bearer(headers) {
        if let Some(admin) = &state.admin_token {
            if constant_time_eq(token.as_bytes(), admin.as_bytes()) {
                return Ok(Some(Identity::Bearer(Principal::system())));
            }
        }
        return Ok(Some(match user_token(state, token).await? {
            Some(principal) => Identity::Bearer(principal),
            None => Identity::BadToken,
        }));
    }
    if let Some(token) = cookie_value(headers, SESSION_COOKIE) {
        if let Some((principal, csrf)) = state.engine.session(&token).await? {
            return Ok(Some(Identity::Session { principal, csrf }));
        }
    }
    Ok(None)
}

async fn user_token(state: &AppState, token: &str) -> Result<Option<Principal>, ApiError> {
    let cached = state
        .auth
        .tokens
        .lock()
        .expect("token cache lock is never poisoned: no panics while held")
        .get(token)
        .filter(|(_, at, _)| at.elapsed() < TOKEN_CACHE_TTL)
        // An expiring token is refused from the moment it expires, cached or not.
        .map(|(p, _, expires)| {
            p.clone()
                .filter(|_| expires.is_none_or(|e| Timestamp::now() < e))
        });
    if let Some(principal) = cached {
        return Ok(principal);
    }
    let found = state.engine.principal_for_token(token).await?;
    let expires = found.as_ref().and_then(|(_, e)| *e);
    let principal = found.map(|(p, _)| p);
    let mut cache = state
        .auth
        .tokens
        .lock()
        .expect("token cache lock is never poisoned: no panics while held");
    if cache.len() > 10_000 {
        cache.clear();
    }
    cache.insert(
        token.to_owned(),
        (principal.clone(), Instant::now(), expires),
    );
    Ok(principal)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The value of a request cookie.
pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// The CSRF token a write presents: the header, or the `_csrf` field of a urlencoded form
/// (the body is read and put back).
async fn csrf_presented(request: Request) -> Result<(Request, Option<String>), Response> {
    if let Some(value) = request.headers().get(CSRF_HEADER) {
        let value = value.to_str().ok().map(str::to_owned);
        return Ok((request, value));
    }
    let is_form = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((request, None));
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| {
        ApiError::BadRequest(format!("form bodies are limited to {FORM_LIMIT} bytes"))
            .into_response()
    })?;
    let token = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned());
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

fn csrf_refused(request: &Request) -> Response {
    warn!(path = %request.uri().path(), "write refused: CSRF token missing or wrong");
    let message = "CSRF token missing or wrong: reload the page and try again";
    if request.uri().path().starts_with("/api/") {
        ApiError::Forbidden(message.into()).into_response()
    } else {
        (
            StatusCode::FORBIDDEN,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            message,
        )
            .into_response()
    }
}

/// Compares secrets without leaking, through timing, how much of a guess was right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------------------------
// Extractors
// ---------------------------------------------------------------------------------------------

/// The caller of an API request: a bearer token or the UI's session. 401 otherwise.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        match parts.extensions.get::<Identity>() {
            Some(Identity::Bearer(p)) | Some(Identity::Session { principal: p, .. }) => {
                Ok(Auth(p.clone()))
            }
            Some(Identity::BadToken) | None => Err(ApiError::Unauthorized),
        }
    }
}

impl Auth {
    /// 403 unless the caller may change things.
    pub fn require_write(&self) -> Result<&Principal, ApiError> {
        if self.0.can_write() {
            Ok(&self.0)
        } else {
            Err(ApiError::Forbidden(format!(
                "the {} role is read-only",
                self.0.role
            )))
        }
    }

    /// 403 unless the caller is an admin.
    pub fn require_admin(&self) -> Result<&Principal, ApiError> {
        if self.0.is_admin() {
            Ok(&self.0)
        } else {
            Err(ApiError::Forbidden("this needs the admin role".into()))
        }
    }

    /// Whether the caller sees what belongs to `shop`; things of no shop (triggers for every
    /// shop) only callers who see every shop.
    pub fn sees(&self, shop: Option<ShopId>) -> bool {
        match shop {
            Some(shop) => self.0.sees_shop(shop),
            None => self.0.shop_scope().is_none(),
        }
    }

    /// 404 (as if it did not exist) unless the caller sees `shop`.
    pub fn require_shop(
        &self,
        shop: ShopId,
        what: impl FnOnce() -> String,
    ) -> Result<(), ApiError> {
        if self.0.sees_shop(shop) {
            Ok(())
        } else {
            Err(ApiError::NotFound(what()))
        }
    }
}

/// The signed-in user of a UI page. Without a session: a redirect to the sign-in page that
/// comes back here.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub csrf: String,
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Response> {
        match parts.extensions.get::<Identity>() {
            Some(Identity::Session { principal, csrf }) => Ok(Session {
                principal: principal.clone(),
                csrf: csrf.clone(),
            }),
            _ => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned();
                let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
                Err((
                    StatusCode::SEE_OTHER,
                    [(LOCATION, format!("/login?next={next}"))],
                )
                    .into_response())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Signing in and out
// ---------------------------------------------------------------------------------------------

/// Why a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("wrong email or password")]
    WrongCredentials,
    #[error("too many failed sign-ins; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("sign-in failed; see the server log")]
    Internal,
}

/// Checks the password, limits failures per account and per client address (see
/// `sign_in_limits`), and starts a session; returns the `Set-Cookie` header value. `peer` is
/// the TCP peer; behind a trusted proxy the client is the one it forwards.
pub async fn sign_in(
    state: &AppState,
    headers: &HeaderMap,
    email: &str,
    password: &str,
    peer: IpAddr,
) -> Result<HeaderValue, SignInError> {
    let client = state.auth.client(peer, headers);
    if let Err(locked) = state.auth.sign_ins.check(email, client) {
        warn!(%client, "sign-in refused: too many failures");
        return Err(SignInError::RateLimited {
            retry_after_secs: locked.retry_after_secs(),
        });
    }
    let user = state
        .engine
        .check_credentials(email, password)
        .await
        .map_err(internal)?;
    let Some(user) = user else {
        state.auth.sign_ins.failed(email, client);
        warn!(%client, "sign-in failed");
        return Err(SignInError::WrongCredentials);
    };
    state.auth.sign_ins.succeeded(email);
    let cookie = start_session(state, headers, user.id)
        .await
        .map_err(internal)?;
    tracing::info!(user = %user.id, "signed in");
    Ok(cookie)
}

/// Starts a session for a user whose identity was just proven (a sign-in, or a password change
/// that ended their other sessions); returns the `Set-Cookie` header value.
pub(crate) async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    user: hookflow_engine::model::UserId,
) -> Result<HeaderValue, hookflow_engine::EngineError> {
    let (token, _csrf) = state.engine.create_session(user).await?;
    let cookie = Cookie::build((SESSION_COOKIE, token))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(is_tls(headers))
        .build();
    Ok(header_value(&cookie))
}

fn internal(err: hookflow_engine::EngineError) -> SignInError {
    tracing::error!(error = %err, "sign-in failed");
    SignInError::Internal
}

/// Ends the session of the request's cookie; returns the `Set-Cookie` that clears it.
pub async fn sign_out(state: &AppState, headers: &HeaderMap) -> HeaderValue {
    if let Some(token) = cookie_value(headers, SESSION_COOKIE) {
        if let Err(err) = state.engine.end_session(&token).await {
            tracing::error!(error = %err, "could not end a session");
        }
    }
    let cookie = Cookie::build((SESSION_COOKIE, ""))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(is_tls(headers))
        .max_age(cookie::time::Duration::ZERO)
        .build();
    header_value(&cookie)
}

/// The token for the sign-in form's hidden `_csrf` field, and a `Set-Cookie` when it is new.
pub fn login_csrf(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    if let Some(token) = cookie_value(headers, LOGIN_CSRF_COOKIE).filter(|t| t.len() >= 32) {
        return (token, None);
    }
    let token = random_secret();
    let cookie = Cookie::build((LOGIN_CSRF_COOKIE, token.clone()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/login")
        .secure(is_tls(headers))
        .build();
    (token, Some(header_value(&cookie)))
}

/// Whether the browser reached us over TLS (directly, or through a proxy that says so).
fn is_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn header_value(cookie: &Cookie<'_>) -> HeaderValue {
    HeaderValue::from_str(&cookie.to_string())
        .expect("cookies built from base64url tokens are valid header values")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; hookflow_session=xyz; b=2"),
        );
        assert_eq!(
            cookie_value(&headers, SESSION_COOKIE).as_deref(),
            Some("xyz")
        );
        assert_eq!(cookie_value(&headers, LOGIN_CSRF_COOKIE), None);
    }
}
