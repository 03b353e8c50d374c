//! Catalogs per shop: a shop picks the catalog (platform profile) its events, triggers and
//! subscriptions use, and has an API key for the platform-compatible APIs; admins add event
//! types of their own to any catalog at run time.
//!
//! Event type names are unique across catalogs, so the type an event or trigger names says
//! which catalog it belongs to; the checks here refuse a type of another catalog than the
//! shop's, and an entity that does not match its type's schema, before anything is stored.

use std::sync::Arc;

use base64::Engine as _;
use hookflow_templating::{
    check_schema, Catalog, EventType, Field, FieldType, MimeType, TemplateKind, TemplateSet,
    DEFAULT_CATALOG,
};
use rand::RngCore;
use serde_json::Value;
use tracing::{info, warn};

use crate::model::{
    Action, CustomEventType, NewEvent, RetryPolicySpec, RetryPreset, Shop, ShopId, Timestamp,
    TriggerDraft,
};
use crate::service::{check_shop, invalid, sample_context, sample_entity};
use crate::{Engine, EngineError};

/// Every API key starts with this, so a leaked one is recognisable in a log or a repository.
pub const API_KEY_PREFIX: &str = "hfk_";
/// How much of a key reads show: enough to tell keys apart, far too little to guess the rest.
const SHOWN_PREFIX: usize = 8;
/// Longest custom event type name.
const MAX_NAME: usize = 100;

/// A custom event type as an admin writes it.
#[derive(Debug, Clone, Default)]
pub struct EventTypeDraft {
    /// Required on create; on update it must be absent or the same. 1 to 100 letters, digits,
    /// `_`, `-` or `.`, starting with a letter.
    pub name: Option<String>,
    /// Default `shopctrl`.
    pub catalog: Option<String>,
    /// At most 1000 characters.
    pub description: String,
    /// JSON Schema of the entity backends send; checked to be a valid schema.
    pub schema: Option<Value>,
    /// Default payload template (JSON with merge fields).
    pub payload_template: Option<String>,
}

/// What a built-in type's event sends when its action has no template of its own, filled from
/// the type's sample entity (the platform's published example, or a typed placeholder per
/// field), pretty-printed for people.
pub fn example_payload(event_type: &EventType) -> String {
    let entity = sample_entity(event_type);
    let payload =
        hookflow_templating::default_payload(1, event_type, 1, "2026-01-01T12:00:00Z", &entity);
    serde_json::from_str::<Value>(&payload)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or(payload)
}

/// The shipped catalogs with the stored custom types merged in.
pub(crate) fn merge_custom(builtin: &Arc<Catalog>, custom: Vec<CustomEventType>) -> Arc<Catalog> {
    if custom.is_empty() {
        return builtin.clone();
    }
    let (catalog, refused) = builtin.with_custom(custom.into_iter().map(to_event_type).collect());
    for name in refused {
        // Saving checks all of this; only a changed shipped catalog can get here.
        warn!(event_type = %name, "custom event type clashes with the shipped catalogs; left out");
    }
    Arc::new(catalog)
}

