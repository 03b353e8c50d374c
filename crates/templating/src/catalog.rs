//! Event catalogs: the event types each platform emits, the JSON Schema of their entities, and
//! how their default payload is built.
//!
//! Catalogs are data (`templates/catalogs/<platform>.json`), not code, so that adding an event
//! type is an edit to a JSON file. The four shipped catalogs (ShopCtrl, Skladon, Flow Retail,
//! Front Systems) are compiled into the binary so a fresh install needs no extra files; they
//! are still parsed from their JSON text at start. Admins add event types at run time (custom
//! types, stored by hookflow); [`Catalog::with_custom`] merges them in.
//!
//! One [`Catalog`] value holds every catalog at once. Event type names are unique across all of
//! them (the shipped catalogs share none, and a custom type may not reuse a name), so a type's
//! name alone says which catalog it belongs to; a shop picks the catalog its events use.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The catalogs shipped in `templates/catalogs/`.
const BUILTIN: [&str; 4] = [
    include_str!("../../../templates/catalogs/shopctrl.json"),
    include_str!("../../../templates/catalogs/skladon.json"),
    include_str!("../../../templates/catalogs/flowretail.json"),
    include_str!("../../../templates/catalogs/frontsystems.json"),
];

/// The catalog a shop uses unless it says otherwise.
pub const DEFAULT_CATALOG: &str = "shopctrl";

/// Every catalog's event types, keyed by name.
#[derive(Clone)]
pub struct Catalog {
    /// Shared so that a render context can hold its event type without copying it per event.
    types: BTreeMap<String, Arc<EventType>>,
    catalogs: Vec<CatalogInfo>,
    /// Compiled entity schemas, for validation at ingest.
    validators: HashMap<String, Arc<jsonschema::Validator>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("catalogs", &self.catalogs)
            .field("types", &self.types.len())
            .finish()
    }
}

/// One catalog: a platform's profile.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogInfo {
    pub name: String,
    pub description: String,
    /// How the default payload of its types is built.
    pub payload: PayloadShape,
    /// The retry preset its triggers get when they name none (a preset of the engine's queue
    /// policy: `shopctrl`, `skladon`, `flowretail`, `frontsystems`).
    pub retry_preset: String,
}

/// How an event type's default payload is built from the event.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum PayloadShape {
    /// `{"eventId", "eventType", "shopId", "occurredAt", "entityData"}` (ShopCtrl): `entityData`
    /// holds the catalog's fields, typed; a type defined by a schema sends the entity as is.
    #[default]
    Envelope,
    /// The entity itself, as the backend sent it (Skladon, Front Systems).
    Entity,
    /// `{"action": <type>, <each reference>: {"Id", "Uid"}, ...}` copied from the entity
    /// (Flow Retail).
    Reference,
}

/// One event type of a catalog.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventType {
    /// The name backends send as `eventType`, e.g. `OrderChanged`.
    pub name: String,
    /// The catalog it belongs to (set when the catalog is loaded).
    #[serde(default)]
    pub catalog: String,
    /// Event types that share a default payload share a group (e.g. `Shipment`).
    #[serde(default)]
    pub group: String,
    /// The kind of entity the event is about, for people.
    #[serde(default)]
    pub entity: String,
    pub description: String,
    /// The typed top-level fields of the entity (`entityData` of an envelope payload), in
    /// order.
    #[serde(default)]
    pub fields: Vec<Field>,
    /// How its default payload is built (its catalog's shape).
    #[serde(default)]
    pub payload: PayloadShape,
    /// For [`PayloadShape::Reference`]: the entity's keys copied into the payload, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// The JSON Schema of the entity backends send (`entityData`); events of a type with one
    /// are validated against it at ingest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// A default payload as the platform's documentation publishes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<Value>,
    /// A custom type's default payload template (JSON, with merge fields), used by actions
    /// without a payload of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_template: Option<String>,
    /// Added by an admin at run time rather than shipped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub custom: bool,
}

/// One field of an event type's default payload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: FieldType,
    pub description: String,
}

/// The JSON type of a field's value (it may also be `null` when the entity lacks it).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Integer,
    Number,
    String,
    Boolean,
}

/// The catalog text could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("catalog lists event type {0} twice")]
    Duplicate(String),
    #[error("catalog {0} is loaded twice")]
    DuplicateCatalog(String),
    #[error("event type {name}: {message}")]
    Schema { name: String, message: String },
}

