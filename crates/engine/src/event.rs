//! Incoming events are parsed here, once, into [`NewEvent`]s: after this the engine trusts them.
//!
//! Errors name the field (and the array index in a batch), so a backend developer can fix the
//! sender without reading our code.

use hookflow_templating::Catalog;
use serde_json::Value;

use crate::model::{NewEvent, ShopId, Timestamp};

/// Most events one request may carry; a larger batch is a 413-style refusal, not a slow commit.
pub const MAX_EVENTS_PER_REQUEST: usize = 1000;
/// Longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Longest entity id given as a string, in characters.
pub const MAX_ENTITY_ID: usize = 255;

/// An event that cannot be accepted, with the path of the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidEvent {
    /// e.g. `eventType` or `[3].shopId`.
    pub field: String,
    pub message: String,
    /// The event type is not in the catalog (a distinct code for clients).
    pub unknown_event_type: bool,
}

/// Parses one event object or an array of them.
pub fn parse_events(
    body: Value,
    catalog: &Catalog,
    now: Timestamp,
) -> Result<Vec<NewEvent>, InvalidEvent> {
    match body {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(invalid("", "the array holds no events"));
            }
            if items.len() > MAX_EVENTS_PER_REQUEST {
                return Err(invalid(
                    "",
                    &format!(
                        "{} events in one request; at most {MAX_EVENTS_PER_REQUEST} are accepted",
                        items.len()
                    ),
                ));
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| parse_event(item, catalog, now, &format!("[{i}].")))
                .collect()
        }
        other => Ok(vec![parse_event(other, catalog, now, "")?]),
    }
}

fn invalid(field: &str, message: &str) -> InvalidEvent {
    InvalidEvent {
        field: if field.is_empty() {
            "body".into()
        } else {
            field.into()
        },
        message: message.into(),
        unknown_event_type: false,
    }
}

fn parse_event(
    value: Value,
    catalog: &Catalog,
    now: Timestamp,
    prefix: &str,
) -> Result<NewEvent, InvalidEvent> {
    let Value::Object(mut obj) = value else {
        return Err(invalid(
            prefix.trim_end_matches('.'),
            "an event must be a JSON object",
        ));
    };
    check_known_fields(&obj, prefix)?;
    let at = |name| Field { prefix, name };
    let event_type = event_type(obj.remove("eventType"), catalog, at("eventType"))?;
    let shop_id = shop_id(obj.remove("shopId"), at("shopId"))?;
    let entity_id = entity_id(obj.remove("entityId"), at("entityId"))?;
    let entity = entity_data(obj.remove("entityData"), at("entityData"))?;
    let previous = previous_data(obj.remove("previousData"), at("previousData"))?;
    let occurred_at = occurred_at(obj.remove("occurredAt"), now, at("occurredAt"))?;
    let idempotency_key = idempotency_key(obj.remove("idempotencyKey"), at("idempotencyKey"))?;
    // What a database would refuse is refused here, naming the field, so one bad event never
    // fails the group commit it would have joined. (Invalid Unicode never gets this far: the
    // JSON parser refuses it. Lengths are checked above.)
    if entity_id.contains('\0') {
        return Err(at("entityId").invalid(NUL_MESSAGE));
    }
    if idempotency_key.as_deref().is_some_and(|k| k.contains('\0')) {
        return Err(at("idempotencyKey").invalid(NUL_MESSAGE));
    }
    for (key, value) in &entity {
        check_text(value, &mut format!("{prefix}entityData.{key}"), key)?;
    }
    for (key, value) in previous.iter().flatten() {
        check_text(value, &mut format!("{prefix}previousData.{key}"), key)?;
    }
    Ok(NewEvent {
        event_type,
        shop_id: ShopId(shop_id),
        entity_id,
        entity,
        previous,
        occurred_at,
        idempotency_key,
    })
}

/// One field of one event, named in its errors with the event's place in a batch
/// (`[3].shopId`); the name is only built when there is an error to report.
#[derive(Clone, Copy)]
struct Field<'a> {
    prefix: &'a str,
    name: &'static str,
}

impl Field<'_> {
    fn path(self) -> String {
        format!("{}{}", self.prefix, self.name)
    }

    fn invalid(self, message: &str) -> InvalidEvent {
        invalid(&self.path(), message)
    }
}

