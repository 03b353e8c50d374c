//! The OpenAPI 3.1 document of `/api/v1`, assembled from the code so that it cannot drift from
//! the handlers: every route is registered through `utoipa-axum`'s `routes!`, which takes the
//! method and path from the handler's `#[utoipa::path]` (so a route without a description does
//! not exist), and every schema is derived from the type the API serialises.
//!
//! What the derives cannot see is added here, in one place:
//! - the shapes of bodies that handlers parse by hand ([`EventIn`]) and of answers they build
//!   as JSON values ([`Requeued`], [`ActionState`], …);
//! - the error body, the bearer scheme, and the errors every operation can answer
//!   ([`CommonErrors`]).
//!
//! `GET /api/v1/openapi.json` serves it (no token needed: it holds no data), `GET /docs` a
//! reference page rendered from it (`crate::reference`), and `docs/openapi.json` is a committed
//! copy that a test compares with the served one.

use std::sync::OnceLock;

use crate::v1::events::IngestedOut;
use axum::http::header::CONTENT_TYPE;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, Schema};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

/// The name of the bearer security scheme in the document (also in `security` below).
const BEARER: &str = "bearerAuth";

/// The document's fixed parts; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookflow",
        description = "A self-hosted trigger engine for commerce platforms: backends post \
            domain events, triggers turn them into signed webhook calls, delivered from a \
            durable queue with retries.\n\nEvery operation needs a caller: \
            `Authorization: Bearer <token>` with the `--admin-token` or a user's API token \
            (`POST /api/v1/tokens`), or the web UI's session cookie; without one every \
            operation answers 401, whether or not the server has an `--admin-token`. Errors are `{\"error\": {\"code\", \"message\", \
            \"field\"?}}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    security(("bearerAuth" = [])),
    components(schemas(ErrorBody)),
    tags(
        (name = "events", description = "Ingest domain events; the event log and resending."),
        (name = "triggers", description = "When an event happens (and a condition holds), call a webhook."),
        (name = "queue", description = "The webhook calls: list, inspect with attempts, retry, cancel, resend."),
        (name = "shops", description = "The tenants events and triggers belong to."),
        (name = "event-types", description = "The event catalogs: types (shipped and custom), default payloads, merge fields."),
        (name = "payloads", description = "Render a payload template before saving it."),
        (name = "alerts", description = "Actions whose calls fail for good."),
        (name = "users", description = "The caller, user accounts and API tokens."),
    )
)]
struct ApiDoc;

/// The whole document: the fixed parts above and every `/api/v1` route of the router.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) =
        utoipa_axum::router::OpenApiRouter::<crate::AppState>::with_openapi(ApiDoc::openapi())
            .nest("/api/v1", crate::v1::router())
            .split_for_parts();
    // After the routes are in: their schemas and operations are what these modify.
    for modifier in [&Security as &dyn Modify, &CommonErrors] {
        modifier.modify(&mut doc);
    }
    doc
}

/// The document as served and committed: pretty JSON with a final newline.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut text = document()
            .to_pretty_json()
            .expect("an OpenAPI document always serialises");
        text.push('\n');
        text
    })
}

/// `GET /api/v1/openapi.json`.
pub(crate) async fn openapi_json() -> Response {
    ([(CONTENT_TYPE, "application/json")], document_json()).into_response()
}

/// `GET /docs`: the reference page, rendered once from the document.
pub(crate) async fn docs_page() -> Html<&'static str> {
    static PAGE: OnceLock<String> = OnceLock::new();
    Html(PAGE.get_or_init(|| {
        let value: serde_json::Value = serde_json::from_str(document_json())
            .expect("the document is JSON: it was just serialised");
        crate::reference::render(&value)
    }))
}

/// An error answer.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "validation_failed", "message": "actions[0].url: must be an absolute http or https URL", "field": "actions[0].url"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `validation_failed`, `unknown_event_type`, `unknown_shop`,
    /// `method_not_allowed`, `payload_too_large`, `unsupported_media_type`, `internal`,
    /// `unavailable`.
    pub code: String,
    /// For people: what is wrong and, where it helps, how to fix it.
    pub message: String,
    /// The field at fault, as a path into the request (`actions[0].url`, `[3].shopId`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// One event as a backend sends it (`POST /api/v1/events` takes one or an array).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventIn {
    /// A type of the catalog (`GET /api/v1/event-types`).
    pub event_type: String,
    /// The shop the event happened in.
    #[schema(minimum = 1)]
    pub shop_id: i64,
    /// The entity the event is about (1 to 255 characters, or an integer).
    #[schema(schema_with = entity_id_schema)]
    pub entity_id: serde_json::Value,
    /// The entity as the backend sees it now; merge fields read it.
    #[schema(value_type = Option<Object>)]
    pub entity_data: Option<serde_json::Value>,
    /// The entity before the change, when the backend knows it: rules on what changed
    /// (`changed`, `changedTo`, `changedFrom`) compare with it, and are false without it.
    #[schema(value_type = Option<Object>)]
    pub previous_data: Option<serde_json::Value>,
    /// When it happened; default: when it was received.
    #[schema(value_type = Option<crate::v1::schema::Timestamp>)]
    pub occurred_at: Option<String>,
    /// A repeated key in the same shop returns the first answer and queues nothing.
    #[schema(min_length = 1, max_length = 255)]
    pub idempotency_key: Option<String>,
}