/// An entity that does not match its type's schema: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct EntityMismatch {
    /// A merge-field style path from the entity's root: `entityData.products[0].quantity`.
    pub path: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CatalogFile {
    platform: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    payload: PayloadShape,
    #[serde(default = "default_preset")]
    retry_preset: String,
    event_types: Vec<EventType>,
}

fn default_preset() -> String {
    DEFAULT_CATALOG.to_owned()
}

impl Catalog {
    /// The catalogs shipped with hookflow.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::empty();
        for text in BUILTIN {
            catalog.add_file(text)?;
        }
        Ok(catalog)
    }

    /// Parses one catalog file's text.
    pub fn from_json(text: &str) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::empty();
        catalog.add_file(text)?;
        Ok(catalog)
    }

    fn empty() -> Catalog {
        Catalog {
            types: BTreeMap::new(),
            catalogs: Vec::new(),
            validators: HashMap::new(),
        }
    }

    fn add_file(&mut self, text: &str) -> Result<(), CatalogError> {
        let file: CatalogFile = serde_json::from_str(text)?;
        if self.info(&file.platform).is_some() {
            return Err(CatalogError::DuplicateCatalog(file.platform));
        }
        for mut ty in file.event_types {
            if self.types.contains_key(&ty.name) {
                return Err(CatalogError::Duplicate(ty.name));
            }
            ty.catalog = file.platform.clone();
            ty.payload = file.payload;
            ty.custom = false;
            self.insert(ty)
                .map_err(|(name, message)| CatalogError::Schema { name, message })?;
        }
        self.catalogs.push(CatalogInfo {
            name: file.platform,
            description: file.description,
            payload: file.payload,
            retry_preset: file.retry_preset,
        });
        Ok(())
    }

    fn insert(&mut self, ty: EventType) -> Result<(), (String, String)> {
        if let Some(schema) = &ty.schema {
            let validator = compile_schema(schema).map_err(|m| (ty.name.clone(), m))?;
            self.validators.insert(ty.name.clone(), Arc::new(validator));
        }
        self.types.insert(ty.name.clone(), Arc::new(ty));
        Ok(())
    }

    /// This catalog with admin-defined event types added. A custom type takes its catalog's
    /// payload shape; one whose name is taken, whose catalog does not exist or whose schema
    /// does not compile (both checked when it was saved) is left out, and returned.
    pub fn with_custom(&self, custom: Vec<EventType>) -> (Catalog, Vec<String>) {
        let mut catalog = self.clone();
        let mut refused = Vec::new();
        for mut ty in custom {
            let Some(info) = self.info(&ty.catalog) else {
                refused.push(ty.name);
                continue;
            };
            if catalog.types.contains_key(&ty.name) {
                refused.push(ty.name);
                continue;
            }
            ty.payload = info.payload;
            ty.custom = true;
            let name = ty.name.clone();
            if catalog.insert(ty).is_err() {
                refused.push(name);
            }
        }
        (catalog, refused)
    }

    pub fn get(&self, name: &str) -> Option<&EventType> {
        self.types.get(name).map(|t| &**t)
    }

    /// The event type as a shared handle, for render contexts.
    pub fn shared(&self, name: &str) -> Option<Arc<EventType>> {
        self.types.get(name).cloned()
    }

    /// All event types, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &EventType> {
        self.types.values().map(|t| &**t)
    }

    /// The catalogs, in the order they were loaded.
    pub fn catalogs(&self) -> &[CatalogInfo] {
        &self.catalogs
    }

    pub fn info(&self, catalog: &str) -> Option<&CatalogInfo> {
        self.catalogs.iter().find(|c| c.name == catalog)
    }

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Checks an event's entity against its type's schema (types without one accept any
    /// entity). The first mismatch is reported, with its path.
    pub fn validate_entity(&self, event_type: &str, entity: &Value) -> Result<(), EntityMismatch> {
        let Some(validator) = self.validators.get(event_type) else {
            return Ok(());
        };
        match validator.iter_errors(entity).next() {
            None => Ok(()),
            Some(error) => {
                let mut path = String::from("entityData");
                for segment in error.instance_path().iter() {
                    match segment {
                        jsonschema::paths::LocationSegment::Property(p) => {
                            path.push('.');
                            path.push_str(&p);
                        }
                        jsonschema::paths::LocationSegment::Index(i) => {
                            path.push_str(&format!("[{i}]"));
                        }
                    }
                }
                Err(EntityMismatch {
                    path,
                    message: error.to_string(),
                })
            }
        }
    }
}

