//! The Events page: the events hookflow received, newest first, filtered by type, shop,
//! entity, time and whether they queued calls (an event that matched nothing is found with
//! "without calls"); an event's page with its data, its calls, and every trigger of its type
//! with whether it fires and why not (computed now, read-only, by the engine); and resending
//! an event's calls through the same engine call as `POST /api/v1/events/{id}/resend`.
//!
//! Shop scoping as everywhere: a shop owner admin or viewer sees their shops' events only
//! (another shop's event is a 404), and a viewer cannot resend.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use hookflow_engine::accounts::Principal;
use hookflow_engine::explain::{TriggerVerdict, Verdict};
use hookflow_engine::model::{CallStatus, EventId, ShopId};
use hookflow_engine::store::{EventDetail, EventFilter, LoggedEvent};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::auth::Session;
use crate::ui::queue::{
    event_type_groups, filter_query, opt, pretty_body, shop_options, visible_shops,
};
use crate::ui::{path_id, redirect_with_notice, render, require_write, sees_trigger_shop};
use crate::ui::{queue, UiError};
use crate::v1::events::{LoggedCallOut, LoggedEventOut};
use crate::AppState;

/// Events per page.
const PAGE: u32 = 50;

/// The filter as the page's form (and its links) carry it. Empty fields mean "any".
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
pub(crate) struct Filter {
    #[serde(default)]
    event_type: String,
    #[serde(default)]
    shop: String,
    #[serde(default)]
    entity: String,
    /// `datetime-local` values, taken as UTC.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// `with` or `without` (calls); empty: either.
    #[serde(default)]
    calls: String,
    #[serde(default, skip_serializing)]
    before: String,
    #[serde(default, skip_serializing)]
    notice: String,
}

impl Filter {
    /// The filter as a query string (without the cursor), for links.
    fn query(&self) -> String {
        filter_query(&[
            ("event_type", &self.event_type),
            ("shop", &self.shop),
            ("entity", &self.entity),
            ("from", &self.from),
            ("to", &self.to),
            ("calls", &self.calls),
        ])
    }

    /// The engine's filter, within `shops` (the user's; `None`: every shop).
    fn to_event_filter(&self, shops: Option<&[ShopId]>) -> Result<EventFilter, UiError> {
        let has_calls = match opt(&self.calls) {
            None => None,
            Some("with") => Some(true),
            Some("without") => Some(false),
            Some(other) => {
                return Err(UiError::BadRequest(format!(
                    "calls: {other:?} is neither \"with\" nor \"without\""
                )))
            }
        };
        let from = queue::Filter::time("from", &self.from)?;
        let to = queue::Filter::time("to", &self.to)?;
        if let (Some(from), Some(to)) = (from, to) {
            if from >= to {
                return Err(UiError::BadRequest(
                    "to: must be later than from".to_owned(),
                ));
            }
        }
        Ok(EventFilter {
            shop_id: queue::Filter::number("shop", &self.shop)?.map(ShopId),
            shops: shops.map(<[_]>::to_vec),
            from,
            to,
            success: None,
            event_type: opt(&self.event_type).map(str::to_owned),
            entity_id: opt(&self.entity).map(str::to_owned),
            has_calls,
            before: queue::Filter::number("before", &self.before)?.map(EventId),
            limit: PAGE,
            detail: EventDetail::default(),
        })
    }
}

/// Calls per status, for a row's summary: `[(status, count)]` in the order of the statuses.
fn call_summary(event: &LoggedEvent) -> Vec<(&'static str, usize)> {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for call in &event.calls {
        let status = call.status.as_str();
        match counts.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => counts.push((status, 1)),
        }
    }
    counts
}

/// `GET /events`.
pub(crate) async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(filter): Query<Filter>,
) -> Result<Response, UiError> {
    let event_filter = filter.to_event_filter(session.principal.shop_scope())?;
    if event_filter
        .shop_id
        .is_some_and(|s| !session.principal.sees_shop(s))
    {
        return Err(UiError::NotFound("no such shop".into()));
    }
    let events = state.engine.list_events(&event_filter).await?;
    let next = (events.len() as u32 == PAGE)
        .then(|| events.last().map(|e| e.id.0))
        .flatten();
    let shops = visible_shops(&state, &session).await?;
    let shop_names: HashMap<ShopId, &str> = shops.iter().map(|s| (s.id, s.name.as_str())).collect();
    let rows: Vec<_> = events
        .into_iter()
        .map(|e| {
            context! {
                shop_name => shop_names.get(&e.shop_id).copied(),
                calls => call_summary(&e),
                event => LoggedEventOut::from(e),
            }
        })
        .collect();
    let chosen_shop = event_filter
        .shop_id
        .and_then(|id| shops.iter().find(|s| s.id == id));
    render::page(
        &session,
        "events.html",
        "events",
        context! {
            event_names => render::event_names(state.engine.catalog()),
            rows,
            filter => &filter,
            query => filter.query(),
            next,
            first_page => filter.before.trim().is_empty(),
            shops => shop_options(&shops),
            event_types => event_type_groups(&state, chosen_shop.map(|s| s.catalog.as_str())),
            notice => opt(&filter.notice),
        },
    )
}

