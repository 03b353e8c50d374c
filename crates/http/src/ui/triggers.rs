//! Triggers: the list (with enable/disable toggles and each trigger's last delivery) and the
//! editor. The editor's page is rendered here with every field filled in; saving, previews,
//! merge fields and send test are done by `web/editor.js` through the JSON API.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use hookflow_engine::model::{ShopId, TriggerId};
use hookflow_templating::rules::Kind;
use minijinja::context;
use serde_json::json;

use crate::auth::Session;
use crate::ui::notice::Notice;
use crate::ui::{path_id, redirect_with_notice, render, require_write, sees_trigger_shop};
use crate::ui::{FormData, UiError};
use crate::v1::shops::ShopOut;
use crate::v1::triggers::trigger_out;
use crate::AppState;

/// `GET /triggers`.
pub(crate) async fn list(
    State(state): State<AppState>,
    session: Session,
    Notice(notice): Notice,
) -> Result<Response, UiError> {
    let p = &session.principal;
    let engine = &state.engine;
    let triggers = engine.list_triggers().await?;
    let deactivated = engine.deactivated_actions().await?;
    let shops: HashMap<ShopId, String> = engine
        .list_shops()
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    let last: HashMap<TriggerId, _> = engine
        .last_calls()
        .await?
        .into_iter()
        .map(|c| (c.trigger_id, c))
        .collect();
    let rows: Vec<_> = triggers
        .iter()
        .filter(|t| sees_trigger_shop(p, t.draft.shop_id))
        .map(|t| {
            let down = deactivated.iter().filter(|(a, _)| a.trigger == t.id).count();
            context! {
                id => t.id.0,
                name => t.draft.name.clone(),
                event_type => t.draft.event_type.clone(),
                shop => t.draft.shop_id.map(|s| shops.get(&s).cloned().unwrap_or_else(|| format!("shop {s}"))),
                enabled => t.draft.enabled,
                priority => t.draft.priority,
                actions => t.draft.actions.len(),
                deactivated => down,
                last => last.get(&t.id).map(|c| context! {
                    callId => c.call_id,
                    status => c.status.as_str(),
                    statusCode => c.status_code,
                    at => c.at,
                }),
            }
        })
        .collect();
    render::page(
        &session,
        "triggers.html",
        "triggers",
        context! { rows, notice, event_names => render::event_names(state.engine.catalog()) },
    )
}

/// `POST /triggers/{id}/toggle`: `enabled=true|false`.
pub(crate) async fn toggle(
    State(state): State<AppState>,
    session: Session,
    id: Path<String>,
    body: Bytes,
) -> Result<Response, UiError> {
    let form = FormData::parse(&body);
    require_write(&session.principal)?;
    let id = TriggerId(path_id(id)?);
    let trigger = visible_trigger(&state, &session, id).await?;
    let enable = form.get("enabled") == Some("true");
    state.engine.set_trigger_active(id, enable, false).await?;
    let notice = format!(
        "{} {}: {}.",
        trigger.draft.name,
        if enable { "enabled" } else { "disabled" },
        if enable {
            "matching events are delivered again"
        } else {
            "matching events are not delivered until it is enabled again"
        }
    );
    Ok(redirect_with_notice("/triggers", &notice))
}

