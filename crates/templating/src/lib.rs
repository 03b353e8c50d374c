//! Templating: what an event looks like and what a webhook call carries.
//!
//! # Layout
//! - [`catalog`]: the event catalogs (ShopCtrl, Skladon, Flow Retail, Front Systems), loaded
//!   from data under `templates/catalogs/`, plus admins' custom types; entity schemas.
//! - `payload`: mime types and the default payload in each catalog's shape.
//! - `context`: the merge fields a template sees (`event`, `shop`, `entity`, `entityData`,
//!   `entityId`), as lazy minijinja objects over the entity's JSON.
//! - [`render`]: the minijinja environment that compiles trigger conditions and templates
//!   (payload bodies, URLs, header values), renders them under a fuel budget and an output cap,
//!   and checks the output is valid for its kind.
//! - `escape`: how inserted values are escaped per kind (JSON, XML, text, URL, header).
//! - `filters`: `tojson`, `xml_escape`, `datetimeformat`, `numberformat`, `default`, ...
//! - `validate`: JSON and XML well-formedness, header values.
//! - `locate`: which template line produced an invalid byte of output.
//! - `budget`: what one render may spend (bytes of values it creates, loop iterations, time),
//!   which minijinja's fuel and the output cap cannot see.
//! - `rewrite`: a template's source rewritten so operators and loops charge the budget.
//! - [`rules`]: structured conditions (groups, typed operators, list and change operators),
//!   checked against an event type, evaluated natively with a trace, and compiled to the
//!   equivalent expression.
//! - [`fields`]: merge-field discovery for an event type or a real entity.
//! - [`schema`]: the JSON Schema of an event type's default payload.
//!
//! This crate does no I/O besides parsing the catalog text it is handed; it knows nothing
//! about storage, HTTP or queues.

mod budget;
pub mod catalog;
mod context;
mod escape;
pub mod fields;
mod filters;
mod locate;
mod payload;
pub mod render;
mod rewrite;
pub mod rules;
pub mod schema;
mod validate;

pub use catalog::{
    check_schema, example_entity, Catalog, CatalogError, CatalogInfo, EntityMismatch, EventType,
    Field, FieldType, PayloadShape, DEFAULT_CATALOG,
};
pub use context::RenderContext;
/// A rendered merge-field context (minijinja value), built once per event.
pub use minijinja::Value as ContextValue;
pub use payload::{coerce_field, default_payload, entity_data, MimeType, UnknownMimeType};
pub use render::{
    ConditionId, TemplateError, TemplateErrorKind, TemplateId, TemplateKind, TemplateSet,
};