/// A stored custom type as the catalog holds it. Its typed fields (for `entityData` and the
/// sample entity) are the scalar top-level properties of its schema.
fn to_event_type(c: CustomEventType) -> EventType {
    let fields = c
        .schema
        .as_ref()
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .filter_map(|(name, prop)| {
                    let ty = scalar_type(prop)?;
                    Some(Field {
                        name: name.clone(),
                        ty,
                        description: prop
                            .get("description")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    EventType {
        entity: c.name.clone(),
        name: c.name,
        catalog: c.catalog,
        group: "Custom".into(),
        description: c.description,
        fields,
        payload: Default::default(),
        references: Vec::new(),
        schema: c.schema,
        example: None,
        payload_template: c.payload_template,
        custom: true,
    }
}

fn scalar_type(prop: &Value) -> Option<FieldType> {
    let names: Vec<&str> = match prop.get("type")? {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return None,
    };
    match names.into_iter().find(|t| *t != "null")? {
        "integer" => Some(FieldType::Integer),
        "number" => Some(FieldType::Number),
        "string" => Some(FieldType::String),
        "boolean" => Some(FieldType::Boolean),
        _ => None,
    }
}

/// A type of another catalog than the shop's is refused, naming the shop's catalog.
pub(crate) fn check_type_in_shop(
    ty: &EventType,
    shop: &Shop,
    field: &str,
) -> Result<(), EngineError> {
    if ty.catalog == shop.catalog {
        return Ok(());
    }
    Err(EngineError::UnknownEventType {
        field: field.to_owned(),
        message: format!(
            "event type {:?} belongs to the {} catalog, but shop {} uses the {} catalog",
            ty.name, ty.catalog, shop.id, shop.catalog
        ),
        catalog: Some(shop.catalog.clone()),
    })
}

/// A new API key: the prefix and 32 random bytes, URL-safe.
fn new_api_key() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "{API_KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What is stored of a key: the digest API tokens get too. Keys are 256 random bits, so a
/// plain SHA-256 is as good as a slow password hash here, and lets a request's key be looked
/// up by an index.
fn hash_api_key(key: &str) -> String {
    crate::accounts::token_digest(key)
}

impl Engine {
    /// The catalogs hookflow knows, in load order.
    pub fn catalogs(&self) -> Vec<hookflow_templating::CatalogInfo> {
        self.catalog().catalogs().to_vec()
    }

    fn check_catalog_name(&self, catalog: &str, field: &str) -> Result<(), EngineError> {
        if self.catalog().info(catalog).is_some() {
            return Ok(());
        }
        let known: Vec<String> = self.catalogs().into_iter().map(|c| c.name).collect();
        Err(invalid(
            field,
            format!(
                "unknown catalog {catalog:?}; the catalogs are {}",
                known.join(", ")
            ),
        ))
    }

    // ---- shops ----

    /// Creates a shop using `catalog` (default `shopctrl`) with a fresh API key; the key is
    /// returned this once.
    pub async fn create_shop_with_key(
        &self,
        name: &str,
        notification_email: Option<&str>,
        catalog: Option<&str>,
    ) -> Result<(Shop, String), EngineError> {
        let (name, email) = check_shop(name, notification_email)?;
        let catalog = catalog.unwrap_or(DEFAULT_CATALOG);
        self.check_catalog_name(catalog, "catalog")?;
        let shop = self
            .store
            .create_shop(name, email, Timestamp::now())
            .await?;
        if catalog != DEFAULT_CATALOG {
            self.store.set_shop_catalog(shop.id, catalog).await?;
        }
        self.rotate_api_key(shop.id).await
    }

    /// Moves a shop to another catalog. Refused (409) while triggers of the shop use event
    /// types of its current catalog: they would stop matching.
    pub async fn set_shop_catalog(&self, id: ShopId, catalog: &str) -> Result<Shop, EngineError> {
        self.check_catalog_name(catalog, "catalog")?;
        let shop = self.get_shop(id).await?;
        if shop.catalog == catalog {
            return Ok(shop);
        }
        let current = self.catalog();
        let in_use: Vec<String> = self
            .store
            .list_triggers()
            .await?
            .into_iter()
            .filter(|t| t.draft.shop_id == Some(id))
            .filter(|t| {
                current
                    .get(&t.draft.event_type)
                    .is_none_or(|ty| ty.catalog != catalog)
            })
            .map(|t| t.id.to_string())
            .collect();
        if !in_use.is_empty() {
            return Err(EngineError::Conflict(format!(
                "shop {id} has triggers of the {} catalog (ids {}); delete them before moving it to {catalog}",
                shop.catalog,
                in_use.join(", ")
            )));
        }
        let shop = self
            .store
            .set_shop_catalog(id, catalog)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("shop {id} does not exist")))?;
        self.shop_catalogs
            .write()
            .expect("shop catalog lock is never poisoned: writers only insert or clear")
            .insert(id, shop.catalog.clone());
        info!(shop_id = %id, catalog, "shop moved to another catalog");
        Ok(shop)
    }

    /// Gives the shop a new API key (the old one stops working at once) and returns it; only
    /// its hash is stored.
    pub async fn rotate_api_key(&self, id: ShopId) -> Result<(Shop, String), EngineError> {
        let key = new_api_key();
        let mut shop = self
            .store
            .set_shop_api_key(id, &hash_api_key(&key), &key[..SHOWN_PREFIX])
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("shop {id} does not exist")))?;
        shop.api_key.key = Some(crate::model::Secret::new(key.clone()));
        Ok((shop, key))
    }

    /// The shop an API key belongs to.
    pub async fn shop_for_api_key(&self, key: &str) -> Result<Option<Shop>, EngineError> {
        if !key.starts_with(API_KEY_PREFIX) {
            return Ok(None);
        }
        Ok(self.store.shop_by_api_key(&hash_api_key(key)).await?)
    }

    /// A shop's catalog, from a cache that the periodic refresh clears (so a change made on
    /// another node shows within that interval). `None`: no such shop.
    async fn shop_catalog(&self, id: ShopId) -> Result<Option<String>, EngineError> {
        if let Some(catalog) = self
            .shop_catalogs
            .read()
            .expect("shop catalog lock is never poisoned: writers only insert or clear")
            .get(&id)
        {
            return Ok(Some(catalog.clone()));
        }
        let Some(shop) = self.store.get_shop(id).await? else {
            return Ok(None);
        };
        self.shop_catalogs
            .write()
            .expect("shop catalog lock is never poisoned: writers only insert or clear")
            .insert(id, shop.catalog.clone());
        Ok(Some(shop.catalog))
    }

    /// Checks parsed events against their shops' catalogs and their types' schemas. An
    /// unknown shop is left for ingest to refuse.
    pub(crate) async fn check_events(
        &self,
        events: &[NewEvent],
        batch: bool,
    ) -> Result<(), EngineError> {
        let catalog = self.catalog();
        for (i, event) in events.iter().enumerate() {
            let prefix = if batch {
                format!("[{i}].")
            } else {
                String::new()
            };
            let Some(ty) = catalog.get(&event.event_type) else {
                continue; // parse_events refused unknown types already
            };
            if let Some(shop_catalog) = self.shop_catalog(event.shop_id).await? {
                if shop_catalog != ty.catalog {
                    return Err(EngineError::UnknownEventType {
                        field: format!("{prefix}eventType"),
                        message: format!(
                            "event type {:?} belongs to the {} catalog, but shop {} uses the \
                             {shop_catalog} catalog",
                            ty.name, ty.catalog, event.shop_id
                        ),
                        catalog: Some(shop_catalog),
                    });
                }
            }
            if ty.schema.is_some() {
                let entity = Value::Object(event.entity.clone());
                catalog
                    .validate_entity(&ty.name, &entity)
                    .map_err(|m| invalid(format!("{prefix}{}", m.path), m.message))?;
            }
        }
        Ok(())
    }

    /// Actions without a retry policy get their catalog's preset, written into the trigger so
    /// that reads show it. ShopCtrl's triggers are left as they are: they run under the
    /// server's own defaults (`--max-retries`, out of the box ShopCtrl's 10 retries) unless
    /// an admin names the `shopctrl` preset.
    pub(crate) fn default_retry_policies(&self, draft: &mut TriggerDraft, ty: &EventType) {
        let catalog = self.catalog();
        let Some(info) = catalog.info(&ty.catalog) else {
            return;
        };
        let Some(preset) = RetryPreset::from_name(&info.retry_preset) else {
            return;
        };
        if preset == RetryPreset::Shopctrl {
            return;
        }
        for action in &mut draft.actions {
            let Action::CallWebhook(call) = action;
            if call.retry_policy.is_none() {
                call.retry_policy = Some(RetryPolicySpec::Preset(preset));
            }
        }
    }

    // ---- custom event types ----

    /// Reloads the custom types (another node may have changed them) and clears the shop
    /// catalog cache.
    pub(crate) async fn reload_catalog(&self) -> Result<(), EngineError> {
        let custom = self.store.list_event_types().await?;
        let merged = merge_custom(&self.builtin_catalog, custom);
        *self
            .catalog
            .write()
            .expect("catalog lock is never poisoned: writers only swap an Arc") = merged;
        self.shop_catalogs
            .write()
            .expect("shop catalog lock is never poisoned: writers only insert or clear")
            .clear();
        Ok(())
    }

    pub async fn list_custom_event_types(&self) -> Result<Vec<CustomEventType>, EngineError> {
        Ok(self.store.list_event_types().await?)
    }

    /// Adds an event type to a catalog.
    pub async fn create_event_type(&self, draft: EventTypeDraft) -> Result<EventType, EngineError> {
        let name = draft
            .name
            .clone()
            .ok_or_else(|| invalid("name", "is required"))?;
        let now = Timestamp::now();
        let ty = self.check_event_type(&name, draft, now)?;
        if self.catalog().get(&name).is_some() || !self.store.create_event_type(&ty).await? {
            return Err(EngineError::Conflict(format!(
                "event type {name:?} exists; event type names are unique across catalogs"
            )));
        }
        info!(event_type = %name, catalog = %ty.catalog, "custom event type created");
        self.after_event_type_change(&name).await
    }

    /// Replaces a custom type's description, schema and template (and catalog, while no
    /// trigger uses it). Shipped types cannot be changed.
    pub async fn update_event_type(
        &self,
        name: &str,
        draft: EventTypeDraft,
    ) -> Result<EventType, EngineError> {
        if draft.name.as_deref().is_some_and(|n| n != name) {
            return Err(invalid("name", "an event type cannot be renamed"));
        }
        let existing = self.custom_type(name).await?;
        let mut ty = self.check_event_type(name, draft, Timestamp::now())?;
        ty.created_at = existing.created_at;
        if ty.catalog != existing.catalog {
            self.refuse_if_used(name, "moved to another catalog")
                .await?;
        }
        if !self.store.update_event_type(&ty).await? {
            return Err(unknown_custom(name));
        }
        info!(event_type = %name, "custom event type updated");
        self.after_event_type_change(name).await
    }

    /// Deletes a custom type; 409 while a trigger uses it.
    pub async fn delete_event_type(&self, name: &str) -> Result<(), EngineError> {
        self.custom_type(name).await?;
        self.refuse_if_used(name, "deleted").await?;
        if !self.store.delete_event_type(name).await? {
            return Err(unknown_custom(name));
        }
        info!(event_type = %name, "custom event type deleted");
        self.reload_catalog().await?;
        self.reload_triggers().await
    }

    async fn custom_type(&self, name: &str) -> Result<CustomEventType, EngineError> {
        if self.catalog().get(name).is_some_and(|t| !t.custom) {
            return Err(EngineError::Conflict(format!(
                "{name} is a shipped event type; only custom types can be changed or deleted"
            )));
        }
        self.store
            .list_event_types()
            .await?
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| unknown_custom(name))
    }

    async fn refuse_if_used(&self, name: &str, what: &str) -> Result<(), EngineError> {
        let users: Vec<String> = self
            .store
            .list_triggers()
            .await?
            .into_iter()
            .filter(|t| t.draft.event_type == name)
            .map(|t| t.id.to_string())
            .collect();
        if users.is_empty() {
            return Ok(());
        }
        Err(EngineError::Conflict(format!(
            "event type {name} is used by triggers {}; it cannot be {what} while they use it",
            users.join(", ")
        )))
    }

    async fn after_event_type_change(&self, name: &str) -> Result<EventType, EngineError> {
        self.reload_catalog().await?;
        self.reload_triggers().await?;
        self.catalog()
            .get(name)
            .cloned()
            .ok_or_else(|| unknown_custom(name))
    }

    /// Checks a draft; the stored form, with `now` as both times.
    fn check_event_type(
        &self,
        name: &str,
        draft: EventTypeDraft,
        now: Timestamp,
    ) -> Result<CustomEventType, EngineError> {
        let valid_name = !name.is_empty()
            && name.len() <= MAX_NAME
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid_name {
            return Err(invalid(
                "name",
                format!("must be 1 to {MAX_NAME} letters, digits, '_', '-' or '.', starting with a letter"),
            ));
        }
        let catalog = draft.catalog.unwrap_or_else(|| DEFAULT_CATALOG.to_owned());
        self.check_catalog_name(&catalog, "catalog")?;
        if draft.description.chars().count() > 1000 {
            return Err(invalid("description", "at most 1000 characters"));
        }
        if let Some(schema) = &draft.schema {
            // The document says object: the boolean schemas (`true`, `false`) are refused.
            if !schema.is_object() {
                return Err(invalid("schema", "must be a JSON Schema object"));
            }
            check_schema(schema).map_err(|m| invalid("schema", m))?;
        }
        let ty = CustomEventType {
            name: name.to_owned(),
            catalog,
            description: draft.description,
            schema: draft.schema,
            payload_template: draft.payload_template.filter(|t| !t.trim().is_empty()),
            created_at: now,
            updated_at: now,
        };
        if let Some(template) = &ty.payload_template {
            let event_type = Arc::new(to_event_type(ty.clone()));
            let sample = sample_context(&event_type, Arc::new(sample_entity(&event_type)));
            TemplateSet::new()
                .check(TemplateKind::Payload(MimeType::Json), template, &sample)
                .map_err(|e| {
                    invalid(
                        "payloadTemplate",
                        crate::triggers::template_problem(&e, "application/json", &event_type),
                    )
                })?;
        }
        Ok(ty)
    }
}

