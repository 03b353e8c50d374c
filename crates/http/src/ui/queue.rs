//! The Webhook Queue page: every call newest first, filtered by status, trigger, event type,
//! shop, creation time and free text (URL or entity id), a page at a time (the cursor is the
//! last id shown), each with when it was last sent and what came back; a call's detail with
//! what went out (the body byte for byte, each attempt's request headers, a `curl` command),
//! every answer and its error in plain words; Retry/Resend, Cancel, and a bulk resend of the
//! filtered failed calls.
//!
//! The page refreshes itself (`web/app.js` polls the same URL, so the filter is kept, and swaps
//! the table in place); without JavaScript it is a plain page with a refresh link.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use hookflow_engine::event_log::ResendRequest;
use hookflow_engine::model::{
    Attempt, CallId, CallStatus, QueueFilter, ShopId, Timestamp, TriggerId,
};
use hookflow_engine::transport::MASKED;
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::auth::Session;
use crate::ui::{path_id, plain, redirect_with_notice, render, require_write, sees_trigger_shop};
use crate::ui::{FormData, UiError};
use crate::v1::calls::{AttemptOut, QueueItemOut};
use crate::AppState;

/// Calls per page.
const PAGE: u32 = 50;
/// Most calls a bulk resend with a free-text filter walks (one retry each).
const MAX_SCOPED_RESEND: usize = 5000;

const STATUSES: [CallStatus; 7] = [
    CallStatus::Pending,
    CallStatus::InFlight,
    CallStatus::Succeeded,
    CallStatus::Failed,
    CallStatus::Cancelled,
    CallStatus::Skipped,
    CallStatus::Superseded,
];

/// The filter as the page's form (and its links) carry it. Empty fields mean "any".
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
pub(crate) struct Filter {
    #[serde(default)]
    status: String,
    #[serde(default)]
    trigger: String,
    #[serde(default)]
    event_type: String,
    #[serde(default)]
    shop: String,
    /// `datetime-local` values, taken as UTC.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    q: String,
    #[serde(default, skip_serializing)]
    before: String,
    #[serde(default, skip_serializing)]
    notice: String,
}

impl Filter {
    fn from_form(form: &FormData) -> Filter {
        let field = |name| form.get(name).unwrap_or_default().to_owned();
        Filter {
            status: field("status"),
            trigger: field("trigger"),
            event_type: field("event_type"),
            shop: field("shop"),
            from: field("from"),
            to: field("to"),
            q: field("q"),
            before: String::new(),
            notice: String::new(),
        }
    }

    /// The filter as a query string (without the cursor), for links and redirects.
    fn query(&self) -> String {
        filter_query(&[
            ("status", &self.status),
            ("trigger", &self.trigger),
            ("event_type", &self.event_type),
            ("shop", &self.shop),
            ("from", &self.from),
            ("to", &self.to),
            ("q", &self.q),
        ])
    }

    fn status(&self) -> Result<Option<CallStatus>, UiError> {
        opt(&self.status)
            .map(|s| s.parse().map_err(UiError::BadRequest))
            .transpose()
    }

    pub(crate) fn number(name: &str, value: &str) -> Result<Option<i64>, UiError> {
        opt(value)
            .map(|v| {
                v.parse()
                    .map_err(|_| UiError::BadRequest(format!("{name}: {v:?} is not a number")))
            })
            .transpose()
    }

    pub(crate) fn time(name: &str, value: &str) -> Result<Option<Timestamp>, UiError> {
        opt(value)
            .map(|v| {
                let full = match v.len() {
                    16 => format!("{v}:00Z"),
                    19 => format!("{v}Z"),
                    _ => v.to_owned(),
                };
                Timestamp::parse_rfc3339(&full).ok_or_else(|| {
                    UiError::BadRequest(format!("{name}: {v:?} is not a date and time"))
                })
            })
            .transpose()
    }