/// An event's entity id: 1 to 255 characters, or an int64.
fn entity_id_schema() -> Schema {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(hookflow_engine::event::MAX_ENTITY_ID)),
        )
        .item(ObjectBuilder::new().schema_type(Type::Integer).format(Some(
            utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64),
        )))
        .description(Some(
            "The entity the event is about: 1 to 255 characters, or an integer.",
        ))
        .into()
}

/// The body of `POST /api/v1/events`: one event, or an array of 1 to 1000.
pub struct EventsIn;

impl utoipa::PartialSchema for EventsIn {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(Ref::from_schema_name("EventIn"))
            .item(
                utoipa::openapi::schema::ArrayBuilder::new()
                    .items(Ref::from_schema_name("EventIn"))
                    .min_items(Some(1))
                    .max_items(Some(hookflow_engine::event::MAX_EVENTS_PER_REQUEST)),
            )
            .description(Some("One event, or an array of 1 to 1000."))
            .into()
    }
}

impl ToSchema for EventsIn {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push(("EventIn".into(), EventIn::schema()));
        EventIn::schemas(schemas);
    }
}

/// The answer to a batch of events.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchIngested {
    /// One per event, in order.
    pub events: Vec<IngestedOut>,
    pub calls_queued: u32,
}

/// The answer to `POST /api/v1/events`: `Ingested` for one event, `BatchIngested` for an
/// array.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum IngestAnswer {
    One(IngestedOut),
    Batch(BatchIngested),
}

/// How many calls were queued again.
#[derive(Serialize, ToSchema)]
pub struct Requeued {
    pub requeued: u64,
}

/// An action's state after activating or deactivating it.
#[derive(Serialize, ToSchema)]
pub struct ActionState {
    pub active: bool,
    /// Activation with `?requeueFailed=true`: the calls queued again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requeued: Option<u64>,
}

/// An action's current HMAC secret.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevealedSecret {
    /// `whsec_…` (Standard Webhooks), or the receiver's own secret (`hubSha256`).
    pub hmac_secret: Option<String>,
}

/// A trigger after `PUT /api/v1/triggers/{id}/activate`: the trigger and the calls queued
/// again.
#[derive(Serialize, ToSchema)]
pub struct TriggerActivated {
    #[serde(flatten)]
    pub trigger: crate::v1::triggers::TriggerOut,
    pub requeued: u64,
}

/// The caller of `GET /api/v1/me`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// `null` for the `--admin-token`, which belongs to no user.
    #[schema(value_type = Option<crate::v1::schema::UserId>)]
    pub id: Option<hookflow_engine::model::UserId>,
    pub email: String,
    pub role: crate::v1::users::RoleWire,
    #[schema(value_type = Vec<crate::v1::schema::ShopId>)]
    pub shops: Vec<hookflow_engine::model::ShopId>,
    /// Whether the role may write.
    pub can_write: bool,
}

/// A new user, with the password hookflow generated (shown once) when none was given.
#[derive(Serialize, ToSchema)]
pub struct CreatedUser {
    #[serde(flatten)]
    pub user: crate::v1::users::UserOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A new API token, with its secret (shown once: only a digest is kept).
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub api_token: crate::v1::users::ApiTokenOut,
    /// `hf_…`: send it as `Authorization: Bearer <token>`.
    pub token: String,
}

/// `{"items": [...]}` answers (`crate::v1::Items`), one schema per item type: a derived
/// generic schema would copy the item's schema into every list instead of referring to it.
macro_rules! list_schema {
    ($($name:ident of $item:ty),* $(,)?) => {$(
        #[doc = concat!("A list of `", stringify!($item), "`.")]
        #[derive(Serialize, ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
        }
    )*};
}

list_schema!(
    AlertList of crate::v1::alerts::AlertOut,
    ApiTokenList of crate::v1::users::ApiTokenOut,
    CatalogInfoList of hookflow_templating::CatalogInfo,
    UserList of crate::v1::users::UserOut,
    EventTypeList of hookflow_templating::EventType,
    ShopList of crate::v1::shops::ShopOut,
    TriggerList of crate::v1::triggers::TriggerOut,
);

/// Adds the bearer scheme.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The `--admin-token`, or a user's API token (`hf_…`), as \
                         `Authorization: Bearer <token>`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The errors any operation can answer, added to each: 400 (a malformed path segment, query
/// or body), 401 (no caller: a missing or unknown token), 403 (a role that may not)
/// and 500. Operations declare
/// the others they answer (404, 409, 422, 503) themselves.
struct CommonErrors;

impl CommonErrors {
    fn response(description: &str) -> utoipa::openapi::Response {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    }
}

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let common = [
            (
                "400",
                "A path segment, query parameter or body that cannot be read.",
            ),
            (
                "401",
                "No caller: a bearer token (the `--admin-token` or a user's API token) or the web \
                 UI's session cookie is required, and none was sent or it matches nothing.",
            ),
            ("500", "An internal error; the server log has the detail."),
        ];
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                for (status, description) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::T(Self::response(description)));
                }
            }
        }
    }
}
