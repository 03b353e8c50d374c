//! Templating: what an event looks like and what a webhook call carries.
//!
//! # Layout
//! - [`catalog`]: the event catalogs, loaded from data under `templates/catalogs/`.
//! - [`payload`]: mime types and the default `entityData` payload.
//! - [`render`]: the minijinja environment that compiles trigger conditions and payload
//!   templates, renders them, and checks the output is valid for its mime type.
//!
//! This crate does no I/O besides parsing the catalog text it is handed; it knows nothing
//! about storage, HTTP or queues.

pub mod catalog;
pub mod payload;
pub mod render;

pub use catalog::{Catalog, CatalogError, EventType, Field, FieldType};
/// A rendered merge-field context (minijinja value), built once per event.
pub use minijinja::Value as ContextValue;
pub use payload::{default_payload, entity_data, MimeType, UnknownMimeType};
pub use render::{RenderContext, TemplateError, TemplateSet};
