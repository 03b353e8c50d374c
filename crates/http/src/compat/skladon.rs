//! Skladon's v21 webhook API (`seeds/001_31dec5362fbe551a.txt`) under `/compat/skladon/v21`:
//! `POST /users/login`, `GET/POST /webhooks`, `GET/PUT/DELETE /webhooks/{id}`,
//! `PUT /webhooks/{id}/activate` and `/deactivate`. Answers are `{statusCode, message, data}`
//! envelopes, errors `{statusCode, message}`.
//!
//! The document's security scheme is two headers: `x-api-key` (the eshop's key, here the
//! shop's API key) and `authorization: Bearer <JWT from POST /v21/users/login>`. A login takes
//! a hookflow user's credentials with the shop's `x-api-key` and returns a token for that
//! shop only (`hookflow_engine::login_tokens`); hookflow API tokens work there too.
//!
//! A Skladon webhook is a trigger of the shop with one Call Webhook action: its `id` is the
//! trigger's, `active` is "the trigger is enabled and its action is not deactivated" (the
//! Skladon retry preset deactivates it when retries run out), `registeredAt` is when it was
//! made and `unregisteredAt` when it went inactive.

use axum::body::Bytes;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use hookflow_engine::login_tokens::LoginOutcome;
use hookflow_engine::model::{Action, Method, Shop, Timestamp, Trigger, TriggerDraft, TriggerId};
use hookflow_engine::EngineError;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::error;

use crate::compat::{
    as_webhook, authenticate_with_login, shop_of_key, webhook_action, webhook_name, AuthFailure,
    Credentials,
};
use crate::AppState;

const PLATFORM: &str = "skladon";

/// An error in Skladon's shape: `{"statusCode", "message"}` with the same HTTP status.
#[derive(Debug)]
struct SkladonError {
    status: StatusCode,
    message: String,
    /// A 429's `Retry-After`, in seconds.
    retry_after: Option<u64>,
}

impl SkladonError {
    fn new(status: StatusCode, message: impl Into<String>) -> SkladonError {
        SkladonError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn not_found(id: &str) -> SkladonError {
        SkladonError::new(StatusCode::NOT_FOUND, format!("Webhook {id} not found"))
    }
}

impl IntoResponse for SkladonError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"statusCode": self.status.as_u16(), "message": self.message})),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<AuthFailure> for SkladonError {
    fn from(failure: AuthFailure) -> SkladonError {
        match failure {
            AuthFailure::Engine(e) => e.into(),
            other => SkladonError::new(other.status(), other.message()),
        }
    }
}

impl From<EngineError> for SkladonError {
    fn from(e: EngineError) -> SkladonError {
        let status = match &e {
            EngineError::Invalid { .. }
            | EngineError::UnknownEventType { .. }
            | EngineError::UnknownShop(_) => StatusCode::BAD_REQUEST,
            EngineError::NotFound(_) | EngineError::NoSuchEventType(_) => StatusCode::NOT_FOUND,
            EngineError::Conflict(_) => StatusCode::CONFLICT,
            EngineError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            EngineError::Store(_) => {
                error!(error = %e, "skladon compat request failed");
                return SkladonError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log",
                );
            }
        };
        SkladonError::new(status, e.to_string())
    }
}

/// `V21CreateWebhook`: every field required.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WebhookIn {
    url: String,
    webhook_type: String,
    active: bool,
    method: String,
}

/// Parses a `V21CreateWebhook` body, answering what is wrong in Skladon's error shape.
fn parse_body(
    body: &Bytes,
    catalog: &hookflow_templating::Catalog,
) -> Result<WebhookIn, SkladonError> {
    let bad = |m: String| SkladonError::new(StatusCode::BAD_REQUEST, m);
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(obj) = &value else {
        return Err(bad("request body must be a JSON object".into()));
    };
    for field in ["url", "webhookType", "active", "method"] {
        if obj.get(field).is_none_or(Value::is_null) {
            return Err(bad(format!("{field} is required")));
        }
    }
    let input: WebhookIn =
        serde_json::from_value(value).map_err(|e| bad(format!("invalid webhook: {e}")))?;
    if input.url.is_empty() {
        return Err(bad(
            "url must be longer than or equal to 1 characters".into()
        ));
    }
    if !matches!(input.method.as_str(), "POST" | "GET") {
        return Err(bad(
            "method must be one of the following values: POST, GET".into()
        ));
    }
    if catalog
        .get(&input.webhook_type)
        .is_none_or(|t| t.catalog != PLATFORM)
    {
        let types: Vec<&str> = catalog
            .iter()
            .filter(|t| t.catalog == PLATFORM)
            .map(|t| t.name.as_str())
            .collect();
        return Err(bad(format!(
            "webhookType must be one of the following values: {}",
            types.join(", ")
        )));
    }
    Ok(input)
}

