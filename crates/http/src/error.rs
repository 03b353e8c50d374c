//! API errors: `{"error": {"code": "...", "message": "..."}}` with a fitting status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hookflow_engine::EngineError;
use serde_json::json;
use tracing::error;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 Bad Request: the body is not JSON, or not the expected shape.
    #[error("{0}")]
    BadRequest(String),
    /// 401 Unauthorized: missing or wrong bearer token.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// 404 Not Found.
    #[error("{0}")]
    NotFound(String),
    /// Whatever the engine refused; the status depends on the variant.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Engine(e) => match e {
                EngineError::Invalid { .. } => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
                }
                EngineError::UnknownEventType { .. } => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "unknown_event_type")
                }
                EngineError::UnknownShop(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_shop"),
                EngineError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                EngineError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
                EngineError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
                EngineError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            },
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
        } else {
            self.to_string()
        };
        (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response()
    }
}
