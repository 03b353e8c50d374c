//! Observability at the HTTP edge: `GET /metrics` (Prometheus text format, no auth) and one
//! log event per request, inside a span that also holds whatever the handler logs.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tracing::{info, info_span, Instrument};

use crate::{ApiError, AppState};

/// The Prometheus text format, version 0.0.4.
const TEXT_FORMAT: &str = hookflow_engine::metrics::CONTENT_TYPE;

/// `GET /metrics` alone, for a listener of its own (`--metrics-listen`).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(state)
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let text = state.engine.render_metrics().await?;
    Ok(([(CONTENT_TYPE, TEXT_FORMAT)], text).into_response())
}

/// The log target of request events: `--log info,hookflow::access=off` turns them off.
const ACCESS: &str = "hookflow::access";

/// One event per request: method, route (the pattern, e.g. `/api/v1/queue/{id}`, so no id or
/// query string reaches the log), status and duration.
pub(crate) async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    // A clone of the route is a reference count, not a copy.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let span = info_span!(
        target: ACCESS,
        "request",
        method = %request.method(),
        route = route.as_ref().map_or("unmatched", |r| r.as_str()),
    );
    async move {
        let response = next.run(request).await;
        let status = response.status().as_u16();
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        info!(target: ACCESS, status, duration_ms, "request");
        response
    }
    .instrument(span)
    .await
}
