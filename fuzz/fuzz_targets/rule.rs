//! Rules as saving a trigger and ingest handle them: parsed (`Rule::parse`), checked against an
//! event type whose schema describes texts, numbers, dates, booleans, lists of objects and an
//! object, and evaluated for a few entities with and without previous state.
//!
//! Input: a rule's JSON (`{"all": [{"field": "entity.Status", "op": "equals", ...}]}`).
//!
//! Invariants, for every rule that saves and every entity: the native verdict, the trace's and
//! the verdict of the compiled expression evaluated as a condition are the same; the expression
//! compiles as a condition; the canonical JSON parses back into an equal rule; the trace shows
//! at least one step per clause that is not inside a `where`.
#![no_main]

use std::sync::{Arc, LazyLock};

use hookflow_templating::rules::{Rule, Subject};
use hookflow_templating::{Catalog, EventType, RenderContext, TemplateSet};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

/// A type whose schema describes every kind of field a rule can read.
static TYPE: LazyLock<Arc<EventType>> = LazyLock::new(|| {
    let catalog = Catalog::builtin().expect("the shipped catalogs load");
    let mut ty = catalog.get("OrderChanged").expect("a shipped type").clone();
    ty.schema = Some(json!({"type": "object", "properties": {
        "Status": {"type": "string"}, "Total": {"type": "number"}, "Paid": {"type": "boolean"},
        "CreatedAt": {"type": "string"}, "Tags": {"type": "array", "items": {"type": "string"}},
        "Customer": {"type": "object", "properties": {"Name": {"type": "string"}}},
        "Lines": {"type": "array", "items": {"type": "object", "properties": {
            "Sku": {"type": "string"}, "Qty": {"type": "integer"},
            "Parts": {"type": "array", "items": {"type": "object", "properties": {
                "Code": {"type": "string"}}}}}}}
    }}));
    Arc::new(ty)
});

/// Entities (and previous states) every rule is evaluated for: full, sparse, mistyped, empty.
static ENTITIES: LazyLock<Vec<(Map<String, Value>, Option<Map<String, Value>>)>> =
    LazyLock::new(|| {
        let object = |v: Value| v.as_object().cloned().expect("an object");
        vec![
            (
                object(json!({"OrderId": 42, "OrderCode": "ORD-42", "Status": "Shipped",
                    "Total": 150.5, "Paid": true, "CreatedAt": "2026-01-02T03:04:05Z",
                    "Tags": ["vip", "new"], "Customer": {"Name": "Zoë"},
                    "Lines": [{"Sku": "GIFT-1", "Qty": 2, "Parts": [{"Code": "X"}]},
                              {"Sku": "A", "Qty": 1, "Parts": []}]})),
                Some(object(json!({"Status": "Open", "Total": 150.5, "Paid": false}))),
            ),
            (
                object(json!({"OrderId": "42", "Status": null, "Total": "12", "Paid": "yes",
                    "CreatedAt": "2026-01-02", "Tags": "vip", "Lines": [{"Sku": 5}, 7, null]})),
                Some(object(json!({}))),
            ),
            (Map::new(), None),
        ]
    });

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(rule) = Rule::parse(&json, "rules") else {
        return;
    };
    assert_eq!(
        Rule::parse(&rule.to_json(), "rules").as_ref(),
        Ok(&rule),
        "the canonical form reads back"
    );
    let Ok(compiled) = rule.check(&TYPE, "rules") else {
        return;
    };
    let expression = compiled.expression();
    let mut set = TemplateSet::new();
    let id = set
        .add_condition("fuzz", &expression)
        .unwrap_or_else(|e| panic!("the expression {expression:?} does not compile: {e}"));
    for (entity, previous) in ENTITIES.iter() {
        let subject = Subject {
            entity,
            previous: previous.as_ref(),
            event_id: 7,
            event_type: "OrderChanged",
            occurred_at: "2026-03-04T05:06:07Z",
            entity_id: "42",
            shop_id: 3,
            shop_name: "Main",
        };
        let native = compiled.matches(&subject);
        let (traced, steps) = compiled.trace(&subject);
        assert_eq!(native, traced, "the trace's verdict");
        assert!(!steps.is_empty(), "a trace shows its clauses");
        let ctx = RenderContext {
            event_id: 7,
            event_type: TYPE.clone(),
            occurred_at: "2026-03-04T05:06:07Z".into(),
            entity_id: "42".into(),
            shop_id: 3,
            shop_name: "Main".into(),
            entity: Arc::new(entity.clone()),
            previous: previous.clone().map(Arc::new),
        }
        .into_value();
        let by_expression = set
            .condition_holds(&id, &ctx)
            .unwrap_or_else(|e| panic!("the expression {expression:?} fails: {e}"));
        assert_eq!(
            native, by_expression,
            "the expression {expression:?} disagrees with the rule {json}"
        );
    }
});
