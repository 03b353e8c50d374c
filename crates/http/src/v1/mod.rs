//! `/api/v1`: one module per resource.

pub(crate) mod alerts;
pub(crate) mod calls;
mod event_types;
pub(crate) mod events;
pub(crate) mod payloads;
mod queue;
pub(crate) mod schema;
mod send_test;
pub(crate) mod shops;
pub(crate) mod triggers;
pub(crate) mod users;

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

/// Every route, with its OpenAPI description (see `crate::openapi`).
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(alerts::router())
        .merge(shops::router())
        .merge(triggers::router())
        .merge(events::router())
        .merge(event_types::router())
        .merge(payloads::router())
        .merge(queue::router())
        .merge(send_test::router())
        .merge(users::router())
}

/// A list answer: `{"items": [...]}`.
#[derive(serde::Serialize)]
pub(crate) struct Items<T> {
    pub items: Vec<T>,
}

/// A time filter of a listing: an RFC 3339 date-time, or a 400 naming the parameter.
pub(crate) fn time_param(
    name: &str,
    value: Option<String>,
) -> Result<Option<hookflow_engine::model::Timestamp>, crate::error::ApiError> {
    value
        .map(|v| {
            hookflow_engine::model::Timestamp::parse_rfc3339(&v).ok_or_else(|| {
                crate::error::ApiError::BadRequest(format!(
                    "{name}: {v:?} is not an RFC 3339 date-time"
                ))
            })
        })
        .transpose()
}
