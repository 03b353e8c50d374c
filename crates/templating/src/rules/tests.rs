use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use super::*;
use crate::catalog::{EventType, Field, FieldType};
use crate::context::RenderContext;
use crate::render::TemplateSet;

/// A type whose schema describes a text, a number, a boolean, a date, a list of objects, a
/// list of texts and an object; plus one catalog field.
fn order_type() -> EventType {
    EventType {
        name: "OrderChanged".into(),
        catalog: "test".into(),
        group: "Order".into(),
        entity: "Order".into(),
        description: "An order changed".into(),
        fields: vec![Field {
            name: "OrderId".into(),
            ty: FieldType::Integer,
            description: "The order's id".into(),
        }],
        payload: Default::default(),
        references: Vec::new(),
        schema: Some(json!({
            "type": "object",
            "properties": {
                "Status": {"type": "string"},
                "Total": {"type": "number"},
                "Paid": {"type": "boolean"},
                "CreatedAt": {"type": "string", "format": "date-time"},
                "Lines": {"type": "array", "items": {"type": "object", "properties": {
                    "Sku": {"type": "string"},
                    "Qty": {"type": "integer"},
                    "Parts": {"type": "array", "items": {"type": "object", "properties": {
                        "Code": {"type": "string"}
                    }}}
                }}},
                "Tags": {"type": "array", "items": {"type": "string"}},
                "Customer": {"type": "object", "properties": {"Name": {"type": "string"}}},
                "odd key": {"type": "string"}
            }
        })),
        example: None,
        payload_template: None,
        custom: true,
    }
}

fn map(value: Json) -> Map<String, Json> {
    value.as_object().expect("an object").clone()
}

fn compile(rule: Json) -> CompiledRule {
    let parsed = Rule::parse(&rule, "rules").unwrap_or_else(|e| panic!("{e}"));
    parsed
        .check(&order_type(), "rules")
        .unwrap_or_else(|e| panic!("{e}"))
}

fn subject<'a>(
    entity: &'a Map<String, Json>,
    previous: Option<&'a Map<String, Json>>,
) -> Subject<'a> {
    Subject {
        entity,
        previous,
        event_id: 7,
        event_type: "OrderChanged",
        occurred_at: "2026-03-04T05:06:07Z",
        entity_id: "42",
        shop_id: 3,
        shop_name: "Main",
    }
}

/// The verdict of `rule` on `entity` (and `previous`), natively and through the rule's
/// expression evaluated as a condition, which must agree.
fn verdict(rule: Json, entity: Json, previous: Option<Json>) -> bool {
    let compiled = compile(rule.clone());
    let entity = map(entity);
    let previous = previous.map(map);
    let native = compiled.matches(&subject(&entity, previous.as_ref()));
    let (traced, steps) = compiled.trace(&subject(&entity, previous.as_ref()));
    assert_eq!(native, traced, "trace disagrees for {rule}");
    assert!(!steps.is_empty());
    let expression = compiled.expression();
    let mut set = TemplateSet::new();
    let id = set
        .add_condition("t", &expression)
        .unwrap_or_else(|e| panic!("{expression}: {e}"));
    let ctx = RenderContext {
        event_id: 7,
        event_type: Arc::new(order_type()),
        occurred_at: "2026-03-04T05:06:07Z".into(),
        entity_id: "42".into(),
        shop_id: 3,
        shop_name: "Main".into(),
        entity: Arc::new(entity),
        previous: previous.map(Arc::new),
    }
    .into_value();
    let by_expression = set
        .condition_holds(&id, &ctx)
        .unwrap_or_else(|e| panic!("{expression}: {e}"));
    assert_eq!(
        native, by_expression,
        "the expression {expression} disagrees with the rule {rule}"
    );
    native
}

fn clause(field: &str, op: &str, value: Json) -> Json {
    if value.is_null() {
        json!({"field": field, "op": op})
    } else {
        json!({"field": field, "op": op, "value": value})
    }
}

/// One clause against several entities: `(entity, expected verdict)`.
fn cases(rule: Json, cases: &[(Json, bool)]) {
    for (entity, expected) in cases {
        assert_eq!(
            verdict(rule.clone(), entity.clone(), None),
            *expected,
            "{rule} on {entity}"
        );
    }
}

