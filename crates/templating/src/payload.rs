//! Payload mime types and the default payload an action without a template sends.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::catalog::{EventType, FieldType, PayloadShape};

/// The mime type of a payload template; it decides escaping and validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum MimeType {
    #[serde(rename = "application/json")]
    Json,
    #[serde(rename = "application/xml")]
    Xml,
    #[serde(rename = "text/plain")]
    Text,
}

/// A mime type hookflow cannot render.
#[derive(Debug, thiserror::Error)]
#[error("unsupported mime type {0:?}: use application/json, application/xml or text/plain")]
pub struct UnknownMimeType(pub String);

impl MimeType {
    pub fn as_str(self) -> &'static str {
        match self {
            MimeType::Json => "application/json",
            MimeType::Xml => "application/xml",
            MimeType::Text => "text/plain",
        }
    }

    /// The `Content-Type` header a call with this payload carries.
    pub fn content_type(self) -> &'static str {
        match self {
            MimeType::Json => "application/json; charset=utf-8",
            MimeType::Xml => "application/xml; charset=utf-8",
            MimeType::Text => "text/plain; charset=utf-8",
        }
    }
}

impl fmt::Display for MimeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MimeType {
    type Err = UnknownMimeType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "application/json" => Ok(MimeType::Json),
            "application/xml" | "text/xml" => Ok(MimeType::Xml),
            "text/plain" => Ok(MimeType::Text),
            _ => Err(UnknownMimeType(s.to_owned())),
        }
    }
}

/// Builds the default payload of an event, in its type's [`PayloadShape`]:
///
/// - envelope: `{"eventId", "eventType", "shopId", "occurredAt", "entityData": {<catalog
///   fields>}}`. `entityData` holds exactly the catalog's fields for the type, in catalog order,
///   each taken from the entity the backend sent (converted to the catalog's type, see
///   [`coerce_field`]) or `null`: receivers can rely on the shape. A custom type sends the
///   entity as is (validated at ingest against its schema, if it has one).
/// - entity: the entity as the backend sent it (validated at ingest against the type's schema).
/// - reference: `{"action": <type>, <each reference>: <the entity's value>}` (`null` where the
///   entity lacks one); a custom type without references copies the whole entity.
///
/// Each is described by [`crate::schema::default_payload_schema`].
pub fn default_payload(
    event_id: i64,
    event_type: &EventType,
    shop_id: i64,
    occurred_at: &str,
    entity: &Map<String, Value>,
) -> String {
    match event_type.payload {
        PayloadShape::Envelope => {
            let mut payload = Map::with_capacity(5);
            payload.insert("eventId".into(), event_id.into());
            payload.insert("eventType".into(), event_type.name.clone().into());
            payload.insert("shopId".into(), shop_id.into());
            payload.insert("occurredAt".into(), occurred_at.into());
            let data = if event_type.custom {
                Value::Object(entity.clone())
            } else {
                entity_data(event_type, entity)
            };
            payload.insert("entityData".into(), data);
            Value::Object(payload).to_string()
        }
        PayloadShape::Entity => serde_json::to_string(entity)
            .expect("a JSON map always serializes: its keys are strings"),
        PayloadShape::Reference => {
            let mut payload = Map::with_capacity(event_type.references.len() + 1);
            payload.insert("action".into(), event_type.name.clone().into());
            if event_type.references.is_empty() {
                for (key, value) in entity {
                    if key != "action" {
                        payload.insert(key.clone(), value.clone());
                    }
                }
            } else {
                for key in &event_type.references {
                    payload.insert(key.clone(), entity.get(key).cloned().unwrap_or(Value::Null));
                }
            }
            Value::Object(payload).to_string()
        }
    }
}

/// The `entityData` object alone (catalog fields, typed, `null` when missing), for merge fields.
pub fn entity_data(event_type: &EventType, entity: &Map<String, Value>) -> Value {
    let mut entity_data = Map::with_capacity(event_type.fields.len());
    for field in &event_type.fields {
        entity_data.insert(
            field.name.clone(),
            coerce_field(field.ty, entity.get(&field.name)),
        );
    }
    Value::Object(entity_data)
}