/// Checks that `schema` is a JSON Schema hookflow can validate with: valid against its
/// meta-schema (draft 2020-12 unless `$schema` names another bundled draft), and compilable
/// (its `$ref`s resolve inside the document).
pub fn check_schema(schema: &Value) -> Result<(), String> {
    compile_schema(schema).map(|_| ())
}

fn compile_schema(schema: &Value) -> Result<jsonschema::Validator, String> {
    if !(schema.is_object() || schema.is_boolean()) {
        return Err("a JSON Schema is an object (or true/false)".into());
    }
    let meta =
        jsonschema::meta::validator_for(schema).map_err(|e| format!("unknown meta-schema: {e}"))?;
    if let Some(error) = meta.iter_errors(schema).next() {
        let at = error.instance_path().to_string();
        let at = if at.is_empty() { "/".to_owned() } else { at };
        return Err(format!("not a valid JSON Schema at {at}: {error}"));
    }
    jsonschema::validator_for(schema).map_err(|e| format!("schema does not compile: {e}"))
}

/// The entity an event of `ty` carries in the platform's published example: the example
/// itself for an entity payload, the example without its `action` for a reference envelope,
/// and `entityData` of an envelope. `None` without an example.
pub fn example_entity(ty: &EventType) -> Option<Map<String, Value>> {
    let Some(Value::Object(example)) = &ty.example else {
        return None;
    };
    match ty.payload {
        PayloadShape::Entity => Some(example.clone()),
        PayloadShape::Reference => {
            let mut entity = example.clone();
            entity.remove("action");
            Some(entity)
        }
        PayloadShape::Envelope => example.get("entityData")?.as_object().cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_every_shopctrl_event_type() {
        let catalog = Catalog::builtin().unwrap();
        assert_eq!(
            catalog.iter().filter(|t| t.catalog == "shopctrl").count(),
            67
        );
        let shipped = catalog.get("ShipmentShipped").unwrap();
        let names: Vec<_> = shipped.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ParcelId",
                "TrackingCode",
                "OrderShipmentId",
                "OrderShipmentCode",
                "OrderId",
                "OrderCode"
            ]
        );
        let order = catalog.get("OrderChanged").unwrap();
        assert_eq!(order.fields.len(), 2);
        assert_eq!(order.fields[0].ty, FieldType::Integer);
        assert_eq!(order.fields[1].ty, FieldType::String);
        assert_eq!(order.payload, PayloadShape::Envelope);
    }

    #[test]
    fn every_platform_catalog_lists_the_types_its_documents_name() {
        let catalog = Catalog::builtin().unwrap();
        let names = |c: &str| -> Vec<&str> {
            catalog
                .iter()
                .filter(|t| t.catalog == c)
                .map(|t| t.name.as_str())
                .collect()
        };
        // seeds/001_31dec5362fbe551a.txt, V21WebhookType.
        let mut skladon = vec![
            "CREATE_ORDER",
            "CREATE_PRODUCT",
            "CREATE_RECEIVING",
            "CREATE_RETURN",
            "CREATE_STOCK_MOVEMENT_COMPLETITION",
            "CREATE_STOCK_MOVEMENT_STOCK_CORRECTION",
            "CREATE_STOCK_MOVEMENT_ORDER",
            "CREATE_STOCK_MOVEMENT_RETURN",
            "CREATE_STOCK_MOVEMENT_RECEIVING",
            "CREATE_STOCK_MOVEMENT_QUALITY_HOLD",
            "CREATE_STOCK_MOVEMENT_QUALITY_RELEASE",
            "UPDATE_ORDER",
            "UPDATE_ORDER_STATUS",
            "UPDATE_PRODUCT",
            "UPDATE_RECEIVING",
            "UPDATE_RECEIVING_STATUS",
            "UPDATE_RETURN",
            "UPDATE_RETURN_STATUS",
        ];
        skladon.sort_unstable();
        assert_eq!(names("skladon"), skladon);
        // seeds/003_bd3529183349c1b5.txt.
        let mut flow = vec![
            "ORDER_SETTLED",
            "ORDER_DELIVERED",
            "ORDER_HANDLING_STATE_CHANGED",
            "CUSTOMER_CREATE",
            "CUSTOMER_UPDATE",
            "PRODUCT_CREATE",
            "PRODUCT_UPDATE",
            "PRODUCT_MEDIA_CHANGE",
            "PRODUCT_MEDIA_CHANGED",
            "TILL_OPEN",
            "TILL_CLOSE",
            "PRICE_CREATE",
            "PRICE_UPDATE",
            "STOCK_CHANGE",
            "PURCHASE_RECEIVED",
            "ORDER_RECEIPT_SETTLED",
        ];
        flow.sort_unstable();
        assert_eq!(names("flowretail"), flow);
        // seeds/004_23c4faa12342e748.txt: 21 types, SaleCreated to StockReservationExpired.
        let front = names("frontsystems");
        assert_eq!(front.len(), 21);
        assert!(front.contains(&"SaleCreated") && front.contains(&"StockReservationExpired"));
        let presets: Vec<(&str, &str)> = catalog
            .catalogs()
            .iter()
            .map(|c| (c.name.as_str(), c.retry_preset.as_str()))
            .collect();
        assert_eq!(
            presets,
            [
                ("shopctrl", "shopctrl"),
                ("skladon", "skladon"),
                ("flowretail", "flowretail"),
                ("frontsystems", "frontsystems")
            ]
        );
    }

    #[test]
    fn duplicate_event_types_are_refused() {
        let text = r#"{"platform": "p", "eventTypes": [
            {"name": "A", "group": "g", "entity": "e", "description": "", "fields": []},
            {"name": "A", "group": "g", "entity": "e", "description": "", "fields": []}]}"#;
        assert!(matches!(Catalog::from_json(text), Err(CatalogError::Duplicate(n)) if n == "A"));
    }

    #[test]
    fn entities_are_checked_against_their_schema_with_the_failing_path() {
        let catalog = Catalog::builtin().unwrap();
        let mut entity = example_entity(catalog.get("CREATE_RECEIVING").unwrap()).unwrap();
        assert!(catalog
            .validate_entity("CREATE_RECEIVING", &Value::Object(entity.clone()))
            .is_ok());
        entity["products"][1]["quantity"] = Value::from("one");
        let err = catalog
            .validate_entity("CREATE_RECEIVING", &Value::Object(entity))
            .unwrap_err();
        assert_eq!(err.path, "entityData.products[1].quantity");
        assert!(err.message.contains("integer"), "{err}");
        // Types without a schema take anything.
        assert!(catalog
            .validate_entity("OrderChanged", &serde_json::json!({"x": [1]}))
            .is_ok());
    }

    #[test]
    fn custom_types_join_their_catalog_unless_the_name_is_taken() {
        let catalog = Catalog::builtin().unwrap();
        let custom = |name: &str, catalog: &str| EventType {
            name: name.into(),
            catalog: catalog.into(),
            group: String::new(),
            entity: String::new(),
            description: String::new(),
            fields: Vec::new(),
            payload: PayloadShape::Envelope,
            references: Vec::new(),
            schema: Some(serde_json::json!({"type": "object", "required": ["id"]})),
            example: None,
            payload_template: None,
            custom: false,
        };
        let (merged, refused) = catalog.with_custom(vec![
            custom("ReturnApproved", "skladon"),
            custom("OrderChanged", "shopctrl"),
            custom("Other", "nowhere"),
        ]);
        assert_eq!(refused, ["OrderChanged", "Other"]);
        let added = merged.get("ReturnApproved").unwrap();
        assert!(added.custom);
        assert_eq!(added.payload, PayloadShape::Entity);
        assert!(merged
            .validate_entity("ReturnApproved", &serde_json::json!({}))
            .is_err());
    }

    #[test]
    fn schemas_are_checked_against_their_meta_schema() {
        assert!(check_schema(&serde_json::json!({"type": "object"})).is_ok());
        assert!(check_schema(&serde_json::json!({"type": "invalid_type"}))
            .unwrap_err()
            .contains("not a valid JSON Schema"));
        assert!(check_schema(&serde_json::json!({"$ref": "#/$defs/missing"})).is_err());
        assert!(check_schema(&serde_json::json!([1])).is_err());
    }
}