#[test]
fn text_operators_on_values_missing_fields_nulls_and_numbers() {
    let missing = json!({});
    let null = json!({"Status": null});
    cases(
        clause("entity.Status", "equals", json!("Shipped")),
        &[
            (json!({"Status": "Shipped"}), true),
            (json!({"Status": "shipped"}), false),
            (missing.clone(), false),
            (null.clone(), false),
            (json!({"Status": 5}), false),
        ],
    );
    cases(
        clause("entity.Status", "notEquals", json!("Shipped")),
        &[
            (json!({"Status": "Shipped"}), false),
            (json!({"Status": "Open"}), true),
            (missing.clone(), true),
            (null.clone(), true),
        ],
    );
    cases(
        clause("entity.Status", "in", json!(["Shipped", "Delivered"])),
        &[
            (json!({"Status": "Delivered"}), true),
            (json!({"Status": "Open"}), false),
            (missing.clone(), false),
        ],
    );
    cases(
        clause("entity.Status", "notIn", json!(["Shipped", "Delivered"])),
        &[
            (json!({"Status": "Delivered"}), false),
            (json!({"Status": "Open"}), true),
            (null.clone(), true),
        ],
    );
    cases(
        clause("entity.Status", "contains", json!("hip")),
        &[
            (json!({"Status": "Shipped"}), true),
            (json!({"Status": "Open"}), false),
            (missing.clone(), false),
        ],
    );
    cases(
        clause("entity.Status", "notContains", json!("hip")),
        &[
            (json!({"Status": "Shipped"}), false),
            (json!({"Status": "Open"}), true),
            (missing.clone(), true),
        ],
    );
    cases(
        clause("entity.Status", "startsWith", json!("Ship")),
        &[
            (json!({"Status": "Shipped"}), true),
            (json!({"Status": "Reshipped"}), false),
            (null.clone(), false),
        ],
    );
    cases(
        clause("entity.Status", "endsWith", json!("ped")),
        &[
            (json!({"Status": "Shipped"}), true),
            (json!({"Status": "Open"}), false),
            (missing.clone(), false),
        ],
    );
    cases(
        clause("entity.Status", "isEmpty", Json::Null),
        &[
            (json!({"Status": ""}), true),
            (missing.clone(), true),
            (null.clone(), true),
            (json!({"Status": "x"}), false),
        ],
    );
    cases(
        clause("entity.Status", "isNotEmpty", Json::Null),
        &[
            (json!({"Status": ""}), false),
            (missing.clone(), false),
            (json!({"Status": "x"}), true),
        ],
    );
    // A text field sent as a number is read as its decimal text.
    cases(
        clause("entity.OrderId", "equals", json!(42)),
        &[
            (json!({"OrderId": 42}), true),
            (json!({"OrderId": "42"}), true),
        ],
    );
}

#[test]
fn number_operators_read_numbers_and_numeric_strings() {
    let total = |op: &str, value: Json| clause("entity.Total", op, value);
    cases(
        total("equals", json!(100)),
        &[
            (json!({"Total": 100}), true),
            (json!({"Total": 100.0}), true),
            (json!({"Total": "100"}), true),
            (json!({"Total": "abc"}), false),
            (json!({}), false),
        ],
    );
    cases(
        total("notEquals", json!(100)),
        &[
            (json!({"Total": 100}), false),
            (json!({"Total": 5}), true),
            (json!({}), true),
        ],
    );
    cases(
        total("greaterThan", json!(100)),
        &[
            (json!({"Total": 100.5}), true),
            (json!({"Total": 100}), false),
            (json!({"Total": " 250 "}), true),
            (json!({"Total": null}), false),
            (json!({"Total": true}), false),
        ],
    );
    cases(
        total("greaterThanOrEqual", json!(100)),
        &[
            (json!({"Total": 100}), true),
            (json!({"Total": 99}), false),
            (json!({}), false),
        ],
    );
    cases(
        total("lessThan", json!(100)),
        &[
            (json!({"Total": -1}), true),
            (json!({"Total": 100}), false),
            (json!({}), false),
        ],
    );
    cases(
        total("lessThanOrEqual", json!(100)),
        &[
            (json!({"Total": 100}), true),
            (json!({"Total": 101}), false),
        ],
    );
    cases(
        total("between", json!([10, 20])),
        &[
            (json!({"Total": 10}), true),
            (json!({"Total": 20}), true),
            (json!({"Total": 20.01}), false),
            (json!({}), false),
        ],
    );
    cases(
        total("in", json!([1, 2.5])),
        &[(json!({"Total": 2.5}), true), (json!({"Total": 3}), false)],
    );
    cases(
        total("notIn", json!([1, 2.5])),
        &[
            (json!({"Total": 2.5}), false),
            (json!({"Total": 3}), true),
            (json!({}), true),
        ],
    );
    cases(
        total("isEmpty", Json::Null),
        &[(json!({"Total": 0}), false), (json!({}), true)],
    );
}

