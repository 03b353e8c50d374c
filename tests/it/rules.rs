//! Rules on triggers over the API: saved and refused by clause path, matched at ingest (what
//! changed included), each trigger's activity, and dry runs against what receivers then get.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

/// A custom order type whose schema describes a status, a total and lines with SKUs.
pub(crate) async fn order_type(app: &TestApp) {
    let schema = json!({"type": "object", "properties": {
        "Status": {"type": "string"},
        "Total": {"type": "number"},
        "Lines": {"type": "array", "items": {"type": "object", "properties": {
            "Sku": {"type": "string"}, "Qty": {"type": "integer"}}}}
    }});
    let (status, body) = app
        .post_json(
            "/api/v1/event-types",
            json!({"name": "OrderUpdated", "description": "An order changed", "schema": schema}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// The example rule.
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

fn rule_trigger(event_type: &str, url: &str, rules: Value) -> Value {
    webhook_trigger(event_type, url).with(json!({"rules": rules}))
}

both_backends! {
    async fn rules_are_saved_read_back_identical_and_refused_by_clause_path(backend: Backend) {
        let app = spawn_app(backend).await;
        order_type(&app).await;
        let receiver = Receiver::start().await;

        let created = app
            .create_trigger(rule_trigger("OrderUpdated", &receiver.url("/hook"), example_rule()))
            .await;
        assert_eq!(created["rules"], example_rule());
        let expression = created["ruleExpression"].as_str().expect("the compiled expression");
        assert!(
            expression.starts_with("entity.Status is equals(\"Shipped\") and (entity.Total is greaterThan(100) or entity.Lines is anyItem("),
            "{expression}"
        );
        let (_, read) = app.get_json(&format!("/api/v1/triggers/{}", id(&created))).await;
        assert_eq!(read, created);

        // The compiled expression saves as a condition, and means the same.
        let as_condition = webhook_trigger("OrderUpdated", &receiver.url("/expr"))
            .with(json!({"condition": expression}));
        let expr_trigger = app.create_trigger(as_condition).await;
        assert!(expr_trigger.get("rules").is_none());

        let refusals = [
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
                json!({"any": [{"field": "entity.Lines", "op": "anyItem",
                    "where": {"field": "Sku", "op": "greaterThan", "value": 3}}]}),
                "rules.any[0].where",
                "greaterThan does not fit Sku (text)",
            ),
            (
                json!({"all": [{"field": "entity.Status", "op": "likes", "value": "x"}]}),
                "rules.all[0]",
                "unknown operator \"likes\"",
            ),
            (json!({"any": []}), "rules.any", "at least one rule"),
        ];
        for (rules, path, message) in refusals {
            let answer = app
                .post_json("/api/v1/triggers", rule_trigger("OrderUpdated", &receiver.url("/x"), rules.clone()))
                .await;
            let text = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
            assert_eq!(answer.1["error"]["field"], path, "{rules}: {}", answer.1);
            assert!(text.contains(message), "{rules}: {text}");
        }
        // Rules and a condition at once: which one would hold?
        let both = rule_trigger("OrderUpdated", &receiver.url("/x"), example_rule())
            .with(json!({"condition": "true"}));
        let answer = app.post_json("/api/v1/triggers", both).await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(answer.1["error"]["field"], "rules");
        // Nothing half-written: only the two good triggers exist.
        let (_, list) = app.get_json("/api/v1/triggers").await;
        assert_eq!(list["items"].as_array().unwrap().len(), 2);
    }

    async fn rules_decide_which_events_fire_and_activity_says_why(backend: Backend) {
        let app = spawn_app(backend).await;
        order_type(&app).await;
        let shop = app.create_shop("Main").await;
        let receiver = Receiver::start().await;
        let url = receiver.url("/hook/{{ entityId }}");
        let trigger = app.create_trigger(rule_trigger("OrderUpdated", &url, example_rule())).await;

        let events = [
            (1, json!({"Status": "Shipped", "Total": 150}), true),
            (2, json!({"Status": "Shipped", "Total": 5, "Lines": [{"Sku": "A"}, {"Sku": "GIFT-1"}]}), true),
            (3, json!({"Status": "Shipped", "Total": 5, "Lines": [{"Sku": "A"}]}), false),
            (4, json!({"Status": "Open", "Total": 500}), false),
            (5, json!({"Total": 250, "Status": "Shipped"}), true),
        ];
        for (entity, data, fires) in &events {
            let answer = app.post_event(event("OrderUpdated", shop, *entity, data.clone())).await;
            assert_eq!(answer["callsQueued"], u64::from(*fires), "entity {entity}: {answer}");
        }
        let received = receiver.wait_for_requests(3, WAIT).await;
        let delivered = sorted(received.iter().map(|r| r.path.clone()).collect());
        assert_eq!(delivered, ["/hook/1", "/hook/2", "/hook/5"]);

        let path = format!("/api/v1/triggers/{}/activity", id(&trigger));
        let (status, page) = app.get_json(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        let seen: Vec<(&str, bool, &str)> = items
            .iter()
            .map(|a| (a["entityId"].as_str().unwrap(), a["matched"].as_bool().unwrap(), a["decidedBy"].as_str().unwrap()))
            .collect();
        // Newest first; what decided is the clause read last.
        assert_eq!(
            seen,
            [
                ("5", true, "rules.all[1].any[0]"),
                ("4", false, "rules.all[0]"),
                ("3", false, "rules.all[1].any[1]"),
                ("2", true, "rules.all[1].any[1]"),
                ("1", true, "rules.all[1].any[0]"),
            ]
        );
        assert_eq!(items[0]["calls"].as_array().unwrap().len(), 1);
        assert!(items[1]["calls"].as_array().unwrap().is_empty());
        // "Why didn't my trigger fire for order 4?" — filtered, and paged.
        let (_, missed) = app.get_json(&format!("{path}?matched=false")).await;
        let missed: Vec<&str> = missed["items"].as_array().unwrap().iter().map(|a| a["entityId"].as_str().unwrap()).collect();
        assert_eq!(missed, ["4", "3"]);
        let (_, first) = app.get_json(&format!("{path}?limit=2")).await;
        assert_eq!(first["items"].as_array().unwrap().len(), 2);
        let next = first["next"].as_str().expect("a next page");
        let (_, second) = app.get_json(&format!("{path}?limit=2&cursor={next}")).await;
        assert_eq!(second["items"][0]["entityId"], "3");
        let (_, later) = app.get_json(&format!("{path}?from=2100-01-01T00:00:00Z")).await;
        assert!(later["items"].as_array().unwrap().is_empty());
        assert_error(&app.get_json(&format!("{path}?limit=0")).await, StatusCode::BAD_REQUEST, "bad_request");
        assert_error(&app.get_json("/api/v1/triggers/999/activity").await, StatusCode::NOT_FOUND, "not_found");

        // A trigger without a rule or condition is evaluated too: it always fires.
        let plain = app.create_trigger(webhook_trigger("OrderUpdated", &receiver.url("/plain"))).await;
        app.post_event(event("OrderUpdated", shop, 6, json!({"Status": "Open"}))).await;
        let (_, page) = app.get_json(&format!("/api/v1/triggers/{}/activity", id(&plain))).await;
        assert_eq!(page["items"][0]["matched"], true);
        assert_eq!(page["items"][0]["decidedBy"], Value::Null);
    }

    async fn change_rules_fire_only_on_the_change_they_name(backend: Backend) {
        let app = spawn_app(backend).await;
        let shop = app.create_shop("Main").await;
        let receiver = Receiver::start().await;
        // A ShopCtrl type: its catalog describes ids only, so the status is declared.
        let rules = json!({"field": "entity.Status", "op": "changedTo", "value": "Shipped", "type": "text"});
        app.create_trigger(rule_trigger("OrderChanged", &receiver.url("/shipped"), rules)).await;

        let changed = |entity: i64, now: &str, before: Option<&str>| {
            let mut e = event("OrderChanged", shop, entity, json!({"OrderId": entity, "Status": now}));
            if let Some(before) = before {
                e["previousData"] = json!({"OrderId": entity, "Status": before});
            }
            e
        };
        let cases = [
            (changed(1, "Shipped", Some("Open")), 1),
            (changed(2, "Shipped", Some("Shipped")), 0),
            (changed(3, "Shipped", None), 0),
            (changed(4, "Open", Some("Shipped")), 0),
        ];
        for (event, queued) in cases {
            let answer = app.post_event(event.clone()).await;
            assert_eq!(answer["callsQueued"], queued, "{event}");
        }
        let request = receiver.wait_for_requests(1, WAIT).await.remove(0);
        assert_eq!(request.json()["entityData"]["OrderId"], 1);

        // previousData is kept with the event, and must be an object.
        let (_, page) = app.get_json("/api/v1/events?entityId=1&includePayload=true").await;
        assert_eq!(page["items"][0]["previousData"], json!({"OrderId": 1, "Status": "Open"}));
        let bad = event("OrderChanged", shop, 9, json!({})).with(json!({"previousData": [1]}));
        let answer = app.post_events(bad).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.starts_with("previousData"), "{message}");
    }

    async fn a_dry_run_shows_each_clause_and_the_calls_as_receivers_get_them(backend: Backend) {
        let app = spawn_app(backend).await;
        order_type(&app).await;
        let shop = app.create_shop("Main").await;
        let receiver = Receiver::start().await;
        let trigger = rule_trigger("OrderUpdated", &receiver.url("/hook"), example_rule()).with(json!({
            "shopId": shop,
            "actions": [{
                "type": "callWebhook", "url": receiver.url("/hook"),
                "basicAuth": {"username": "erp", "password": "s3cret"},
                "hmacSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "headers": {"X-Order": "{{ entity.Status }}"},
                "payload": {"mimeType": "application/json", "body": "{\"status\": {{ entity.Status | tojson }}}"}
            }]
        }));
        let trigger = app.create_trigger(trigger).await;
        let path = format!("/api/v1/triggers/{}/dry-run", id(&trigger));

        // A pasted entity that fails one nested clause: that clause is red, with its value.
        let (status, run) = app
            .post_json(&path, json!({"entityData": {"Status": "Shipped", "Total": 5, "Lines": [{"Sku": "A-1"}]}}))
            .await;
        assert_eq!(status, StatusCode::OK, "{run}");
        assert_eq!(run["matched"], false);
        assert!(run["calls"].as_array().unwrap().is_empty());
        let step = |path: &str| {
            run["trace"].as_array().unwrap().iter().find(|s| s["path"] == path).cloned()
                .unwrap_or_else(|| panic!("no step {path}: {run}"))
        };
        assert_eq!(step("rules.all[0]")["result"], true);
        let total = step("rules.all[1].any[0]");
        assert_eq!((total["result"].as_bool(), total["actual"].clone(), total["expected"].clone()), (Some(false), json!(5), json!(100)));
        let sku = step("rules.all[1].any[1].where.all[0] (item 0)");
        assert_eq!(sku["field"], "entity.Lines[0].Sku");
        assert_eq!(sku["actual"], "A-1");
        assert_eq!(sku["result"], false);

        // The stored event's latest entity: it fires, and the call is shown as it would go out.
        app.post_event(event("OrderUpdated", shop, 42, json!({"Status": "Shipped", "Total": 250}))).await;
        receiver.wait_for_requests(1, WAIT).await;
        let (status, run) = app.post_json(&path, json!({"shopId": shop, "entityId": "42"})).await;
        assert_eq!(status, StatusCode::OK, "{run}");
        assert_eq!(run["matched"], true);
        assert!(run["eventId"].is_i64());
        let call = &run["calls"][0];
        assert_eq!(call["actionIndex"], 0);
        assert_eq!(call["method"], "POST");
        assert_eq!(call["url"], receiver.url("/hook"));
        assert_eq!(call["mimeType"], "application/json");
        assert_eq!(call["body"], "{\"status\": \"Shipped\"}");
        let header = |name: &str| {
            call["headers"].as_array().unwrap().iter()
                .find(|h| h[0] == name).map(|h| h[1].as_str().unwrap().to_owned())
        };
        assert_eq!(header("x-order").as_deref(), Some("Shipped"));
        assert!(header("webhook-signature").unwrap().starts_with("v1,"));
        assert!(header("webhook-id").unwrap().starts_with("msg_"));
        let auth = header("authorization").unwrap();
        assert!(auth.starts_with("Basic ") && !auth.contains("ZXJw"), "credentials masked: {auth}");
        assert_eq!(receiver.count(), 1, "a dry run sends nothing");

        // With send: the receiver gets exactly the body and headers shown.
        let (status, sent) = app.post_json(&path, json!({"shopId": shop, "entityId": "42", "send": true})).await;
        assert_eq!(status, StatusCode::OK, "{sent}");
        let response = &sent["calls"][0]["response"];
        assert_eq!(response["status"], 200, "{sent}");
        let got = receiver.wait_for_requests(2, WAIT).await.remove(1);
        assert_eq!(got.text(), sent["calls"][0]["body"].as_str().unwrap());
        assert_eq!(got.header("x-order"), Some("Shipped"));
        assert!(got.header("authorization").unwrap().starts_with("Basic "));
        assert!(got.header("webhook-signature").unwrap().starts_with("v1,"));

        // A draft not yet saved, with a change rule and pasted previous state.
        let draft = rule_trigger(
            "OrderUpdated",
            &receiver.url("/draft"),
            json!({"field": "entity.Status", "op": "changedFrom", "value": "Open"}),
        );
        let (status, run) = app
            .post_json("/api/v1/triggers/dry-run", json!({"trigger": draft.clone(), "entityData": {"Status": "Shipped"}, "previousData": {"Status": "Open"}}))
            .await;
        assert_eq!(status, StatusCode::OK, "{run}");
        assert_eq!(run["matched"], true);
        assert_eq!(run["trace"][0]["previous"], "Open");
        let (_, run) = app
            .post_json("/api/v1/triggers/dry-run", json!({"trigger": draft.clone(), "entityData": {"Status": "Shipped"}}))
            .await;
        assert_eq!(run["matched"], false);
        assert!(run["trace"][0]["note"].as_str().unwrap().contains("no previousData"));
        // A draft that would not save is refused as saving refuses it.
        let broken = rule_trigger("OrderUpdated", &receiver.url("/x"), json!({"field": "entity.Nope", "op": "isEmpty"}));
        let answer = app.post_json("/api/v1/triggers/dry-run", json!({"trigger": broken})).await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(answer.1["error"]["field"], "rules");
        // An entity id without its shop, and an entity that was never stored.
        let answer = app.post_json(&path, json!({"entityId": "42"})).await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let answer = app.post_json(&path, json!({"shopId": shop, "entityId": "nope"})).await;
        assert_error(&answer, StatusCode::NOT_FOUND, "not_found");
        // Nothing of it reached the activity or the queue.
        let (_, activity) = app.get_json(&format!("/api/v1/triggers/{}/activity", id(&trigger))).await;
        assert_eq!(activity["items"].as_array().unwrap().len(), 1);
    }
}