/// The webhook as Skladon shows it (`V21Webhook`).
async fn webhook_json(
    state: &AppState,
    trigger: &Trigger,
    call_url: &str,
    method: Method,
) -> Result<Value, SkladonError> {
    let deactivated = state
        .engine
        .deactivated_actions()
        .await?
        .into_iter()
        .find(|(a, _)| a.trigger == trigger.id && a.index == 0)
        .map(|(_, at)| at);
    let active = trigger.draft.enabled && deactivated.is_none();
    let mut out = json!({
        "id": trigger.id.0,
        "url": call_url,
        "webhookType": trigger.draft.event_type,
        "active": active,
        "method": method.as_str(),
        "registeredAt": trigger.created_at.to_rfc3339(),
    });
    if !active {
        let since = deactivated.unwrap_or(trigger.updated_at);
        out["unregisteredAt"] = json!(since.to_rfc3339());
    }
    Ok(out)
}

fn envelope(message: &str, data: Value) -> Json<Value> {
    Json(json!({"statusCode": 200, "message": message, "data": data}))
}

/// The shop's webhook `id`, or a 404.
async fn find(state: &AppState, shop: &Shop, id: &str) -> Result<Trigger, SkladonError> {
    let trigger_id: i64 = id.parse().map_err(|_| SkladonError::not_found(id))?;
    let trigger = match state.engine.get_trigger(TriggerId(trigger_id)).await {
        Ok(t) => t,
        Err(EngineError::NotFound(_)) => return Err(SkladonError::not_found(id)),
        Err(e) => return Err(e.into()),
    };
    if as_webhook(&trigger, shop, &state.engine.catalog(), PLATFORM).is_none() {
        return Err(SkladonError::not_found(id));
    }
    Ok(trigger)
}

async fn show(state: &AppState, trigger: &Trigger) -> Result<Value, SkladonError> {
    let Action::CallWebhook(call) = &trigger.draft.actions[0];
    webhook_json(state, trigger, &call.url, call.method).await
}

async fn list_webhooks(
    State(state): State<AppState>,
    credentials: Credentials,
) -> Result<Json<Value>, SkladonError> {
    let shop = authenticate_with_login(&state, &credentials, Some(PLATFORM)).await?;
    let catalog = state.engine.catalog();
    let mut items = Vec::new();
    for trigger in state.engine.list_triggers().await? {
        if let Some(call) = as_webhook(&trigger, &shop, &catalog, PLATFORM) {
            items.push(webhook_json(&state, &trigger, &call.url, call.method).await?);
        }
    }
    Ok(envelope("Webhooks", Value::Array(items)))
}

/// The webhook's method (`parse_body` admits only POST and GET).
fn method_of(method: &str) -> Method {
    if method == "GET" {
        Method::Get
    } else {
        Method::Post
    }
}

async fn create_webhook(
    State(state): State<AppState>,
    credentials: Credentials,
    body: Bytes,
) -> Result<Json<Value>, SkladonError> {
    let shop = authenticate_with_login(&state, &credentials, Some(PLATFORM)).await?;
    let input = parse_body(&body, &state.engine.catalog())?;
    let draft = TriggerDraft {
        name: webhook_name("Skladon", &input.webhook_type, &input.url),
        event_type: input.webhook_type,
        shop_id: Some(shop.id),
        enabled: input.active,
        priority: 5,
        condition: None,
        rules: None,
        actions: vec![webhook_action(&input.url, method_of(&input.method))],
    };
    let trigger = state.engine.create_trigger(draft).await?;
    Ok(envelope("Webhook created", show(&state, &trigger).await?))
}

async fn get_webhook(
    State(state): State<AppState>,
    credentials: Credentials,
    Path(id): Path<String>,
) -> Result<Json<Value>, SkladonError> {
    let shop = authenticate_with_login(&state, &credentials, Some(PLATFORM)).await?;
    let trigger = find(&state, &shop, &id).await?;
    Ok(envelope("Webhook", show(&state, &trigger).await?))
}

