//! The HTTP face of hookflow: the REST API under `/api/v1` (axum).
//!
//! # Layout
//! - [`auth`]: who is asking (tokens, sessions), CSRF, signing in and out.
//! - [`client`]: the client address of a request (the peer, or what a trusted proxy forwards).
//! - `sign_in_limits`: failed sign-ins counted per account and per client address.
//! - [`rate`]: per-caller rate limits on costly requests (template previews).
//! - `error`: [`ApiError`], the one place engine errors become status codes.
//! - `json`: request-body parsing with messages that say what and where; integers as JSON
//!   Schema reads them (`6.0`).
//! - `params`: integers in paths and query strings, read the same way.
//! - `v1`: one module per resource, each with its handlers and a `router()`.
//! - [`metrics`]: `GET /metrics` and the per-request log event.
//! - [`openapi`]: the OpenAPI document, served at `/api/v1/openapi.json`.
//! - `reference`: the API reference page at `/docs`, rendered from the OpenAPI document.
//! - `ui`: the web UI, server-rendered pages from `templates/ui/` with `web/` as `/static/`.
//! - `compat`: the platforms' own subscription APIs (`/compat/skladon/v21`,
//!   `/compat/frontsystems/api`), thin adapters over the same engine calls.
//! - `security_headers`: the Content-Security-Policy and the other hardening headers, on
//!   every answer.
//!
//! Handlers translate HTTP to [`Engine`] calls and back; they hold no logic of their own.

pub mod auth;
pub mod client;
mod compat;
mod error;
mod json;
pub mod metrics;
pub mod openapi;
mod params;
pub mod rate;
mod reference;
mod security_headers;
mod sign_in_limits;
mod ui;
mod v1;

use std::future::Future;
use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hookflow_engine::Engine;
use tokio::net::TcpListener;

pub use error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// A bearer token with full rights (`--admin-token`), beside users' own API tokens.
    pub admin_token: Option<Arc<str>>,
    /// The sign-in limits, the trusted proxies and the API token cache.
    pub auth: Arc<auth::AuthState>,
    /// Template previews per caller (see [`rate::RateLimiter::previews`]).
    pub previews: Arc<rate::RateLimiter>,
    /// Whether this router serves `GET /metrics` (not when metrics have a listener of their
    /// own, so the API port does not show them).
    pub metrics: bool,
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    // The routes and their OpenAPI description come from one definition (`openapi`).
    let (api, _) = v1::router().split_for_parts();
    let api = api
        .layer(middleware::from_fn(require_caller))
        .layer(middleware::from_fn(json_rejections));
    let mut router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        // Outside the token check: the document and its page describe the API, they hold no
        // data, and client generators fetch them without credentials.
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .route(DOCS_ROUTE, get(openapi::docs_page))
        .nest("/api/v1", api)
        .merge(ui::router())
        // Not behind the admin token: the platforms' clients authenticate with their shop's
        // API key (see `compat::authenticate`).
        .merge(compat::router());
    if state.metrics {
        // No token: scrapers rarely carry one, and the numbers hold no entity data.
        router = router.route("/metrics", get(metrics::metrics));
    }
    router
        .fallback(|| async {
            ApiError::NotFound("no such route; the API lives under /api/v1".into())
        })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::identify,
        ))
        .merge(ui::static_router())
        .layer(middleware::from_fn(metrics::log_request))
        .layer(middleware::from_fn(security_headers::security_headers))
        .with_state(state)
}

/// Every route of the web UI as registered (`/triggers/{id}`), its static files
/// (`/static/{file}`) and `/docs`: a test visits each and checks its `security_headers`.
pub fn page_routes() -> Vec<&'static str> {
    let mut routes = ui::route_paths();
    routes.extend([ui::STATIC_ROUTE, DOCS_ROUTE]);
    routes
}

/// The API reference page (`reference`).
const DOCS_ROUTE: &str = "/docs";

/// Serves until `shutdown` completes; requests in progress finish first.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Every `/api/v1` route needs a caller (handlers then check roles and shops); only the API
/// description is public. Safe by default: a new route cannot be open by accident.
async fn require_caller(request: Request, next: Next) -> Result<Response, ApiError> {
    let public = request.uri().path() == "/api/v1/openapi.json";
    let known = matches!(
        request.extensions().get::<auth::Identity>(),
        Some(auth::Identity::Bearer(_) | auth::Identity::Session { .. })
    );
    if !(public || known) {
        return Err(ApiError::Unauthorized);
    }
    Ok(next.run(request).await)
}

/// axum's own rejections (a path segment that is not a number, a wrong method, an unknown
/// query parameter) are plain text; the API answers every error in its JSON shape.
async fn json_rejections(request: Request, next: Next) -> Response {
    let (status, message) = match plain_error(next.run(request).await).await {
        Ok(plain) => plain,
        Err(response) => return response,
    };
    let code = match status {
        axum::http::StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = if message.is_empty() {
        status.to_string()
    } else {
        message
    };
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// An error answer that is not JSON (axum's own rejections are plain text), as its status and
/// trimmed text, for a face (the API, a compat API) to answer in its own error shape. Answers
/// that are not errors, or are JSON already (`application/json`, `application/problem+json`),
/// come back untouched as `Err`.
pub(crate) async fn plain_error(
    response: Response,
) -> Result<(axum::http::StatusCode, String), Response> {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/json") || v.starts_with("application/problem+json")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return Err(response);
    }
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    Ok((status, String::from_utf8_lossy(&text).trim().to_owned()))
}
