//! The event catalog: which event types exist and what their default payload holds.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use hookflow_templating::EventType;

use crate::error::ApiError;
use crate::v1::Items;
use crate::AppState;

async fn list_event_types(State(state): State<AppState>) -> Json<Items<EventType>> {
    Json(Items {
        items: state.engine.catalog().iter().cloned().collect(),
    })
}

async fn get_event_type(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<EventType>, ApiError> {
    state
        .engine
        .catalog()
        .get(&name)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("unknown event type {name:?}")))
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/event-types", get(list_event_types))
        .route("/event-types/{name}", get(get_event_type))
}
