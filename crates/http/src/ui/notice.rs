//! The green confirmation a page shows after a change ("Saved.", "Alert acknowledged."), and
//! why it can be trusted: it never comes from free text in a link.
//!
//! Two sources, both checked by [`notices`], a middleware on every page, before any handler
//! reads the `notice` query parameter:
//! - a **flash cookie** set by [`redirect_with_notice`] on a form post's redirect: the message
//!   with an HMAC keyed by the session's CSRF token, so only this server, for this session, can
//!   have written it; shown once by the next page and then cleared;
//! - a **notice code** in the query string (`?notice=saved`), for pages reached by script
//!   after an API call (the trigger editor): one of [`CODES`], shown as its fixed message.
//!
//! Anything else in `?notice=` is dropped, so `/queue?notice=anything` shows no banner.

use axum::extract::Request;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::{constant_time_eq, Identity};

/// The flash cookie.
const FLASH_COOKIE: &str = "hookflow_flash";
/// A flash not shown within this time is forgotten (it belongs to the next page load).
const FLASH_MAX_AGE_SECS: i64 = 120;

/// The notices a link may ask for, by code.
pub(crate) const CODES: &[(&str, &str)] = &[
    ("saved", "Saved."),
    ("signed_out", "Signed out."),
    // After a password change the session is a new one, which a flash of the old cannot reach.
    ("password_changed", "Password changed."),
    (
        "secret_revealed",
        "Secret shown; copy it into the receiver's settings.",
    ),
];

/// The message of a notice code.
pub(crate) fn for_code(code: &str) -> Option<&'static str> {
    CODES.iter().find(|(c, _)| *c == code).map(|(_, m)| *m)
}

/// The notice a page shows, as [`notices`] decided it (handlers take this, never the raw
/// query).
pub(crate) struct Notice(pub(crate) Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Notice {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Notice(parts.uri.query().and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "notice")
                .map(|(_, v)| v.into_owned())
        })))
    }
}

/// A message for the next page, carried from a handler to [`notices`] (which signs it into
/// the flash cookie).
#[derive(Clone)]
struct Flash(String);

/// Back to a page after a form post, with a message for its notice banner (a flash cookie).
pub(crate) fn redirect_with_notice(to: &str, notice: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    response.extensions_mut().insert(Flash(notice.to_owned()));
    response
}

fn mac(key: &str, message: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(message.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The cookie's value: `<hex mac>.<form-encoded message>` (only cookie-safe characters).
fn seal(key: &str, message: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(message.as_bytes()).collect();
    format!("{}.{encoded}", mac(key, message))
}

fn open(key: &str, value: &str) -> Option<String> {
    let (tag, encoded) = value.split_once('.')?;
    let message: String = form_urlencoded::parse(format!("m={encoded}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    constant_time_eq(tag.as_bytes(), mac(key, &message).as_bytes()).then_some(message)
}

fn flash_from(headers: &HeaderMap, key: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|c| Cookie::parse(c.trim().to_owned()).ok())
        .find(|c| c.name() == FLASH_COOKIE)
        .and_then(|c| open(key, c.value()))
}

fn flash_cookie(value: String, max_age: i64) -> Option<HeaderValue> {
    let cookie = Cookie::build((FLASH_COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

/// The request's URI with `notice` replaced by the notice to show (or removed).
fn with_notice(uri: &Uri, notice: Option<&str>) -> Option<Uri> {
    let query = uri.query().unwrap_or_default();
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k != "notice" {
            out.append_pair(&k, &v);
        }
    }
    if let Some(notice) = notice {
        out.append_pair("notice", notice);
    }
    let query = out.finish();
    let path_and_query = if query.is_empty() {
        uri.path().to_owned()
    } else {
        format!("{}?{query}", uri.path())
    };
    path_and_query.parse().ok()
}

/// Decides each page's notice before its handler runs (the flash, else a known code, else
/// none), and turns a handler's [`Flash`] into the signed cookie.
pub(crate) async fn notices(mut request: Request, next: Next) -> Response {
    let key = match request.extensions().get::<Identity>() {
        Some(Identity::Session { csrf, .. }) => Some(csrf.clone()),
        _ => None,
    };
    let flash = key
        .as_deref()
        .and_then(|key| flash_from(request.headers(), key));
    let asked = request.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "notice")
            .map(|(_, v)| v.into_owned())
    });
    let notice = flash
        .clone()
        .or_else(|| asked.as_deref().and_then(for_code).map(str::to_owned));
    if asked.is_some() || notice.is_some() {
        if let Some(uri) = with_notice(request.uri(), notice.as_deref()) {
            *request.uri_mut() = uri;
        }
    }
    let shows_page = request.method() == Method::GET;
    let mut response = next.run(request).await;
    let set = match (response.extensions_mut().remove::<Flash>(), key) {
        (Some(Flash(message)), Some(key)) => flash_cookie(seal(&key, &message), FLASH_MAX_AGE_SECS),
        // Shown: forget it.
        _ if flash.is_some() && shows_page => flash_cookie(String::new(), 0),
        _ => None,
    };
    if let Some(cookie) = set {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flash_opens_only_with_the_key_it_was_sealed_with() {
        let sealed = seal("csrf-a", "Trigger “Orders; ERP” saved.");
        assert_eq!(
            open("csrf-a", &sealed).as_deref(),
            Some("Trigger “Orders; ERP” saved.")
        );
        assert_eq!(open("csrf-b", &sealed), None);
        let forged = format!("{}.{}", "0".repeat(64), "anything");
        assert_eq!(open("csrf-a", &forged), None);
        assert!(!sealed.contains(';') && !sealed.contains(' '));
    }

    #[test]
    fn only_known_codes_become_notices() {
        assert_eq!(for_code("saved"), Some("Saved."));
        assert_eq!(for_code("anything"), None);
        let uri: Uri = "/queue?status=failed&notice=anything".parse().unwrap();
        assert_eq!(
            with_notice(&uri, None).unwrap().to_string(),
            "/queue?status=failed"
        );
        assert_eq!(
            with_notice(&uri, Some("Saved.")).unwrap().to_string(),
            "/queue?status=failed&notice=Saved."
        );
    }
}