/// Refuses a field an event does not have, naming it.
fn check_known_fields(
    obj: &serde_json::Map<String, Value>,
    prefix: &str,
) -> Result<(), InvalidEvent> {
    for key in obj.keys() {
        if !matches!(
            key.as_str(),
            "eventType"
                | "shopId"
                | "entityId"
                | "entityData"
                | "previousData"
                | "occurredAt"
                | "idempotencyKey"
        ) {
            return Err(invalid(
                &format!("{prefix}{key}"),
                "unknown field; an event has eventType, shopId, entityId, entityData, previousData, occurredAt and idempotencyKey",
            ));
        }
    }
    Ok(())
}

/// `eventType`: required, and a type of the catalog.
fn event_type(value: Option<Value>, catalog: &Catalog, at: Field) -> Result<String, InvalidEvent> {
    let event_type = match value {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => return Err(at.invalid("is required")),
        Some(_) => return Err(at.invalid("must be a string")),
    };
    if catalog.get(&event_type).is_none() {
        return Err(InvalidEvent {
            field: at.path(),
            message: format!("unknown event type {event_type:?}"),
            unknown_event_type: true,
        });
    }
    Ok(event_type)
}

/// `shopId`: required, a positive integer.
fn shop_id(value: Option<Value>, at: Field) -> Result<i64, InvalidEvent> {
    match value {
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|id| *id > 0)
            .ok_or_else(|| at.invalid("must be a positive integer")),
        None | Some(Value::Null) => Err(at.invalid("is required")),
        Some(_) => Err(at.invalid("must be a positive integer")),
    }
}

/// `entityId`: required, a string of [`MAX_ENTITY_ID`] characters at most or an int64.
fn entity_id(value: Option<Value>, at: Field) -> Result<String, InvalidEvent> {
    match value {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_ENTITY_ID => Ok(s),
        Some(Value::String(_)) => Err(at.invalid("must be 1 to 255 characters")),
        // An int64, as the document says (the API rewrites `6.0` as 6 before this).
        Some(Value::Number(n)) if n.is_i64() => Ok(n.to_string()),
        None | Some(Value::Null) => Err(at.invalid("is required")),
        Some(_) => Err(at.invalid("must be a string or an integer from -2^63 to 2^63-1")),
    }
}

/// `entityData`: an object, empty when left out.
fn entity_data(
    value: Option<Value>,
    at: Field,
) -> Result<serde_json::Map<String, Value>, InvalidEvent> {
    match value {
        Some(Value::Object(map)) => Ok(map),
        None | Some(Value::Null) => Ok(serde_json::Map::new()),
        Some(_) => Err(at.invalid("must be a JSON object")),
    }
}

/// `previousData`: the entity before the change, optional (`null` is the same as leaving it
/// out: the event carries no previous state).
fn previous_data(
    value: Option<Value>,
    at: Field,
) -> Result<Option<serde_json::Map<String, Value>>, InvalidEvent> {
    match value {
        Some(Value::Object(map)) => Ok(Some(map)),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(at.invalid("must be a JSON object (the entity before the change) or null")),
    }
}

/// `occurredAt`: an RFC 3339 date-time, `now` when left out.
fn occurred_at(value: Option<Value>, now: Timestamp, at: Field) -> Result<Timestamp, InvalidEvent> {
    match value {
        Some(Value::String(s)) => Timestamp::parse_rfc3339(&s).ok_or_else(|| {
            at.invalid("must be an RFC 3339 date-time such as 2026-11-27T10:00:00Z")
        }),
        None | Some(Value::Null) => Ok(now),
        Some(_) => Err(at.invalid("must be an RFC 3339 date-time string")),
    }
}

/// `idempotencyKey`: optional, [`MAX_IDEMPOTENCY_KEY`] characters at most.
fn idempotency_key(value: Option<Value>, at: Field) -> Result<Option<String>, InvalidEvent> {
    match value {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_IDEMPOTENCY_KEY => {
            Ok(Some(s))
        }
        Some(Value::String(_)) => Err(at.invalid("must be 1 to 255 characters")),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(at.invalid("must be a string")),
    }
}

const NUL_MESSAGE: &str = "contains a NUL character (U+0000), which cannot be stored";