#[test]
fn date_operators_compare_instants() {
    let at = |op: &str, value: Json| json!({"field": "entity.CreatedAt", "op": op, "value": value, "type": "date"});
    cases(
        at("greaterThan", json!("2026-01-01")),
        &[
            (json!({"CreatedAt": "2026-01-01T00:00:01Z"}), true),
            (json!({"CreatedAt": "2026-01-01T01:00:00+02:00"}), false),
            (json!({"CreatedAt": "not a date"}), false),
            (json!({}), false),
        ],
    );
    cases(
        at("equals", json!("2026-01-01T00:00:00Z")),
        &[
            (json!({"CreatedAt": "2026-01-01"}), true),
            (json!({"CreatedAt": "2026-01-01T02:00:00+02:00"}), true),
            (json!({"CreatedAt": "2026-01-02"}), false),
        ],
    );
    cases(
        at("between", json!(["2026-01-01", "2026-01-31"])),
        &[
            (json!({"CreatedAt": "2026-01-15T12:00:00Z"}), true),
            (json!({"CreatedAt": "2026-02-01T00:00:00Z"}), false),
        ],
    );
    cases(
        at("lessThan", json!("2026-01-01")),
        &[
            (json!({"CreatedAt": "2025-12-31T23:59:59Z"}), true),
            (json!({}), false),
        ],
    );
    // The event's own time is a date.
    cases(
        clause(
            "event.occurredAt",
            "lessThanOrEqual",
            json!("2026-03-04T05:06:07Z"),
        ),
        &[(json!({}), true)],
    );
}

#[test]
fn boolean_operators() {
    cases(
        clause("entity.Paid", "equals", json!(true)),
        &[
            (json!({"Paid": true}), true),
            (json!({"Paid": false}), false),
            (json!({"Paid": "true"}), false),
            (json!({}), false),
        ],
    );
    cases(
        clause("entity.Paid", "notEquals", json!(true)),
        &[
            (json!({"Paid": true}), false),
            (json!({"Paid": false}), true),
            (json!({}), true),
        ],
    );
    cases(
        clause("entity.Paid", "isNotEmpty", Json::Null),
        &[
            (json!({"Paid": false}), true),
            (json!({"Paid": null}), false),
        ],
    );
}

#[test]
fn list_operators_test_each_item_with_the_where_rule() {
    let gift = json!({"all": [{"field": "Sku", "op": "startsWith", "value": "GIFT-"}]});
    let lines = |op: &str| json!({"field": "entity.Lines", "op": op, "where": gift});
    let both = json!({"Lines": [{"Sku": "GIFT-1"}, {"Sku": "A"}]});
    let all_gifts = json!({"Lines": [{"Sku": "GIFT-1"}, {"Sku": "GIFT-2"}]});
    let none = json!({"Lines": [{"Sku": "A"}, {"Qty": 2}]});
    let empty = json!({"Lines": []});
    let missing = json!({});
    let not_a_list = json!({"Lines": "GIFT-1"});
    cases(
        lines("anyItem"),
        &[
            (both.clone(), true),
            (all_gifts.clone(), true),
            (none.clone(), false),
            (empty.clone(), false),
            (missing.clone(), false),
            (not_a_list.clone(), false),
        ],
    );
    cases(
        lines("allItems"),
        &[
            (both.clone(), false),
            (all_gifts.clone(), true),
            (none.clone(), false),
            (empty.clone(), true),
            (missing.clone(), true),
        ],
    );
    cases(
        lines("noItem"),
        &[
            (both.clone(), false),
            (none.clone(), true),
            (empty.clone(), true),
            (missing.clone(), true),
        ],
    );
    let count = |op: &str, value: Json| clause("entity.Lines", op, value);
    cases(
        count("countEquals", json!(2)),
        &[
            (both.clone(), true),
            (empty.clone(), false),
            (missing.clone(), false),
        ],
    );
    cases(
        count("countGreaterThan", json!(1)),
        &[(both.clone(), true), (json!({"Lines": [{}]}), false)],
    );
    cases(
        count("countLessThan", json!(1)),
        &[
            (empty.clone(), true),
            (missing.clone(), true),
            (both.clone(), false),
        ],
    );
    cases(
        count("countBetween", json!([1, 2])),
        &[(both.clone(), true), (empty.clone(), false)],
    );
    cases(
        clause("entity.Tags", "contains", json!("vip")),
        &[
            (json!({"Tags": ["new", "vip"]}), true),
            (json!({"Tags": ["new"]}), false),
            (json!({"Tags": "vip"}), false),
            (missing.clone(), false),
        ],
    );
    cases(
        clause("entity.Tags", "notContains", json!("vip")),
        &[(json!({"Tags": ["vip"]}), false), (missing.clone(), true)],
    );
    cases(
        clause("entity.Lines", "isEmpty", Json::Null),
        &[(empty.clone(), true), (missing, true), (both, false)],
    );
    // Nested: an item with a part whose code is X, and a quantity over 1.
    let nested = json!({"field": "entity.Lines", "op": "anyItem", "where": {"all": [
        {"field": "Qty", "op": "greaterThan", "value": 1},
        {"field": "Parts", "op": "anyItem", "where": {"field": "Code", "op": "equals", "value": "X"}}
    ]}});
    cases(
        nested,
        &[
            (
                json!({"Lines": [{"Qty": 2, "Parts": [{"Code": "X"}]}]}),
                true,
            ),
            (
                json!({"Lines": [{"Qty": 1, "Parts": [{"Code": "X"}]}, {"Qty": 2, "Parts": []}]}),
                false,
            ),
        ],
    );
}

