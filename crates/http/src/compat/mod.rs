//! Platform-compatible APIs: the subscription APIs of the platforms hookflow replaces, so their
//! integrators' clients work unchanged against hookflow.
//!
//! - `skladon`: Skladon's v21 `/webhooks` API under `/compat/skladon/v21`.
//! - `frontsystems`: Front Systems' webhook API under `/compat/frontsystems/api`.
//!
//! Each is a thin adapter: it translates the platform's request into the same [`Engine`] calls
//! `/api/v1` makes (a platform webhook *is* a hookflow trigger with one Call Webhook action, so
//! edits on either side show on the other) and the answer back into the platform's shape,
//! errors included. Callers authenticate with their shop's API key ([`authenticate`]).
//!
//! [`Engine`]: hookflow_engine::Engine

mod frontsystems;
mod skladon;

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::Router;
use hookflow_engine::model::{self as domain, Action, CallWebhook, Shop, Trigger};
use hookflow_engine::EngineError;

use crate::auth::Identity;
use crate::AppState;

/// Every compat API, each under its platform's prefix.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .nest("/compat/skladon/v21", skladon::router())
        .nest("/compat/frontsystems/api", frontsystems::router())
}

/// Why a compat request was refused before it reached the engine.
#[derive(Debug)]
pub(crate) enum AuthFailure {
    /// No `x-api-key` header (401).
    MissingKey,
    /// The key belongs to no shop (401).
    UnknownKey,
    /// An `authorization` header that is no hookflow token, nor a live login token of the
    /// platform (401).
    BadToken,
    /// A hookflow token that may not act for the key's shop, or only read (403).
    Forbidden(String),
    /// The lookup failed (500).
    Engine(EngineError),
}

impl AuthFailure {
    pub(crate) fn message(&self) -> String {
        match self {
            AuthFailure::MissingKey => "missing x-api-key header: send the shop's API key".into(),
            AuthFailure::UnknownKey => "invalid x-api-key".into(),
            AuthFailure::BadToken => {
                "invalid authorization: send a hookflow API token as \"Bearer <token>\"".into()
            }
            AuthFailure::Forbidden(message) => message.clone(),
            AuthFailure::Engine(_) => "internal error; see the server log".into(),
        }
    }

    /// The HTTP status the platforms answer with.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            AuthFailure::Forbidden(_) => StatusCode::FORBIDDEN,
            AuthFailure::Engine(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

/// What a compat request presents: its `x-api-key`, the caller `auth::identify` resolved from
/// its `authorization` header (if any), and whether it changes things.
pub(crate) struct Credentials {
    api_key: Option<String>,
    identity: Option<Identity>,
    /// The bearer token as sent, when it is no hookflow token: perhaps a platform login's.
    other_token: Option<String>,
    write: bool,
}

impl FromRequestParts<AppState> for Credentials {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Infallible> {
        Ok(Credentials {
            api_key: parts
                .headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty()),
            // Only a bearer token counts: the platforms' clients hold no UI session.
            identity: parts
                .extensions
                .get::<Identity>()
                .filter(|i| !matches!(i, Identity::Session { .. }))
                .cloned(),
            other_token: parts
                .headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(|t| t.trim().to_owned())
                .filter(|_| matches!(parts.extensions.get::<Identity>(), Some(Identity::BadToken))),
            write: !matches!(parts.method, Method::GET | Method::HEAD),
        })
    }
}

/// The shop whose API key the request's `x-api-key` is.
pub(crate) async fn shop_of_key(
    state: &AppState,
    credentials: &Credentials,
) -> Result<Shop, AuthFailure> {
    let key = credentials
        .api_key
        .as_deref()
        .ok_or(AuthFailure::MissingKey)?;
    state
        .engine
        .shop_for_api_key(key)
        .await
        .map_err(AuthFailure::Engine)?
        .ok_or(AuthFailure::UnknownKey)
}

/// The one place compat requests are authenticated. `x-api-key` is the shop's API key and says
/// which shop the request acts for. The platforms' clients also send `authorization`; when
/// they do, it must be a hookflow API token (the admin token or a user's) that may act for that
/// shop, and may write when the request writes — or, on a platform with a login
/// (`login_audience`), a token that login issued for that very shop.
pub(crate) async fn authenticate(
    state: &AppState,
    credentials: &Credentials,
) -> Result<Shop, AuthFailure> {
    authenticate_with_login(state, credentials, None).await
}

/// [`authenticate`] on a platform whose login issues tokens for `login_audience`.
pub(crate) async fn authenticate_with_login(
    state: &AppState,
    credentials: &Credentials,
    login_audience: Option<&str>,
) -> Result<Shop, AuthFailure> {
    let shop = shop_of_key(state, credentials).await?;
    let login = match (&credentials.other_token, login_audience) {
        (Some(token), Some(audience)) => state
            .engine
            .principal_for_login_token(token, audience)
            .await
            .map_err(AuthFailure::Engine)?,
        _ => None,
    };
    if let Some((_, token_shop)) = &login {
        if *token_shop != shop.id {
            return Err(AuthFailure::Forbidden(format!(
                "this token was issued for shop {token_shop}, not for shop {} (the x-api-key's)",
                shop.id
            )));
        }
    }
    let identity = match login {
        Some((principal, _)) => Some(Identity::Bearer(principal)),
        None => credentials.identity.clone(),
    };
    match &identity {
        None => {}
        Some(Identity::Bearer(principal)) => {
            if !principal.sees_shop(shop.id) {
                return Err(AuthFailure::Forbidden(format!(
                    "this token may not act for shop {}",
                    shop.id
                )));
            }
            if credentials.write && !principal.can_write() {
                return Err(AuthFailure::Forbidden(format!(
                    "the {} role is read-only",
                    principal.role
                )));
            }
        }
        Some(_) => return Err(AuthFailure::BadToken),
    }
    Ok(shop)
}

/// A trigger a platform API shows as one of the shop's webhooks: in the shop, of a type of the
/// platform's catalog, with exactly one action. Returns that action.
pub(crate) fn as_webhook<'a>(
    trigger: &'a Trigger,
    shop: &Shop,
    catalog: &hookflow_templating::Catalog,
    platform: &str,
) -> Option<&'a CallWebhook> {
    if trigger.draft.shop_id != Some(shop.id) || trigger.draft.actions.len() != 1 {
        return None;
    }
    if catalog.get(&trigger.draft.event_type)?.catalog != platform {
        return None;
    }
    let Action::CallWebhook(call) = &trigger.draft.actions[0];
    Some(call)
}

/// A Call Webhook action to `url` with the API's defaults.
pub(crate) fn webhook_action(url: &str, method: domain::Method) -> Action {
    Action::CallWebhook(CallWebhook {
        method,
        ..CallWebhook::to(url)
    })
}

/// A trigger name for a platform webhook, within the 200 characters triggers allow. The name
/// is shown to everyone and in notices, so the URL in it goes without its credentials.
pub(crate) fn webhook_name(platform: &str, event_type: &str, url: &str) -> String {
    let url = hookflow_engine::redact::url(url);
    let name = format!("{platform} {event_type} → {url}");
    name.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_name_shows_its_url_without_credentials() {
        assert_eq!(
            webhook_name("Skladon", "OrderChanged", "https://erp.example/h?apikey=K1"),
            "Skladon OrderChanged → https://erp.example/h?apikey=***"
        );
    }
}