    /// The engine's filter, within the user's shops.
    fn to_queue_filter(&self, session: &Session) -> Result<QueueFilter, UiError> {
        Ok(QueueFilter {
            status: self.status()?,
            trigger_id: Filter::number("trigger", &self.trigger)?.map(TriggerId),
            event_type: opt(&self.event_type).map(str::to_owned),
            from: Filter::time("from", &self.from)?,
            to: Filter::time("to", &self.to)?,
            before: Filter::number("before", &self.before)?.map(CallId),
            limit: PAGE,
            shop_id: Filter::number("shop", &self.shop)?.map(ShopId),
            shops: session.principal.shop_scope().map(<[_]>::to_vec),
            search: opt(&self.q).map(str::to_owned),
        })
    }
}

/// A list page's filter as a query string: the fields that are set, trimmed (for links and
/// redirects that keep the filter).
pub(crate) fn filter_query(fields: &[(&str, &String)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        if !v.trim().is_empty() {
            out.append_pair(k, v.trim());
        }
    }
    out.finish()
}

pub(crate) fn opt(value: &str) -> Option<&str> {
    Some(value.trim()).filter(|v| !v.is_empty())
}

/// `GET /queue`.
pub(crate) async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(filter): Query<Filter>,
) -> Result<Response, UiError> {
    let p = &session.principal;
    let queue_filter = filter.to_queue_filter(&session)?;
    if queue_filter.shop_id.is_some_and(|s| !p.sees_shop(s)) {
        return Err(UiError::NotFound("no such shop".into()));
    }
    let engine = &state.engine;
    let items = engine.list_queue(&queue_filter).await?;
    let next = (items.len() as u32 == PAGE)
        .then(|| items.last().map(|i| i.id.0))
        .flatten();
    let last_sent = engine
        .last_sent(&items.iter().map(|i| i.id).collect::<Vec<_>>())
        .await?;
    let triggers: Vec<_> = engine
        .list_triggers()
        .await?
        .into_iter()
        .filter(|t| sees_trigger_shop(p, t.draft.shop_id))
        .map(|t| (t.id.0, t.draft.name))
        .collect();
    let trigger_names: HashMap<i64, &str> =
        triggers.iter().map(|(id, n)| (*id, n.as_str())).collect();
    let shops = visible_shops(&state, &session).await?;
    let shop_names: HashMap<i64, &str> = shops.iter().map(|s| (s.id.0, s.name.as_str())).collect();
    let rows: Vec<_> = items
        .into_iter()
        .map(|i| {
            let message = i
                .last_error
                .as_deref()
                .map(|e| plain::plain_error(e, &i.url, None).unwrap_or_else(|| e.to_owned()));
            context! {
                trigger_name => trigger_names.get(&i.trigger_id.0).copied(),
                shop_name => shop_names.get(&i.shop_id.0).copied(),
                last_sent => last_sent.get(&i.id),
                response => i.last_status_code.map(plain::status_text),
                message,
                call => QueueItemOut::from(i),
            }
        })
        .collect();
    let chosen_shop = queue_filter
        .shop_id
        .and_then(|id| shops.iter().find(|s| s.id == id));
    let event_types = event_type_groups(&state, chosen_shop.map(|s| s.catalog.as_str()));
    let query = filter.query();
    render::page(
        &session,
        "queue.html",
        "queue",
        context! {
            event_names => render::event_names(state.engine.catalog()),
            rows,
            filter => &filter,
            query,
            next,
            first_page => filter.before.trim().is_empty(),
            statuses => STATUSES.map(CallStatus::as_str),
            triggers,
            shops => shop_options(&shops),
            event_types,
            notice => opt(&filter.notice),
        },
    )
}

/// The shops the user sees.
pub(crate) async fn visible_shops(
    state: &AppState,
    session: &Session,
) -> Result<Vec<hookflow_engine::model::Shop>, UiError> {
    Ok(state
        .engine
        .list_shops()
        .await?
        .into_iter()
        .filter(|s| session.principal.sees_shop(s.id))
        .collect())
}

