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

/// A trigger's rule tree: a group (`all`, `any`: a list of rules; `not`: one rule) or a
/// clause. Recursive, so written by hand.
pub(crate) struct Rule;

impl PartialSchema for Rule {
    fn schema() -> RefOr<Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder};
        use utoipa::openapi::Ref;
        let rule = || RefOr::Ref(Ref::from_schema_name("Rule"));
        let group = |key: &str, description: &str| {
            ObjectBuilder::new()
                .property(key, ArrayBuilder::new().items(rule()).min_items(Some(1)))
                .required(key)
                .additional_properties(Some(
                    utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
                ))
                .description(Some(description))
        };
        let ops: Vec<&str> = hookflow_templating::rules::Op::ALL
            .iter()
            .map(|op| op.as_str())
            .collect();
        let kinds: Vec<&str> = hookflow_templating::rules::Kind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect();
        let clause = ObjectBuilder::new()
            .description(Some(
                "A clause: `field` (`entity.Status`; inside a `where`, relative to the item), \
                 `op`, and a `value` whose shape the operator decides (none for isEmpty, \
                 isNotEmpty and changed; a list for in and notIn; `[low, high]` for between \
                 and countBetween); `where` for anyItem, allItems and noItem; `type` for a \
                 field the event type does not describe (or `date` for a text field of dates).",
            ))
            .property(
                "field",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1)),
            )
            .required("field")
            .property(
                "op",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(ops)),
            )
            .required("op")
            .property(
                "value",
                ObjectBuilder::new().description(Some("Any JSON value the operator takes.")),
            )
            .property("where", rule())
            .property(
                "type",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(kinds)),
            )
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ));
        let not = ObjectBuilder::new()
            .property("not", rule())
            .required("not")
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ))
            .description(Some("Holds when its rule does not."));
        OneOfBuilder::new()
            .item(group("all", "Holds when every rule holds."))
            .item(group("any", "Holds when at least one rule holds."))
            .item(not)
            .item(clause)
            .examples([serde_json::json!({"all": [
                {"field": "entity.Status", "op": "equals", "value": "Shipped"},
                {"any": [
                    {"field": "entity.Total", "op": "greaterThan", "value": 100},
                    {"field": "entity.Lines", "op": "anyItem",
                     "where": {"all": [{"field": "Sku", "op": "startsWith", "value": "GIFT-"}]}}
                ]}
            ]})])
            .into()
    }
}

impl ToSchema for Rule {}