/// `GET /events/{id}`.
pub(crate) async fn detail(
    State(state): State<AppState>,
    session: Session,
    id: Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let id = EventId(path_id(id)?);
    visible_event(&state, &session, id).await?;
    let explanation = state.engine.explain_event(id).await?;
    let event = &explanation.event;
    let p = &session.principal;
    let shops = state.engine.list_shops().await?;
    let shop_name = |id: ShopId| shops.iter().find(|s| s.id == id).map(|s| s.name.clone());
    let trigger_names: HashMap<_, _> = explanation
        .triggers
        .iter()
        .map(|t| (t.trigger_id, t.name.as_str()))
        .collect();
    let calls: Vec<_> = event
        .calls
        .iter()
        .map(|c| {
            let last = c.attempt_log.as_ref().and_then(|log| log.last());
            context! {
                call => LoggedCallOut::from(c.clone()),
                trigger_name => trigger_names.get(&c.trigger_id).copied(),
                last_sent => last.map(|a| a.started_at),
                response => c.status_code.map(crate::ui::plain::status_text),
            }
        })
        .collect();
    let triggers: Vec<_> = explanation
        .triggers
        .iter()
        .filter(|t| sees_trigger_shop(p, t.shop_id))
        .map(|t| trigger_row(t, event, p, &shop_name))
        .collect();
    let entity = event
        .entity
        .as_ref()
        .and_then(|e| serde_json::to_string(e).ok())
        .map(|json| pretty_body(Some("application/json"), &json));
    let resendable = event.calls.iter().any(|c| c.status != CallStatus::InFlight);
    render::page(
        &session,
        "event.html",
        "events",
        context! {
            event_names => render::event_names(state.engine.catalog()),
            event => LoggedEventOut::from(event.clone()),
            shop_name => shop_name(event.shop_id),
            entity,
            calls,
            triggers,
            resendable,
            notice => params.get("notice"),
            back => params.get("back").filter(|b| b.starts_with("/events")),
        },
    )
}

/// One trigger of the event's type as the event's page shows it: whether it fires and why
/// not, and its actions with the calls they made for the event.
fn trigger_row(
    t: &TriggerVerdict,
    event: &LoggedEvent,
    p: &Principal,
    shop_name: &impl Fn(ShopId) -> Option<String>,
) -> minijinja::Value {
    let made: Vec<_> = event
        .calls
        .iter()
        .filter(|c| c.trigger_id == t.trigger_id)
        .collect();
    let all_deactivated =
        !t.actions.is_empty() && t.actions.iter().all(|a| a.deactivated_at.is_some());
    let (fires, reason) = verdict_reason(t, all_deactivated, p, shop_name);
    let actions: Vec<_> = t
        .actions
        .iter()
        .map(|a| {
            context! {
                number => a.index + 1,
                url => a.url.clone(),
                deactivated_at => a.deactivated_at,
                calls => made.iter().filter(|c| c.action_index == a.index).map(|c| context! { id => c.id, status => c.status.as_str() }).collect::<Vec<_>>(),
            }
        })
        .collect();
    let verdict = match &t.verdict {
        Verdict::Matches if all_deactivated => "action-deactivated",
        Verdict::Matches => "matches",
        Verdict::OtherShop { .. } => "other-shop",
        Verdict::Disabled { .. } => "disabled",
        Verdict::ConditionFalse => "condition-false",
        Verdict::ConditionError { .. } => "condition-error",
    };
    context! {
        id => t.trigger_id,
        name => t.name.clone(),
        fires,
        verdict,
        reason,
        actions,
        condition => t.condition.clone(),
        // Calls the trigger made when the event arrived although it would not now.
        changed_since => !made.is_empty() && !matches!(t.verdict, Verdict::Matches),
        made_calls => !made.is_empty(),
        show_actions => matches!(t.verdict, Verdict::Matches),
    }
}