/// Shops for a filter's select: id, name and catalog (the event-type select follows it).
pub(crate) fn shop_options(shops: &[hookflow_engine::model::Shop]) -> Vec<minijinja::Value> {
    shops
        .iter()
        .map(|s| context! { id => s.id.0, name => s.name.clone(), catalog => s.catalog.clone() })
        .collect()
}

/// The event types by catalog, for a filter's select: every catalog, or only `only`'s (the
/// chosen shop's). Each type with the kind of entity it is about.
pub(crate) fn event_type_groups(state: &AppState, only: Option<&str>) -> Vec<minijinja::Value> {
    let catalog = state.engine.catalog();
    let mut groups: Vec<(String, Vec<minijinja::Value>)> = Vec::new();
    for t in catalog
        .iter()
        .filter(|t| only.is_none_or(|c| c == t.catalog))
    {
        let entry = context! { name => t.name.clone(), entity => t.entity.clone() };
        match groups.iter_mut().find(|(c, _)| *c == t.catalog) {
            Some((_, types)) => types.push(entry),
            None => groups.push((t.catalog.clone(), vec![entry])),
        }
    }
    groups
        .into_iter()
        .map(|(catalog, types)| context! { catalog, types })
        .collect()
}

/// `GET /queue/{id}`: the call as it went out (the exact body, each attempt's request
/// headers), each answer, its errors in plain words, its event, and a `curl` command.
pub(crate) async fn detail(
    State(state): State<AppState>,
    session: Session,
    id: Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let id = CallId(path_id(id)?);
    let (item, attempts) = visible_call(&state, &session, id).await?;
    let trigger_name = state
        .engine
        .get_trigger(item.trigger_id)
        .await
        .ok()
        .map(|t| t.draft.name);
    let shop_name = state
        .engine
        .get_shop(item.shop_id)
        .await
        .ok()
        .map(|s| s.name);
    let content_type = item
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone());
    // What went out last: the latest attempt that recorded its headers; before the first
    // attempt (or for attempts logged before headers were recorded), the stored request.
    let sent = attempts
        .iter()
        .rev()
        .find(|a| !a.request_headers.is_empty());
    let headers_sent = sent.is_some();
    let headers = match sent {
        Some(a) => masked(&a.request_headers),
        None => masked(&item.headers),
    };
    let pretty = item
        .body
        .as_deref()
        .map(|b| pretty_body(content_type.as_deref(), b))
        .filter(|pretty| Some(pretty.as_str()) != item.body.as_deref());
    let curl = plain::curl(
        item.method.as_str(),
        &item.url,
        &headers,
        item.body.as_deref(),
    );
    let last_duration = attempts.last().map(|a| a.duration_ms);
    let attempts = attempt_rows(attempts, &item.url);
    let last_plain_error = item
        .last_error
        .as_deref()
        .and_then(|e| plain::plain_error(e, &item.url, last_duration));
    let can_cancel = matches!(item.status, CallStatus::Pending | CallStatus::InFlight);
    let can_retry = item.status != CallStatus::InFlight;
    render::page(
        &session,
        "queue_item.html",
        "queue",
        context! {
            event_names => render::event_names(state.engine.catalog()),
            call => QueueItemOut::from(item.clone()),
            trigger_name,
            shop_name,
            headers,
            headers_sent,
            body => item.body.as_deref(),
            body_bytes => item.body.as_ref().map(String::len),
            pretty,
            curl,
            last_plain_error,
            last_status_text => item.last_status_code.map(plain::status_text),
            attempts,
            can_cancel,
            can_retry,
            notice => params.get("notice"),
            back => params.get("back").filter(|b| b.starts_with("/queue")),
        },
    )
}

/// Headers as the call's page shows them, credentials masked.
fn masked(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.clone(), mask_header(k, v)))
        .collect()
}

