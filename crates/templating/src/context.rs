//! The merge fields a template sees, as lazy minijinja objects.
//!
//! Converting a whole entity into minijinja values for every event costs more than most
//! templates ever read (a payload usually touches a handful of fields of a kilobyte entity).
//! So the entity stays a `serde_json` map behind an `Arc`, and the objects here convert a field
//! only when a template touches it: [`JsonNode`] for `entity` (any depth, arrays included) and
//! [`EntityData`] for the default payload's typed fields.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use serde_json::{Map, Value as Json};

use crate::catalog::EventType;
use crate::payload::coerce_field;

/// Everything a template or condition can read about one event:
/// `event` (`id`, `type`, `occurredAt`, `entityId`), `shop` (`id`, `name`), `entity`,
/// `entityData` and `entityId`; and, when the event carries the entity as it was before the
/// change, `previousData` (with `hasPreviousData` true).
#[derive(Debug, Clone)]
pub struct RenderContext {
    pub event_id: i64,
    pub event_type: Arc<EventType>,
    /// RFC 3339.
    pub occurred_at: String,
    pub entity_id: String,
    pub shop_id: i64,
    pub shop_name: String,
    /// The entity as the backend sent it.
    pub entity: Arc<Map<String, Json>>,
    /// The entity before the change (the event's `previousData`), when sent.
    pub previous: Option<Arc<Map<String, Json>>>,
}

impl RenderContext {
    /// The context as a minijinja value, built once per event and shared by every template
    /// that renders for it. Only a few small objects are allocated here; entity fields are
    /// converted when read.
    pub fn into_value(self) -> Value {
        let entity_id = Value::from(self.entity_id);
        let event = EventObject {
            id: Value::from(self.event_id),
            event_type: Value::from(self.event_type.name.as_str()),
            occurred_at: Value::from(self.occurred_at),
            entity_id: entity_id.clone(),
        };
        let shop = ShopObject {
            id: Value::from(self.shop_id),
            name: Value::from(self.shop_name),
        };
        Value::from_object(Root {
            event: Value::from_object(event),
            shop: Value::from_object(shop),
            entity: Value::from_object(JsonNode::root(self.entity.clone())),
            entity_data: Value::from_object(EntityData {
                entity: self.entity,
                event_type: self.event_type,
            }),
            entity_id,
            has_previous: Value::from(self.previous.is_some()),
            previous: match self.previous {
                Some(previous) => Value::from_object(JsonNode::root(previous)),
                None => Value::UNDEFINED,
            },
        })
    }
}

/// The top level of the context.
#[derive(Debug)]
struct Root {
    event: Value,
    shop: Value,
    entity: Value,
    entity_data: Value,
    entity_id: Value,
    previous: Value,
    has_previous: Value,
}

const ROOT_KEYS: &[&str] = &[
    "event",
    "shop",
    "entity",
    "entityData",
    "entityId",
    "previousData",
    "hasPreviousData",
];

impl Object for Root {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match key {
            "event" => Some(self.event.clone()),
            "shop" => Some(self.shop.clone()),
            "entity" => Some(self.entity.clone()),
            "entityData" => Some(self.entity_data.clone()),
            "entityId" => Some(self.entity_id.clone()),
            "previousData" => Some(self.previous.clone()),
            "hasPreviousData" => Some(self.has_previous.clone()),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(ROOT_KEYS)
    }
}

#[derive(Debug)]
struct EventObject {
    id: Value,
    event_type: Value,
    occurred_at: Value,
    entity_id: Value,
}

impl Object for EventObject {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match key {
            "id" => Some(self.id.clone()),
            "type" => Some(self.event_type.clone()),
            "occurredAt" => Some(self.occurred_at.clone()),
            "entityId" => Some(self.entity_id.clone()),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["id", "type", "occurredAt", "entityId"])
    }
}

#[derive(Debug)]
struct ShopObject {
    id: Value,
    name: Value,
}

impl Object for ShopObject {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match key {
            "id" => Some(self.id.clone()),
            "name" => Some(self.name.clone()),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["id", "name"])
    }
}

/// One step from the entity's root to a nested value.
#[derive(Debug, Clone)]
enum Step {
    Key(Arc<str>),
    Index(usize),
}

/// An object or array inside an entity: the shared entity plus the path to it. Scalars are
/// converted when read; containers become further nodes, so nothing is copied.
#[derive(Debug)]
pub(crate) struct JsonNode {
    root: Arc<Map<String, Json>>,
    path: Vec<Step>,
    /// An array (a minijinja sequence) rather than an object (a map).
    seq: bool,
}

/// What a node points at.
enum Target<'a> {
    Object(&'a Map<String, Json>),
    Array(&'a [Json]),
}

impl JsonNode {
    fn root(root: Arc<Map<String, Json>>) -> JsonNode {
        JsonNode {
            root,
            path: Vec::new(),
            seq: false,
        }
    }

    fn target(&self) -> Option<Target<'_>> {
        let mut current = Target::Object(&self.root);
        for step in &self.path {
            let next = match (current, step) {
                (Target::Object(map), Step::Key(key)) => map.get(&**key)?,
                (Target::Array(items), Step::Index(i)) => items.get(*i)?,
                _ => return None,
            };
            current = match next {
                Json::Object(map) => Target::Object(map),
                Json::Array(items) => Target::Array(items),
                _ => return None,
            };
        }
        Some(current)
    }

    /// A child value: scalars converted, containers as nodes sharing the root.
    fn child(&self, value: &Json, step: Step) -> Value {
        let seq = match value {
            Json::Object(_) => false,
            Json::Array(_) => true,
            scalar => return scalar_value(scalar),
        };
        let mut path = Vec::with_capacity(self.path.len() + 1);
        path.extend(self.path.iter().cloned());
        path.push(step);
        Value::from_object(JsonNode {
            root: self.root.clone(),
            path,
            seq,
        })
    }

    /// Serialises the node as JSON (for `tojson` and JSON payloads), straight from the entity.
    pub(crate) fn to_json(&self) -> String {
        match self.target() {
            Some(Target::Object(map)) => serde_json::to_string(map),
            Some(Target::Array(items)) => serde_json::to_string(items),
            None => Ok("null".to_owned()),
        }
        .unwrap_or_else(|_| "null".to_owned())
    }
}

