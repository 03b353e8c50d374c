//! Event ingest: a request body as `POST /api/v1/events` receives it, parsed and checked the
//! way the engine does before anything is stored (`event::parse_events`, then each event's
//! entity against its type's JSON Schema, as `Engine::check_events` does).
//!
//! Input: the raw body bytes. Invariants: what is accepted is what the parser promises
//! (a known type, a positive shop, an entity id of 1 to 255 characters without NUL).
#![no_main]

use hookflow_engine::event::{parse_events, MAX_EVENTS_PER_REQUEST, MAX_IDEMPOTENCY_KEY};
use hookflow_engine::model::Timestamp;
use hookflow_fuzz::catalog;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // The HTTP layer hands the engine what serde_json makes of the body.
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let catalog = catalog();
    let Ok(events) = parse_events(body, catalog, Timestamp(0)) else {
        return;
    };
    assert!(!events.is_empty() && events.len() <= MAX_EVENTS_PER_REQUEST);
    for event in &events {
        assert!(catalog.get(&event.event_type).is_some(), "{event:?}");
        assert!(event.shop_id.0 > 0, "{event:?}");
        assert!(
            !event.entity_id.is_empty()
                && event.entity_id.len() <= 255
                && !event.entity_id.contains('\0'),
            "{event:?}"
        );
        if let Some(key) = &event.idempotency_key {
            assert!(!key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY && !key.contains('\0'));
        }
        let entity = Value::Object(event.entity.clone());
        if let Err(mismatch) = catalog.validate_entity(&event.event_type, &entity) {
            assert!(mismatch.path.starts_with("entityData"), "{mismatch:?}");
        }
    }
});
