//! Front Systems' webhook API (`seeds/004_23c4faa12342e748.txt`) under
//! `/compat/frontsystems/api`: `GET /WebhooksTypes`, `GET /WebhooksTypes/{webhookType}/schema`,
//! `POST/GET /webhooks`, `DELETE /webhooks/{id}`, `GET /WebhooksEvents/{webhookId}` (the
//! event log of one webhook) and `POST /WebhooksEvents/{webhookEventId}/resend`.
//!
//! A webhook is a trigger of the shop with one Call Webhook action; a webhook event is one of
//! its calls. Ids are UUIDs that carry the trigger's or call's id (see [`encode_id`]), so no
//! mapping table is needed and hookflow's own ids stay what the rest of the API shows. Front
//! Systems sends no automatic retries (the `frontsystems` retry preset): failed events wait in
//! the event log until the integrator resends them. Errors are RFC 9457 problem details, as
//! ASP.NET answers them.

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use hookflow_engine::model::{
    CallId, CallStatus, QueueFilter, QueueItem, Shop, Timestamp, Trigger, TriggerDraft, TriggerId,
};
use hookflow_engine::EngineError;
use hookflow_templating::schema::default_payload_schema;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tracing::error;
use uuid::Uuid;

use crate::compat::{
    as_webhook, authenticate, webhook_action, webhook_name, AuthFailure, Credentials,
};
use crate::AppState;

const PLATFORM: &str = "frontsystems";
/// Most calls one event log answer lists (pages of the queue listing read until then).
const MAX_EVENTS: usize = 5000;
const PAGE: u32 = 500;

/// An error as an RFC 9457 problem: `{"type", "title", "status", "detail"}`, and `errors`
/// (field to messages) for an invalid body, as ASP.NET's validation answers.
#[derive(Debug)]
struct Problem {
    status: StatusCode,
    detail: String,
    errors: Option<Map<String, Value>>,
}

impl Problem {
    fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            detail: detail.into(),
            errors: None,
        }
    }

    fn invalid(field: &str, message: impl Into<String>) -> Problem {
        let message = message.into();
        let mut errors = Map::new();
        errors.insert(field.to_owned(), json!([message.clone()]));
        Problem {
            status: StatusCode::BAD_REQUEST,
            detail: message,
            errors: Some(errors),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let title = match (&self.errors, self.status) {
            (Some(_), _) => "One or more validation errors occurred.",
            (None, s) => s.canonical_reason().unwrap_or("Error"),
        };
        let mut body = json!({
            "type": format!("https://httpstatuses.io/{}", self.status.as_u16()),
            "title": title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(errors) = self.errors {
            body["errors"] = Value::Object(errors);
        }
        (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body.to_string(),
        )
            .into_response()
    }
}

impl From<AuthFailure> for Problem {
    fn from(failure: AuthFailure) -> Problem {
        match failure {
            AuthFailure::Engine(e) => e.into(),
            other => Problem::new(other.status(), other.message()),
        }
    }
}

impl From<EngineError> for Problem {
    fn from(e: EngineError) -> Problem {
        match &e {
            EngineError::Invalid { field, message } => Problem::invalid(field, message.clone()),
            EngineError::UnknownEventType { message, .. } => {
                Problem::invalid("event", message.clone())
            }
            EngineError::UnknownShop(_) => Problem::new(StatusCode::BAD_REQUEST, e.to_string()),
            EngineError::NotFound(_) | EngineError::NoSuchEventType(_) => {
                Problem::new(StatusCode::NOT_FOUND, e.to_string())
            }
            EngineError::Conflict(_) => Problem::new(StatusCode::CONFLICT, e.to_string()),
            EngineError::Unavailable => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            EngineError::Store(_) => {
                error!(error = %e, "front systems compat request failed");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log",
                )
            }
        }
    }
}

// ---- ids ----

/// What a Front Systems id stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdKind {
    Webhook = 1,
    WebhookEvent = 2,
}

/// Marks hookflow's UUIDs (bytes 0..6), so a UUID made elsewhere is an unknown id, not
/// another object.
const ID_TAG: [u8; 6] = *b"hkflow";

/// A version 8 (custom) UUID holding `kind` and a 48-bit id.
fn encode_id(kind: IdKind, id: i64) -> Uuid {
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ID_TAG);
    bytes[6] = 0x80; // version 8
    bytes[7] = kind as u8;
    bytes[8] = 0x80; // RFC 4122 variant
    bytes[10..].copy_from_slice(&id.to_be_bytes()[2..]);
    Uuid::from_bytes(bytes)
}

