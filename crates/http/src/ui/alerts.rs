//! Alerts: actions whose calls fail for good (one open alert per action, with a count), and
//! acknowledging them; a deactivated action is reactivated from its alert (the form posts to
//! the editor's `/triggers/{id}/actions/{index}/activate`).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use minijinja::context;
use serde::Deserialize;

use crate::auth::Session;
use crate::ui::{path_id, redirect_with_notice, render, require_write, UiError};
use crate::v1::alerts::AlertOut;
use crate::AppState;

#[derive(Deserialize)]
pub(crate) struct AlertParams {
    /// `all` shows acknowledged alerts too.
    show: Option<String>,
    notice: Option<String>,
}

fn visible(session: &Session, alert: &hookflow_engine::store::Alert) -> bool {
    match alert.shop_id {
        Some(shop) => session.principal.sees_shop(shop),
        None => session.principal.shop_scope().is_none(),
    }
}

/// `GET /alerts`.
pub(crate) async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(params): Query<AlertParams>,
) -> Result<Response, UiError> {
    let all = params.show.as_deref() == Some("all");
    let alerts = state
        .engine
        .list_alerts(if all { None } else { Some(false) })
        .await?;
    let names: HashMap<_, _> = state
        .engine
        .list_triggers()
        .await?
        .into_iter()
        .map(|t| (t.id, t.draft.name))
        .collect();
    let deactivated = state.engine.deactivated_actions().await?;
    let rows: Vec<_> = alerts
        .iter()
        .filter(|a| visible(&session, a))
        .map(|a| {
            let down = deactivated
                .iter()
                .any(|(d, _)| *d == a.action);
            context! { alert => AlertOut::from(a), trigger_name => names.get(&a.action.trigger), deactivated => down }
        })
        .collect();
    render::page(
        &session,
        "alerts.html",
        "alerts",
        context! { rows, all, notice => params.notice },
    )
}

/// `POST /alerts/{id}/ack`.
pub(crate) async fn ack(
    State(state): State<AppState>,
    session: Session,
    id: Path<String>,
) -> Result<Response, UiError> {
    require_write(&session.principal)?;
    let id = path_id(id)?;
    let alerts = state.engine.list_alerts(None).await?;
    if !alerts.iter().any(|a| a.id == id && visible(&session, a)) {
        return Err(UiError::NotFound(format!("alert {id} does not exist")));
    }
    state.engine.ack_alert(id).await?;
    Ok(redirect_with_notice("/alerts", "Alert acknowledged."))
}
