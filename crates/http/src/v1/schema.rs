//! How the domain's value types read in the OpenAPI document. The engine knows nothing of
//! OpenAPI, so its ids and `Timestamp` carry no schema; an API type's field of such a type
//! names one of these in `#[schema(value_type = …)]`, and the document shows one shared,
//! described component per value type (`ShopId`, `Timestamp`, …). Only the schema lives here:
//! the JSON is the domain type's own (an id is its number, a time RFC 3339 with milliseconds).

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

macro_rules! id_schema {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(ToSchema)]
        #[allow(dead_code)] // a schema only: never built
        pub(crate) struct $name(i64);
    };
}

id_schema!(
    /// A shop (tenant): events and triggers belong to one.
    ShopId
);
id_schema!(
    /// A trigger.
    TriggerId
);
id_schema!(
    /// A stored event.
    EventId
);
id_schema!(
    /// A queued webhook call.
    CallId
);
id_schema!(
    /// A user account (of the web UI and the API).
    UserId
);
id_schema!(
    /// A user's API token.
    ApiTokenId
);

/// A point in time: an RFC 3339 date-time in UTC with milliseconds.
pub(crate) struct Timestamp;

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .examples([serde_json::json!("2026-11-27T10:20:30.123Z")])
            .into()
    }
}

impl ToSchema for Timestamp {}
