//! Request bodies: parsed by hand from bytes so that every error says what is wrong and where,
//! in the API's error shape (axum's own rejections are plain text).
//!
//! Integers are read as JSON Schema defines them: `6.0` is the integer 6. serde would refuse
//! it for an integer field, so before a body is deserialised, every number with a zero
//! fraction that stands where the OpenAPI document says `integer` is rewritten as that integer
//! ([`integers_as_documented`]). The document is the guide, so free-form data (an entity's
//! fields, a JSON Schema) keeps its numbers exactly as sent.

use std::sync::OnceLock;

use axum::body::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};
use utoipa::ToSchema;

use crate::error::ApiError;

/// Parses any JSON document.
pub(crate) fn parse_value(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "the request body is empty; send a JSON document".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "invalid JSON at line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}

/// Parses a typed body; a shape error names the path of the field (e.g. `actions[0].method`).
pub(crate) fn parse<T: DeserializeOwned + ToSchema>(body: &Bytes) -> Result<T, ApiError> {
    parse_from(parse_value(body)?)
}

/// Like [`parse`], from an already parsed document.
pub(crate) fn parse_from<T: DeserializeOwned + ToSchema>(mut value: Value) -> Result<T, ApiError> {
    // Every typed body is an object; serde would also fill a struct from an array by position.
    if !value.is_object() {
        return Err(ApiError::BadRequest(format!(
            "the body must be a JSON object ({})",
            T::name()
        )));
    }
    integers_as_documented(&mut value, &T::name());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::BadRequest(inner.to_string())
        } else {
            ApiError::BadRequest(format!("{path}: {inner}"))
        }
    })
}

/// Rewrites the integral numbers of `value` (`6.0`, `1e3`) that stand where the document's
/// schema `schema_name` says `integer` as integers.
pub(crate) fn integers_as_documented(value: &mut Value, schema_name: &str) {
    let schemas = schemas();
    if let Some(schema) = schemas.get(schema_name) {
        integers(value, schema, schemas, 0);
    }
}

/// The document's `components.schemas`, parsed once.
fn schemas() -> &'static Map<String, Value> {
    static SCHEMAS: OnceLock<Map<String, Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let mut document: Value = serde_json::from_str(crate::openapi::document_json())
            .expect("the document is JSON: it was serialised from a value");
        match document["components"]["schemas"].take() {
            Value::Object(schemas) => schemas,
            _ => Map::new(),
        }
    })
}

/// Schemas refer to each other; no request body nests deeper than this.
const MAX_DEPTH: usize = 32;

fn integers(value: &mut Value, schema: &Value, schemas: &Map<String, Value>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let schema = resolve(schema, schemas);
    if let Value::Number(n) = value {
        if allows_integer(schema, schemas, depth) {
            if let Some(integer) = integral(n) {
                *n = integer;
            }
        }
        return;
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for branch in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            integers(value, branch, schemas, depth + 1);
        }
    }
    match value {
        Value::Object(object) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, field) in object.iter_mut() {
                if let Some(field_schema) = properties.and_then(|p| p.get(key)).or(additional) {
                    integers(field, field_schema, schemas, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    integers(item, item_schema, schemas, depth + 1);
                }
            }
        }
        _ => {}
    }
}

fn resolve<'a>(schema: &'a Value, schemas: &'a Map<String, Value>) -> &'a Value {
    let mut schema = schema;
    for _ in 0..MAX_DEPTH {
        let Some(name) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
        else {
            break;
        };
        match schemas.get(name) {
            Some(target) => schema = target,
            None => break,
        }
    }
    schema
}

/// Whether `schema` (or one of its branches) says `integer` and none says `number`, which
/// would take the value as it is.
fn allows_integer(schema: &Value, schemas: &Map<String, Value>, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let schema = resolve(schema, schemas);
    let says = |t: &str| match schema.get("type") {
        Some(Value::String(s)) => s == t,
        Some(Value::Array(types)) => types.iter().any(|x| x == t),
        _ => false,
    };
    if says("number") {
        return false;
    }
    says("integer")
        || ["oneOf", "anyOf", "allOf"].iter().any(|key| {
            schema
                .get(*key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|branch| allows_integer(branch, schemas, depth + 1))
        })
}

/// `n` as an integer when it is a float with no fraction that fits one.
fn integral(n: &Number) -> Option<Number> {
    if n.is_i64() || n.is_u64() {
        return None;
    }
    let f = n.as_f64()?;
    if !f.is_finite() || f.fract() != 0.0 {
        return None;
    }
    // A literal out of range rounds to at least 2^63 (2^64) in magnitude, which the bounds
    // leave out: -2^63 itself is excluded, as -9223372036854775809 rounds to it.
    if f > -9_223_372_036_854_775_808.0 && f < 0.0 {
        Some(Number::from(f as i64))
    } else if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
        Some(Number::from(f as u64))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn document(schemas: Value) -> Map<String, Value> {
        match schemas {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn integral_numbers_become_integers_where_the_schema_says_integer() {
        let schemas = document(json!({
            "Id": {"type": "integer", "format": "int64"},
            "Thing": {"type": "object", "properties": {
                "id": {"$ref": "#/components/schemas/Id"},
                "priority": {"type": ["integer", "null"]},
                "ratio": {"type": "number"},
                "entityId": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                "shops": {"type": "array", "items": {"$ref": "#/components/schemas/Id"}},
                "data": {"type": "object"}
            }}
        }));
        let mut value = json!({"id": 6.0, "priority": 1e1, "ratio": 2.0, "entityId": -3.0,
                               "shops": [1.0, 2.5], "data": {"Total": 6.0}});
        integers(&mut value, &schemas["Thing"], &schemas, 0);
        assert_eq!(
            value.to_string(),
            json!({"id": 6, "priority": 10, "ratio": 2.0,
            "entityId": -3, "shops": [1, 2.5], "data": {"Total": 6.0}})
            .to_string()
        );
    }

    #[test]
    fn only_numbers_that_fit_an_integer_change() {
        assert_eq!(
            integral(&Number::from_f64(6.0).unwrap()),
            Some(Number::from(6))
        );
        assert_eq!(integral(&Number::from_f64(6.5).unwrap()), None);
        assert_eq!(integral(&Number::from_f64(1e300).unwrap()), None);
        assert_eq!(integral(&Number::from(7)), None);
        // -9223372036854775809 is no i64; as a float it rounds to -2^63, which stays a float.
        let below: Value = serde_json::from_str("-9223372036854775809").unwrap();
        assert_eq!(integral(below.as_number().unwrap()), None);
    }

    #[test]
    fn a_body_with_integers_written_as_floats_parses_through_the_document() {
        // The real document: a trigger's priority and shop written as floats.
        let mut value = json!({"name": "t", "eventType": "OrderChanged", "shopId": 1.0,
                               "priority": 5.0, "actions": []});
        integers_as_documented(&mut value, "TriggerIn");
        assert_eq!(value["shopId"], json!(1));
        assert_eq!(value["priority"], json!(5));
    }
}
