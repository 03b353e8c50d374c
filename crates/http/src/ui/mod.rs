//! The web UI: server-rendered pages for shop admins and operators, served by `hookflow serve`
//! itself.
//!
//! # Layout
//! - [`render`]: the template environment (templates and static files embedded in the binary).
//! - `login`: sign-in and sign-out.
//! - `dashboard`: calls per minute, queue depth, oldest pending call, failing actions.
//! - `triggers`: the trigger list with enable/disable, and the editor (which drives the JSON
//!   API from `web/editor.js`).
//! - `queue`: the Webhook Queue page and a call's detail (what went out, byte for byte),
//!   retry, cancel and bulk resend.
//! - `events`: the Events page: received events, which triggers each fired and why the
//!   others did not, its calls, and resending it.
//! - `plain`: delivery errors in plain words, statuses with their reason, `curl` commands.
//! - `alerts`: open and acknowledged alerts, and reactivating a deactivated action.
//! - [`notice`]: the confirmation banner (a signed flash cookie or a fixed code, never free
//!   text from a link).
//! - `admin`: users, shops (catalog, API key) and API tokens.
//! - `account`: the signed-in user's own account and password (a generated one must be
//!   changed first).
//! - `event_types`: every catalog's event types, and custom ones to add, change and delete.
//!
//! Every page reads through the [`Engine`](hookflow_engine::Engine) with the signed-in
//! user's role and shops, as the API does: a shop owner admin never sees another shop's
//! triggers or calls (they are a 404, as over the API). Every page works for reading without
//! JavaScript; changes are plain form posts carrying the session's CSRF token (checked here and
//! by the central CSRF middleware), except the trigger editor, whose script calls the API
//! with the token in `x-csrf-token`.

mod account;
mod admin;
mod alerts;
mod dashboard;
mod event_types;
mod events;
mod login;
pub(crate) mod notice;
mod plain;
mod queue;
pub(crate) mod render;
mod triggers;

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use hookflow_engine::accounts::Principal;
use hookflow_engine::model::ShopId;
use hookflow_engine::EngineError;
use minijinja::context;
use tracing::error;

use crate::AppState;

/// The pages and the forms they post to. None collides with `/api/v1`, `/metrics`,
/// `/healthz`, `/docs` or `/compat`.
pub(crate) fn router() -> Router<AppState> {
    routes()
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        })
        .layer(middleware::from_fn(notice::notices))
        .layer(middleware::from_fn(server_timing))
}

/// The path of every route of [`router`], as registered (`/queue/{id}`).
pub(crate) fn route_paths() -> Vec<&'static str> {
    routes().into_iter().map(|(path, _)| path).collect()
}

/// The routes, as a table: [`router`] registers exactly these and [`route_paths`] names them,
/// so a test that visits every path cannot miss a page.
fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/", get(dashboard::show)),
        ("/login", get(login::form).post(login::submit)),
        ("/logout", post(login::logout)),
        ("/triggers", get(triggers::list)),
        ("/triggers/new", get(triggers::new)),
        ("/triggers/{id}", get(triggers::edit)),
        ("/triggers/{id}/toggle", post(triggers::toggle)),
        (
            "/triggers/{id}/actions/{index}/activate",
            post(triggers::activate_action),
        ),
        ("/queue", get(queue::list)),
        ("/queue/resend", post(queue::bulk_resend)),
        ("/queue/{id}", get(queue::detail)),
        ("/queue/{id}/body", get(queue::body)),
        ("/queue/{id}/retry", post(queue::retry)),
        ("/queue/{id}/cancel", post(queue::cancel)),
        ("/events", get(events::list)),
        ("/events/{id}", get(events::detail)),
        ("/events/{id}/resend", post(events::resend)),
        ("/alerts", get(alerts::list)),
        ("/alerts/{id}/ack", post(alerts::ack)),
        ("/users", get(admin::users).post(admin::create_user)),
        ("/users/{id}", post(admin::update_user)),
        ("/users/{id}/delete", post(admin::delete_user)),
        ("/shops", get(admin::shops).post(admin::create_shop)),
        ("/shops/{id}", post(admin::update_shop)),
        ("/shops/{id}/api-key", post(admin::rotate_api_key)),
        (
            "/event-types",
            get(event_types::list).post(event_types::create),
        ),
        (
            "/event-types/{name}",
            get(event_types::edit).post(event_types::update),
        ),
        ("/event-types/{name}/delete", post(event_types::delete)),
        ("/tokens", get(admin::tokens).post(admin::create_token)),
        ("/tokens/{id}/revoke", post(admin::revoke_token)),
        (
            crate::auth::ACCOUNT_PASSWORD_PATH,
            get(account::show).post(account::change_password),
        ),
    ]
}