/// The id a hookflow UUID of `kind` carries; `None` for any other text.
fn decode_id(kind: IdKind, text: &str) -> Option<i64> {
    let bytes = Uuid::parse_str(text).ok()?.into_bytes();
    if bytes[..6] != ID_TAG || bytes[6] != 0x80 || bytes[7] != kind as u8 || bytes[8] != 0x80 {
        return None;
    }
    let mut id = [0u8; 8];
    id[2..].copy_from_slice(&bytes[10..]);
    Some(i64::from_be_bytes(id))
}

// ---- shapes ----

fn webhook_json(trigger: &Trigger, url: &str) -> Value {
    json!({
        "id": encode_id(IdKind::Webhook, trigger.id.0).to_string(),
        "event": trigger.draft.event_type,
        "url": url,
    })
}

/// Times as the documentation shows them: UTC without an offset, trailing zeros of the
/// fraction dropped (`2021-12-09T08:50:46.02`).
fn fs_time(t: Timestamp) -> String {
    let text = t.to_rfc3339();
    let text = text.trim_end_matches('Z');
    match text.split_once('.') {
        Some((whole, fraction)) => {
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                whole.to_owned()
            } else {
                format!("{whole}.{fraction}")
            }
        }
        None => text.to_owned(),
    }
}

/// A status text for a call: the HTTP reason of its last answer, else its state.
fn status_text(code: Option<i32>, status: CallStatus) -> String {
    if let Some(reason) = code
        .and_then(|c| u16::try_from(c).ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .and_then(|c| c.canonical_reason())
    {
        return reason.to_owned();
    }
    match status {
        CallStatus::Pending => "Pending",
        CallStatus::InFlight => "Sending",
        CallStatus::Succeeded => "OK",
        CallStatus::Failed => "Failed",
        CallStatus::Cancelled => "Cancelled",
        CallStatus::Skipped => "Skipped",
        CallStatus::Superseded => "Superseded",
    }
    .to_owned()
}

async fn event_json(
    state: &AppState,
    item: &QueueItem,
    include_payload: bool,
    include_runs: bool,
) -> Result<Value, Problem> {
    let attempted = item.attempts > 0;
    let mut out = json!({
        "webhookId": encode_id(IdKind::Webhook, item.trigger_id.0).to_string(),
        "webhookEventId": encode_id(IdKind::WebhookEvent, item.id.0).to_string(),
        "createdDateTime": fs_time(item.created_at),
        "updatedDateTime": if attempted { Value::from(fs_time(item.updated_at)) } else { Value::Null },
        "status": status_text(item.last_status_code, item.status),
        "statusCode": item.last_status_code,
        "success": item.status == CallStatus::Succeeded,
        "runsCounter": item.attempts,
        "runs": [],
    });
    if include_payload {
        out["payload"] = match &item.body {
            Some(body) => serde_json::from_str(body).unwrap_or_else(|_| Value::from(body.as_str())),
            None => Value::Null,
        };
    }
    if include_runs && attempted {
        let (_, attempts) = state.engine.get_call(item.id).await?;
        out["runs"] = attempts
            .iter()
            .map(|a| {
                json!({
                    "runDateTime": fs_time(a.started_at),
                    "statusCode": a.status_code,
                    "status": status_text(a.status_code, if a.status_code.is_some_and(|c| (200..300).contains(&c)) { CallStatus::Succeeded } else { CallStatus::Failed }),
                    "success": a.status_code.is_some_and(|c| (200..300).contains(&c)),
                    "durationMs": a.duration_ms,
                    "error": a.error,
                })
            })
            .collect();
    }
    Ok(out)
}

// ---- handlers ----

async fn list_types(
    State(state): State<AppState>,
    credentials: Credentials,
) -> Result<Json<Vec<String>>, Problem> {
    authenticate(&state, &credentials).await?;
    Ok(Json(
        state
            .engine
            .catalog()
            .iter()
            .filter(|t| t.catalog == PLATFORM)
            .map(|t| t.name.clone())
            .collect(),
    ))
}

async fn type_schema(
    State(state): State<AppState>,
    credentials: Credentials,
    Path(name): Path<String>,
) -> Result<Json<Value>, Problem> {
    authenticate(&state, &credentials).await?;
    let catalog = state.engine.catalog();
    match catalog.get(&name) {
        Some(ty) if ty.catalog == PLATFORM => Ok(Json(default_payload_schema(ty))),
        _ => Err(Problem::new(
            StatusCode::NOT_FOUND,
            format!("Unknown webhook type {name:?}; GET /api/WebhooksTypes lists them"),
        )),
    }
}

#[derive(Deserialize)]
struct SubscribeIn {
    event: Option<String>,
    url: Option<String>,
}

async fn subscribe(
    State(state): State<AppState>,
    credentials: Credentials,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    let shop = authenticate(&state, &credentials).await?;
    let input: SubscribeIn = serde_json::from_slice(&body).map_err(|e| {
        Problem::invalid(
            "$",
            format!("The request body is not a valid subscription: {e}"),
        )
    })?;
    let event = input
        .event
        .filter(|e| !e.is_empty())
        .ok_or_else(|| Problem::invalid("event", "The event field is required."))?;
    let url = input
        .url
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Problem::invalid("url", "The url field is required."))?;
    if state
        .engine
        .catalog()
        .get(&event)
        .is_none_or(|t| t.catalog != PLATFORM)
    {
        return Err(Problem::invalid(
            "event",
            format!("Unknown webhook type {event:?}; GET /api/WebhooksTypes lists them"),
        ));
    }
    let draft = TriggerDraft {
        name: webhook_name("Front Systems", &event, &url),
        event_type: event,
        shop_id: Some(shop.id),
        enabled: true,
        priority: 5,
        condition: None,
        rules: None,
        actions: vec![webhook_action(&url, hookflow_engine::model::Method::Post)],
    };
    let trigger = state
        .engine
        .create_trigger(draft)
        .await
        .map_err(|e| match e {
            EngineError::Invalid { field, message } if field.ends_with(".url") => {
                Problem::invalid("url", message)
            }
            other => other.into(),
        })?;
    Ok(Json(webhook_json(&trigger, &url)))
}

