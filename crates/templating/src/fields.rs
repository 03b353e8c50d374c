//! Merge-field discovery: which paths a template can read for an event type, and, for a real
//! entity, their current values (nested objects and arrays flattened to paths such as
//! `entity.Lines[0].Sku`, which is also how a template writes them).

use serde::Serialize;
use serde_json::{Map, Value as Json};

use crate::catalog::{EventType, FieldType};
use crate::context::RenderContext;
use crate::escape::json_string_into;
use crate::payload::coerce_field;

/// Most fields listed for one entity; an entity with more is cut short (and says so).
pub const MAX_LISTED_FIELDS: usize = 2000;

/// The JSON type of a merge field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    Integer,
    Number,
    String,
    Boolean,
    Null,
    Array,
    Object,
}

impl From<FieldType> for ValueType {
    fn from(ty: FieldType) -> ValueType {
        match ty {
            FieldType::Integer => ValueType::Integer,
            FieldType::Number => ValueType::Number,
            FieldType::String => ValueType::String,
            FieldType::Boolean => ValueType::Boolean,
        }
    }
}

impl ValueType {
    fn of(value: &Json) -> ValueType {
        match value {
            Json::Null => ValueType::Null,
            Json::Bool(_) => ValueType::Boolean,
            Json::Number(n) if n.is_i64() || n.is_u64() => ValueType::Integer,
            Json::Number(_) => ValueType::Number,
            Json::String(_) => ValueType::String,
            Json::Array(_) => ValueType::Array,
            Json::Object(_) => ValueType::Object,
        }
    }
}

/// One path a template can read.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MergeField {
    /// As written in a template, e.g. `entity.Lines[0].Sku`.
    pub path: String,
    #[serde(rename = "type")]
    pub ty: ValueType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The current value (only when listing a real entity's fields).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<serde_json::Value>)]
    pub value: Option<Json>,
}

impl MergeField {
    fn new(path: impl Into<String>, ty: ValueType, description: &str) -> MergeField {
        MergeField {
            path: path.into(),
            ty,
            description: Some(description.to_owned()),
            value: None,
        }
    }
}

/// The fields every event has, before the entity's.
fn event_fields() -> Vec<MergeField> {
    vec![
        MergeField::new("event.id", ValueType::Integer, "The event's id in hookflow"),
        MergeField::new("event.type", ValueType::String, "The event type"),
        MergeField::new(
            "event.occurredAt",
            ValueType::String,
            "When the event happened (RFC 3339)",
        ),
        MergeField::new(
            "event.entityId",
            ValueType::String,
            "The id of the entity the event is about",
        ),
        MergeField::new("entityId", ValueType::String, "Same as event.entityId"),
        MergeField::new("shop.id", ValueType::Integer, "The shop's id"),
        MergeField::new("shop.name", ValueType::String, "The shop's name"),
    ]
}

/// Every field a template can read for `event_type`, from the catalog: the event's and shop's
/// fields, then `entity.<field>` (as the backend sends it) and `entityData.<field>` (typed as
/// the default payload types it) for each catalog field. A type with an entity schema also
/// lists the paths its schema describes (`entity.products[0].sku`), nested ones included.
pub fn type_fields(event_type: &EventType) -> Vec<MergeField> {
    let mut fields = event_fields();
    for field in &event_type.fields {
        fields.push(MergeField::new(
            format!("entity{}", key_segment(&field.name)),
            field.ty.into(),
            &field.description,
        ));
    }
    if let Some(schema) = &event_type.schema {
        let before = fields.len();
        schema_paths(schema, "entity", 0, &mut fields);
        // Catalog fields come first and keep their descriptions; the schema adds the rest.
        let listed: Vec<String> = fields[..before].iter().map(|f| f.path.clone()).collect();
        let mut i = before;
        while i < fields.len() {
            if listed.contains(&fields[i].path) {
                fields.remove(i);
            } else {
                i += 1;
            }
        }
    }
    for field in &event_type.fields {
        fields.push(MergeField::new(
            format!("entityData{}", key_segment(&field.name)),
            field.ty.into(),
            &format!(
                "{} (as in the default payload: null when missing)",
                field.description
            ),
        ));
    }
    fields
}

