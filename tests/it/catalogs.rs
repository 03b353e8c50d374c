//! Catalogs: a shop's catalog and API key, the retry preset each catalog implies, payloads in
//! each platform's shape, and custom event types.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

/// Creates a shop using `catalog`; returns its id and its API key (shown this once).
pub async fn create_shop_in(app: &TestApp, name: &str, catalog: &str) -> (i64, String) {
    let (status, body) = app
        .post_json("/api/v1/shops", json!({"name": name, "catalog": catalog}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = body["apiKey"]["key"]
        .as_str()
        .expect("the new key")
        .to_owned();
    (id(&body), key)
}

/// A request to a compat API with the shop's `x-api-key` (if any) and extra headers.
pub async fn compat_request(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, app.url(path));
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.expect("compat request")).await
}

fn trigger_in(shop: i64, event_type: &str, url: &str) -> Value {
    json!({
        "name": format!("{event_type} to {url}"),
        "eventType": event_type,
        "shopId": shop,
        "actions": [{"type": "callWebhook", "url": url}],
    })
}

both_backends! {
    async fn shops_choose_a_catalog_and_types_of_another_catalog_are_refused_naming_it(backend: Backend) {
        let app = spawn_app(backend).await;
        let (shop, key) = create_shop_in(&app, "WMS", "skladon").await;
        assert!(key.starts_with("hfk_"), "{key}");
        let (_, read) = app.get_json(&format!("/api/v1/shops/{shop}")).await;
        assert_eq!(read["catalog"], "skladon");
        assert_eq!(read["apiKey"]["set"], true);
        assert_eq!(read["apiKey"]["prefix"].as_str(), Some(&key[..8]));
        assert!(read["apiKey"].get("key").is_none(), "reads never show the key: {read}");
        assert_eq!(app.get_json("/api/v1/shops").await.1["items"][0]["catalog"], "skladon");

        // A ShopCtrl type in a Skladon shop: event and trigger are refused, naming the catalog.
        let answer = app.post_events(event("OrderChanged", shop, 1, json!({}))).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "unknown_event_type");
        assert!(message.contains("shop 1 uses the skladon catalog"), "{message}");
        let answer = app.post_json("/api/v1/triggers", trigger_in(shop, "OrderChanged", "http://127.0.0.1:9/h")).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "unknown_event_type");
        assert!(message.contains("skladon catalog"), "{message}");
        let answer = app.post_json("/api/v1/shops", json!({"name": "X", "catalog": "nope"})).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.starts_with("catalog") && message.contains("frontsystems"), "{message}");

        // The catalogs and their types are listed.
        let (_, catalogs) = app.get_json("/api/v1/catalogs").await;
        let names: Vec<&str> = catalogs["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["shopctrl", "skladon", "flowretail", "frontsystems"]);
        for (catalog, count) in [("skladon", 18), ("flowretail", 16), ("frontsystems", 21), ("shopctrl", 67)] {
            let (_, types) = app.get_json(&format!("/api/v1/event-types?catalog={catalog}")).await;
            assert_eq!(types["items"].as_array().unwrap().len(), count, "{catalog}");
        }

        // Rotating the key: the old one stops working at once.
        let webhooks = "/compat/skladon/v21/webhooks";
        assert_eq!(compat_request(&app, Method::GET, webhooks, Some(&key), &[], None).await.0, StatusCode::OK);
        let (status, rotated) = app.post_json(&format!("/api/v1/shops/{shop}/api-key"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{rotated}");
        let new_key = rotated["apiKey"]["key"].as_str().unwrap();
        assert_ne!(new_key, key);
        assert_eq!(compat_request(&app, Method::GET, webhooks, Some(&key), &[], None).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(compat_request(&app, Method::GET, webhooks, Some(new_key), &[], None).await.0, StatusCode::OK);
        let answer = app.post_json("/api/v1/shops/99/api-key", json!({})).await;
        assert_error(&answer, StatusCode::NOT_FOUND, "not_found");

        // A shop moves to another catalog only while no trigger holds it to its current one.
        let receiver = Receiver::start().await;
        app.create_trigger(trigger_in(shop, "CREATE_ORDER", &receiver.url("/o"))).await;
        let answer = app.put_json(&format!("/api/v1/shops/{shop}"), json!({"name": "WMS", "catalog": "shopctrl"})).await;
        assert_error(&answer, StatusCode::CONFLICT, "conflict");
        let other = app.create_shop("Plain").await;
        let (status, moved) = app.put_json(&format!("/api/v1/shops/{other}"), json!({"name": "Plain", "catalog": "frontsystems"})).await;
        assert_eq!((status, moved["catalog"].as_str()), (StatusCode::OK, Some("frontsystems")), "{moved}");
        app.post_event(event("SaleCreated", other, 1, json!({"saleId": 1}))).await;
    }

    async fn each_catalog_gives_its_triggers_its_retry_preset(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::always(Reply::status(503)).await;
        let gone = Receiver::always(Reply::status(404)).await;
        let mut triggers = Vec::new();
        for (catalog, event_type, preset, max_attempts) in [
            ("shopctrl", "OrderChanged", Value::Null, 11),
            ("skladon", "UPDATE_ORDER", json!("skladon"), 21),
            ("flowretail", "CUSTOMER_UPDATE", json!("flowretail"), 11),
            ("frontsystems", "SaleCreated", json!("frontsystems"), 1),
        ] {
            let (shop, _) = create_shop_in(&app, catalog, catalog).await;
            let url = if catalog == "flowretail" { gone.url("/f") } else { receiver.url(&format!("/{catalog}")) };
            let trigger = app.create_trigger(trigger_in(shop, event_type, &url)).await;
            assert_eq!(trigger["actions"][0]["retryPolicy"], preset, "{catalog}: {trigger}");
            triggers.push((catalog, event_type, shop, id(&trigger), max_attempts));
        }
        let refs = json!({"tenant": {"Id": 7, "Uid": "7"}, "customer": {"Id": 32, "Uid": "1000"}, "tenantUser": {"Id": 14, "Uid": "x"}});
        for (catalog, event_type, shop, trigger, max_attempts) in triggers {
            let data = if catalog == "flowretail" { refs.clone() } else { json!({}) };
            app.post_event(event(event_type, shop, 1, data)).await;
            let item = app.only_item(&format!("triggerId={trigger}")).await;
            let item = app.wait_for_item(id(&item), "the first attempt", |i| i["attempts"] == 1).await;
            assert_eq!(item["maxAttempts"], max_attempts, "{catalog}: {item:#}");
            match catalog {
                // No automatic retry: the call waits, failed, in the event log.
                "frontsystems" => assert_eq!(item["status"], "failed", "{item:#}"),
                // 4xx is not retried.
                "flowretail" => assert_eq!((item["status"].as_str(), item["lastStatusCode"].as_i64()), (Some("failed"), Some(404)), "{item:#}"),
                // Retried: waiting for its next attempt, or (retries are 100 ms apart here)
                // already in it.
                _ => assert!(matches!(item["status"].as_str(), Some("pending" | "in_flight")), "{catalog}: {item:#}"),
            }
        }
    }

    async fn platform_payloads_are_sent_in_their_catalogs_shape(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        // Flow Retail: the reference envelope, exactly as published.
        let (flow, _) = create_shop_in(&app, "POS", "flowretail").await;
        app.create_trigger(trigger_in(flow, "TILL_OPEN", &receiver.url("/flow"))).await;
        let published = json!({"action": "TILL_OPEN", "tenant": {"Id": 7, "Uid": "7"}, "store": {"Id": 1, "Uid": "7"}, "till": {"Id": 73, "Uid": "722"}, "tenantUser": {"Id": 7, "Uid": "7"}, "cashReport": {"Id": 7212, "Uid": "74533"}, "date": "2022-10-18"});
        let mut entity = published.clone();
        entity.as_object_mut().unwrap().remove("action");
        entity["note"] = json!("not a reference: left out");
        app.post_event(event("TILL_OPEN", flow, 73, entity)).await;
        // A reference missing is refused at ingest, pointing at the entity.
        let answer = app.post_events(event("TILL_OPEN", flow, 73, json!({"tenant": {"Id": 7, "Uid": "7"}}))).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.starts_with("entityData:") && message.contains("store"), "{message}");

        // Skladon: the entity itself; an entity that breaks its schema names the JSON path.
        let (wms, _) = create_shop_in(&app, "WMS", "skladon").await;
        app.create_trigger(trigger_in(wms, "CREATE_RECEIVING", &receiver.url("/receiving"))).await;
        let (_, example) = app.get_json("/api/v1/event-types/CREATE_RECEIVING").await;
        let receiving = example["example"].clone();
        app.post_event(event("CREATE_RECEIVING", wms, "ESHOP_RECIVING_ID_123", receiving.clone())).await;
        let mut broken = receiving.clone();
        broken["products"][2]["quantity"] = json!("two");
        let answer = app.post_events(json!([event("CREATE_RECEIVING", wms, "R1", receiving.clone()), event("CREATE_RECEIVING", wms, "R2", broken)])).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.starts_with("[1].entityData.products[2].quantity:"), "{message}");

        let got = receiver.wait_for_requests(2, WAIT).await;
        let by_path = |p: &str| got.iter().find(|r| r.path == p).unwrap_or_else(|| panic!("no call to {p}: {got:?}")).json();
        assert_eq!(by_path("/flow"), published);
        assert_eq!(by_path("/receiving"), receiving);
        // Each type's schema endpoint describes its payload.
        let (_, schema) = app.get_json("/api/v1/event-types/TILL_OPEN/schema").await;
        assert_eq!(schema["properties"]["action"]["const"], "TILL_OPEN");
        assert_eq!(schema["required"], json!(["action", "tenant", "store", "till", "tenantUser", "cashReport", "date"]));
        let (_, fields) = app.get_json("/api/v1/event-types/CREATE_RECEIVING/merge-fields").await;
        assert!(fields["fields"].as_array().unwrap().iter().any(|f| f["path"] == "entity.products[0].sku"), "{fields}");
    }

    async fn custom_event_types_are_checked_validated_at_ingest_and_protected_while_in_use(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        let schema = json!({"type": "object", "required": ["returnId"], "properties": {
            "returnId": {"type": "integer", "description": "The return"},
            "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}}}
        }});
        let (status, created) = app.post_json("/api/v1/event-types", json!({
            "name": "ReturnApproved", "description": "A return was approved", "schema": schema
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!((created["catalog"].as_str(), created["custom"].as_bool()), (Some("shopctrl"), Some(true)));

        // Refused: a schema that is not one, a taken name, a shipped name, a broken template.
        for (body, status, field) in [
            (json!({"name": "Bad", "schema": {"type": "nope"}}), StatusCode::UNPROCESSABLE_ENTITY, "schema"),
            (json!({"name": "Bad", "catalog": "nope"}), StatusCode::UNPROCESSABLE_ENTITY, "catalog"),
            (json!({"name": "1bad"}), StatusCode::UNPROCESSABLE_ENTITY, "name"),
            (json!({"name": "Bad", "payloadTemplate": "{\"a\": {{ entity.x }"}), StatusCode::UNPROCESSABLE_ENTITY, "payloadTemplate"),
            (json!({"name": "ReturnApproved"}), StatusCode::CONFLICT, ""),
            (json!({"name": "OrderChanged"}), StatusCode::CONFLICT, ""),
        ] {
            let answer = app.post_json("/api/v1/event-types", body.clone()).await;
            assert_eq!(answer.0, status, "{body}: {}", answer.1);
            assert!(answer.1["error"]["message"].as_str().unwrap().starts_with(field), "{body}: {}", answer.1);
        }
        let answer = app.put_json("/api/v1/event-types/OrderChanged", json!({"description": "x"})).await;
        assert_error(&answer, StatusCode::CONFLICT, "conflict");

        // Listed, with merge fields and a schema, like shipped types.
        let (_, listed) = app.get_json("/api/v1/event-types?catalog=shopctrl").await;
        assert!(listed["items"].as_array().unwrap().iter().any(|t| t["name"] == "ReturnApproved"));
        let (_, fields) = app.get_json("/api/v1/event-types/ReturnApproved/merge-fields").await;
        let paths: Vec<&str> = fields["fields"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
        assert!(paths.contains(&"entity.returnId") && paths.contains(&"entity.lines[0].sku"), "{paths:?}");
        let (_, payload_schema) = app.get_json("/api/v1/event-types/ReturnApproved/schema").await;
        assert_eq!(payload_schema["properties"]["entityData"]["required"], json!(["returnId"]));

        // Validated at ingest, with the failing path; a valid one is delivered as sent.
        let trigger = app.create_trigger(trigger_in(shop, "ReturnApproved", &receiver.url("/returns"))).await;
        let answer = app.post_events(event("ReturnApproved", shop, 5, json!({"returnId": "five"}))).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.starts_with("entityData.returnId:"), "{message}");
        let entity = json!({"returnId": 5, "lines": [{"sku": "A"}]});
        app.post_event(event("ReturnApproved", shop, 5, entity.clone())).await;
        let got = receiver.wait_for_requests(1, WAIT).await;
        assert_eq!(got[0].json()["entityData"], entity);
        assert_eq!(got[0].json()["eventType"], "ReturnApproved");

        // A default payload template stands in for the default payload.
        let (status, updated) = app.put_json("/api/v1/event-types/ReturnApproved", json!({
            "description": "Approved", "schema": schema, "payloadTemplate": "{\"return\": {{ entity.returnId }}}"
        })).await;
        assert_eq!((status, updated["description"].as_str()), (StatusCode::OK, Some("Approved")), "{updated}");
        app.post_event(event("ReturnApproved", shop, 6, json!({"returnId": 6}))).await;
        let got = receiver.wait_for_requests(2, WAIT).await;
        assert_eq!(got[1].json(), json!({"return": 6}));

        // In use: not deleted; free: deleted.
        let answer = app.delete("/api/v1/event-types/ReturnApproved").await;
        let message = assert_error(&answer, StatusCode::CONFLICT, "conflict");
        assert!(message.contains(&id(&trigger).to_string()), "{message}");
        app.delete(&format!("/api/v1/triggers/{}", id(&trigger))).await;
        assert_eq!(app.delete("/api/v1/event-types/ReturnApproved").await.0, StatusCode::NO_CONTENT);
        assert_error(&app.get_json("/api/v1/event-types/ReturnApproved").await, StatusCode::NOT_FOUND, "not_found");
        assert_error(&app.delete("/api/v1/event-types/ReturnApproved").await, StatusCode::NOT_FOUND, "not_found");
        let answer = app.post_events(event("ReturnApproved", shop, 7, json!({}))).await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "unknown_event_type");
    }
}
