//! The event log: what came in and what became of its calls; resending one event's calls, and
//! many calls at once.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

fn ids(items: &[Value]) -> Vec<i64> {
    items.iter().map(id).collect()
}

/// `GET /api/v1/events?<query>` (asserting 200): `{"items", "next"}`.
async fn events(app: &TestApp, query: &str) -> Value {
    let path = format!("/api/v1/events?{query}");
    let (status, body) = app.get_json(&path).await;
    assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
    body
}

async fn event_items(app: &TestApp, query: &str) -> Vec<Value> {
    events(app, query).await["items"]
        .as_array()
        .expect("an event page has items")
        .clone()
}

/// The calls of an event as `(triggerId, status)`, sorted.
fn call_states(event: &Value) -> Vec<(i64, String)> {
    let calls = event["calls"].as_array().expect("an event has calls");
    sorted(
        calls
            .iter()
            .map(|c| {
                (
                    c["triggerId"].as_i64().unwrap(),
                    c["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect(),
    )
}

both_backends! {
    async fn the_event_log_shows_each_event_with_the_outcome_of_its_calls(backend: Backend) {
        let app = spawn_app(backend).await;
        let ok = Receiver::start().await;
        let gone = Receiver::always(Reply::status(404).body("no such order")).await;
        let shop = app.create_shop("Main").await;
        let other = app.create_shop("Other").await;
        let good = app.create_trigger(webhook_trigger("OrderChanged", &ok.url("/ok"))).await;
        let bad = app
            .create_trigger(
                webhook_trigger("OrderChanged", &gone.url("/gone")).with(json!({"shopId": shop})),
            )
            .await;
        let first = app
            .post_event(event("OrderChanged", shop, 1, json!({"OrderId": 1, "OrderCode": "ORD-1"})))
            .await;
        let second = app.post_event(event("OrderChanged", other, 2, json!({"OrderId": 2}))).await;
        let quiet = app.post_event(event("ShipmentShipped", shop, 3, json!({}))).await;
        app.wait_for_queue_count("status=succeeded", 2).await;
        app.wait_for_queue_count("status=failed", 1).await;

        let all = event_items(&app, "").await;
        let expected = vec![id_of(&quiet), id_of(&second), id_of(&first)];
        assert_eq!(ids(&all), expected, "newest first");
        let logged = &all[2];
        assert_eq!(logged["eventType"], "OrderChanged");
        assert_eq!(logged["shopId"], shop);
        assert_eq!(logged["entityId"], "1");
        parse_time(&logged["occurredAt"]);
        parse_time(&logged["receivedAt"]);
        assert!(logged.get("entityData").is_none(), "no payload unless asked for: {logged}");
        assert_eq!(
            call_states(logged),
            sorted(vec![(id(&good), "succeeded".to_owned()), (id(&bad), "failed".to_owned())])
        );
        for call in logged["calls"].as_array().unwrap() {
            let succeeded = call["triggerId"] == good["id"];
            assert_eq!(call["success"], succeeded, "{call}");
            assert_eq!(call["statusCode"], if succeeded { 200 } else { 404 }, "{call}");
            assert_eq!(call["attempts"], 1, "{call}");
            assert_eq!(call["actionIndex"], 0, "{call}");
            assert!(call["id"].is_i64() && call.get("attemptLog").is_none(), "{call}");
        }
        assert_eq!(all[0]["calls"], json!([]), "an event no trigger matched has no calls");

        // success=false: a call did not succeed; success=true: all did (or there were none).
        assert_eq!(ids(&event_items(&app, "success=false").await), vec![id_of(&first)]);
        assert_eq!(
            ids(&event_items(&app, "success=true").await),
            vec![id_of(&quiet), id_of(&second)]
        );
        assert_eq!(ids(&event_items(&app, &format!("shopId={other}")).await), vec![id_of(&second)]);
        assert_eq!(event_items(&app, "from=2999-01-01T00:00:00Z").await.len(), 0);
        assert_eq!(
            event_items(&app, "from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z").await.len(),
            3
        );

        // The payload and the attempt logs, when asked for.
        let detailed = event_items(&app, "success=false&includePayload=true&includeAttempts=true").await;
        assert_eq!(detailed[0]["entityData"], json!({"OrderId": 1, "OrderCode": "ORD-1"}));
        let failed = detailed[0]["calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["triggerId"] == bad["id"])
            .unwrap()
            .clone();
        let log = failed["attemptLog"].as_array().expect("an attempt log");
        assert_eq!(log.len(), 1, "{failed:#}");
        assert_eq!(log[0]["statusCode"], 404);
        assert_eq!(log[0]["responseBody"], "no such order");

        // One event, the same way.
        let (status, one) = app
            .get_json(&format!("/api/v1/events/{}?includePayload=true", id_of(&first)))
            .await;
        assert_eq!(status, StatusCode::OK, "{one}");
        assert_eq!(one["id"], first["eventId"]);
        assert_eq!(one["entityData"]["OrderCode"], "ORD-1");
        assert_eq!(one["calls"].as_array().unwrap().len(), 2);
        assert_error(&app.get_json("/api/v1/events/999999").await, StatusCode::NOT_FOUND, "not_found");

        for bad_query in ["success=maybe", "from=yesterday", "limit=0", "limit=501", "colour=blue"] {
            let (status, body) = app.get_json(&format!("/api/v1/events?{bad_query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad_query}: {body}");
        }
    }

    async fn the_event_log_pages_with_a_cursor_without_overlap(backend: Backend) {
        let app = spawn_app(backend).await;
        let shop = app.create_shop("Main").await;
        let batch: Vec<Value> = (1..=5).map(|n| event("OrderChanged", shop, n, json!({}))).collect();
        let (status, answer) = app.post_events(Value::Array(batch)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        let all = ids(&event_items(&app, "").await);
        assert_eq!(all.len(), 5);
        assert!(all.windows(2).all(|w| w[0] > w[1]), "{all:?}");

        let mut seen = Vec::new();
        let mut query = "limit=2".to_owned();
        for _ in 0..5 {
            let page = events(&app, &query).await;
            seen.extend(ids(page["items"].as_array().unwrap()));
            match page["next"].as_str() {
                Some(next) => query = format!("limit=2&cursor={next}"),
                None => break,
            }
        }
        assert_eq!(seen, all, "pages cover the log, newest first, each event once");
    }

    async fn resending_an_event_sends_each_of_its_calls_again(backend: Backend) {
        let app = spawn_app(backend).await;
        let first = Receiver::start().await;
        let second = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &first.url("/a"))).await;
        app.create_trigger(webhook_trigger("OrderChanged", &second.url("/b"))).await;
        let posted = app.post_event(event("OrderChanged", shop, 1, json!({"OrderId": 1}))).await;
        app.wait_for_queue_count("status=succeeded", 2).await;

        let (status, answer) = app
            .post_json(&format!("/api/v1/events/{}/resend", id_of(&posted)), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, json!({"requeued": 2}));

        for receiver in [&first, &second] {
            let requests = receiver.wait_for_requests(2, WAIT).await;
            assert_eq!(requests[0].webhook_id(), requests[1].webhook_id(), "the same call again");
            assert_eq!(requests[0].body, requests[1].body);
        }
        let logged = app
            .get_json(&format!("/api/v1/events/{}", id_of(&posted)))
            .await
            .1;
        for call in logged["calls"].as_array().unwrap() {
            app.wait_for_item(id(call), "the resent call is recorded", |item| {
                item["status"] == "succeeded" && item["attempts"] == 2
            })
            .await;
        }
        assert_error(
            &app.post_json("/api/v1/events/999999/resend", json!({})).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }

    async fn a_resend_leaves_the_calls_of_a_deactivated_action_unsent(backend: Backend) {
        let app = spawn_app(backend).await;
        let live = Receiver::start().await;
        let down = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &live.url("/live"))).await;
        let off = app.create_trigger(webhook_trigger("OrderChanged", &down.url("/down"))).await;
        let path = format!("/api/v1/triggers/{}/actions/0/deactivate", id(&off));
        let (status, body) = app.put_json(&path, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let posted = app.post_event(event("OrderChanged", shop, 1, json!({}))).await;
        app.wait_for_queue_count("status=succeeded", 1).await;
        let skipped = app.wait_for_queue_count("status=skipped", 1).await;
        assert_eq!(skipped[0]["triggerId"], id(&off));

        // Resending the event sends the live action's call again, not the deactivated one's.
        let (status, answer) = app
            .post_json(&format!("/api/v1/events/{}/resend", id_of(&posted)), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, json!({"requeued": 1}));
        live.wait_for_requests(2, WAIT).await;
        // A bulk resend of the skipped calls leaves them too.
        let (status, answer) = app
            .post_json("/api/v1/queue/resend", json!({"status": "skipped", "triggerId": id(&off)}))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, json!({"requeued": 0}));
        // Neither resend touched the row: it is still skipped, so nothing is on its way.
        let held = app.queue_items(&format!("triggerId={}", id(&off))).await;
        assert_eq!(held.len(), 1, "{held:#?}");
        assert_eq!(held[0]["status"], "skipped", "{held:#?}");
        assert_eq!(held[0]["attempts"], 0, "{held:#?}");
        assert_eq!(down.count(), 0, "a deactivated action's call was sent");

        // Reactivating with its resend option is the way to send it.
        let (status, answer) = app
            .request(
                reqwest::Method::PUT,
                &format!("/api/v1/triggers/{}/actions/0/activate?requeueFailed=true", id(&off)),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["requeued"], 1, "{answer}");
        down.wait_for_requests(1, WAIT).await;
    }

    async fn a_bulk_resend_queues_the_matching_failed_calls_again(backend: Backend) {
        let app = spawn_app_with(backend, &["--max-retries", "0"]).await;
        let flaky = Receiver::always(Reply::status(500)).await;
        let steady = Receiver::always(Reply::status(500)).await;
        let shop = app.create_shop("Main").await;
        let target = app.create_trigger(webhook_trigger("OrderChanged", &flaky.url("/flaky"))).await;
        let bystander = app.create_trigger(webhook_trigger("OrderChanged", &steady.url("/steady"))).await;
        for n in 1..=3 {
            app.post_event(event("OrderChanged", shop, n, json!({}))).await;
        }
        app.wait_for_queue_count("status=failed", 6).await;

        flaky.set_default(Reply::status(200));
        let (status, answer) = app
            .post_json("/api/v1/queue/resend", json!({"triggerId": id(&target)}))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, json!({"requeued": 3}));
        let resent = app
            .wait_for_queue_count(&format!("triggerId={}&status=succeeded", id(&target)), 3)
            .await;
        assert!(resent.iter().all(|i| i["attempts"] == 2), "{resent:#?}");
        let untouched = app.queue_items(&format!("triggerId={}", id(&bystander))).await;
        assert!(untouched.iter().all(|i| i["status"] == "failed" && i["attempts"] == 1));
        assert_eq!(steady.count(), 3, "calls of other triggers are not resent");

        // Succeeded calls are resent only when asked for by status; nothing matches → 0.
        let (_, none) = app
            .post_json(
                "/api/v1/queue/resend",
                json!({"triggerId": id(&target), "eventType": "ShipmentShipped"}),
            )
            .await;
        assert_eq!(none, json!({"requeued": 0}));

        let empty = app.post_json("/api/v1/queue/resend", json!({})).await;
        assert!(assert_error(&empty, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
            .contains("at least one"));
        let flying = app
            .post_json("/api/v1/queue/resend", json!({"status": "in_flight"}))
            .await;
        assert_error(&flying, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let (status, _) = app
            .post_json("/api/v1/queue/resend", json!({"status": "exploded"}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = app
            .post_json("/api/v1/queue/resend", json!({"from": "yesterday"}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = app
            .post_json("/api/v1/queue/resend", json!({"trigger": 1}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}

/// The event id of an ingest answer.
fn id_of(answer: &Value) -> i64 {
    answer["eventId"]
        .as_i64()
        .unwrap_or_else(|| panic!("no eventId in {answer}"))
}
