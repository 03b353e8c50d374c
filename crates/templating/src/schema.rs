//! The JSON Schema (draft 2020-12) of an event type's default payload, for receivers that
//! validate what they get. It describes exactly what [`crate::default_payload`] writes: five
//! keys, and `entityData` with each catalog field typed (or `null`) and nothing else.

use serde_json::{json, Map, Value};

use crate::catalog::{EventType, FieldType};

/// The draft the schemas declare.
pub const SCHEMA_DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The schema's `$id`: a URN, since hookflow does not know the URL it is reached at.
pub fn schema_id(event_type: &EventType) -> String {
    format!("urn:hookflow:default-payload:{}", event_type.name)
}

/// The JSON Schema of `event_type`'s default payload.
pub fn default_payload_schema(event_type: &EventType) -> Value {
    let mut properties = Map::with_capacity(event_type.fields.len());
    for field in &event_type.fields {
        let ty = match field.ty {
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::String => "string",
            FieldType::Boolean => "boolean",
        };
        properties.insert(
            field.name.clone(),
            json!({"type": [ty, "null"], "description": field.description}),
        );
    }
    let required: Vec<&str> = event_type.fields.iter().map(|f| f.name.as_str()).collect();
    json!({
        "$schema": SCHEMA_DRAFT,
        "$id": schema_id(event_type),
        "title": format!("{} default payload", event_type.name),
        "description": event_type.description,
        "type": "object",
        "required": ["eventId", "eventType", "shopId", "occurredAt", "entityData"],
        "additionalProperties": false,
        "properties": {
            "eventId": {"type": "integer", "description": "The event's id in hookflow"},
            "eventType": {"const": event_type.name, "description": "The event type"},
            "shopId": {"type": "integer", "description": "The shop the event happened in"},
            "occurredAt": {
                "type": "string",
                "format": "date-time",
                "description": "When the event happened (RFC 3339)"
            },
            "entityData": {
                "type": "object",
                "description": format!("The {} the event is about: the catalog's fields, null where the entity lacks them", event_type.entity),
                "required": required,
                "additionalProperties": false,
                "properties": properties
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::payload::default_payload;

    #[test]
    fn every_default_payload_matches_its_schema() {
        let catalog = Catalog::builtin().unwrap();
        let mut checked = 0;
        for ty in catalog.iter() {
            let schema = default_payload_schema(ty);
            let validator = jsonschema::draft202012::new(&schema).unwrap();
            // Complete, empty, and mistyped entities: the default payload always fits.
            let full: Map<String, Value> = ty
                .fields
                .iter()
                .map(|f| {
                    let v = match f.ty {
                        FieldType::Integer => json!(7),
                        FieldType::Number => json!(7.5),
                        FieldType::String => json!("x"),
                        FieldType::Boolean => json!(true),
                    };
                    (f.name.clone(), v)
                })
                .collect();
            let mistyped: Map<String, Value> = ty
                .fields
                .iter()
                .map(|f| (f.name.clone(), json!({"not": "scalar"})))
                .chain([("Extra".to_owned(), json!([1]))])
                .collect();
            for entity in [full, Map::new(), mistyped] {
                let payload = default_payload(9, ty, 1, "2026-11-27T10:00:00Z", &entity);
                let payload: Value = serde_json::from_str(&payload).unwrap();
                let errors: Vec<String> = validator
                    .iter_errors(&payload)
                    .map(|e| e.to_string())
                    .collect();
                assert!(errors.is_empty(), "{}: {payload}: {errors:?}", ty.name);
                checked += 1;
            }
            // And it is strict: another type's payload or an extra field is refused.
            let mut wrong: Value = serde_json::from_str(&default_payload(
                9,
                ty,
                1,
                "2026-11-27T10:00:00Z",
                &Map::new(),
            ))
            .unwrap();
            wrong["entityData"]["Unknown"] = json!(1);
            assert!(!validator.is_valid(&wrong));
            wrong["entityData"]
                .as_object_mut()
                .unwrap()
                .remove("Unknown");
            wrong["eventType"] = json!("SomethingElse");
            assert!(!validator.is_valid(&wrong));
        }
        assert_eq!(checked, catalog.len() * 3);
    }

    #[test]
    fn the_schema_names_its_draft_and_type() {
        let catalog = Catalog::builtin().unwrap();
        let schema = default_payload_schema(catalog.get("OrderChanged").unwrap());
        assert_eq!(schema["$schema"], SCHEMA_DRAFT);
        assert_eq!(schema["$id"], "urn:hookflow:default-payload:OrderChanged");
        assert_eq!(schema["properties"]["eventType"]["const"], "OrderChanged");
        assert_eq!(
            schema["properties"]["entityData"]["properties"]["OrderId"]["type"],
            json!(["integer", "null"])
        );
        assert_eq!(
            schema["properties"]["entityData"]["additionalProperties"],
            false
        );
    }
}
