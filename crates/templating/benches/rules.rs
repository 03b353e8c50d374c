//! Rule evaluation speed: `cargo bench -p hookflow-templating --bench rules`.
//!
//! The rule is the one the issue names: five clauses, one of them a list operator with a
//! nested rule on the items, over the ~1 KB order of the render bench, checked against a type
//! whose schema describes it (as saving a trigger does). Beside it, the cost of what every
//! matching event pays anyway: rendering the default payload, and the rule's compiled
//! expression evaluated as a condition. A final line per case prints evaluations/s on one
//! thread: `bench: <case> evaluations/s=<N>`. The target is >= 1 000 000 for `rule_5_clauses`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use hookflow_templating::rules::{CompiledRule, Rule, Subject};
use hookflow_templating::{default_payload, Catalog, EventType, RenderContext, TemplateSet};
use serde_json::{json, Map, Value};

/// The order of the render bench (about 1 KB).
fn entity() -> Map<String, Value> {
    let lines: Vec<Value> = (1..=6)
        .map(|i| {
            json!({"Sku": format!("SKU-{i:04}"), "Name": format!("Product {i}"),
                   "Qty": i, "Price": 9.95 * i as f64, "Warehouse": "WH-1"})
        })
        .collect();
    let entity = json!({
        "OrderId": 4242, "OrderCode": "ORD-4242", "Status": "Shipped", "Total": 208.95,
        "Currency": "EUR", "Paid": true, "CreatedAt": "2026-11-27T10:20:30Z",
        "Customer": {"Name": "Zoë O'Brien", "Email": "zoe@example.com",
                     "Address": {"Street": "Main street 1", "City": "Gent", "Country": "BE"}},
        "Lines": lines,
        "Notes": "Leave at the back door; ring twice. Fragile items inside, handle with care.",
    });
    match entity {
        Value::Object(map) => map,
        _ => unreachable!("the literal is an object"),
    }
}

/// Five clauses; the list clause's items are tested with a rule of their own. Every clause
/// is read for this entity (the last item is the one the list clause finds).
fn rule() -> Value {
    json!({"all": [
        {"field": "entity.Status", "op": "in", "value": ["Shipped", "Delivered"]},
        {"field": "entity.Total", "op": "greaterThan", "value": 100},
        {"field": "entity.Currency", "op": "equals", "value": "EUR"},
        {"field": "entity.Paid", "op": "equals", "value": true},
        {"field": "entity.Lines", "op": "anyItem", "where": {"all": [
            {"field": "Sku", "op": "startsWith", "value": "SKU-0006"}
        ]}}
    ]})
}

/// OrderChanged, with a schema describing the fields the rule reads.
fn order_type(catalog: &Catalog) -> EventType {
    let mut ty = catalog.get("OrderChanged").expect("a builtin type").clone();
    ty.schema = Some(json!({"type": "object", "properties": {
        "Status": {"type": "string"}, "Total": {"type": "number"},
        "Currency": {"type": "string"}, "Paid": {"type": "boolean"},
        "Lines": {"type": "array", "items": {"type": "object", "properties": {
            "Sku": {"type": "string"}}}}
    }}));
    ty
}

fn subject(entity: &Map<String, Value>) -> Subject<'_> {
    Subject {
        entity,
        previous: None,
        event_id: 1,
        event_type: "OrderChanged",
        occurred_at: "2026-11-27T10:20:30Z",
        entity_id: "4242",
        shop_id: 1,
        shop_name: "Main shop",
    }
}

fn main() {
    let catalog = Catalog::builtin().expect("the builtin catalog loads");
    let event_type = Arc::new(order_type(&catalog));
    let entity = Arc::new(entity());
    let compiled: CompiledRule = Rule::parse(&rule(), "rules")
        .and_then(|r| r.check(&event_type, "rules"))
        .expect("the bench rule checks");
    assert!(compiled.matches(&subject(&entity)), "the bench rule holds");
    let mut conditions = TemplateSet::new();
    let expression = conditions
        .add_condition("t1", &compiled.expression())
        .expect("the expression compiles");

    let evaluate = || compiled.matches(black_box(&subject(&entity)));
    let payload = || {
        default_payload(
            1,
            &event_type,
            1,
            "2026-11-27T10:20:30Z",
            black_box(&entity),
        )
        .len()
    };
    let by_expression = || {
        let ctx = RenderContext {
            event_id: 1,
            event_type: event_type.clone(),
            occurred_at: "2026-11-27T10:20:30Z".to_owned(),
            entity_id: "4242".to_owned(),
            shop_id: 1,
            shop_name: "Main shop".to_owned(),
            entity: entity.clone(),
            previous: None,
        }
        .into_value();
        conditions
            .condition_holds(&expression, &ctx)
            .expect("the expression evaluates")
    };

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("rules");
    group.throughput(Throughput::Elements(1));
    group.bench_function("rule_5_clauses", |b| b.iter(evaluate));
    group.bench_function("default_payload", |b| b.iter(payload));
    group.bench_function("rule_as_expression", |b| b.iter(by_expression));
    group.finish();
    criterion.final_summary();

    // Under `cargo test --benches` the cases above ran once; only a real run measures.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rate = |f: &dyn Fn() -> usize| {
        let mut n = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            for _ in 0..1000 {
                black_box(f());
            }
            n += 1000;
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    println!(
        "bench: rule_5_clauses evaluations/s={:.0}",
        rate(&|| usize::from(evaluate()))
    );
    println!("bench: default_payload renders/s={:.0}", rate(&payload));
    println!(
        "bench: rule_as_expression evaluations/s={:.0}",
        rate(&|| usize::from(by_expression()))
    );
}
