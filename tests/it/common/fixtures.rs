//! What tests send and how they read answers: request bodies (a trigger, an event), JSON
//! helpers, and assertions on the API's error shape, so a test body says what it means
//! instead of spelling out JSON.

use reqwest::StatusCode;
use serde_json::{json, Value};

/// A trigger calling `url` (POST, default payload) on every `event_type`, in every shop.
pub fn webhook_trigger(event_type: &str, url: &str) -> Value {
    json!({
        "name": format!("{event_type} to {url}"),
        "eventType": event_type,
        "actions": [{"type": "callWebhook", "url": url}],
    })
}

/// An event without extras.
pub fn event(event_type: &str, shop_id: i64, entity_id: impl Into<Value>, data: Value) -> Value {
    json!({
        "eventType": event_type,
        "shopId": shop_id,
        "entityId": entity_id.into(),
        "entityData": data,
    })
}

/// `value.with(json!({...}))`: a copy with the patch's top-level keys set.
pub trait JsonExt {
    fn with(self, patch: Value) -> Value;
}

impl JsonExt for Value {
    fn with(mut self, patch: Value) -> Value {
        let (Some(target), Value::Object(patch)) = (self.as_object_mut(), patch) else {
            panic!("with() patches a JSON object with a JSON object");
        };
        for (k, v) in patch {
            target.insert(k, v);
        }
        self
    }
}

/// The `id` of a JSON object, as i64.
pub fn id(value: &Value) -> i64 {
    value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer id in {value}"))
}

/// Asserts an API error: status, `error.code`, and returns `error.message`.
#[track_caller]
pub fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str) -> String {
    let (got, body) = answer;
    assert_eq!(*got, status, "unexpected status; body: {body}");
    assert_eq!(body["error"]["code"], code, "unexpected error code: {body}");
    body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("error without a message: {body}"))
        .to_owned()
}

/// An RFC 3339 time from the API.
#[track_caller]
pub fn parse_time(value: &Value) -> std::time::SystemTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time string: {value}"));
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"));
    std::time::SystemTime::from(t)
}

/// The items, sorted: for comparing results whose order does not matter.
pub fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}