fn unknown_custom(name: &str) -> EngineError {
    EngineError::NotFound(format!("there is no custom event type {name:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_random_prefixed_and_hashed() {
        let (a, b) = (new_api_key(), new_api_key());
        assert_ne!(a, b);
        assert!(a.starts_with(API_KEY_PREFIX) && a.len() > 40);
        assert_eq!(hash_api_key(&a), hash_api_key(&a));
        assert_ne!(hash_api_key(&a), hash_api_key(&b));
        assert!(!hash_api_key(&a).contains(&a[SHOWN_PREFIX..]));
    }

    #[test]
    fn custom_types_take_typed_fields_from_their_schema() {
        let ty = to_event_type(CustomEventType {
            name: "ReturnApproved".into(),
            catalog: "shopctrl".into(),
            description: String::new(),
            schema: Some(serde_json::json!({"type": "object", "properties": {
                "returnId": {"type": "integer"}, "note": {"type": ["string", "null"]},
                "lines": {"type": "array"}
            }})),
            payload_template: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        });
        let fields: Vec<(&str, FieldType)> =
            ty.fields.iter().map(|f| (f.name.as_str(), f.ty)).collect();
        assert!(fields.contains(&("returnId", FieldType::Integer)));
        assert!(fields.contains(&("note", FieldType::String)));
        assert_eq!(fields.len(), 2);
        assert!(ty.custom);
    }
}
