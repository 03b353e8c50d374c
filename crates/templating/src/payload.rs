//! Payload mime types and the default payload an action without a template sends.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::catalog::EventType;

/// The mime type of a payload template; it decides escaping and validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// Builds the default payload of an event:
/// `{"eventId", "eventType", "shopId", "occurredAt", "entityData": {<catalog fields>}}`.
///
/// `entityData` holds exactly the catalog's fields for the type, in catalog order, each taken
/// from the entity the backend sent or `null` when it lacks it: receivers can rely on the shape.
pub fn default_payload(
    event_id: i64,
    event_type: &EventType,
    shop_id: i64,
    occurred_at: &str,
    entity: &Map<String, Value>,
) -> String {
    let mut payload = Map::with_capacity(5);
    payload.insert("eventId".into(), event_id.into());
    payload.insert("eventType".into(), event_type.name.clone().into());
    payload.insert("shopId".into(), shop_id.into());
    payload.insert("occurredAt".into(), occurred_at.into());
    payload.insert("entityData".into(), entity_data(event_type, entity));
    Value::Object(payload).to_string()
}

/// The `entityData` object alone (catalog fields, `null` when missing), for merge fields.
pub fn entity_data(event_type: &EventType, entity: &Map<String, Value>) -> Value {
    let mut entity_data = Map::with_capacity(event_type.fields.len());
    for field in &event_type.fields {
        let value = entity.get(&field.name).cloned().unwrap_or(Value::Null);
        entity_data.insert(field.name.clone(), value);
    }
    Value::Object(entity_data)
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
    fn mime_types_parse_case_insensitively() {
        assert_eq!(
            "Application/JSON".parse::<MimeType>().unwrap(),
            MimeType::Json
        );
        assert_eq!("text/plain".parse::<MimeType>().unwrap(), MimeType::Text);
        assert!("image/png".parse::<MimeType>().is_err());
    }
}