#[test]
fn change_operators_need_previous_data() {
    let to = clause("entity.Status", "changedTo", json!("Shipped"));
    let from = clause("entity.Status", "changedFrom", json!("Open"));
    let changed = clause("entity.Status", "changed", Json::Null);
    let now = json!({"Status": "Shipped"});
    let before = json!({"Status": "Open"});
    assert!(verdict(to.clone(), now.clone(), Some(before.clone())));
    assert!(verdict(from.clone(), now.clone(), Some(before.clone())));
    assert!(verdict(changed.clone(), now.clone(), Some(before.clone())));
    // Unchanged.
    assert!(!verdict(to.clone(), now.clone(), Some(now.clone())));
    assert!(!verdict(changed.clone(), now.clone(), Some(now.clone())));
    // No previous state: false, whatever the value.
    assert!(!verdict(to.clone(), now.clone(), None));
    assert!(!verdict(from.clone(), now.clone(), None));
    assert!(!verdict(changed.clone(), now.clone(), None));
    // Previous state without the field: it had no value, so it changed.
    assert!(verdict(to.clone(), now.clone(), Some(json!({}))));
    assert!(!verdict(from.clone(), now.clone(), Some(json!({}))));
    // Removed: changed, from the old value, to nothing.
    assert!(verdict(changed.clone(), json!({}), Some(before.clone())));
    assert!(verdict(from, json!({"Status": null}), Some(before.clone())));
    assert!(!verdict(to, json!({}), Some(before)));
    // Numbers change by value, not by spelling.
    let total = clause("entity.Total", "changed", Json::Null);
    assert!(!verdict(
        total.clone(),
        json!({"Total": 1.0}),
        Some(json!({"Total": 1}))
    ));
    assert!(verdict(
        total,
        json!({"Total": 2}),
        Some(json!({"Total": 1}))
    ));
    let object = clause("entity.Customer", "changed", Json::Null);
    assert!(verdict(
        object,
        json!({"Customer": {"Name": "B"}}),
        Some(json!({"Customer": {"Name": "A"}}))
    ));
    let date = json!({"field": "entity.CreatedAt", "op": "changedTo", "value": "2026-01-02", "type": "date"});
    assert!(verdict(
        date,
        json!({"CreatedAt": "2026-01-02T00:00:00Z"}),
        Some(json!({"CreatedAt": "2026-01-01"}))
    ));
}

