//! Events in: the happy path end to end, validation errors, idempotency and batches.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

both_backends! {
    async fn healthz_answers_ok(backend: Backend) {
        let app = spawn_app(backend).await;
        let (status, body) = app.get_json("/healthz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "ok");
    }

    async fn shops_are_created_and_listed(backend: Backend) {
        let app = spawn_app(backend).await;
        let (status, shop) = app.post_json("/api/v1/shops", json!({"name": "Main"})).await;
        assert_eq!(status, StatusCode::CREATED, "{shop}");
        assert_eq!(shop["name"], "Main");
        assert!(shop["id"].is_i64() && shop["createdAt"].is_string(), "{shop}");
        let outlet = app.create_shop("Outlet").await;

        let (status, list) = app.get_json("/api/v1/shops").await;
        assert_eq!(status, StatusCode::OK);
        let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(sorted(names), ["Main", "Outlet"]);
        let (status, fetched) = app.get_json(&format!("/api/v1/shops/{outlet}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(fetched["name"], "Outlet");

        assert_error(&app.get_json("/api/v1/shops/999").await, StatusCode::NOT_FOUND, "not_found");
        let answer = app.post_json("/api/v1/shops", json!({"name": "  "})).await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let answer = app.post_raw("/api/v1/shops", "{").await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "bad_request");
    }

    async fn the_admin_token_guards_the_api_but_not_healthz(backend: Backend) {
        let app = spawn_app_with(backend, &["--admin-token", "s3cret"]).await;
        let (status, _) = app.request_as(None, reqwest::Method::GET, "/healthz", None).await;
        assert_eq!(status, StatusCode::OK);
        let answer = app.request_as(None, reqwest::Method::GET, "/api/v1/shops", None).await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
        let answer = app
            .request_as(Some("guess"), reqwest::Method::GET, "/api/v1/shops", None)
            .await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
        let answer = app
            .request_as(
                None,
                reqwest::Method::POST,
                "/api/v1/events",
                Some(RequestBody::Json(event("OrderChanged", 1, 1, json!({})))),
            )
            .await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
        // The app's own requests present the token.
        app.create_shop("Main").await;
        let (status, _) = app.get_json("/api/v1/shops").await;
        assert_eq!(status, StatusCode::OK);
    }

    async fn an_event_is_delivered_with_the_default_payload(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        let trigger = app
            .create_trigger(webhook_trigger("ShipmentShipped", &receiver.url("/hook")))
            .await;

        let answer = app
            .post_event(json!({
                "eventType": "ShipmentShipped",
                "shopId": shop,
                "entityId": 5001,
                "occurredAt": "2026-11-27T10:00:00Z",
                "entityData": {
                    "ParcelId": 7, "TrackingCode": "TR1", "OrderId": 42, "OrderCode": "O-42",
                    "NotInTheCatalog": true
                }
            }))
            .await;
        assert_eq!(answer["callsQueued"], 1);
        assert_eq!(answer["duplicate"], false);
        let event_id = answer["eventId"].as_i64().expect("an event id");

        let request = receiver.wait_for_requests(1, WAIT).await.remove(0);
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/hook");
        assert_eq!(
            request.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert!(
            request.header("user-agent").is_some_and(|ua| ua.starts_with("hookflow/")),
            "user-agent: {:?}",
            request.header("user-agent")
        );
        assert!(request.webhook_id().starts_with("msg_"), "{}", request.webhook_id());
        assert_eq!(
            request.json(),
            json!({
                "eventId": event_id,
                "eventType": "ShipmentShipped",
                "shopId": shop,
                "occurredAt": "2026-11-27T10:00:00Z",
                "entityData": {
                    "ParcelId": 7,
                    "TrackingCode": "TR1",
                    "OrderShipmentId": null,
                    "OrderShipmentCode": null,
                    "OrderId": 42,
                    "OrderCode": "O-42"
                }
            })
        );

        let queued = app.only_item("").await;
        let item = app.wait_for_queue_status(id(&queued), "succeeded").await;
        assert_eq!(item["webhookId"], request.webhook_id());
        assert_eq!(item["eventId"], event_id);
        assert_eq!(item["triggerId"], trigger["id"]);
        assert_eq!(item["actionIndex"], 0);
        assert_eq!(item["shopId"], shop);
        assert_eq!(item["eventType"], "ShipmentShipped");
        assert_eq!(item["entityId"], "5001");
        assert_eq!(item["method"], "POST");
        assert_eq!(item["url"], receiver.url("/hook"));
        assert_eq!(item["attempts"], 1);
        assert_eq!(item["lastStatusCode"], 200);
        assert_eq!(item["lastError"], Value::Null);
        let log = item["attemptLog"].as_array().expect("an attempt log");
        assert_eq!(log.len(), 1, "{item:#}");
        assert_eq!(log[0]["attempt"], 1);
        assert_eq!(log[0]["statusCode"], 200);
        assert_eq!(log[0]["error"], Value::Null);
    }

    async fn the_event_catalog_lists_the_shopctrl_types(backend: Backend) {
        let app = spawn_app(backend).await;
        let (status, body) = app.get_json("/api/v1/event-types?catalog=shopctrl").await;
        assert_eq!(status, StatusCode::OK);
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 67);
        assert!(items.iter().any(|t| t["name"] == "OrderChanged"));

        let (status, shipped) = app.get_json("/api/v1/event-types/ShipmentShipped").await;
        assert_eq!(status, StatusCode::OK);
        let fields: Vec<&str> = shipped["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            fields,
            ["ParcelId", "TrackingCode", "OrderShipmentId", "OrderShipmentCode", "OrderId", "OrderCode"]
        );
        let answer = app.get_json("/api/v1/event-types/NoSuchThing").await;
        assert_error(&answer, StatusCode::NOT_FOUND, "not_found");
    }

    async fn an_unknown_shop_is_refused_and_nothing_is_stored(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;

        let answer = app.post_events(event("OrderChanged", 999, 1, json!({}))).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "unknown_shop");
        assert!(message.contains("999"), "{message}");

        // One unknown shop refuses the whole batch.
        let answer = app
            .post_events(json!([
                event("OrderChanged", shop, 1, json!({})),
                event("OrderChanged", 999, 2, json!({})),
            ]))
            .await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "unknown_shop");

        assert_eq!(app.queue_items("").await, Vec::<Value>::new());
        assert_eq!(receiver.count(), 0);
    }

    async fn an_unknown_event_type_is_refused_and_names_the_field(backend: Backend) {
        let app = spawn_app(backend).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", "http://127.0.0.1:9/hook")).await;

        let answer = app.post_events(event("OrderTeleported", shop, 1, json!({}))).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "unknown_event_type");
        assert!(message.starts_with("eventType: "), "{message}");
        assert!(message.contains("OrderTeleported"), "{message}");

        let answer = app
            .post_events(json!([
                event("OrderChanged", shop, 1, json!({})),
                event("OrderTeleported", shop, 2, json!({})),
            ]))
            .await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "unknown_event_type");
        assert!(message.starts_with("[1].eventType: "), "{message}");

        assert_eq!(app.queue_items("").await, Vec::<Value>::new());
    }

    async fn invalid_fields_are_refused_with_their_name(backend: Backend) {
        let app = spawn_app(backend).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", "http://127.0.0.1:9/hook")).await;

        let cases = [
            (json!({"eventType": "OrderChanged", "entityId": 1}), "shopId: "),
            (json!({"eventType": "OrderChanged", "shopId": "one", "entityId": 1}), "shopId: "),
            (json!({"eventType": "OrderChanged", "shopId": shop}), "entityId: "),
            (json!({"shopId": shop, "entityId": 1}), "eventType: "),
            (
                json!({"eventType": "OrderChanged", "shopId": shop, "entityId": 1, "entityData": [1]}),
                "entityData: ",
            ),
            (
                json!({"eventType": "OrderChanged", "shopId": shop, "entityId": 1, "occurredAt": "yesterday"}),
                "occurredAt: ",
            ),
            (
                json!({"eventType": "OrderChanged", "shopId": shop, "entityId": 1, "colour": "red"}),
                "colour: ",
            ),
            (
                json!([
                    {"eventType": "OrderChanged", "shopId": shop, "entityId": 1},
                    {"eventType": "OrderChanged", "shopId": shop, "entityId": {"nested": true}}
                ]),
                "[1].entityId: ",
            ),
        ];
        for (body, field) in cases {
            let answer = app.post_events(body.clone()).await;
            let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
            assert!(message.starts_with(field), "{body} → {message:?}, expected {field:?}");
        }

        let answer = app.post_events(json!([])).await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let too_many: Vec<Value> = (0..1001).map(|n| event("OrderChanged", shop, n, json!({}))).collect();
        let answer = app.post_events(Value::Array(too_many)).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.contains("1000"), "{message}");

        let answer = app.post_raw("/api/v1/events", r#"{"eventType": "OrderChanged","#).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "bad_request");

        assert_eq!(app.queue_items("").await, Vec::<Value>::new());
    }

    async fn a_repeated_idempotency_key_returns_the_first_result(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let main = app.create_shop("Main").await;
        let outlet = app.create_shop("Outlet").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        let keyed = |shop: i64, key: &str| {
            event("OrderChanged", shop, 1, json!({"OrderId": 1})).with(json!({"idempotencyKey": key}))
        };

        let first = app.post_event(keyed(main, "order-1-v1")).await;
        assert_eq!(first["duplicate"], false);
        assert_eq!(first["callsQueued"], 1);

        let again = app.post_event(keyed(main, "order-1-v1")).await;
        assert_eq!(again["eventId"], first["eventId"]);
        assert_eq!(again["callsQueued"], 1);
        assert_eq!(again["duplicate"], true);
        assert_eq!(app.queue_items("").await.len(), 1, "a duplicate queues nothing");

        // Keys are per shop.
        let other_shop = app.post_event(keyed(outlet, "order-1-v1")).await;
        assert_ne!(other_shop["eventId"], first["eventId"]);
        assert_eq!(other_shop["duplicate"], false);
        assert_eq!(other_shop["callsQueued"], 1);

        // The same key twice in one batch is one event.
        let (status, batch) = app
            .post_events(json!([keyed(main, "order-2-v1"), keyed(main, "order-2-v1")]))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
        assert_eq!(batch["events"][0]["eventId"], batch["events"][1]["eventId"]);
        assert_eq!(batch["events"][0]["duplicate"], false);
        assert_eq!(batch["events"][1]["duplicate"], true);

        let items = app.queue_items("").await;
        assert_eq!(items.len(), 3, "{items:#?}");
        let requests = receiver.wait_for_requests(3, WAIT).await;
        for item in &items {
            app.wait_for_queue_status(id(item), "succeeded").await;
        }
        assert_eq!(receiver.count(), 3, "{requests:#?}");
    }

    async fn a_batch_queues_a_call_for_every_event(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;

        let (status, answer) = app
            .post_events(json!([
                event("OrderChanged", shop, 1, json!({"OrderId": 1})),
                event("OrderChanged", shop, "2", json!({"OrderId": 2})),
                event("OrderChanged", shop, 3, json!({"OrderId": 3})),
            ]))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(answer["callsQueued"], 3);
        let events = answer["events"].as_array().unwrap();
        assert_eq!(events.len(), 3);
        assert!(events.iter().all(|e| e["callsQueued"] == 1 && e["duplicate"] == false));
        let event_ids: HashSet<i64> = events.iter().map(|e| e["eventId"].as_i64().unwrap()).collect();
        assert_eq!(event_ids.len(), 3);

        let requests = receiver.wait_for_requests(3, WAIT).await;
        let delivered: HashSet<i64> = requests
            .iter()
            .map(|r| r.json()["eventId"].as_i64().unwrap())
            .collect();
        assert_eq!(delivered, event_ids);
        let order_ids: HashSet<i64> = requests
            .iter()
            .map(|r| r.json()["entityData"]["OrderId"].as_i64().unwrap())
            .collect();
        assert_eq!(order_ids, HashSet::from([1, 2, 3]));
    }
}

both_backends! {
    async fn every_error_comes_in_the_json_error_shape(backend: Backend) {
        let app = spawn_app(backend).await;
        let cases = [
            (reqwest::Method::GET, "/api/v1/queue/not-a-number", StatusCode::BAD_REQUEST, "bad_request"),
            (reqwest::Method::DELETE, "/api/v1/shops", StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            (reqwest::Method::GET, "/api/v1/queue?bogus=1", StatusCode::BAD_REQUEST, "bad_request"),
            (reqwest::Method::GET, "/api/v1/nothing-here", StatusCode::NOT_FOUND, "not_found"),
        ];
        for (method, path, status, code) in cases {
            let answer = app.request(method, path, None).await;
            let message = assert_error(&answer, status, code);
            assert!(!message.is_empty(), "{path}");
        }
    }
}
