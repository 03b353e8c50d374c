//! The queue as operators see it: filters, pagination, retry and cancel.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

fn ids(items: &[Value]) -> Vec<i64> {
    items.iter().map(id).collect()
}

both_backends! {
    async fn the_queue_filters_by_status_trigger_event_type_and_time(backend: Backend) {
        let app = spawn_app(backend).await;
        let ok = Receiver::start().await;
        let gone = Receiver::always(Reply::status(410)).await;
        let shop = app.create_shop("Main").await;
        let good = app.create_trigger(webhook_trigger("OrderChanged", &ok.url("/ok"))).await;
        let bad = app.create_trigger(webhook_trigger("OrderChanged", &gone.url("/gone"))).await;
        for n in 1..=3 {
            app.post_event(event("OrderChanged", shop, n, json!({}))).await;
        }

        let succeeded = app.wait_for_queue_count("status=succeeded", 3).await;
        assert!(succeeded.iter().all(|i| i["triggerId"] == good["id"] && i["status"] == "succeeded"));
        let failed = app.wait_for_queue_count("status=failed", 3).await;
        assert!(failed.iter().all(|i| i["triggerId"] == bad["id"] && i["status"] == "failed"));
        assert_eq!(app.queue_items("status=pending").await, Vec::<Value>::new());

        let by_trigger = app.queue_items(&format!("triggerId={}", id(&bad))).await;
        assert_eq!(sorted(ids(&by_trigger)), sorted(ids(&failed)));
        let by_both = app
            .queue_items(&format!("triggerId={}&status=succeeded", id(&bad)))
            .await;
        assert_eq!(by_both, Vec::<Value>::new());

        assert_eq!(app.queue_items("eventType=OrderChanged").await.len(), 6);
        assert_eq!(app.queue_items("eventType=OrderCreated").await.len(), 0);

        // Newest first.
        let all = app.queue_items("").await;
        let all_ids = ids(&all);
        assert_eq!(all_ids.len(), 6);
        assert!(all_ids.windows(2).all(|w| w[0] > w[1]), "{all_ids:?}");

        // Time window on creation time.
        assert_eq!(app.queue_items("from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z").await.len(), 6);
        assert_eq!(app.queue_items("from=2999-01-01T00:00:00Z").await.len(), 0);
        assert_eq!(app.queue_items("to=2000-01-01T00:00:00Z").await.len(), 0);

        let (status, _) = app.get_json("/api/v1/queue?status=exploded").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = app.get_json("/api/v1/queue?from=yesterday").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_error(&app.get_json("/api/v1/queue/999999").await, StatusCode::NOT_FOUND, "not_found");
    }

    async fn the_queue_pages_with_a_cursor_without_overlap(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        let events: Vec<Value> = (1..=5).map(|n| event("OrderChanged", shop, n, json!({}))).collect();
        let (status, answer) = app.post_events(Value::Array(events)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        let all = ids(&app.queue_items("").await);
        assert_eq!(all.len(), 5);

        let first = app.queue("limit=2").await;
        assert_eq!(ids(first["items"].as_array().unwrap()), all[..2]);
        let cursor = first["next"].as_str().expect("a first page of a longer list has a next cursor");

        let mut seen: Vec<i64> = ids(first["items"].as_array().unwrap());
        let mut cursor = cursor.to_owned();
        let mut pages = 1;
        loop {
            let page = app.queue(&format!("limit=2&cursor={cursor}")).await;
            let items = ids(page["items"].as_array().unwrap());
            assert!(items.len() <= 2);
            if let (Some(last_seen), Some(first_here)) = (seen.last(), items.first()) {
                assert!(first_here < last_seen, "page {pages} goes back in time: {items:?} after {seen:?}");
            }
            seen.extend(&items);
            pages += 1;
            match page["next"].as_str() {
                Some(next) => cursor = next.to_owned(),
                None => break,
            }
            assert!(pages < 10, "paging does not end");
        }
        assert_eq!(seen, all, "pages cover the queue, newest first, each item once");
        let unique: HashSet<i64> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len());
        assert_eq!(app.queue("limit=5").await["items"].as_array().unwrap().len(), 5);
        let (status, _) = app.get_json("/api/v1/queue?limit=0").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    async fn the_retry_endpoint_resends_a_succeeded_call(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        app.post_event(event("OrderChanged", shop, 1, json!({"OrderId": 1}))).await;
        let item = app.only_item("").await;
        app.wait_for_queue_status(id(&item), "succeeded").await;

        let (status, retried) = app
            .post_json(&format!("/api/v1/queue/{}/retry", id(&item)), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{retried}");
        assert_eq!(retried["id"], item["id"]);

        let requests = receiver.wait_for_requests(2, WAIT).await;
        assert_eq!(requests[0].webhook_id(), requests[1].webhook_id());
        assert_eq!(requests[0].body, requests[1].body);
        let item = app
            .wait_for_item(id(&item), "the resent call is recorded", |item| {
                item["status"] == "succeeded" && item["attempts"] == 2
            })
            .await;
        assert_eq!(item["attemptLog"].as_array().unwrap().len(), 2);
        assert_eq!(receiver.count(), 2);

        let answer = app.post_json("/api/v1/queue/999999/retry", json!({})).await;
        assert_error(&answer, StatusCode::NOT_FOUND, "not_found");
    }

    async fn the_retry_endpoint_gives_a_failed_call_fresh_attempts(backend: Backend) {
        let app = spawn_app_with(backend, &["--max-retries", "1"]).await;
        let receiver = Receiver::always(Reply::status(500)).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;
        let item = app.only_item("").await;
        let failed = app.wait_for_queue_status(id(&item), "failed").await;
        assert_eq!(failed["attempts"], 2);

        receiver.set_default(Reply::status(200));
        let (status, retried) = app
            .post_json(&format!("/api/v1/queue/{}/retry", id(&item)), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{retried}");
        assert_eq!(retried["status"], "pending");
        assert!(retried["maxAttempts"].as_i64().unwrap() > 2, "{retried:#}");

        let item = app.wait_for_queue_status(id(&item), "succeeded").await;
        assert_eq!(item["attempts"], 3);
        assert_eq!(item["lastStatusCode"], 200);
        assert_eq!(item["lastError"], Value::Null);
        let requests = receiver.requests();
        assert_eq!(requests.len(), 3);
        assert!(requests.iter().all(|r| r.webhook_id() == item["webhookId"]));
    }

    async fn a_cancelled_call_is_not_delivered_again(backend: Backend) {
        let app = spawn_app_with(backend, &["--retry-base-ms", "1000"]).await;
        let down = Receiver::always(Reply::status(503)).await;
        let up = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        let doomed = app.create_trigger(webhook_trigger("OrderChanged", &down.url("/down"))).await;
        app.create_trigger(webhook_trigger("OrderCreated", &up.url("/up"))).await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;

        // First attempt fails; the retry is due in about a second.
        let item = app.only_item(&format!("triggerId={}", id(&doomed))).await;
        let item = app
            .wait_for_item(id(&item), "the first attempt is recorded", |item| {
                item["status"] == "pending" && item["attempts"] == 1
            })
            .await;
        let (status, cancelled) = app
            .post_json(&format!("/api/v1/queue/{}/cancel", id(&item)), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{cancelled}");
        assert_eq!(cancelled["status"], "cancelled");

        // Once the retry would have been due, a later call goes out; had the cancelled call
        // still been queued it would have been claimed first.
        let due = parse_time(&item["nextAttemptAt"]) + Duration::from_millis(50);
        wait_until(WAIT, "the cancelled call's retry is past due", async || {
            SystemTime::now() > due
        })
        .await;
        app.post_event(event("OrderCreated", shop, 2, json!({}))).await;
        up.wait_for_requests(1, WAIT).await;
        let sentinel = app.only_item("eventType=OrderCreated").await;
        app.wait_for_queue_status(id(&sentinel), "succeeded").await;

        let item = app.queue_item(id(&item)).await;
        assert_eq!(item["status"], "cancelled");
        assert_eq!(item["attempts"], 1);
        assert_eq!(down.count(), 1, "a cancelled call is not sent again");

        let again = app.post_json(&format!("/api/v1/queue/{}/cancel", id(&item)), json!({})).await;
        assert_error(&again, StatusCode::CONFLICT, "conflict");
        let finished = app
            .post_json(&format!("/api/v1/queue/{}/cancel", id(&sentinel)), json!({}))
            .await;
        assert_error(&finished, StatusCode::CONFLICT, "conflict");
    }
}
