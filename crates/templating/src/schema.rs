//! The JSON Schema (draft 2020-12) of an event type's default payload, for receivers that
//! validate what they get. It describes exactly what [`crate::default_payload`] writes, per
//! payload shape: for an envelope five keys, and `entityData` with each catalog field typed (or
//! `null`) and nothing else; for an entity payload the type's entity schema; for a reference
//! envelope `action` and each reference.

use serde_json::{json, Map, Value};

use crate::catalog::{EventType, FieldType, PayloadShape};

/// The draft the schemas declare.
pub const SCHEMA_DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The schema's `$id`: a URN, since hookflow does not know the URL it is reached at.
pub fn schema_id(event_type: &EventType) -> String {
    format!("urn:hookflow:default-payload:{}", event_type.name)
}

/// The JSON Schema of `event_type`'s default payload.
pub fn default_payload_schema(event_type: &EventType) -> Value {
    match event_type.payload {
        PayloadShape::Envelope => envelope_schema(event_type),
        PayloadShape::Entity => entity_payload_schema(event_type),
        PayloadShape::Reference => reference_schema(event_type),
    }
}

/// The entity itself: the type's entity schema, named.
fn entity_payload_schema(event_type: &EventType) -> Value {
    let mut schema = match &event_type.schema {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::from_iter([("type".to_owned(), json!("object"))]),
    };
    schema.insert("$schema".into(), json!(SCHEMA_DRAFT));
    schema.insert("$id".into(), json!(schema_id(event_type)));
    schema.insert(
        "title".into(),
        json!(format!("{} default payload", event_type.name)),
    );
    if !schema.contains_key("description") {
        schema.insert("description".into(), json!(event_type.description));
    }
    Value::Object(schema)
}

/// `action` and each reference, as the entity schema describes the reference.
fn reference_schema(event_type: &EventType) -> Value {
    let entity_properties = event_type
        .schema
        .as_ref()
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object);
    let mut properties = Map::new();
    properties.insert(
        "action".into(),
        json!({"const": event_type.name, "description": "The action (event type)"}),
    );
    let mut required = vec![json!("action")];
    if event_type.references.is_empty() {
        // A custom type copies its whole entity: whatever its schema allows.
        if let Some(props) = entity_properties {
            properties.extend(props.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if let Some(Value::Array(req)) = event_type.schema.as_ref().and_then(|s| s.get("required"))
        {
            required.extend(req.iter().cloned());
        }
        return json!({
            "$schema": SCHEMA_DRAFT,
            "$id": schema_id(event_type),
            "title": format!("{} default payload", event_type.name),
            "description": event_type.description,
            "type": "object",
            "required": required,
            "properties": properties
        });
    }
    for key in &event_type.references {
        let schema = entity_properties
            .and_then(|p| p.get(key))
            .cloned()
            .unwrap_or(json!({}));
        properties.insert(key.clone(), schema);
        required.push(json!(key));
    }
    json!({
        "$schema": SCHEMA_DRAFT,
        "$id": schema_id(event_type),
        "title": format!("{} default payload", event_type.name),
        "description": event_type.description,
        "type": "object",
        "required": required,
        "additionalProperties": false,
        "properties": properties
    })
}

/// The ShopCtrl envelope.
fn envelope_schema(event_type: &EventType) -> Value {
    let entity_data = if event_type.custom {
        // Sent as the backend sent it (validated against this schema at ingest).
        let mut schema = match &event_type.schema {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::from_iter([("type".to_owned(), json!("object"))]),
        };
        schema.remove("$schema");
        schema.remove("$id");
        schema.insert(
            "description".into(),
            json!(format!(
                "The {} the event is about, as the backend sent it",
                event_type.name
            )),
        );
        Value::Object(schema)
    } else {
        typed_entity_data_schema(event_type)
    };
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
            "entityData": entity_data
        }
    })
}