/// Whether a trigger fires for the event, and if not, why, in a sentence. Another shop is
/// named only to those who may see it.
fn verdict_reason(
    t: &TriggerVerdict,
    all_deactivated: bool,
    p: &Principal,
    shop_name: &impl Fn(ShopId) -> Option<String>,
) -> (bool, Option<String>) {
    match &t.verdict {
        Verdict::Matches if all_deactivated => (
            false,
            Some(if t.actions.len() == 1 {
                "its action is deactivated: its calls are skipped, not sent".to_owned()
            } else {
                "its actions are deactivated: their calls are skipped, not sent".to_owned()
            }),
        ),
        Verdict::Matches => (true, None),
        Verdict::OtherShop { shop_id } => (
            false,
            Some(format!(
                "it is for another shop ({})",
                shop_name(*shop_id)
                    .filter(|_| p.sees_shop(*shop_id))
                    .unwrap_or_else(|| format!("shop {shop_id}"))
            )),
        ),
        Verdict::Disabled { condition_holds } => (
            false,
            Some(match condition_holds {
                Some(true) if t.condition.is_some() => "the trigger is disabled (its condition holds for this event: it would fire once enabled)".to_owned(),
                Some(false) => "the trigger is disabled (and its condition is false for this event)".to_owned(),
                _ => "the trigger is disabled".to_owned(),
            }),
        ),
        Verdict::ConditionFalse => (
            false,
            Some("its condition is false for this event".to_owned()),
        ),
        Verdict::ConditionError { message } => (
            false,
            Some(format!("its condition could not be evaluated: {message}")),
        ),
    }
}

/// `POST /events/{id}/resend`: the API's resend — every call of the event queued again,
/// those in flight excepted.
pub(crate) async fn resend(
    State(state): State<AppState>,
    session: Session,
    id: Path<String>,
) -> Result<Response, UiError> {
    require_write(&session.principal)?;
    let id = EventId(path_id(id)?);
    visible_event(&state, &session, id).await?;
    let requeued = state.engine.resend_event(id).await?;
    let notice = match requeued {
        0 => "Nothing to resend: the event's calls are on the wire or belong to a deactivated action (reactivating it can resend them).".to_owned(),
        1 => "1 call queued again: it is sent now.".to_owned(),
        n => format!("{n} calls queued again: they are sent now."),
    };
    Ok(redirect_with_notice(&format!("/events/{id}"), &notice))
}

/// The event, if it is one of the user's shops' (otherwise it does not exist for them).
async fn visible_event(state: &AppState, session: &Session, id: EventId) -> Result<(), UiError> {
    let not_found = || UiError::NotFound(format!("event {id} does not exist"));
    let event = state
        .engine
        .get_event(id, EventDetail::default())
        .await
        .map_err(|e| match e {
            hookflow_engine::EngineError::NotFound(_) => not_found(),
            e => UiError::Engine(e),
        })?;
    if !session.principal.sees_shop(event.shop_id) {
        return Err(not_found());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calls_filter_takes_with_or_without_only() {
        let filter = |calls: &str| Filter {
            calls: calls.into(),
            ..Filter::default()
        };
        let refused = filter("sometimes").to_event_filter(None).unwrap_err();
        assert!(
            matches!(&refused, UiError::BadRequest(m) if m.starts_with("calls:")),
            "{refused:?}"
        );
        assert_eq!(
            filter("without").to_event_filter(None).unwrap().has_calls,
            Some(false)
        );
        assert_eq!(
            filter("with").to_event_filter(None).unwrap().has_calls,
            Some(true)
        );
        assert_eq!(filter("").to_event_filter(None).unwrap().has_calls, None);
    }

    #[test]
    fn a_time_window_must_not_be_empty() {
        let refused = Filter {
            from: "2026-12-01T10:00".into(),
            to: "2026-12-01T09:00".into(),
            ..Filter::default()
        }
        .to_event_filter(None)
        .unwrap_err();
        assert!(matches!(&refused, UiError::BadRequest(m) if m.starts_with("to:")));
    }

    #[test]
    fn the_filter_survives_in_links() {
        assert_eq!(
            Filter {
                calls: "without".into(),
                event_type: "OrderChanged".into(),
                ..Filter::default()
            }
            .query(),
            "event_type=OrderChanged&calls=without"
        );
    }
}
