//! Event catalogs: the event types a platform emits and the fields of their default payload.
//!
//! Catalogs are data (`templates/catalogs/<platform>.json`), not code, so that adding an event
//! type is an edit to a JSON file. The ShopCtrl catalog is compiled into the binary so a fresh
//! install needs no extra files; it is still parsed from its JSON text at start.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The ShopCtrl catalog as shipped in `templates/catalogs/shopctrl.json`.
const SHOPCTRL: &str = include_str!("../../../templates/catalogs/shopctrl.json");

/// A set of event types, keyed by name.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Shared so that a render context can hold its event type without copying it per event.
    types: BTreeMap<String, Arc<EventType>>,
}

/// One event type of a catalog.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventType {
    /// The name backends send as `eventType`, e.g. `OrderChanged`.
    pub name: String,
    /// Event types that share a default payload share a group (e.g. `Shipment`).
    pub group: String,
    /// The kind of entity the event is about, for people.
    pub entity: String,
    pub description: String,
    /// The fields of the default payload's `entityData`, in order.
    pub fields: Vec<Field>,
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
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CatalogFile {
    event_types: Vec<EventType>,
}

impl Catalog {
    /// The catalog shipped with hookflow (ShopCtrl's trigger events).
    pub fn builtin() -> Result<Catalog, CatalogError> {
        Catalog::from_json(SHOPCTRL)
    }

    /// Parses a catalog file's text.
    pub fn from_json(text: &str) -> Result<Catalog, CatalogError> {
        let file: CatalogFile = serde_json::from_str(text)?;
        let mut types = BTreeMap::new();
        for ty in file.event_types {
            if types.contains_key(&ty.name) {
                return Err(CatalogError::Duplicate(ty.name));
            }
            types.insert(ty.name.clone(), Arc::new(ty));
        }
        Ok(Catalog { types })
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

    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_every_shopctrl_event_type() {
        let catalog = Catalog::builtin().unwrap();
        assert_eq!(catalog.len(), 67);
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
    }

    #[test]
    fn duplicate_event_types_are_refused() {
        let text = r#"{"eventTypes": [
            {"name": "A", "group": "g", "entity": "e", "description": "", "fields": []},
            {"name": "A", "group": "g", "entity": "e", "description": "", "fields": []}]}"#;
        assert!(matches!(Catalog::from_json(text), Err(CatalogError::Duplicate(n)) if n == "A"));
    }
}