/// A JSON scalar as a minijinja value.
pub(crate) fn scalar_value(value: &Json) -> Value {
    match value {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::from(s.as_str()),
        // Containers are handled by the callers; this keeps the function total.
        other => Value::from_serialize(other),
    }
}

impl Object for JsonNode {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        if self.seq {
            ObjectRepr::Seq
        } else {
            ObjectRepr::Map
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match self.target()? {
            Target::Object(map) => {
                let key = key.as_str()?;
                let value = map.get(key)?;
                Some(self.child(value, Step::Key(Arc::from(key))))
            }
            Target::Array(items) => {
                let index = key.as_usize()?;
                let value = items.get(index)?;
                Some(self.child(value, Step::Index(index)))
            }
        }
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match self.target()? {
            Target::Object(map) => {
                let value = map.get(key)?;
                Some(self.child(value, Step::Key(Arc::from(key))))
            }
            Target::Array(_) => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.target() {
            Some(Target::Object(map)) => {
                Enumerator::Values(map.keys().map(|k| Value::from(k.as_str())).collect())
            }
            Some(Target::Array(items)) => Enumerator::Seq(items.len()),
            None => Enumerator::Empty,
        }
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        match self.target()? {
            Target::Object(map) => Some(map.len()),
            Target::Array(items) => Some(items.len()),
        }
    }

    /// Printed as JSON, which is what a webhook receiver can read (minijinja's own form is
    /// Python-like).
    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

/// `entityData`: the catalog's fields of the type, typed as the default payload types them.
#[derive(Debug)]
struct EntityData {
    entity: Arc<Map<String, Json>>,
    event_type: Arc<EventType>,
}

impl Object for EntityData {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let field = self.event_type.fields.iter().find(|f| f.name == key)?;
        // Coercion only ever yields scalars (or null).
        Some(scalar_value(&coerce_field(field.ty, self.entity.get(key))))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.event_type
                .fields
                .iter()
                .map(|f| Value::from(f.name.as_str()))
                .collect(),
        )
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.event_type.fields.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::payload::MimeType;
    use crate::render::{TemplateKind, TemplateSet};
    use serde_json::json;

    fn context(entity: Json) -> Value {
        let catalog = Catalog::builtin().unwrap();
        RenderContext {
            event_id: 5,
            event_type: catalog.shared("OrderChanged").unwrap(),
            occurred_at: "2026-01-02T03:04:05Z".into(),
            entity_id: "77".into(),
            shop_id: 2,
            shop_name: "Main".into(),
            entity: Arc::new(entity.as_object().unwrap().clone()),
            previous: None,
        }
        .into_value()
    }

    fn render(source: &str, entity: Json) -> String {
        TemplateSet::new()
            .render_once(
                TemplateKind::Payload(MimeType::Text),
                source,
                &context(entity),
            )
            .unwrap()
    }

    #[test]
    fn fields_are_read_at_any_depth() {
        let entity = json!({"OrderId": 77, "Lines": [{"Sku": "A"}, {"Sku": "B", "Qty": 2}],
                            "Customer": {"Address": {"City": "Gent"}}, "Flag": true, "N": null});
        assert_eq!(
            render(
                "{{ entity.Lines[1].Sku }} {{ entity.Lines[1].Qty * 2 }} {{ entity.Customer.Address.City }}",
                entity.clone()
            ),
            "B 4 Gent"
        );
        assert_eq!(
            render(
                "{% for l in entity.Lines %}{{ loop.index }}{{ l.Sku }}{% endfor %} {{ entity.Lines | length }} {{ entity.Lines[-1].Sku }}",
                entity.clone()
            ),
            "1A2B 2 B"
        );
        assert_eq!(
            render(
                "{{ entity.Flag }} {{ entity.N is none }} {{ entity.Missing is undefined }}",
                entity.clone()
            ),
            "true true true"
        );
        assert_eq!(
            render("{{ event.id }} {{ event.type }} {{ event.entityId }} {{ entityId }} {{ shop.id }} {{ shop.name }}", entity.clone()),
            "5 OrderChanged 77 77 2 Main"
        );
        assert_eq!(
            render("{{ entity.Customer }}", entity),
            r#"{"Address":{"City":"Gent"}}"#
        );
    }

    #[test]
    fn entity_data_has_the_catalog_fields_typed() {
        let out = render(
            "{{ entityData.OrderId + 1 }} {{ entityData.OrderCode is none }} {{ entityData.Other is undefined }} {{ entityData | list | join(',') }}",
            json!({"OrderId": "41", "Other": 1}),
        );
        assert_eq!(out, "42 true true OrderId,OrderCode");
    }
}