/// How deep schema-derived paths go; deeper values are still readable, just not listed.
const MAX_SCHEMA_DEPTH: usize = 4;

/// Appends the paths a JSON Schema's `properties` (and array `items`) describe below `path`.
fn schema_paths(schema: &Json, path: &str, depth: usize, out: &mut Vec<MergeField>) {
    if depth >= MAX_SCHEMA_DEPTH || out.len() >= MAX_LISTED_FIELDS {
        return;
    }
    if let Some(Json::Object(properties)) = schema.get("properties") {
        for (key, sub) in properties {
            let sub_path = format!("{path}{}", key_segment(key));
            let ty = schema_type(sub);
            let description = sub
                .get("description")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_owned();
            out.push(MergeField {
                path: sub_path.clone(),
                ty,
                description: Some(description),
                value: None,
            });
            schema_paths(sub, &sub_path, depth + 1, out);
        }
    }
    if let Some(items) = schema.get("items") {
        if items.is_object() {
            schema_paths(items, &format!("{path}[0]"), depth + 1, out);
        }
    }
}

/// The first non-null type a schema names (`object` when it names none).
pub(crate) fn schema_type(schema: &Json) -> ValueType {
    let names: Vec<&str> = match schema.get("type") {
        Some(Json::String(t)) => vec![t.as_str()],
        Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    };
    match names.into_iter().find(|t| *t != "null") {
        Some("integer") => ValueType::Integer,
        Some("number") => ValueType::Number,
        Some("string") => ValueType::String,
        Some("boolean") => ValueType::Boolean,
        Some("array") => ValueType::Array,
        Some("object") => ValueType::Object,
        _ if schema.get("properties").is_some() => ValueType::Object,
        _ => ValueType::Null,
    }
}

/// The fields of a real event with their values: the entity flattened to leaf paths (empty
/// objects and arrays are leaves too). The flag says whether the list was cut at
/// [`MAX_LISTED_FIELDS`].
pub fn entity_fields(ctx: &RenderContext) -> (Vec<MergeField>, bool) {
    let values = [
        Json::from(ctx.event_id),
        Json::from(ctx.event_type.name.as_str()),
        Json::from(ctx.occurred_at.as_str()),
        Json::from(ctx.entity_id.as_str()),
        Json::from(ctx.entity_id.as_str()),
        Json::from(ctx.shop_id),
        Json::from(ctx.shop_name.as_str()),
    ];
    let mut fields = event_fields();
    for (field, value) in fields.iter_mut().zip(values) {
        field.value = Some(value);
    }
    let mut listing = Listing {
        fields,
        truncated: false,
        event_type: &ctx.event_type,
    };
    listing.object("entity", &ctx.entity, true);
    for field in &ctx.event_type.fields {
        let value = coerce_field(field.ty, ctx.entity.get(&field.name));
        listing.push(
            format!("entityData{}", key_segment(&field.name)),
            field.ty.into(),
            Some(field.description.clone()),
            value,
        );
    }
    (listing.fields, listing.truncated)
}

struct Listing<'a> {
    fields: Vec<MergeField>,
    truncated: bool,
    event_type: &'a EventType,
}

impl Listing<'_> {
    fn push(&mut self, path: String, ty: ValueType, description: Option<String>, value: Json) {
        if self.fields.len() >= MAX_LISTED_FIELDS {
            self.truncated = true;
            return;
        }
        self.fields.push(MergeField {
            path,
            ty,
            description,
            value: Some(value),
        });
    }

    fn object(&mut self, path: &str, map: &Map<String, Json>, top: bool) {
        for (key, value) in map {
            let description = top
                .then(|| self.event_type.fields.iter().find(|f| &f.name == key))
                .flatten()
                .map(|f| f.description.clone());
            self.value(format!("{path}{}", key_segment(key)), value, description);
        }
    }

    fn value(&mut self, path: String, value: &Json, description: Option<String>) {
        if self.truncated {
            return;
        }
        match value {
            Json::Object(map) if !map.is_empty() => self.object(&path, map, false),
            Json::Array(items) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    self.value(format!("{path}[{i}]"), item, None);
                }
            }
            leaf => self.push(path, ValueType::of(leaf), description, leaf.clone()),
        }
    }
}