/// The call's attempts, newest first, each with its answer's body pretty-printed and its
/// error in plain words.
fn attempt_rows(attempts: Vec<Attempt>, url: &str) -> Vec<minijinja::Value> {
    attempts
        .into_iter()
        .rev()
        .map(|a| {
            let ct = a
                .response_headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.as_str());
            context! {
                plain_error => a.error.as_deref().and_then(|e| plain::plain_error(e, url, Some(a.duration_ms))),
                status_text => a.status_code.map(plain::status_text),
                body => pretty_body(ct, &a.response_body),
                request_headers => masked(&a.request_headers),
                headers => masked(&a.response_headers),
                attempt => AttemptOut::from(a),
            }
        })
        .collect()
}

/// `GET /queue/{id}/body`: the body exactly as stored and sent, byte for byte, with the
/// content type it was sent with, as a download.
pub(crate) async fn body(
    State(state): State<AppState>,
    session: Session,
    id: Path<String>,
) -> Result<Response, UiError> {
    let id = CallId(path_id(id)?);
    let (item, _) = visible_call(&state, &session, id).await?;
    let Some(body) = item.body else {
        return Err(UiError::NotFound(format!("call {id} has no body (a GET)")));
    };
    let content_type = item
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let mut response = body.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"call-{id}-body\""))
            .expect("a header value of ASCII digits and letters"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn visible_call(
    state: &AppState,
    session: &Session,
    id: CallId,
) -> Result<
    (
        hookflow_engine::model::QueueItem,
        Vec<hookflow_engine::model::Attempt>,
    ),
    UiError,
> {
    let not_found = || UiError::NotFound(format!("queue item {id} does not exist"));
    let (item, attempts) = state.engine.get_call(id).await.map_err(|e| match e {
        hookflow_engine::EngineError::NotFound(_) => not_found(),
        e => UiError::Engine(e),
    })?;
    if !session.principal.sees_shop(item.shop_id) {
        return Err(not_found());
    }
    Ok((item, attempts))
}

/// `POST /queue/{id}/retry`.
pub(crate) async fn retry(
    State(state): State<AppState>,
    session: Session,
    id: Path<String>,
) -> Result<Response, UiError> {
    require_write(&session.principal)?;
    let id = CallId(path_id(id)?);
    visible_call(&state, &session, id).await?;
    state.engine.retry_call(id).await?;
    Ok(redirect_with_notice(
        &format!("/queue/{id}"),
        "Queued again: it is sent now.",
    ))
}

/// `POST /queue/{id}/cancel`.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    session: Session,
    id: Path<String>,
) -> Result<Response, UiError> {
    require_write(&session.principal)?;
    let id = CallId(path_id(id)?);
    visible_call(&state, &session, id).await?;
    state.engine.cancel_call(id).await?;
    Ok(redirect_with_notice(&format!("/queue/{id}"), "Cancelled."))
}