#[test]
fn groups_combine_and_the_example_rule_works() {
    let example = json!({"all": [
        {"field": "entity.Status", "op": "equals", "value": "Shipped"},
        {"any": [
            {"field": "entity.Total", "op": "greaterThan", "value": 100},
            {"field": "entity.Lines", "op": "anyItem",
             "where": {"all": [{"field": "Sku", "op": "startsWith", "value": "GIFT-"}]}}
        ]}
    ]});
    assert!(verdict(
        example.clone(),
        json!({"Status": "Shipped", "Total": 150}),
        None
    ));
    assert!(verdict(
        example.clone(),
        json!({"Status": "Shipped", "Total": 5, "Lines": [{"Sku": "GIFT-9"}]}),
        None
    ));
    assert!(!verdict(
        example.clone(),
        json!({"Status": "Shipped", "Total": 5, "Lines": [{"Sku": "A"}]}),
        None
    ));
    assert!(!verdict(
        example,
        json!({"Status": "Open", "Total": 500}),
        None
    ));
    let not = json!({"not": {"any": [
        {"field": "entity.Status", "op": "equals", "value": "Open"},
        {"field": "shop.id", "op": "equals", "value": 4}
    ]}});
    assert!(verdict(not.clone(), json!({"Status": "Shipped"}), None));
    assert!(!verdict(not, json!({"Status": "Open"}), None));
    let event = json!({"all": [
        {"field": "entityId", "op": "equals", "value": "42"},
        {"field": "event.type", "op": "equals", "value": "OrderChanged"},
        {"field": "shop.name", "op": "startsWith", "value": "Ma"},
        {"field": "event.id", "op": "greaterThan", "value": 6},
        {"field": "entity.Customer.Name", "op": "equals", "value": "Zoë"},
        {"field": "entity[\"odd key\"]", "op": "equals", "value": "a \"quoted\" {{ value }} %}"}
    ]});
    assert!(verdict(
        event,
        json!({"Customer": {"Name": "Zoë"}, "odd key": "a \"quoted\" {{ value }} %}"}),
        None
    ));
}

#[test]
fn a_field_the_type_does_not_describe_needs_its_type() {
    let rule = json!({"all": [{"field": "entity.Extra", "op": "equals", "value": "x"}]});
    let err = Rule::parse(&rule, "rules")
        .unwrap()
        .check(&order_type(), "rules")
        .unwrap_err();
    assert_eq!(err.path, "rules.all[0]");
    assert!(err.message.contains("unknown field entity.Extra"), "{err}");
    let typed = json!({"field": "entity.Extra", "op": "equals", "value": "x", "type": "text"});
    assert!(verdict(typed, json!({"Extra": "x"}), None));
    let list = json!({"field": "entity.Items", "op": "anyItem", "type": "list",
        "where": {"field": "Price", "op": "greaterThan", "value": 5, "type": "number"}});
    assert!(verdict(list, json!({"Items": [{"Price": 9}]}), None));
}

fn check_err(rule: Json) -> RuleError {
    match Rule::parse(&rule, "rules") {
        Err(err) => err,
        Ok(parsed) => parsed
            .check(&order_type(), "rules")
            .expect_err("the rule should be refused"),
    }
}