/// `entityData` of a shipped envelope type: the catalog's fields, typed or `null`.
fn typed_entity_data_schema(event_type: &EventType) -> Value {
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
        "type": "object",
        "description": format!("The {} the event is about: the catalog's fields, null where the entity lacks them", event_type.entity),
        "required": required,
        "additionalProperties": false,
        "properties": properties
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
        // The envelope types; the others' entities are validated at ingest (tested below).
        let shopctrl: Vec<_> = catalog.iter().filter(|t| t.catalog == "shopctrl").collect();
        for ty in &shopctrl {
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
        assert_eq!(checked, shopctrl.len() * 3);
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

    /// Every platform type: the published example is a valid default payload, the default
    /// payload built from the example's entity is exactly the example, and any entity that
    /// passes the type's schema at ingest makes a payload that passes the payload schema.
    #[test]
    fn platform_default_payloads_match_their_schemas_and_published_examples() {
        let catalog = Catalog::builtin().unwrap();
        let mut with_example = 0;
        let mut checked = 0;
        for ty in catalog.iter().filter(|t| t.catalog != "shopctrl") {
            let schema = default_payload_schema(ty);
            jsonschema::meta::validate(&schema).unwrap();
            let validator = jsonschema::draft202012::new(&schema).unwrap();
            let entity = match crate::catalog::example_entity(ty) {
                Some(entity) => {
                    let example = ty.example.clone().unwrap();
                    assert!(validator.is_valid(&example), "{}: example refused", ty.name);
                    let payload: Value = serde_json::from_str(&default_payload(
                        9,
                        ty,
                        1,
                        "2026-11-27T10:00:00Z",
                        &entity,
                    ))
                    .unwrap();
                    assert_eq!(payload, example, "{}", ty.name);
                    with_example += 1;
                    entity
                }
                None => Map::new(),
            };
            catalog
                .validate_entity(&ty.name, &Value::Object(entity.clone()))
                .unwrap_or_else(|e| panic!("{}: {e}", ty.name));
            let payload: Value =
                serde_json::from_str(&default_payload(9, ty, 1, "2026-11-27T10:00:00Z", &entity))
                    .unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&payload)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{}: {payload}: {errors:?}", ty.name);
            checked += 1;
        }
        assert_eq!(checked, 18 + 16 + 21);
        // Flow Retail publishes every payload; Skladon the receiving (create and both updates).
        assert_eq!(with_example, 16 + 3);
    }

    #[test]
    fn a_flow_retail_payload_is_the_reference_envelope() {
        let catalog = Catalog::builtin().unwrap();
        let ty = catalog.get("TILL_OPEN").unwrap();
        let entity = json!({
            "tenant": {"Id": 7, "Uid": "7"}, "store": {"Id": 1, "Uid": "7"},
            "till": {"Id": 73, "Uid": "722"}, "tenantUser": {"Id": 7, "Uid": "7"},
            "cashReport": {"Id": 7212, "Uid": "74533"}, "date": "2022-10-18", "extra": 1
        });
        let payload: Value = serde_json::from_str(&default_payload(
            1,
            ty,
            1,
            "2026-11-27T10:00:00Z",
            entity.as_object().unwrap(),
        ))
        .unwrap();
        assert_eq!(payload["action"], "TILL_OPEN");
        assert_eq!(payload["cashReport"], json!({"Id": 7212, "Uid": "74533"}));
        assert_eq!(payload["date"], "2022-10-18");
        assert!(payload.get("extra").is_none());
        // A reference missing from the entity fails at ingest, before any payload is built.
        let err = catalog
            .validate_entity("TILL_OPEN", &json!({"tenant": {"Id": 7, "Uid": "7"}}))
            .unwrap_err();
        assert_eq!(err.path, "entityData");
        assert!(err.message.contains("store"), "{err}");
        let err = catalog
            .validate_entity(
                "CUSTOMER_CREATE",
                &json!({"tenant": {"Id": "7", "Uid": "7"}, "customer": {"Id": 1, "Uid": "1"},
                        "tenantUser": {"Id": 1, "Uid": "1"}}),
            )
            .unwrap_err();
        assert_eq!(err.path, "entityData.tenant.Id");
    }

    #[test]
    fn a_skladon_or_front_systems_payload_is_the_entity_as_sent() {
        let catalog = Catalog::builtin().unwrap();
        for name in ["UPDATE_ORDER_STATUS", "SaleCreated"] {
            let ty = catalog.get(name).unwrap();
            let entity = json!({"eshopOrderId": "123456", "lines": [{"sku": "A", "qty": 2}]});
            let body = default_payload(
                1,
                ty,
                1,
                "2026-11-27T10:00:00Z",
                entity.as_object().unwrap(),
            );
            assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), entity);
        }
    }
}