/// Where the UI's static files are served.
pub(crate) const STATIC_ROUTE: &str = "/static/{file}";

/// The UI's static files. Merged outside `auth::identify`: they are the same for everyone, so a
/// page's stylesheet and scripts cost no session lookup each.
pub(crate) fn static_router() -> Router<AppState> {
    Router::new().route(STATIC_ROUTE, get(static_file))
}

/// Why a page cannot be shown; rendered as an error page with a fitting status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UiError {
    /// 400: a form or query value that makes no sense.
    #[error("{0}")]
    BadRequest(String),
    /// 403: the user's role does not allow it, or the form's CSRF token is missing or wrong.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing, or not in the user's shops.
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// 500: a template failed to render (a bug).
    #[error("template: {0}")]
    Template(String),
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            UiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            UiError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            UiError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            UiError::Engine(e) => match e {
                EngineError::Invalid { .. }
                | EngineError::UnknownEventType { .. }
                | EngineError::UnknownShop(_) => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
                EngineError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
                EngineError::NoSuchEventType(_) => (StatusCode::NOT_FOUND, e.to_string()),
                EngineError::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
                EngineError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
                EngineError::Store(_) => {
                    error!(error = %e, "page failed");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal error; see the server log".to_owned(),
                    )
                }
            },
            UiError::Template(_) => {
                error!(error = %self, "page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log".to_owned(),
                )
            }
        };
        let ctx = context! {
            status => status.as_u16(),
            reason => status.canonical_reason(),
            message,
            // The pages' links (the error does not know who is signed in).
            show_nav => true,
        };
        match render::render("error.html", ctx) {
            Ok(html) => render::html_response(status, html),
            Err(_) => (status, message).into_response(),
        }
    }
}

/// A form body (`application/x-www-form-urlencoded`), with repeated fields kept.
pub(crate) struct FormData(Vec<(String, String)>);

impl FormData {
    pub(crate) fn parse(body: &Bytes) -> FormData {
        FormData(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of a field, trimmed; `None` when missing or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A path id that is not a number is a page that does not exist.
pub(crate) fn path_id(Path(id): Path<String>) -> Result<i64, UiError> {
    id.parse()
        .map_err(|_| UiError::NotFound(format!("{id:?} is not an id")))
}

/// Pages that change things need the admin or shop owner admin role.
pub(crate) fn require_write(principal: &Principal) -> Result<(), UiError> {
    if principal.can_write() {
        Ok(())
    } else {
        Err(UiError::Forbidden(
            "your role is read-only (viewer); ask an admin for shop owner admin rights".into(),
        ))
    }
}

pub(crate) fn require_admin(principal: &Principal) -> Result<(), UiError> {
    if principal.is_admin() {
        Ok(())
    } else {
        Err(UiError::Forbidden("this page is for admins".into()))
    }
}

/// Whether a trigger of `shop` (`None` = every shop) is the principal's to see: a trigger for
/// every shop belongs to those who see every shop.
pub(crate) fn sees_trigger_shop(principal: &Principal, shop: Option<ShopId>) -> bool {
    match shop {
        Some(shop) => principal.sees_shop(shop),
        None => principal.shop_scope().is_none(),
    }
}

pub(crate) use notice::redirect_with_notice;

/// A local path to return to (`next=`), never another site.
pub(crate) fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_owned(),
        _ => "/".to_owned(),
    }
}

async fn static_file(Path(file): Path<String>) -> Response {
    let Some((_, content_type, content)) = render::STATIC_FILES
        .iter()
        .find(|(name, _, _)| *name == file)
    else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // The URLs carry the files' digest (`?v=`), so a new build is a new URL.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        *content,
    )
        .into_response()
}

/// `Server-Timing: app;dur=<ms>` on every page: how long the server took, as the browser's
/// developer tools (and the page timing test) see it.
async fn server_timing(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut response = next.run(request).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={ms:.1}")) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}