#[test]
fn errors_name_the_clause_by_its_path() {
    let cases: Vec<(Json, &str, &str)> = vec![
        (
            json!({"all": [{"field": "entity.Status", "op": "equals", "value": "x"},
                {"any": [{"field": "entity.Total", "op": "startsWith", "value": "1"}]}]}),
            "rules.all[1].any[0]",
            "startsWith does not fit entity.Total (number)",
        ),
        (
            json!({"all": [{"field": "entity.Nope", "op": "equals", "value": "x"}]}),
            "rules.all[0]",
            "unknown field entity.Nope",
        ),
        (
            json!({"any": [{"field": "entity.Lines", "op": "anyItem", "where": {"all": [
                {"field": "Sku", "op": "greaterThan", "value": 3}]}}]}),
            "rules.any[0].where.all[0]",
            "greaterThan does not fit Sku (text)",
        ),
        (
            json!({"field": "entity.Status", "op": "sortOf", "value": "x"}),
            "rules",
            "unknown operator \"sortOf\"",
        ),
        (
            json!({"field": "entity.Total", "op": "greaterThan", "value": "100"}),
            "rules",
            "value: expected a number, found a text",
        ),
        (
            json!({"field": "entity.Total", "op": "between", "value": [5, 1]}),
            "rules",
            "low at most high",
        ),
        (
            json!({"field": "entity.Status", "op": "isEmpty", "value": "x"}),
            "rules",
            "isEmpty takes no \"value\"",
        ),
        (
            json!({"field": "entity.Lines", "op": "anyItem"}),
            "rules",
            "needs a \"where\" rule",
        ),
        (json!({"all": []}), "rules.all", "at least one rule"),
        (json!({"all": [], "any": []}), "rules", "has no other keys"),
        (json!([1]), "rules", "a rule must be an object"),
        (
            json!({"field": "entity.Status", "op": "equals", "value": "x", "extra": 1}),
            "rules",
            "unknown key \"extra\"",
        ),
        (
            json!({"field": "entity.Status", "op": "equals", "value": "x", "type": "date"}),
            "rules",
            "",
        ),
        (
            json!({"field": "entity.Total", "op": "equals", "value": 1, "type": "text"}),
            "rules",
            "\"type\": \"text\" does not fit it",
        ),
        (
            json!({"field": "entity.Lines", "op": "anyItem", "where":
                {"field": "Sku", "op": "changed"}}),
            "rules.where",
            "previousData",
        ),
        (
            json!({"field": "shop.id", "op": "changed"}),
            "rules",
            "does not change",
        ),
        (
            json!({"field": "customer.Name", "op": "equals", "value": "x"}),
            "rules",
            "a field is entity.<name>",
        ),
        (
            json!({"field": "entity..Status", "op": "equals", "value": "x"}),
            "rules",
            "expected a name at character 8",
        ),
        (
            json!({"field": "entity.Status", "op": "in", "value": []}),
            "rules",
            "a list of 1 to 500 values",
        ),
    ];
    for (rule, path, message) in cases {
        if message.is_empty() {
            // A text field may be compared as dates.
            assert!(Rule::parse(&rule, "rules")
                .unwrap()
                .check(&order_type(), "rules")
                .is_err());
            continue;
        }
        let err = check_err(rule.clone());
        assert_eq!(err.path, path, "{rule}: {err}");
        assert!(err.message.contains(message), "{rule}: {err}");
    }
}

#[test]
fn a_text_field_holding_dates_can_be_compared_as_dates() {
    let rule = json!({"field": "entity.Status", "op": "greaterThan", "value": "2026-01-01", "type": "date"});
    assert!(verdict(rule, json!({"Status": "2026-02-01"}), None));
}

#[test]
fn limits_keep_rules_small() {
    let mut deep = json!({"field": "entity.Status", "op": "isEmpty"});
    for _ in 0..=MAX_DEPTH {
        deep = json!({"not": deep});
    }
    assert!(check_err(deep).message.contains("nest at most"));
    let many: Vec<Json> = (0..=MAX_CLAUSES)
        .map(|_| json!({"field": "entity.Status", "op": "isEmpty"}))
        .collect();
    assert!(check_err(json!({"any": many}))
        .message
        .contains("at most 100 clauses"));
}

#[test]
fn the_canonical_json_reads_back_equal() {
    let rule = json!({"all": [
        {"field": "entity.Status", "op": "equals", "value": "Shipped"},
        {"not": {"field": "entity.Total", "op": "between", "value": [1, 2]}},
        {"any": [{"field": "entity.Lines", "op": "anyItem", "where": {"field": "Sku", "op": "isEmpty"}},
                 {"field": "entity.X", "op": "equals", "value": "2026-01-01", "type": "date"}]}
    ]});
    let parsed = Rule::parse(&rule, "rules").unwrap();
    assert_eq!(parsed.to_json(), rule);
    assert_eq!(Rule::parse(&parsed.to_json(), "rules").unwrap(), parsed);
    assert_eq!(parsed.clause_count(), 5);
}

