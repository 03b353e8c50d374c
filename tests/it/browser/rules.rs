//! The rule builder in a real Chromium, as a shop admin uses it without typing an expression:
//! the issue's example rule built by clicking (nested groups, a list operator with a rule on
//! each item), saved and reopened identical; a dry run that shows the nested clause that
//! failed in red with the value it saw; the Activity tab and its "Why not?"; a change rule on
//! a field the type does not describe; moving clauses between groups; an error named by its
//! clause; and the switch to the compiled expression and back.

use serde_json::{json, Value};

use super::add_user;
use super::driver::Browser;
use crate::common::{event, spawn_app, Backend, Receiver, TestApp, WAIT};
use crate::rules::order_type;

/// WebDriver's Tab key: leaving a field fires its `change`, as a person moving on does.
const TAB: &str = "\u{e004}";

fn example_rule() -> Value {
    json!({"all": [
        {"field": "entity.Status", "op": "equals", "value": "Shipped"},
        {"any": [
            {"field": "entity.Total", "op": "greaterThan", "value": 100},
            {"field": "entity.Lines", "op": "anyItem",
             "where": {"all": [{"field": "Sku", "op": "startsWith", "value": "GIFT-"}]}}
        ]}
    ]})
}

/// The CSS of a group's n-th row (1-based), below `group` (a group's fieldset selector).
fn row(group: &str, n: usize) -> String {
    format!("{group} > .rule-body > :nth-child({n})")
}

/// Fills a clause: its field (typed, then left), operator and value.
async fn clause(browser: &Browser, at: &str, field: &str, op: &str, value: Option<&str>) {
    browser
        .fill(
            &format!("{at} > input[data-rule-field]"),
            &format!("{field}{TAB}"),
        )
        .await;
    browser
        .select(&format!("{at} > select[data-rule-op]"), op)
        .await;
    if let Some(value) = value {
        browser
            .fill(
                &format!("{at} > [data-rule-value]"),
                &format!("{value}{TAB}"),
            )
            .await;
    }
}

async fn saved(browser: &Browser) {
    browser.click("#save").await;
    browser.wait_for_text(".notice", "Saved.").await;
}