/// Replaces the webhook's type, URL, method and state; whatever else the trigger holds (set in
/// hookflow: headers, signing, retry policy) is kept.
async fn update_webhook(
    State(state): State<AppState>,
    credentials: Credentials,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, SkladonError> {
    let shop = authenticate_with_login(&state, &credentials, Some(PLATFORM)).await?;
    let trigger = find(&state, &shop, &id).await?;
    let input = parse_body(&body, &state.engine.catalog())?;
    let mut draft = trigger.draft.clone();
    draft.event_type = input.webhook_type;
    draft.enabled = input.active;
    let Action::CallWebhook(call) = &mut draft.actions[0];
    call.method = method_of(&input.method);
    call.url = input.url;
    if call.method == Method::Get {
        call.payload = None;
    }
    let mut trigger = state.engine.update_trigger(trigger.id, draft).await?;
    if input.active {
        // Active again also brings back an action its retry policy deactivated.
        trigger = state
            .engine
            .set_trigger_active(trigger.id, true, false)
            .await?
            .0;
    }
    Ok(envelope("Webhook updated", show(&state, &trigger).await?))
}

async fn delete_webhook(
    State(state): State<AppState>,
    credentials: Credentials,
    Path(id): Path<String>,
) -> Result<Json<Value>, SkladonError> {
    let shop = authenticate_with_login(&state, &credentials, Some(PLATFORM)).await?;
    let trigger = find(&state, &shop, &id).await?;
    state.engine.delete_trigger(trigger.id).await?;
    Ok(envelope("Webhook deleted", json!(trigger.id.0.to_string())))
}

async fn set_active(
    state: AppState,
    credentials: Credentials,
    id: String,
    active: bool,
) -> Result<Json<Value>, SkladonError> {
    let shop = authenticate_with_login(&state, &credentials, Some(PLATFORM)).await?;
    let trigger = find(&state, &shop, &id).await?;
    let (trigger, _) = state
        .engine
        .set_trigger_active(trigger.id, active, false)
        .await?;
    let message = if active {
        "Webhook activated"
    } else {
        "Webhook deactivated"
    };
    Ok(envelope(message, show(&state, &trigger).await?))
}

async fn activate_webhook(
    State(state): State<AppState>,
    credentials: Credentials,
    Path(id): Path<String>,
) -> Result<Json<Value>, SkladonError> {
    set_active(state, credentials, id, true).await
}

async fn deactivate_webhook(
    State(state): State<AppState>,
    credentials: Credentials,
    Path(id): Path<String>,
) -> Result<Json<Value>, SkladonError> {
    set_active(state, credentials, id, false).await
}

/// `POST /users/login`: a hookflow user's email (also accepted as `username`) and password,
/// with the shop's `x-api-key`, for a bearer token the webhook routes accept beside that key.
/// The token acts for that one shop, as that user (their role applies), for
/// [`LOGIN_TOKEN_TTL`](hookflow_engine::login_tokens::LOGIN_TOKEN_TTL); a new password ends it.
async fn login(
    State(state): State<AppState>,
    credentials: Credentials,
    headers: axum::http::HeaderMap,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> Result<Json<Value>, SkladonError> {
    let shop = shop_of_key(&state, &credentials).await?;
    let bad = |m: &str| SkladonError::new(StatusCode::BAD_REQUEST, m);
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| bad(&format!("request body is not valid JSON: {e}")))?;
    let text = |field: &str| value.get(field).and_then(Value::as_str).map(str::to_owned);
    let email = text("email").or_else(|| text("username")).ok_or_else(|| {
        bad("email is required (the hookflow user's email; \"username\" is read as the same)")
    })?;
    let password = text("password").ok_or_else(|| bad("password is required"))?;

    // Failed logins count with the web UI's sign-ins: per account and per client address.
    let peer = connect.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0 .0.ip());
    let client = state.auth.client(peer, &headers);
    if let Err(locked) = state.auth.sign_ins.check(&email, client) {
        let secs = locked.retry_after_secs();
        return Err(SkladonError {
            retry_after: Some(secs),
            ..SkladonError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many failed logins; try again in {} minutes",
                    secs.div_ceil(60)
                ),
            )
        });
    }
    match state
        .engine
        .login_for_shop(&email, &password, shop.id, PLATFORM)
        .await?
    {
        LoginOutcome::Token(token) => {
            state.auth.sign_ins.succeeded(&email);
            let expires_in = (token.expires_at.0 - Timestamp::now().0) / 1000;
            Ok(envelope(
                "Logged in",
                json!({
                    "token": token.token,
                    "tokenType": "Bearer",
                    "expiresIn": expires_in,
                    "expiresAt": token.expires_at.to_rfc3339(),
                }),
            ))
        }
        LoginOutcome::BadCredentials => {
            state.auth.sign_ins.failed(&email, client);
            Err(SkladonError::new(
                StatusCode::UNAUTHORIZED,
                "Invalid email or password",
            ))
        }
        LoginOutcome::OtherShop => Err(SkladonError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this user may not act for shop {} (the x-api-key's)",
                shop.id
            ),
        )),
    }
}

/// axum's own plain-text rejections (a wrong method, say) in Skladon's error shape.
async fn skladon_errors(request: Request, next: Next) -> Response {
    let (status, message) = match crate::plain_error(next.run(request).await).await {
        Ok(plain) => plain,
        Err(response) => return response,
    };
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_owned()
    } else {
        message
    };
    SkladonError::new(status, message).into_response()
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/users/login", post(login))
        .route("/webhooks", get(list_webhooks).post(create_webhook))
        .route(
            "/webhooks/{id}",
            get(get_webhook).put(update_webhook).delete(delete_webhook),
        )
        .route("/webhooks/{id}/activate", put(activate_webhook))
        .route("/webhooks/{id}/deactivate", put(deactivate_webhook))
        .fallback(|| async { SkladonError::new(StatusCode::NOT_FOUND, "Cannot find this route") })
        .layer(middleware::from_fn(skladon_errors))
}
