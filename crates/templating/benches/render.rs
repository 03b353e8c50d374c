//! Render speed of payload templates over a ~1 KB entity: `cargo bench -p hookflow-templating`.
//!
//! Each case builds the per-event context (as the planner does) and renders a kept template,
//! output check included. Criterion reports the time per render and the throughput
//! (elements/s = renders/s); a final line per case prints renders/s measured on one thread:
//! `bench: <case> renders/s=<N>`. The target is >= 200 000 renders/s per core for the README
//! example JSON template.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use hookflow_templating::{Catalog, MimeType, RenderContext, TemplateKind, TemplateSet};
use serde_json::{json, Map, Value};

/// The README example.
const JSON_TEMPLATE: &str = r#"{"order": {{ entity.OrderCode | tojson }}}"#;

const XML_TEMPLATE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<order id="{{ entity.OrderId }}" shop="{{ shop.name }}">
  <code>{{ entity.OrderCode }}</code>
  <status>{{ entity.Status }}</status>
  <customer email="{{ entity.Customer.Email }}">{{ entity.Customer.Name }}</customer>
  <lines>{% for line in entity.Lines %}
    <line sku="{{ line.Sku }}" qty="{{ line.Qty }}">{{ line.Name }}</line>{% endfor %}
  </lines>
  <total>{{ entity.Total | numberformat(2) }}</total>
</order>
"#;

/// A realistic order of about 1 KB.
fn entity() -> Map<String, Value> {
    let lines: Vec<Value> = (1..=6)
        .map(|i| {
            json!({"Sku": format!("SKU-{i:04}"), "Name": format!("Product \"{i}\" <b>& co</b>"),
                   "Qty": i, "Price": 9.95 * i as f64, "Warehouse": "WH-1"})
        })
        .collect();
    let entity = json!({
        "OrderId": 4242, "OrderCode": "ORD-4242", "Status": "Shipped", "Total": 208.95,
        "Currency": "EUR", "CreatedAt": "2026-11-27T10:20:30Z",
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

struct Case {
    name: &'static str,
    set: TemplateSet,
    id: hookflow_templating::TemplateId,
    /// Clone the entity map first, as the planner does for each event it renders.
    clone_entity: bool,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (name, mime, source, clone_entity) in [
        ("json_readme", MimeType::Json, JSON_TEMPLATE, false),
        (
            "json_readme_with_entity_clone",
            MimeType::Json,
            JSON_TEMPLATE,
            true,
        ),
        ("xml_order", MimeType::Xml, XML_TEMPLATE, false),
    ] {
        let mut set = TemplateSet::new();
        let id = set
            .add("t1a0", TemplateKind::Payload(mime), source)
            .expect("the bench templates compile");
        out.push(Case {
            name,
            set,
            id,
            clone_entity,
        });
    }
    out
}

fn render_one(case: &Case, catalog: &Catalog, entity: &Arc<Map<String, Value>>) -> usize {
    let entity = if case.clone_entity {
        Arc::new((**entity).clone())
    } else {
        entity.clone()
    };
    let ctx = RenderContext {
        event_id: 1,
        event_type: catalog.shared("OrderChanged").expect("a builtin type"),
        occurred_at: "2026-11-27T10:20:30Z".to_owned(),
        entity_id: "4242".to_owned(),
        shop_id: 1,
        shop_name: "Main shop".to_owned(),
        entity,
        previous: None,
    }
    .into_value();
    case.set
        .render(&case.id, &ctx)
        .expect("the bench templates render")
        .len()
}

fn main() {
    let catalog = Catalog::builtin().expect("the builtin catalog loads");
    let entity = Arc::new(entity());
    let size = serde_json::to_string(&*entity).map_or(0, |s| s.len());
    let cases = cases();

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("render");
    group.throughput(Throughput::Elements(1));
    for case in &cases {
        group.bench_function(case.name, |b| {
            b.iter(|| render_one(black_box(case), &catalog, black_box(&entity)))
        });
    }
    group.finish();
    criterion.final_summary();

    // Under `cargo test --benches` the cases above ran once; only a real run measures.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("bench: entity_bytes={size}");
    for case in &cases {
        let mut renders = 0u64;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            for _ in 0..1000 {
                black_box(render_one(case, &catalog, &entity));
            }
            renders += 1000;
        }
        let rate = renders as f64 / start.elapsed().as_secs_f64();
        println!("bench: {} renders/s={rate:.0}", case.name);
    }
}