async fn trigger_json(app: &TestApp, trigger: i64) -> Value {
    app.get_json(&format!("/api/v1/triggers/{trigger}")).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_builds_the_example_rule_by_clicking_tests_it_and_reads_the_activity() {
    let app = spawn_app(Backend::Sqlite).await;
    order_type(&app).await;
    let shop = app.create_shop("Main shop").await;
    let receiver = Receiver::start().await;
    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    let browser = Browser::start(&app).await;
    browser.sign_in("admin@example.com", &password).await;

    browser.goto("/triggers/new").await;
    browser.fill("#t-name", "Shipped orders").await;
    browser.select("#t-event", "OrderUpdated").await;
    browser.select("#t-shop", &shop.to_string()).await;
    browser.click("#add-action").await;
    browser
        .fill("#a0-url", &receiver.url("/hook/{{ entityId }}"))
        .await;

    // Status is Shipped, and (the total is over 100, or a line is a gift card).
    let top = "#rule-root > fieldset";
    browser
        .click(&format!("{top} > .rule-add [data-add-clause]"))
        .await;
    clause(
        &browser,
        &row(top, 1),
        "entity.Status",
        "equals",
        Some("Shipped"),
    )
    .await;
    browser
        .click(&format!("{top} > .rule-add [data-add-group]"))
        .await;
    let any = format!("{} ", row(top, 2));
    let any = any.trim_end();
    browser
        .select(&format!("{any} > legend select"), "any")
        .await;
    clause(
        &browser,
        &row(any, 1),
        "entity.Total",
        "greaterThan",
        Some("100"),
    )
    .await;
    browser
        .click(&format!("{any} > .rule-add [data-add-clause]"))
        .await;
    clause(&browser, &row(any, 2), "entity.Lines", "anyItem", None).await;
    let items = format!("{} > .rule-where > fieldset", row(any, 2));
    // The items' fields are offered from the type's schema.
    let offered = browser
        .run(&format!(
            "return [...document.querySelector('{} > input[data-rule-field]').list.options].map(o => o.value)",
            row(&items, 1)
        ))
        .await;
    assert!(
        offered.as_array().unwrap().contains(&json!("Sku")),
        "{offered}"
    );
    clause(
        &browser,
        &row(&items, 1),
        "Sku",
        "startsWith",
        Some("GIFT-"),
    )
    .await;
    browser.screenshots("rule-builder").await;
    saved(&browser).await;
    let path = browser.wait_for_path("/triggers/").await;
    let trigger: i64 = path
        .trim_start_matches("/triggers/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let stored = trigger_json(&app, trigger).await;
    assert_eq!(stored["rules"], example_rule(), "{stored}");
    assert!(stored.get("condition").is_none());

    // Reopened, it reads back identical, and saving it again changes nothing.
    browser.goto(&format!("/triggers/{trigger}")).await;
    browser.wait_for_text("h1", "Shipped orders").await;
    assert_eq!(
        browser
            .run("return document.querySelectorAll('#rule-root .rule-clause').length")
            .await,
        4
    );
    saved(&browser).await;
    let mut again = trigger_json(&app, trigger).await;
    again["updatedAt"] = stored["updatedAt"].clone();
    assert_eq!(again, stored);

    // A pasted entity whose only line is not a gift card: the nested clause is red, with its value.
    browser.click("#dry-run > summary").await;
    browser
        .fill(
            "#dry-data",
            r#"{"Status": "Shipped", "Total": 5, "Lines": [{"Sku": "A-1"}]}"#,
        )
        .await;
    browser.click("#dry-run-go").await;
    browser
        .wait_for_text("#dry-run-verdict", "does not fire")
        .await;
    let sku = row(&items, 1);
    assert_eq!(
        browser
            .run(&format!("return document.querySelector('{sku}').className"))
            .await,
        "rule-clause bad"
    );
    browser
        .wait_for_text(&format!("{sku} > [data-rule-result]"), "saw \"A-1\"")
        .await;
    browser
        .wait_for_text(&format!("{} > [data-rule-result]", row(any, 1)), "saw 5")
        .await;
    assert_eq!(
        browser
            .run(&format!(
                "return document.querySelector('{}').className",
                row(top, 1)
            ))
            .await,
        "rule-clause ok"
    );
    browser.screenshots("rule-dry-run").await;
    // One that fires shows the call as it would go out.
    browser
        .fill(
            "#dry-data",
            r#"{"Status": "Shipped", "Total": 5, "Lines": [{"Sku": "A-1"}, {"Sku": "GIFT-7"}]}"#,
        )
        .await;
    browser.click("#dry-run-go").await;
    browser
        .wait_for_text("#dry-run-verdict", "fires for this entity")
        .await;
    browser
        .wait_for_text("[data-dry-call='0'] h4", "POST")
        .await;
    assert_eq!(receiver.count(), 0, "a dry run sends nothing");

    // Events: order 41 fires, order 42 does not. The Activity tab says so, and why.
    app.post_event(event(
        "OrderUpdated",
        shop,
        41,
        json!({"Status": "Shipped", "Total": 150}),
    ))
    .await;
    app.post_event(event(
        "OrderUpdated",
        shop,
        42,
        json!({"Status": "Open", "Total": 150}),
    ))
    .await;
    receiver.wait_for_requests(1, WAIT).await;
    browser.goto(&format!("/triggers/{trigger}")).await;
    browser.click("#page-tab-activity").await;
    browser
        .wait_for_text("#activity-rows tr[data-entity='42']", "did not fire")
        .await;
    browser
        .wait_for_text("#activity-rows tr[data-entity='42']", "rules.all[0]")
        .await;
    browser
        .wait_for_text("#activity-rows tr[data-entity='41']", "fired")
        .await;
    browser.screenshots("trigger-activity").await;
    browser.fill("#activity-entity", "42").await;
    browser.click("#activity-apply").await;
    browser.wait_for_text("#activity-rows", "42").await;
    assert_eq!(
        browser
            .run("return document.querySelectorAll('#activity-rows tr').length")
            .await,
        1
    );
    // "Why not?" runs the dry run on the stored entity: the status clause is red.
    browser
        .click("#activity-rows tr[data-entity='42'] [data-why]")
        .await;
    browser
        .wait_for_text("#dry-run-verdict", "does not fire")
        .await;
    browser
        .wait_for_text(
            &format!("{} > [data-rule-result]", row(top, 1)),
            "saw \"Open\"",
        )
        .await;

    // The compiled expression, and back while it is unchanged.
    browser.click("#cond-tab-expression").await;
    let expression = filled(&browser, "t-condition").await;
    assert_eq!(expression, stored["ruleExpression"]);
    browser.click("#cond-tab-builder").await;
    assert_eq!(
        browser
            .run("return document.getElementById('cond-builder').hidden")
            .await,
        false
    );
    // Edited, it cannot go back; saved, the trigger keeps the expression instead.
    browser.click("#cond-tab-expression").await;
    filled(&browser, "t-condition").await;
    browser
        .fill(
            "#t-condition",
            &format!("{} and entity.Total > 1", expression.as_str().unwrap()),
        )
        .await;
    browser.click("#cond-tab-builder").await;
    browser
        .wait_for_text("#rule-blocked", "cannot read it")
        .await;
    assert_eq!(
        browser
            .run("return document.getElementById('cond-expression').hidden")
            .await,
        false
    );
    saved(&browser).await;
    let after = trigger_json(&app, trigger).await;
    assert!(after.get("rules").is_none(), "{after}");
    assert!(after["condition"]
        .as_str()
        .unwrap()
        .ends_with("and entity.Total > 1"));
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_rules_moved_clauses_and_errors_by_clause_in_the_builder() {
    let app = spawn_app(Backend::Sqlite).await;
    let shop = app.create_shop("Main shop").await;
    let receiver = Receiver::start().await;
    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    let browser = Browser::start(&app).await;
    browser.sign_in("admin@example.com", &password).await;

    // ShopCtrl's OrderChanged describes ids only: the status is typed in with its type.
    browser.goto("/triggers/new").await;
    browser.fill("#t-name", "Status changed to Shipped").await;
    browser.select("#t-event", "OrderChanged").await;
    browser.select("#t-shop", &shop.to_string()).await;
    browser.click("#add-action").await;
    browser.fill("#a0-url", &receiver.url("/shipped")).await;
    let top = "#rule-root > fieldset";
    browser
        .click(&format!("{top} > .rule-add [data-add-clause]"))
        .await;
    let first = row(top, 1);
    browser
        .fill(
            &format!("{first} > input[data-rule-field]"),
            &format!("entity.Status{TAB}"),
        )
        .await;
    // Without a type the field cannot be saved: the error is shown beside the clause.
    saved_with_error(&browser, "unknown field entity.Status").await;
    browser
        .select(&format!("{first} > select[data-rule-type]"), "text")
        .await;
    browser
        .select(&format!("{first} > select[data-rule-op]"), "changedTo")
        .await;
    browser
        .fill(
            &format!("{first} > [data-rule-value]"),
            &format!("Shipped{TAB}"),
        )
        .await;
    // A second clause and a group; the clause is moved into the group.
    browser
        .click(&format!("{top} > .rule-add [data-add-clause]"))
        .await;
    clause(
        &browser,
        &row(top, 2),
        "entity.OrderCode",
        "startsWith",
        Some("ORD-"),
    )
    .await;
    browser
        .click(&format!("{top} > .rule-add [data-add-group]"))
        .await;
    let group = row(top, 3);
    clause(
        &browser,
        &row(&group, 1),
        "entity.OrderId",
        "greaterThan",
        Some("10"),
    )
    .await;
    let moving = browser
        .run(&format!(
            "return document.querySelector('{} [data-move-to]').dataset.moveTo",
            row(top, 2)
        ))
        .await;
    let target = browser
        .run(&format!(
            "return document.querySelector('{group}').dataset.ruleId"
        ))
        .await;
    browser
        .click(&format!("{} [data-move-to]", row(top, 2)))
        .await;
    browser
        .select(
            &format!("[data-move-to='{}']", moving.as_str().unwrap()),
            target.as_str().unwrap(),
        )
        .await;
    assert_eq!(
        browser
            .run(&format!(
                "return document.querySelectorAll('[data-rule-id=\"{}\"] > .rule-body > .rule-clause').length",
                target.as_str().unwrap()
            ))
            .await,
        2
    );
    saved(&browser).await;
    // Chromium may report the refused save once more, late.
    let late = browser.console_errors().await;
    assert!(late.iter().all(|e| e.contains("422")), "{late:#?}");
    browser.screenshots("rule-builder-change-rule").await;
    let path = browser.wait_for_path("/triggers/").await;
    let trigger: i64 = path
        .trim_start_matches("/triggers/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let stored = trigger_json(&app, trigger).await;
    assert_eq!(
        stored["rules"],
        json!({"all": [
            {"field": "entity.Status", "op": "changedTo", "value": "Shipped", "type": "text"},
            {"any": [
                {"field": "entity.OrderId", "op": "greaterThan", "value": 10},
                {"field": "entity.OrderCode", "op": "startsWith", "value": "ORD-"}
            ]}
        ]})
    );
    // What the rule means: a change to Shipped, told by previousData.
    let changed = |entity: i64, before: &str| {
        let mut e = event(
            "OrderChanged",
            shop,
            entity,
            json!({"OrderId": entity, "OrderCode": "ORD-1", "Status": "Shipped"}),
        );
        e["previousData"] = json!({"Status": before});
        e
    };
    assert_eq!(app.post_event(changed(11, "Open")).await["callsQueued"], 1);
    assert_eq!(
        app.post_event(changed(12, "Shipped")).await["callsQueued"],
        0
    );
    browser.close().await;
}

/// The value of a text field once the page has filled it (the compiled expression comes from
/// the API).
async fn filled(browser: &Browser, id: &str) -> Value {
    for _ in 0..100 {
        let value = browser
            .run(&format!("return document.getElementById('{id}').value"))
            .await;
        if value.as_str().is_some_and(|v| !v.is_empty()) {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("#{id} stayed empty");
}

/// Saves, expecting the API to refuse the rule with `message` shown inside the builder.
async fn saved_with_error(browser: &Browser, message: &str) {
    browser.click("#save").await;
    browser
        .wait_for_text("#rule-root .field-error", message)
        .await;
}