/// Refuses NUL characters anywhere in a JSON value, keys included, naming the path
/// (`entityData.lines[2].sku`). `path` ends with the value's own name; `key` is that name.
fn check_text(value: &Value, path: &mut String, key: &str) -> Result<(), InvalidEvent> {
    if key.contains('\0') {
        return Err(invalid(
            path,
            "has a name with a NUL character (U+0000), which cannot be stored",
        ));
    }
    match value {
        Value::String(s) if s.contains('\0') => Err(invalid(path, NUL_MESSAGE)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_text(item, path, "")?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, v) in map {
                let len = path.len();
                path.push('.');
                path.push_str(k);
                check_text(v, path, k)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog() -> Catalog {
        Catalog::builtin().unwrap()
    }

    #[test]
    fn a_single_event_is_parsed() {
        let events = parse_events(
            json!({"eventType": "OrderChanged", "shopId": 1, "entityId": 77, "entityData": {"OrderId": 77},
                   "occurredAt": "2026-11-27T10:00:00Z", "idempotencyKey": "k1"}),
            &catalog(),
            Timestamp(5),
        )
        .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].entity_id, "77");
        assert_eq!(events[0].shop_id, ShopId(1));
        assert_eq!(events[0].idempotency_key.as_deref(), Some("k1"));
    }

    #[test]
    fn errors_name_the_field_and_index() {
        let err = parse_events(
            json!([{"eventType": "OrderChanged", "shopId": 1, "entityId": "a"},
                   {"eventType": "OrderChanged", "shopId": "x", "entityId": "a"}]),
            &catalog(),
            Timestamp(5),
        )
        .unwrap_err();
        assert_eq!(err.field, "[1].shopId");
    }

    #[test]
    fn nul_characters_are_refused_where_they_are() {
        let c = catalog();
        let base = json!({"eventType": "OrderChanged", "shopId": 1, "entityId": "a"});
        let cases = [
            (json!({"entityId": "a\u{0}b"}), "entityId"),
            (json!({"idempotencyKey": "k\u{0}"}), "idempotencyKey"),
            (json!({"entityData": {"Note": "x\u{0}"}}), "entityData.Note"),
            (
                json!({"entityData": {"lines": [{"sku": "ok"}, {"sku": "\u{0}"}]}}),
                "entityData.lines[1].sku",
            ),
            (json!({"entityData": {"a\u{0}": 1}}), "entityData.a\u{0}"),
        ];
        for (patch, field) in cases {
            let mut body = base.clone();
            for (k, v) in patch.as_object().unwrap() {
                body[k] = v.clone();
            }
            let err = parse_events(json!([base.clone(), body]), &c, Timestamp(0)).unwrap_err();
            assert_eq!(err.field, format!("[1].{field}"), "{err}");
            assert!(err.message.contains("NUL"), "{err}");
        }
    }

    #[test]
    fn unknown_event_types_are_flagged() {
        let err = parse_events(
            json!({"eventType": "Nope", "shopId": 1, "entityId": "a"}),
            &catalog(),
            Timestamp(5),
        )
        .unwrap_err();
        assert!(err.unknown_event_type);
        assert_eq!(err.field, "eventType");
    }

    #[test]
    fn missing_and_malformed_fields_are_refused() {
        let c = catalog();
        let cases = [
            (json!({"shopId": 1, "entityId": "a"}), "eventType"),
            (
                json!({"eventType": "OrderChanged", "entityId": "a"}),
                "shopId",
            ),
            (
                json!({"eventType": "OrderChanged", "shopId": 1}),
                "entityId",
            ),
            (
                json!({"eventType": "OrderChanged", "shopId": 1, "entityId": "a", "entityData": []}),
                "entityData",
            ),
            (
                json!({"eventType": "OrderChanged", "shopId": 1, "entityId": "a", "occurredAt": "soon"}),
                "occurredAt",
            ),
            (
                json!({"eventType": "OrderChanged", "shopId": 1, "entityId": "a", "extra": 1}),
                "extra",
            ),
            (json!("text"), "body"),
        ];
        for (body, field) in cases {
            let err = parse_events(body.clone(), &c, Timestamp(0)).unwrap_err();
            assert_eq!(err.field, field, "{body}");
        }
    }
}