/// `.Name` for keys a template can write after a dot, `["odd key"]` for the rest.
fn key_segment(key: &str) -> String {
    let mut chars = key.chars();
    let identifier = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if identifier {
        format!(".{key}")
    } else {
        let mut out = String::from("[");
        // Writing into a String cannot fail.
        let _ = json_string_into(&mut out, key);
        out.push(']');
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::catalog::Catalog;
    use serde_json::json;

    #[test]
    fn type_fields_list_event_shop_and_catalog_fields() {
        let catalog = Catalog::builtin().unwrap();
        let fields = type_fields(catalog.get("OrderChanged").unwrap());
        let paths: Vec<_> = fields.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "event.id",
                "event.type",
                "event.occurredAt",
                "event.entityId",
                "entityId",
                "shop.id",
                "shop.name",
                "entity.OrderId",
                "entity.OrderCode",
                "entityData.OrderId",
                "entityData.OrderCode"
            ]
        );
        assert_eq!(fields[7].ty, ValueType::Integer);
        assert!(fields[7].description.as_deref().unwrap().contains("order"));
        assert!(fields.iter().all(|f| f.value.is_none()));
    }

    #[test]
    fn entities_are_flattened_to_template_paths() {
        let catalog = Catalog::builtin().unwrap();
        let entity = json!({
            "OrderId": "42", "Lines": [{"Sku": "A", "Qty": 2}, {"Sku": "B", "Tags": []}],
            "Customer": {"Name": "Zoë", "odd key": 1.5}, "Empty": {}, "Gone": null
        });
        let ctx = RenderContext {
            event_id: 3,
            event_type: catalog.shared("OrderChanged").unwrap(),
            occurred_at: "2026-01-02T03:04:05Z".into(),
            entity_id: "42".into(),
            shop_id: 1,
            shop_name: "Main".into(),
            entity: Arc::new(entity.as_object().unwrap().clone()),
            previous: None,
        };
        let (fields, truncated) = entity_fields(&ctx);
        assert!(!truncated);
        let got: Vec<_> = fields
            .iter()
            .map(|f| (f.path.as_str(), f.ty, f.value.clone().unwrap()))
            .collect();
        let find = |path: &str| got.iter().find(|(p, _, _)| *p == path).cloned();
        assert_eq!(
            find("event.id"),
            Some(("event.id", ValueType::Integer, json!(3)))
        );
        assert_eq!(
            find("shop.name"),
            Some(("shop.name", ValueType::String, json!("Main")))
        );
        assert_eq!(
            find("entity.OrderId"),
            Some(("entity.OrderId", ValueType::String, json!("42")))
        );
        assert_eq!(
            find("entity.Lines[0].Sku"),
            Some(("entity.Lines[0].Sku", ValueType::String, json!("A")))
        );
        assert_eq!(find("entity.Lines[0].Qty").unwrap().1, ValueType::Integer);
        assert_eq!(find("entity.Lines[1].Tags").unwrap().2, json!([]));
        assert_eq!(
            find("entity.Customer[\"odd key\"]").unwrap().1,
            ValueType::Number
        );
        assert_eq!(find("entity.Empty").unwrap().1, ValueType::Object);
        assert_eq!(find("entity.Gone").unwrap().1, ValueType::Null);
        assert_eq!(find("entityData.OrderId").unwrap().2, json!(42));
        assert_eq!(find("entityData.OrderCode").unwrap().2, json!(null));
        assert!(fields
            .iter()
            .any(|f| f.path == "entity.OrderId" && f.description.is_some()));
    }
}
