//! API errors: `{"error": {"code": "...", "message": "..."}}` with a fitting status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hookflow_engine::EngineError;
use serde_json::json;
use tracing::{error, warn};

/// `Retry-After` on a 503.
const RETRY_AFTER_SECS: &str = "2";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 Bad Request: the body is not JSON, or not the expected shape.
    #[error("{0}")]
    BadRequest(String),
    /// 401 Unauthorized: no bearer token or session, or one that matches nothing.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// 403 Forbidden: the caller's role may not do this (or a write lacked its CSRF token).
    #[error("{0}")]
    Forbidden(String),
    /// 404 Not Found.
    #[error("{0}")]
    NotFound(String),
    /// 429 Too Many Requests: the caller's rate limit; free again after `retry_after` s.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// Whatever the engine refused; the status depends on the variant.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Engine(e) => match e {
                EngineError::Invalid { .. } => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
                }
                EngineError::UnknownEventType { .. } => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "unknown_event_type")
                }
                EngineError::UnknownShop(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_shop"),
                EngineError::NotFound(_) | EngineError::NoSuchEventType(_) => {
                    (StatusCode::NOT_FOUND, "not_found")
                }
                EngineError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
                EngineError::Store(e) if e.unavailable => {
                    (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
                }
                EngineError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
                EngineError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            },
        }
    }
}

impl ApiError {
    /// Where the API helps further: the engine states what is wrong, the API names the route
    /// that lists or makes what was missing.
    fn hint(&self) -> Option<String> {
        match self {
            ApiError::Engine(EngineError::UnknownEventType { catalog, .. }) => {
                Some(match catalog {
                    Some(catalog) => {
                        format!("GET /api/v1/event-types?catalog={catalog} lists its types")
                    }
                    None => "GET /api/v1/event-types lists the known ones".to_owned(),
                })
            }
            ApiError::Engine(EngineError::NoSuchEventType(_)) => {
                Some("GET /api/v1/event-types lists the known ones".to_owned())
            }
            ApiError::Engine(EngineError::UnknownShop(_)) => {
                Some("create it with POST /api/v1/shops".to_owned())
            }
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Storage details are for the log, not for the client.
            error!(error = %self, "request failed");
            "internal error; see the server log".to_owned()
        } else if code == "database_unavailable" {
            warn!(error = %self, "request failed: the database cannot be reached");
            "the database cannot be reached right now; nothing was stored: retry later".to_owned()
        } else {
            match self.hint() {
                Some(hint) => format!("{self}; {hint}"),
                None => self.to_string(),
            }
        };
        // The field a validation error concerns, so a form can show the message beside it.
        let body = match &self {
            ApiError::Engine(EngineError::Invalid { field, .. })
            | ApiError::Engine(EngineError::UnknownEventType { field, .. }) => {
                json!({"error": {"code": code, "message": message, "field": field}})
            }
            _ => json!({"error": {"code": code, "message": message}}),
        };
        let mut response = (status, Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after, .. } = &self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, (*retry_after).into());
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Long enough for a restarting database or a reconnecting pool.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
