//! Triggers: the CRUD API, what is refused when saving, and which events fire them.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

both_backends! {
    async fn triggers_can_be_created_read_updated_and_deleted(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;

        let created = app
            .create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook")))
            .await;
        assert_eq!(created["eventType"], "OrderChanged");
        assert_eq!(created["shopId"], Value::Null);
        assert_eq!(created["enabled"], true);
        assert_eq!(created["priority"], 5, "the default priority is the middle of 1..=10");
        assert_eq!(created["actions"][0]["method"], "POST");
        assert!(created["createdAt"].is_string() && created["updatedAt"].is_string());
        let path = format!("/api/v1/triggers/{}", id(&created));

        let (status, fetched) = app.get_json(&path).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(fetched, created);

        let changed = webhook_trigger("OrderChanged", &receiver.url("/other"))
            .with(json!({"name": "Renamed", "shopId": shop, "priority": 9, "enabled": false}));
        let (status, updated) = app.put_json(&path, changed).await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!(updated["id"], created["id"]);
        assert_eq!(updated["name"], "Renamed");
        assert_eq!(updated["shopId"], shop);
        assert_eq!(updated["priority"], 9);
        assert_eq!(updated["enabled"], false);

        // A disabled trigger does not fire.
        let answer = app.post_event(event("OrderChanged", shop, 1, json!({}))).await;
        assert_eq!(answer["callsQueued"], 0);

        // Enabled again, it calls the new URL.
        let enabled = webhook_trigger("OrderChanged", &receiver.url("/other"))
            .with(json!({"name": "Renamed", "shopId": shop}));
        let (status, _) = app.put_json(&path, enabled).await;
        assert_eq!(status, StatusCode::OK);
        let answer = app.post_event(event("OrderChanged", shop, 2, json!({}))).await;
        assert_eq!(answer["callsQueued"], 1);
        let request = receiver.wait_for_requests(1, WAIT).await.remove(0);
        assert_eq!(request.path, "/other");

        let (status, list) = app.get_json("/api/v1/triggers").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["items"].as_array().unwrap().len(), 1);

        let (status, _) = app.delete(&path).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_error(&app.get_json(&path).await, StatusCode::NOT_FOUND, "not_found");
        assert_error(&app.delete(&path).await, StatusCode::NOT_FOUND, "not_found");
        let answer = app
            .put_json(&path, webhook_trigger("OrderChanged", &receiver.url("/hook")))
            .await;
        assert_error(&answer, StatusCode::NOT_FOUND, "not_found");
        let (_, list) = app.get_json("/api/v1/triggers").await;
        assert_eq!(list["items"], json!([]));
        let answer = app.post_event(event("OrderChanged", shop, 3, json!({}))).await;
        assert_eq!(answer["callsQueued"], 0, "a deleted trigger does not fire");
    }

    async fn invalid_triggers_are_refused_with_the_field_at_fault(backend: Backend) {
        let app = spawn_app(backend).await;
        let url = "http://127.0.0.1:9/hook";
        let with_payload = |body: &str| {
            webhook_trigger("OrderChanged", url).with(json!({"actions": [{
                "type": "callWebhook", "url": url,
                "payload": {"mimeType": "application/json", "body": body}
            }]}))
        };

        let answer = app.post_json("/api/v1/triggers", webhook_trigger("OrderTeleported", url)).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "unknown_event_type");
        assert!(message.starts_with("eventType: "), "{message}");

        let answer = app
            .post_json("/api/v1/triggers", webhook_trigger("OrderChanged", url).with(json!({"shopId": 999})))
            .await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "unknown_shop");

        let answer = app
            .post_json(
                "/api/v1/triggers",
                webhook_trigger("OrderChanged", url).with(json!({"condition": "entity.Total >"})),
            )
            .await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.starts_with("condition:"), "{message}");
        assert!(message.contains("line 1"), "{message}");

        let answer = app.post_json("/api/v1/triggers", with_payload(r#"{"a": {{ entity.A }"#)).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.contains("actions[0].payload.body"), "{message}");

        // Compiles, but renders something that is not JSON for a sample OrderChanged.
        let answer = app
            .post_json("/api/v1/triggers", with_payload(r#"{"a": {{ entity.OrderCode | safe }}}"#))
            .await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.contains("actions[0].payload.body"), "{message}");

        let answer = app
            .post_json("/api/v1/triggers", webhook_trigger("OrderChanged", "ftp://example.com/x"))
            .await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.contains("actions[0].url"), "{message}");

        let answer = app
            .post_json("/api/v1/triggers", webhook_trigger("OrderChanged", "not a url"))
            .await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.contains("actions[0].url"), "{message}");

        let answer = app.post_raw("/api/v1/triggers", r#"{"name": "x", "#).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "bad_request");

        let (_, list) = app.get_json("/api/v1/triggers").await;
        assert_eq!(list["items"], json!([]), "nothing refused was stored");
    }

    async fn a_condition_decides_whether_the_trigger_fires(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(
            webhook_trigger("OrderChanged", &receiver.url("/shipped"))
                .with(json!({"condition": "entity.Status == \"Shipped\" and entity.Total > 100"})),
        )
        .await;

        app.create_trigger(
            webhook_trigger("OrderChanged", &receiver.url("/third")).with(json!({
                "condition": "event.entityId == \"3\" and event.type == \"OrderChanged\" and shop.name == \"Main\" and entityData.OrderCode is none"
            })),
        )
        .await;

        let open = app
            .post_event(event("OrderChanged", shop, 1, json!({"Status": "Open", "Total": 500})))
            .await;
        assert_eq!(open["callsQueued"], 0);
        let cheap = app
            .post_event(event("OrderChanged", shop, 2, json!({"Status": "Shipped", "Total": 5})))
            .await;
        assert_eq!(cheap["callsQueued"], 0);
        let shipped = app
            .post_event(event("OrderChanged", shop, 3, json!({"Status": "Shipped", "Total": 500})))
            .await;
        assert_eq!(shipped["callsQueued"], 2);

        let items = app.queue_items("").await;
        assert_eq!(items.len(), 2);
        for item in &items {
            assert_eq!(item["eventId"], shipped["eventId"]);
            app.wait_for_queue_status(id(item), "succeeded").await;
        }
        let requests = receiver.requests();
        assert_eq!(requests.len(), 2);
        assert!(requests.iter().all(|r| r.json()["eventId"] == shipped["eventId"]));
        let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(sorted(paths), ["/shipped", "/third"]);
    }

    async fn shop_triggers_fire_for_their_shop_and_global_ones_for_all(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let main = app.create_shop("Main").await;
        let outlet = app.create_shop("Outlet").await;
        app.create_trigger(
            webhook_trigger("OrderChanged", &receiver.url("/main-only")).with(json!({"shopId": main})),
        )
        .await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/all"))).await;

        let in_main = app.post_event(event("OrderChanged", main, 1, json!({}))).await;
        assert_eq!(in_main["callsQueued"], 2);
        let in_outlet = app.post_event(event("OrderChanged", outlet, 2, json!({}))).await;
        assert_eq!(in_outlet["callsQueued"], 1);

        let items = app.queue_items("").await;
        assert_eq!(items.len(), 3);
        for item in &items {
            app.wait_for_queue_status(id(item), "succeeded").await;
        }
        let mut seen: Vec<(String, i64)> = receiver
            .requests()
            .iter()
            .map(|r| (r.path.clone(), r.json()["shopId"].as_i64().unwrap()))
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            [("/all".to_owned(), main), ("/all".to_owned(), outlet), ("/main-only".to_owned(), main)]
        );
    }
}