#[test]
fn the_trace_shows_every_clause_with_the_value_it_saw() {
    let compiled = compile(json!({"all": [
        {"field": "entity.Status", "op": "equals", "value": "Shipped"},
        {"any": [
            {"field": "entity.Total", "op": "greaterThan", "value": 100},
            {"field": "entity.Lines", "op": "anyItem",
             "where": {"all": [{"field": "Sku", "op": "startsWith", "value": "GIFT-"}]}}
        ]},
        {"field": "entity.Status", "op": "changedTo", "value": "Shipped"}
    ]}));
    let entity =
        map(json!({"Status": "Shipped", "Total": 5, "Lines": [{"Sku": "A"}, {"Sku": "GIFT-2"}]}));
    let (matched, steps) = compiled.trace(&subject(&entity, None));
    assert!(!matched);
    let summary: Vec<(&str, &str, bool)> = steps
        .iter()
        .map(|s| (s.path.as_str(), s.field.as_str(), s.result))
        .collect();
    assert_eq!(
        summary,
        [
            ("rules.all[0]", "entity.Status", true),
            ("rules.all[1].any[0]", "entity.Total", false),
            ("rules.all[1].any[1]", "entity.Lines", true),
            (
                "rules.all[1].any[1].where.all[0] (item 0)",
                "entity.Lines[0].Sku",
                false
            ),
            (
                "rules.all[1].any[1].where.all[0] (item 1)",
                "entity.Lines[1].Sku",
                true
            ),
            ("rules.all[2]", "entity.Status", false),
        ]
    );
    assert_eq!(steps[1].actual, json!(5));
    assert_eq!(steps[1].expected, Some(json!(100)));
    assert_eq!(steps[1].op, "greaterThan");
    assert_eq!(steps[3].actual, json!("A"));
    assert_eq!(steps[2].actual, json!("2 items"));
    assert!(steps[5]
        .note
        .as_deref()
        .unwrap()
        .contains("no previousData"));
    // The clause that decided: the change clause, the last one read.
    let (result, decided) = compiled.matches_decided(&subject(&entity, None));
    assert!(!result);
    assert_eq!(compiled.clause_path(decided), Some("rules.all[2]"));
    let open = map(json!({"Status": "Open"}));
    let (_, decided) = compiled.matches_decided(&subject(&open, None));
    assert_eq!(compiled.clause_path(decided), Some("rules.all[0]"));
}

#[test]
fn the_expression_reads_like_the_rule() {
    let compiled = compile(json!({"all": [
        {"field": "entity.Status", "op": "equals", "value": "Shipped"},
        {"any": [
            {"field": "entity.Total", "op": "greaterThan", "value": 100},
            {"field": "entity.Lines", "op": "anyItem",
             "where": {"all": [{"field": "Sku", "op": "startsWith", "value": "GIFT-"}]}}
        ]},
        {"not": {"field": "entity.Status", "op": "in", "value": ["A", "B"]}},
        {"field": "entity.Status", "op": "changedFrom", "value": "Open"}
    ]}));
    assert_eq!(
        compiled.expression(),
        "entity.Status is equals(\"Shipped\") and (entity.Total is greaterThan(100) or \
         entity.Lines is anyItem({ \"all\": [{ \"field\": \"Sku\", \"op\": \"startsWith\", \
         \"value\": \"GIFT-\" }] })) and not (entity.Status is oneOf([\"A\", \"B\"])) and \
         (hasPreviousData and entity.Status is changedFrom(\"Open\", previousData.Status))"
    );
}

#[test]
fn lists_nested_in_lists_cannot_hold_up_ingest() {
    let rule = json!({"field": "entity.Lines", "op": "anyItem", "where":
        {"field": "Parts", "op": "anyItem", "where": {"field": "Code", "op": "equals", "value": "X"}}});
    let compiled = compile(rule.clone());
    // n lines of n parts; with `hit`, the very last part is the one sought.
    let lines = |n: usize, hit: bool| {
        let lines: Vec<Json> = (0..n)
            .map(|line| {
                let parts: Vec<Json> = (0..n)
                    .map(|i| {
                        let last = hit && line == n - 1 && i == n - 1;
                        json!({"Code": if last { "X" } else { "A" }})
                    })
                    .collect();
                json!({"Parts": parts})
            })
            .collect();
        map(json!({"Lines": lines}))
    };
    // 20 × 20 tests: evaluated.
    assert!(verdict(rule, Json::Object(lines(20, true)), None));
    // 400 × 400 tests, more than allowed: it does not hold, and says why, quickly.
    let big = lines(400, false);
    let start = std::time::Instant::now();
    let (matched, decided) = compiled.matches_decided(&subject(&big, None));
    assert!(!matched);
    assert_eq!(decided, OVER_LIMIT);
    assert!(compiled
        .clause_path(decided)
        .unwrap()
        .contains("more clause tests"));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let (matched, steps) = compiled.trace(&subject(&big, None));
    assert!(!matched);
    assert!(steps.len() <= 1000);
    assert!(steps[0]
        .note
        .as_deref()
        .unwrap()
        .contains("more than 100000"));
    // Even when the very last part matches: the verdict is the limit's.
    let hit = lines(400, true);
    assert!(!compiled.matches(&subject(&hit, None)));
}
