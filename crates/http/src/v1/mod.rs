//! `/api/v1`: one module per resource.

mod alerts;
mod event_types;
mod events;
mod payloads;
mod queue;
mod shops;
mod triggers;

use axum::Router;

use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .merge(alerts::router())
        .merge(shops::router())
        .merge(triggers::router())
        .merge(events::router())
        .merge(event_types::router())
        .merge(payloads::router())
        .merge(queue::router())
}

/// A list answer: `{"items": [...]}`.
#[derive(serde::Serialize)]
pub(crate) struct Items<T> {
    pub items: Vec<T>,
}
