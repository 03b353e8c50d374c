//! The Front Systems webhook API under `/compat/frontsystems/api`, as a client written from
//! `seeds/004_23c4faa12342e748.txt` uses it.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::catalogs::{compat_request, create_shop_in};
use crate::common::*;

const BASE: &str = "/compat/frontsystems/api";

async fn fs(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    compat_request(app, method, &format!("{BASE}{path}"), Some(key), &[], body).await
}

/// Asserts a problem-details error and returns its `detail`.
#[track_caller]
fn assert_problem(answer: &(StatusCode, Value), status: StatusCode) -> String {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["status"], status.as_u16(), "{}", answer.1);
    assert!(answer.1["title"].is_string(), "{}", answer.1);
    answer.1["detail"].as_str().unwrap_or_default().to_owned()
}

fn is_uuid(value: &Value) -> bool {
    let text = value.as_str().unwrap_or_default();
    text.len() == 36 && text.split('-').map(str::len).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
}

both_backends! {
    async fn front_systems_types_schemas_and_subscriptions_follow_the_document(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let (shop, key) = create_shop_in(&app, "POS", "frontsystems").await;
        let (status, types) = fs(&app, Method::GET, "/WebhooksTypes", &key, None).await;
        assert_eq!(status, StatusCode::OK, "{types}");
        let types: Vec<&str> = types.as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        assert_eq!(types.len(), 21);
        assert!(types.contains(&"SaleCreated") && types.contains(&"OmniChannelEndlessAisleOrderCreated"));
        let (status, schema) = fs(&app, Method::GET, "/WebhooksTypes/SaleCreated/schema", &key, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        assert_problem(&fs(&app, Method::GET, "/WebhooksTypes/OrderChanged/schema", &key, None).await, StatusCode::NOT_FOUND);

        // The document's own example subscription.
        let body = json!({"event": "OmniChannelEndlessAisleOrderCreated", "url": receiver.url("/url")});
        let (status, webhook) = fs(&app, Method::POST, "/webhooks", &key, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{webhook}");
        assert!(is_uuid(&webhook["id"]), "{webhook}");
        assert_eq!((webhook["event"].as_str(), webhook["url"].as_str()), (Some("OmniChannelEndlessAisleOrderCreated"), Some(receiver.url("/url").as_str())));
        let (_, list) = fs(&app, Method::GET, "/webhooks", &key, None).await;
        assert_eq!(list, json!([webhook.clone()]));
        // A trigger of the shop underneath, without automatic retries.
        let (_, triggers) = app.get_json("/api/v1/triggers").await;
        let trigger = &triggers["items"][0];
        assert_eq!((trigger["shopId"].as_i64(), trigger["actions"][0]["retryPolicy"].as_str()), (Some(shop), Some("frontsystems")));
        // The entity is sent as the POS sent it.
        let sale = json!({"saleId": "S-1", "lines": [{"gtin": "7090000000001", "qty": 1}], "total": 99.5});
        app.post_event(event("OmniChannelEndlessAisleOrderCreated", shop, "S-1", sale.clone())).await;
        assert_eq!(receiver.wait_for_requests(1, WAIT).await[0].json(), sale);

        let path = format!("/webhooks/{}", webhook["id"].as_str().unwrap());
        assert_eq!(fs(&app, Method::DELETE, &path, &key, None).await.0, StatusCode::NO_CONTENT);
        assert_problem(&fs(&app, Method::DELETE, &path, &key, None).await, StatusCode::NOT_FOUND);
        assert_eq!(fs(&app, Method::GET, "/webhooks", &key, None).await.1, json!([]));
    }

    async fn failed_front_systems_events_wait_in_the_event_log_until_resent(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::with_script(vec![Reply::status(404)]).await;
        let (shop, key) = create_shop_in(&app, "POS", "frontsystems").await;
        let (_, webhook) = fs(&app, Method::POST, "/webhooks", &key, Some(json!({"event": "SaleCreated", "url": receiver.url("/sales")}))).await;
        let webhook_id = webhook["id"].as_str().unwrap().to_owned();
        let sale = json!({"saleId": 7, "total": 10});
        app.post_event(event("SaleCreated", shop, 7, sale.clone())).await;
        app.wait_for_queue_count("status=failed", 1).await;
        assert_eq!(receiver.count(), 1, "no automatic retry");

        let (status, events) = fs(&app, Method::GET, &format!("/WebhooksEvents/{webhook_id}?from=2021-12-01&success=false&includePayload=false&includeRuns=false"), &key, None).await;
        assert_eq!(status, StatusCode::OK, "{events}");
        let events = events.as_array().unwrap().clone();
        assert_eq!(events.len(), 1, "{events:?}");
        let e = &events[0];
        assert_eq!(e["webhookId"], webhook_id.as_str());
        assert!(is_uuid(&e["webhookEventId"]));
        assert_eq!((e["status"].as_str(), e["statusCode"].as_i64(), e["success"].as_bool(), e["runsCounter"].as_i64()), (Some("Not Found"), Some(404), Some(false), Some(1)));
        assert_eq!(e["runs"], json!([]));
        for field in ["createdDateTime", "updatedDateTime"] {
            let text = e[field].as_str().unwrap_or_else(|| panic!("{field}: {e}"));
            parse_time(&json!(format!("{text}Z")));
        }
        assert!(e.get("payload").is_none());
        let (_, detailed) = fs(&app, Method::GET, &format!("/WebhooksEvents/{webhook_id}?includePayload=true&includeRuns=true"), &key, None).await;
        assert_eq!(detailed[0]["payload"], sale);
        assert_eq!(detailed[0]["runs"].as_array().unwrap().len(), 1, "{detailed}");
        assert_eq!(detailed[0]["runs"][0]["statusCode"], 404);
        // Time and success filters.
        assert_eq!(fs(&app, Method::GET, &format!("/WebhooksEvents/{webhook_id}?from=2999-01-01"), &key, None).await.1, json!([]));
        assert_eq!(fs(&app, Method::GET, &format!("/WebhooksEvents/{webhook_id}?to=2021-12-15"), &key, None).await.1, json!([]));
        assert_eq!(fs(&app, Method::GET, &format!("/WebhooksEvents/{webhook_id}?success=true"), &key, None).await.1, json!([]));

        // ResendWebhookEvent: delivered now, and the log says so.
        let event_id = e["webhookEventId"].as_str().unwrap();
        let (status, resent) = fs(&app, Method::POST, &format!("/WebhooksEvents/{event_id}/resend"), &key, None).await;
        assert_eq!(status, StatusCode::OK, "{resent}");
        assert_eq!(resent["webhookEventId"], event_id);
        let got = receiver.wait_for_requests(2, WAIT).await;
        assert_eq!(got[1].json(), sale);
        wait_until(WAIT, "the event log shows the resent event succeeded", async || {
            let (_, ok) = fs(&app, Method::GET, &format!("/WebhooksEvents/{webhook_id}?success=true"), &key, None).await;
            ok.as_array().is_some_and(|a| a.len() == 1 && a[0]["statusCode"] == 200 && a[0]["runsCounter"] == 2)
        })
        .await;
        assert_eq!(fs(&app, Method::GET, &format!("/WebhooksEvents/{webhook_id}?success=false"), &key, None).await.1, json!([]));
    }

    async fn front_systems_refusals_are_problem_details(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let (_, key) = create_shop_in(&app, "POS", "frontsystems").await;
        let (_, other_key) = create_shop_in(&app, "Other POS", "frontsystems").await;

        let answer = compat_request(&app, Method::GET, &format!("{BASE}/webhooks"), None, &[], None).await;
        assert!(assert_problem(&answer, StatusCode::UNAUTHORIZED).contains("x-api-key"));
        assert_problem(&compat_request(&app, Method::GET, &format!("{BASE}/WebhooksTypes"), Some("hfk_wrong"), &[], None).await, StatusCode::UNAUTHORIZED);

        for (body, field) in [
            (json!({"event": "SaleCreated"}), "url"),
            (json!({"url": receiver.url("/x")}), "event"),
            (json!({"event": "ORDER_SETTLED", "url": receiver.url("/x")}), "event"),
            (json!({"event": "SaleCreated", "url": "not a url"}), "url"),
        ] {
            let answer = fs(&app, Method::POST, "/webhooks", &key, Some(body.clone())).await;
            assert_problem(&answer, StatusCode::BAD_REQUEST);
            assert!(answer.1["errors"][field].is_array(), "{body}: {}", answer.1);
        }

        let (_, webhook) = fs(&app, Method::POST, "/webhooks", &key, Some(json!({"event": "SaleCreated", "url": receiver.url("/s")}))).await;
        let webhook_id = webhook["id"].as_str().unwrap();
        // Unknown ids, ids that are not ours, and other shops' webhooks are all 404s.
        for path in [
            format!("/WebhooksEvents/{webhook_id}"),
            "/WebhooksEvents/edd10354-7625-4f29-bd9f-e43c61cf2eba".to_owned(),
            "/WebhooksEvents/not-a-uuid".to_owned(),
        ] {
            assert_problem(&fs(&app, Method::GET, &path, &other_key, None).await, StatusCode::NOT_FOUND);
        }
        assert_problem(&fs(&app, Method::DELETE, &format!("/webhooks/{webhook_id}"), &other_key, None).await, StatusCode::NOT_FOUND);
        assert_problem(&fs(&app, Method::POST, "/WebhooksEvents/b38832a2-b522-4b2d-ba10-5f217a9efbc1/resend", &key, None).await, StatusCode::NOT_FOUND);
        // A webhook id is not a webhook event id.
        assert_problem(&fs(&app, Method::POST, &format!("/WebhooksEvents/{webhook_id}/resend"), &key, None).await, StatusCode::NOT_FOUND);
        let answer = fs(&app, Method::GET, &format!("/WebhooksEvents/{webhook_id}?from=yesterday"), &key, None).await;
        assert!(assert_problem(&answer, StatusCode::BAD_REQUEST).contains("yesterday"));
        assert_problem(&fs(&app, Method::PUT, "/webhooks", &key, None).await, StatusCode::METHOD_NOT_ALLOWED);
    }
}