/// `POST /triggers/{id}/actions/{index}/activate`: reactivates a deactivated action, from the
/// editor or its alert; `requeue_failed=on` also sends again the calls that failed or were
/// skipped while it was down; `back` is the page to return to (the editor by default).
pub(crate) async fn activate_action(
    State(state): State<AppState>,
    session: Session,
    Path((id, index)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, UiError> {
    let form = FormData::parse(&body);
    require_write(&session.principal)?;
    let id = TriggerId(path_id(Path(id))?);
    let index: usize = index
        .parse()
        .map_err(|_| UiError::NotFound(format!("{index:?} is not an action number")))?;
    let trigger = visible_trigger(&state, &session, id).await?;
    let requeue = form.get("requeue_failed").is_some();
    let requeued = state
        .engine
        .set_action_active(id, index, true, requeue)
        .await?;
    let mut notice = format!(
        "Action #{} of {} reactivated: it sends again from now on.",
        index + 1,
        trigger.draft.name
    );
    if requeue {
        notice.push_str(&match requeued {
            1 => " 1 failed or skipped call was queued again.".to_owned(),
            n => format!(" {n} failed or skipped calls were queued again."),
        });
    }
    let back = match form.get("back") {
        Some("/alerts") => "/alerts".to_owned(),
        _ => format!("/triggers/{id}"),
    };
    Ok(redirect_with_notice(&back, &notice))
}

async fn visible_trigger(
    state: &AppState,
    session: &Session,
    id: TriggerId,
) -> Result<hookflow_engine::model::Trigger, UiError> {
    let not_found = || UiError::NotFound(format!("trigger {id} does not exist"));
    let trigger = state.engine.get_trigger(id).await.map_err(|e| match e {
        hookflow_engine::EngineError::NotFound(_) => not_found(),
        e => UiError::Engine(e),
    })?;
    if !sees_trigger_shop(&session.principal, trigger.draft.shop_id) {
        return Err(not_found());
    }
    Ok(trigger)
}

/// `GET /triggers/new`: the editor for a new trigger (its first action is added on the page).
pub(crate) async fn new(
    State(state): State<AppState>,
    session: Session,
) -> Result<Response, UiError> {
    require_write(&session.principal)?;
    let trigger = json!({
        "name": "", "eventType": "OrderChanged", "shopId": null, "enabled": true,
        "priority": 5, "condition": null, "actions": []
    });
    editor(&state, &session, None, trigger, None).await
}

/// `GET /triggers/{id}`.
pub(crate) async fn edit(
    State(state): State<AppState>,
    session: Session,
    id: Path<String>,
    Notice(notice): Notice,
) -> Result<Response, UiError> {
    let id = TriggerId(path_id(id)?);
    let trigger = visible_trigger(&state, &session, id).await?;
    let value = trigger_out(&state, &trigger, &state.engine.deactivated_actions().await?)
        .for_reader(&session.principal)
        .to_json();
    editor(&state, &session, Some(id), value, notice).await
}

async fn editor(
    state: &AppState,
    session: &Session,
    id: Option<TriggerId>,
    trigger: serde_json::Value,
    notice: Option<String>,
) -> Result<Response, UiError> {
    let p = &session.principal;
    let shops: Vec<_> = state
        .engine
        .list_shops()
        .await?
        .into_iter()
        .filter(|s| p.sees_shop(s.id))
        .map(|s| ShopOut::from(&s))
        .collect();
    // By catalog: a shop's triggers use its catalog's event types.
    let mut catalogs: Vec<(String, Vec<minijinja::Value>)> = Vec::new();
    for t in state.engine.catalog().iter() {
        let entry = context! { name => t.name.clone(), entity => t.entity.clone() };
        match catalogs.iter_mut().find(|(c, _)| *c == t.catalog) {
            Some((_, types)) => types.push(entry),
            None => catalogs.push((t.catalog.clone(), vec![entry])),
        }
    }
    let title = match id {
        Some(_) => trigger["name"].as_str().unwrap_or_default().to_owned(),
        None => "New trigger".to_owned(),
    };
    // The rule builder's data: the trigger's rules, and the operators each kind of field
    // takes (the engine's own list, so the page offers exactly what saving accepts).
    let rule_ops: serde_json::Map<String, serde_json::Value> = Kind::ALL
        .iter()
        .map(|k| {
            let ops: Vec<&str> = k.ops().iter().map(|o| o.as_str()).collect();
            (k.as_str().to_owned(), json!(ops))
        })
        .collect();
    let rules_json = match trigger.get("rules") {
        Some(rules) if !rules.is_null() => rules.to_string(),
        _ => String::new(),
    };
    render::page(
        session,
        "trigger_edit.html",
        "triggers",
        context! {
            event_names => render::event_names(state.engine.catalog()),
            id => id.map(|i| i.0),
            title,
            notice,
            trigger => minijinja::Value::from_serialize(&trigger),
            rules_json,
            rule_ops_json => serde_json::Value::Object(rule_ops).to_string(),
            shops,
            every_shop => p.shop_scope().is_none(),
            catalogs,
            mime_types => ["application/json", "application/xml", "text/plain"],
            presets => [
                ("shopctrl", "ShopCtrl: 10 retries, then an alert"),
                ("skladon", "Skladon: backoff from 60 s, 20 retries in 48 h, then deactivate"),
                ("flowretail", "FlowRetail: 10 s timeout, 4xx not retried, 10 retries"),
                ("frontsystems", "Front Systems: no automatic retry; resend from the event log"),
            ],
        },
    )
}