/// `POST /queue/resend`: the filter's fields; resends its failed calls.
pub(crate) async fn bulk_resend(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> Result<Response, UiError> {
    let form = FormData::parse(&body);
    require_write(&session.principal)?;
    let mut filter = Filter::from_form(&form);
    filter.status = CallStatus::Failed.as_str().to_owned();
    let mut queue_filter = filter.to_queue_filter(&session)?;
    let back = format!("/queue?{}", filter.query());
    let requeued = if queue_filter.search.is_none() {
        // One statement, within the user's shops.
        let request = ResendRequest {
            status: Some(CallStatus::Failed),
            trigger_id: queue_filter.trigger_id,
            event_type: queue_filter.event_type.clone(),
            from: queue_filter.from,
            to: queue_filter.to,
            shop_id: queue_filter.shop_id,
            shops: queue_filter.shops.clone(),
        };
        state.engine.resend_calls(request).await?
    } else {
        // The free-text filter is not one the bulk statement knows: the calls the listing
        // shows, one retry each, page by page.
        queue_filter.limit = 500;
        let mut ids = Vec::new();
        loop {
            let page = state.engine.list_queue(&queue_filter).await?;
            let full = page.len() as u32 == queue_filter.limit;
            ids.extend(page.iter().map(|i| i.id));
            queue_filter.before = page.last().map(|i| i.id);
            if !full || ids.len() >= MAX_SCOPED_RESEND {
                break;
            }
        }
        let mut requeued = 0u64;
        for id in ids {
            if state.engine.retry_call(id).await.is_ok() {
                requeued += 1;
            }
        }
        requeued
    };
    Ok(redirect_with_notice(
        &back,
        &format!("{requeued} failed call(s) queued again."),
    ))
}

/// The signature headers hookflow adds (see `hookflow_delivery::signing`).
const SIGNATURE_HEADERS: &[&str] = &["webhook-signature", "x-hub-signature-256"];

/// Header values that may be credentials are shown masked: an API key a receiver wants in a
/// custom header is a secret like a password.
pub(crate) fn mask_header(name: &str, value: &str) -> String {
    let lower = name.to_ascii_lowercase();
    // hookflow's own signatures are MACs of this one message: they reveal nothing of the
    // secret, and a receiver's admin compares them when verification fails. A value the
    // attempt log already masked stays as it is.
    if SIGNATURE_HEADERS.contains(&lower.as_str()) || value.contains(MASKED) {
        return value.to_owned();
    }
    let secret = [
        "authorization",
        "cookie",
        "token",
        "secret",
        "password",
        "api-key",
        "apikey",
        "signature",
        "key",
    ]
    .iter()
    .any(|s| lower.contains(s));
    if !secret {
        return value.to_owned();
    }
    let shown: String = value.chars().take(4).collect();
    if value.chars().count() > 8 {
        format!("{shown}{MASKED} (masked)")
    } else {
        format!("{MASKED} (masked)")
    }
}

/// A body for reading: JSON indented, XML indented, anything else as it is.
pub(crate) fn pretty_body(content_type: Option<&str>, body: &str) -> String {
    let ct = content_type.unwrap_or_default().to_ascii_lowercase();
    let trimmed = body.trim_start();
    if ct.contains("json")
        || (ct.is_empty() && (trimmed.starts_with('{') || trimmed.starts_with('[')))
    {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(body) {
            return serde_json::to_string_pretty(&value).unwrap_or_else(|_| body.to_owned());
        }
    } else if ct.contains("xml") || (ct.is_empty() && trimmed.starts_with('<')) {
        if let Some(pretty) = pretty_xml(body) {
            return pretty;
        }
    }
    body.to_owned()
}

fn pretty_xml(body: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(body);
    let mut writer = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    loop {
        match reader.read_event().ok()? {
            Event::Eof => break,
            Event::Text(t) if t.trim().is_empty() => {}
            event => writer.write_event(event).ok()?,
        }
    }
    String::from_utf8(writer.into_inner()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_headers_are_masked_and_others_shown() {
        assert_eq!(mask_header("X-Order", "ORD-42"), "ORD-42");
        assert!(mask_header("X-Api-Key", "abcdefghijkl").starts_with("abcd••"));
        assert!(!mask_header("Authorization", "Basic dXNlcjpwYXNz").contains("dXNlcjpw"));
    }

    #[test]
    fn signatures_and_values_masked_when_sent_are_shown_as_they_are() {
        assert_eq!(
            mask_header("webhook-signature", "v1,abcdefghij="),
            "v1,abcdefghij="
        );
        assert_eq!(mask_header("authorization", "Basic ••••••"), "Basic ••••••");
    }

    #[test]
    fn json_and_xml_bodies_are_indented() {
        assert_eq!(
            pretty_body(Some("application/json"), r#"{"a":1}"#),
            "{\n  \"a\": 1\n}"
        );
        assert_eq!(
            pretty_body(Some("application/xml; charset=utf-8"), "<a><b>1</b></a>"),
            "<a>\n  <b>1</b>\n</a>"
        );
        assert_eq!(pretty_body(Some("text/plain"), "{x"), "{x");
    }
}
