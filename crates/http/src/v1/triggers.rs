//! Triggers: when an event of a type happens in a shop (and a condition holds), run actions.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hookflow_engine::model::{Trigger, TriggerDraft, TriggerId};

use crate::error::ApiError;
use crate::json::parse;
use crate::v1::Items;
use crate::AppState;

async fn list_triggers(State(state): State<AppState>) -> Result<Json<Items<Trigger>>, ApiError> {
    Ok(Json(Items {
        items: state.engine.list_triggers().await?,
    }))
}

async fn create_trigger(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Trigger>), ApiError> {
    let draft: TriggerDraft = parse(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(state.engine.create_trigger(draft).await?),
    ))
}

async fn get_trigger(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Trigger>, ApiError> {
    Ok(Json(state.engine.get_trigger(TriggerId(id)).await?))
}

async fn update_trigger(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Trigger>, ApiError> {
    let draft: TriggerDraft = parse(&body)?;
    Ok(Json(
        state.engine.update_trigger(TriggerId(id), draft).await?,
    ))
}

async fn delete_trigger(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.engine.delete_trigger(TriggerId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/triggers", get(list_triggers).post(create_trigger))
        .route(
            "/triggers/{id}",
            get(get_trigger).put(update_trigger).delete(delete_trigger),
        )
}