/// A field's value as the catalog types it, or `null`.
///
/// Backends do not always send what the catalog says (`"42"` for an integer id, `42` for a
/// code). Ingest accepts any JSON, so the default payload converts what converts without loss
/// and sends `null` for the rest (an object where a string belongs): its schema holds for every
/// payload hookflow sends. Templates still see the untouched value under `entity`.
pub fn coerce_field(ty: FieldType, value: Option<&Value>) -> Value {
    let Some(value) = value else {
        return Value::Null;
    };
    match (ty, value) {
        (_, Value::Null) => Value::Null,
        (FieldType::Integer, Value::Number(n)) => {
            if n.is_i64() || n.is_u64() {
                value.clone()
            } else {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map_or(Value::Null, |f| Value::from(f as i64))
            }
        }
        (FieldType::Integer, Value::String(s)) => {
            let s = s.trim();
            match (s.parse::<i64>(), s.parse::<u64>()) {
                (Ok(i), _) => Value::from(i),
                (_, Ok(u)) => Value::from(u),
                _ => Value::Null,
            }
        }
        (FieldType::Number, Value::Number(_)) => value.clone(),
        (FieldType::Number, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        (FieldType::String, Value::String(_)) => value.clone(),
        (FieldType::String, Value::Number(n)) => Value::String(n.to_string()),
        (FieldType::String, Value::Bool(b)) => Value::String(b.to_string()),
        (FieldType::Boolean, Value::Bool(_)) => value.clone(),
        (FieldType::Boolean, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn default_payload_has_catalog_fields_with_nulls_for_missing_ones() {
        let catalog = Catalog::builtin().unwrap();
        let ty = catalog.get("ShipmentShipped").unwrap();
        let entity = serde_json::json!({"ParcelId": 7, "TrackingCode": "TR1", "Extra": true});
        let body = default_payload(
            42,
            ty,
            3,
            "2026-01-02T03:04:05Z",
            entity.as_object().unwrap(),
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["eventId"], 42);
        assert_eq!(v["eventType"], "ShipmentShipped");
        assert_eq!(v["shopId"], 3);
        assert_eq!(v["occurredAt"], "2026-01-02T03:04:05Z");
        assert_eq!(v["entityData"]["ParcelId"], 7);
        assert_eq!(v["entityData"]["TrackingCode"], "TR1");
        assert_eq!(v["entityData"]["OrderId"], Value::Null);
        assert!(v["entityData"].get("Extra").is_none());
        assert_eq!(v["entityData"].as_object().unwrap().len(), 6);
    }

    #[test]
    fn entity_data_converts_values_to_the_catalog_type() {
        let catalog = Catalog::builtin().unwrap();
        let ty = catalog.get("ShipmentShipped").unwrap();
        let entity = serde_json::json!({
            "ParcelId": "7", "TrackingCode": 123, "OrderShipmentId": 5.0,
            "OrderShipmentCode": {"nested": true}, "OrderId": "x", "OrderCode": null
        });
        let data = entity_data(ty, entity.as_object().unwrap());
        assert_eq!(
            data,
            serde_json::json!({
                "ParcelId": 7, "TrackingCode": "123", "OrderShipmentId": 5,
                "OrderShipmentCode": null, "OrderId": null, "OrderCode": null
            })
        );
        assert_eq!(
            coerce_field(FieldType::Boolean, Some(&"TRUE".into())),
            Value::Bool(true)
        );
        assert_eq!(
            coerce_field(FieldType::Number, Some(&"2.5".into())),
            serde_json::json!(2.5)
        );
        assert_eq!(
            coerce_field(FieldType::Number, Some(&"NaN".into())),
            Value::Null
        );
    }

    #[test]
    fn mime_types_parse_case_insensitively() {
        assert_eq!(
            "Application/JSON".parse::<MimeType>().unwrap(),
            MimeType::Json
        );
        assert_eq!("text/plain".parse::<MimeType>().unwrap(), MimeType::Text);
        assert!("image/png".parse::<MimeType>().is_err());
    }
}
