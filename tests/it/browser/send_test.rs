//! `POST /api/v1/triggers/send-test` over the API: one call now, through the same guard and
//! credentials as queued calls, and nothing recorded.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{assert_error, spawn_app, spawn_app_with, wait_until, Receiver, Reply, WAIT};

fn draft(shop: i64, url: &str) -> serde_json::Value {
    json!({
        "name": "Orders to ERP", "eventType": "OrderChanged", "shopId": shop,
        "actions": [{"type": "callWebhook", "url": url,
                     "basicAuth": {"username": "erp", "password": "s3cret"},
                     "payload": {"mimeType": "application/json",
                                 "body": "{\"order\": {{ entity.OrderCode }}}"}}]
    })
}

both_backends! {
    async fn a_send_test_delivers_one_call_with_the_stored_credentials_and_records_nothing(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::always(Reply::status(202).body("{\"ok\":true}")).await;
        let shop = app.create_shop("Main shop").await;
        let trigger = app.create_trigger(draft(shop, &receiver.url("/erp"))).await;
        // The editor sends the trigger as read back: the password is masked, so the stored
        // one is used; a stored entity is rendered.
        app.post_event(crate::common::event("OrderChanged", shop, 42,
            json!({"OrderId": 42, "OrderCode": "ORD-42"}))).await;
        wait_until(WAIT, "the event's call arrived", async || receiver.count() == 1).await;
        let (status, answer) = app.post_json("/api/v1/triggers/send-test", json!({
            "trigger": trigger, "triggerId": trigger["id"], "shopId": shop, "entityId": "42"
        })).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["status"], 202);
        assert_eq!(answer["success"], true);
        assert_eq!(answer["responseBody"], "{\"ok\":true}");
        assert_eq!(answer["request"]["body"], "{\"order\": \"ORD-42\"}");
        assert_eq!(receiver.count(), 2);
        let sent = &receiver.requests()[1];
        assert_eq!(sent.json(), json!({"order": "ORD-42"}));
        assert_eq!(sent.header("authorization"), Some("Basic ZXJwOnMzY3JldA=="));
        // Only the event's own call is in the queue.
        assert_eq!(app.queue_items("").await.len(), 1);
    }

    async fn a_send_test_to_a_private_address_is_refused_by_the_guard(backend: Backend) {
        let app = spawn_app_with(backend, &["--allow-private-targets", ""]).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main shop").await;
        // A literal private address is refused before anything is sent, beside the URL field.
        let answer = app.post_json("/api/v1/triggers/send-test", json!({
            "trigger": draft(shop, &receiver.url("/erp"))
        })).await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(answer.1["error"]["field"], "actions[0].url");
        // A name is checked on the address it resolves to, when sending.
        let url = format!("http://localhost:{}/erp", receiver.port());
        let (status, answer) = app.post_json("/api/v1/triggers/send-test", json!({
            "trigger": draft(shop, &url)
        })).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["status"], serde_json::Value::Null);
        assert_eq!(answer["success"], false);
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{answer}");
        assert_eq!(receiver.count(), 0, "nothing reached the private address");
    }

    async fn a_send_test_of_a_broken_template_names_the_field_line_and_column(backend: Backend) {
        let app = spawn_app(backend).await;
        let shop = app.create_shop("Main shop").await;
        let mut trigger = draft(shop, "https://erp.example.com/hook");
        trigger["actions"][0]["payload"]["body"] = json!("{\"order\":\n  {{ entity.OrderCode }");
        let answer = app.post_json("/api/v1/triggers/send-test", json!({"trigger": trigger})).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(answer.1["error"]["field"], "actions[0].payload.body");
        assert!(message.contains("line 2"), "{message}");
    }
}