async fn list_webhooks(
    State(state): State<AppState>,
    credentials: Credentials,
) -> Result<Json<Vec<Value>>, Problem> {
    let shop = authenticate(&state, &credentials).await?;
    let catalog = state.engine.catalog();
    Ok(Json(
        state
            .engine
            .list_triggers()
            .await?
            .iter()
            .filter_map(|t| {
                as_webhook(t, &shop, &catalog, PLATFORM).map(|c| webhook_json(t, &c.url))
            })
            .collect(),
    ))
}

/// The shop's webhook with this UUID, or a 404.
async fn find_webhook(state: &AppState, shop: &Shop, id: &str) -> Result<Trigger, Problem> {
    let not_found = || Problem::new(StatusCode::NOT_FOUND, format!("Webhook {id} not found"));
    let trigger_id = decode_id(IdKind::Webhook, id).ok_or_else(not_found)?;
    let trigger = match state.engine.get_trigger(TriggerId(trigger_id)).await {
        Ok(t) => t,
        Err(EngineError::NotFound(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    if as_webhook(&trigger, shop, &state.engine.catalog(), PLATFORM).is_none() {
        return Err(not_found());
    }
    Ok(trigger)
}

async fn delete_webhook(
    State(state): State<AppState>,
    credentials: Credentials,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    let shop = authenticate(&state, &credentials).await?;
    let trigger = find_webhook(&state, &shop, &id).await?;
    state.engine.delete_trigger(trigger.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventsParams {
    from: Option<String>,
    to: Option<String>,
    success: Option<bool>,
    #[serde(default)]
    include_payload: bool,
    #[serde(default)]
    include_runs: bool,
}

/// `from`/`to` as the documentation writes them (`2021-12-01`), or a date-time with or
/// without an offset (UTC when without). A bare date as `to` includes that whole day.
fn parse_time(name: &str, value: &str, end_of_day: bool) -> Result<Timestamp, Problem> {
    let bad = || Problem::invalid(name, format!("The value '{value}' is not a valid date."));
    let text = value.trim();
    if text.len() == 10 {
        let t = Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z")).ok_or_else(bad)?;
        return Ok(if end_of_day {
            t.plus_millis(86_400_000)
        } else {
            t
        });
    }
    let has_offset = text.ends_with('Z')
        || text.ends_with('z')
        || text
            .rsplit_once('T')
            .is_some_and(|(_, time)| time.contains('+') || time.contains('-'));
    let text = if has_offset {
        text.to_owned()
    } else {
        format!("{text}Z")
    };
    Timestamp::parse_rfc3339(&text).ok_or_else(bad)
}

async fn webhook_events(
    State(state): State<AppState>,
    credentials: Credentials,
    Path(id): Path<String>,
    params: Result<Query<EventsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Value>>, Problem> {
    let shop = authenticate(&state, &credentials).await?;
    let Query(params) = params.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let trigger = find_webhook(&state, &shop, &id).await?;
    let from = params
        .from
        .as_deref()
        .map(|v| parse_time("from", v, false))
        .transpose()?;
    let to = params
        .to
        .as_deref()
        .map(|v| parse_time("to", v, true))
        .transpose()?;
    let mut filter = QueueFilter {
        trigger_id: Some(trigger.id),
        from,
        to,
        limit: PAGE,
        ..Default::default()
    };
    let mut out = Vec::new();
    'pages: loop {
        let page = state.engine.list_queue(&filter).await?;
        let last = page.last().map(|i| i.id);
        for item in &page {
            let success = item.status == CallStatus::Succeeded;
            if params.success.is_some_and(|want| want != success) {
                continue;
            }
            out.push(event_json(&state, item, params.include_payload, params.include_runs).await?);
            if out.len() >= MAX_EVENTS {
                break 'pages;
            }
        }
        match last {
            Some(last) if page.len() == PAGE as usize => filter.before = Some(last),
            _ => break,
        }
    }
    Ok(Json(out))
}

async fn resend_event(
    State(state): State<AppState>,
    credentials: Credentials,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let shop = authenticate(&state, &credentials).await?;
    let not_found = || {
        Problem::new(
            StatusCode::NOT_FOUND,
            format!("Webhook event {id} not found"),
        )
    };
    let call_id = decode_id(IdKind::WebhookEvent, &id).ok_or_else(not_found)?;
    let item = match state.engine.get_call(CallId(call_id)).await {
        Ok((item, _)) => item,
        Err(EngineError::NotFound(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    // Only the shop's own webhooks' events.
    let trigger = state
        .engine
        .get_trigger(item.trigger_id)
        .await
        .map_err(|_| not_found())?;
    if as_webhook(&trigger, &shop, &state.engine.catalog(), PLATFORM).is_none() {
        return Err(not_found());
    }
    let item = state.engine.retry_call(item.id).await?;
    Ok(Json(event_json(&state, &item, false, false).await?))
}

/// axum's own plain-text rejections as problem details.
async fn problem_errors(request: Request, next: Next) -> Response {
    match crate::plain_error(next.run(request).await).await {
        Ok((status, message)) => Problem::new(status, message).into_response(),
        Err(response) => response,
    }
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/WebhooksTypes", get(list_types))
        .route("/WebhooksTypes/{webhookType}/schema", get(type_schema))
        .route("/webhooks", get(list_webhooks).post(subscribe))
        .route("/webhooks/{id}", delete(delete_webhook))
        .route("/WebhooksEvents/{webhookId}", get(webhook_events))
        .route(
            "/WebhooksEvents/{webhookEventId}/resend",
            post(resend_event),
        )
        .fallback(|| async { Problem::new(StatusCode::NOT_FOUND, "No such route") })
        .layer(middleware::from_fn(problem_errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids_that_carry_their_kind_and_id() {
        let id = encode_id(IdKind::Webhook, 42);
        let text = id.to_string();
        assert_eq!(text.len(), 36);
        assert_eq!(id.get_version_num(), 8);
        assert_eq!(decode_id(IdKind::Webhook, &text), Some(42));
        assert_eq!(decode_id(IdKind::WebhookEvent, &text), None);
        assert_eq!(
            decode_id(IdKind::Webhook, "edd10354-7625-4f29-bd9f-e43c61cf2eba"),
            None
        );
        assert_eq!(decode_id(IdKind::Webhook, "nope"), None);
        let big = (1i64 << 47) + 5;
        assert_eq!(
            decode_id(
                IdKind::WebhookEvent,
                &encode_id(IdKind::WebhookEvent, big).to_string()
            ),
            Some(big)
        );
    }

    #[test]
    fn times_look_like_the_documented_ones() {
        let t = Timestamp::parse_rfc3339("2021-12-09T08:50:46.020Z").unwrap();
        assert_eq!(fs_time(t), "2021-12-09T08:50:46.02");
        let whole = Timestamp::parse_rfc3339("2021-12-09T08:50:46Z").unwrap();
        assert_eq!(fs_time(whole), "2021-12-09T08:50:46");
        assert_eq!(
            parse_time("to", "2021-12-15", true).unwrap(),
            Timestamp::parse_rfc3339("2021-12-16T00:00:00Z").unwrap()
        );
        assert_eq!(
            parse_time("from", "2021-12-09T08:50:46.02", false).unwrap(),
            Timestamp::parse_rfc3339("2021-12-09T08:50:46.02Z").unwrap()
        );
        assert!(parse_time("from", "yesterday", false).is_err());
    }
}
