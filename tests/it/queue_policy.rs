//! The queue as operators need it: endpoints that cannot hold each other back, ordered and
//! unique calls per entity, retry policies, alerts, deactivation and reactivation.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

fn action(url: &str, extra: Value) -> Value {
    let mut action = json!({"type": "callWebhook", "url": url});
    for (k, v) in extra.as_object().unwrap() {
        action[k] = v.clone();
    }
    action
}

fn trigger_with(event_type: &str, action: Value) -> Value {
    json!({"name": format!("{event_type} policy"), "eventType": event_type, "actions": [action]})
}

both_backends! {
    async fn a_slow_endpoint_does_not_hold_back_a_fast_one(backend: Backend) {
        let app = spawn_app_with(
            backend,
            &["--concurrency", "12", "--per-endpoint-concurrency", "4", "--delivery-timeout-ms", "5000"],
        )
        .await;
        // If the slow endpoint could take every slot, the fast calls would wait 3 s for one to
        // free; a loaded machine adds far less than that to their own delivery.
        let slow = Receiver::always(Reply::delay(Duration::from_millis(3000))).await;
        let fast = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &slow.url("/slow"))).await;
        app.create_trigger(webhook_trigger("OrderCreated", &fast.url("/fast"))).await;
        let slow_events: Vec<Value> = (0..12).map(|i| event("OrderChanged", shop, i, json!({}))).collect();
        app.post_events(Value::Array(slow_events)).await;
        let started = Instant::now();
        let fast_events: Vec<Value> = (0..12).map(|i| event("OrderCreated", shop, i, json!({}))).collect();
        app.post_events(Value::Array(fast_events)).await;
        fast.wait_for_requests(12, Duration::from_secs(10)).await;
        assert!(started.elapsed() < Duration::from_millis(2500), "fast calls waited {:?}", started.elapsed());
        // The slow endpoint never had more than 4 calls at once: 12 calls took 3 rounds.
        let got = slow.wait_for_requests(12, Duration::from_secs(20)).await;
        let first_round = got.iter().filter(|r| r.at < got[0].at + Duration::from_millis(1500)).count();
        assert!(first_round <= 4, "{first_round} calls reached the slow endpoint at once");
    }

    async fn calls_for_one_entity_keep_their_order_across_retries(backend: Backend) {
        // Retries 1 s apart (at least 750 ms with jitter): far longer than posting the next
        // events takes on a loaded machine, so an unordered call's later events overtake its
        // retry however slowly they are posted.
        let app = spawn_app_with(backend, &["--retry-base-ms", "1000", "--retry-max-ms", "1000"]).await;
        let receiver = Receiver::with_script(vec![Reply::status(500), Reply::status(500)]).await;
        let other = Receiver::with_script(vec![Reply::status(500)]).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/ordered"))).await;
        app.create_trigger(trigger_with("OrderCreated", action(&other.url("/unordered"), json!({"ordered": false}))))
            .await;
        for n in 1..=3 {
            app.post_event(event("OrderChanged", shop, "A", json!({"OrderId": n}))).await;
            app.post_event(event("OrderCreated", shop, "A", json!({"OrderId": n}))).await;
        }
        let got = receiver.wait_for_requests(5, WAIT).await;
        let order: Vec<i64> = got.iter().map(|r| r.json()["entityData"]["OrderId"].as_i64().unwrap()).collect();
        assert_eq!(order, [1, 1, 1, 2, 3], "the second event waited for the first to succeed");
        // Without ordering, later events overtake a call that is being retried.
        let got = other.wait_for_requests(4, WAIT).await;
        let order: Vec<i64> = got.iter().map(|r| r.json()["entityData"]["OrderId"].as_i64().unwrap()).collect();
        assert_eq!(order.iter().filter(|n| **n == 1).count(), 2);
        assert_ne!(order, [1, 1, 2, 3], "{order:?}");
    }

    async fn unique_items_coalesce_into_the_pending_call(backend: Backend) {
        // It reads a counter of the process: in a process of its own it counts this test only.
        let app = spawn_binary(backend).await;
        let gate = Gate::new();
        let receiver = Receiver::with_script(vec![Reply::held(&gate)]).await;
        let shop = app.create_shop("Main").await;
        let trigger = app
            .create_trigger(trigger_with("ProductChanged", action(&receiver.url("/p"), json!({"uniqueQueueItems": true}))))
            .await;
        app.post_event(event("ProductChanged", shop, 7, json!({"ProductCode": "v1"}))).await;
        receiver.wait_for_requests(1, WAIT).await;
        // The first call is on the wire: it is not touched; each next event queues a call that
        // supersedes the one before it, which names its successor.
        let mut calls = Vec::new();
        for v in 2..=5 {
            let answer = app.post_event(event("ProductChanged", shop, 7, json!({"ProductCode": format!("v{v}")}))).await;
            assert_eq!(answer["callsQueued"], 1, "{answer}");
            let items = app.queue_items(&format!("triggerId={}", id(&trigger))).await;
            let newest = items.into_iter().max_by_key(id).unwrap();
            assert_eq!(newest["eventId"], answer["eventId"]);
            calls.push(newest);
        }
        app.post_event(event("ProductChanged", shop, 8, json!({"ProductCode": "other"}))).await;
        let items = app.queue_items(&format!("triggerId={}&status=pending", id(&trigger))).await;
        let pending: Vec<&Value> = items.iter().filter(|i| i["entityId"] == "7").collect();
        assert_eq!(pending.len(), 1, "one pending call per entity: {items:#?}");
        let pending = pending[0];
        assert_eq!(pending["id"], calls[3]["id"]);
        assert_eq!(pending["coalesced"], 3);
        for (older, newer) in calls.iter().zip(&calls[1..]) {
            let older = app.queue_item(id(older)).await;
            assert_eq!(older["status"], "superseded", "{older:#}");
            assert_eq!(older["supersededBy"], newer["id"], "{older:#}");
        }
        gate.open();
        let got = receiver.wait_for_requests(3, WAIT).await;
        let codes: Vec<String> = got.iter().map(|r| r.json()["entityData"]["ProductCode"].as_str().unwrap().to_owned()).collect();
        assert!(codes.contains(&"v1".to_string()) && codes.contains(&"v5".to_string()), "{codes:?}");
        assert!(!codes.iter().any(|c| c == "v2" || c == "v3" || c == "v4"), "{codes:?}");
        app.wait_for_queue_count(&format!("triggerId={}&status=succeeded", id(&trigger)), 3).await;
        // The folds are counted for operators too.
        let metrics = reqwest::get(app.url("/metrics")).await.unwrap().text().await.unwrap();
        let folded = metrics.lines().find_map(|l| l.strip_prefix("hookflow_calls_coalesced_total ")).unwrap();
        assert_eq!(folded.trim(), "3", "{metrics}");
    }

    async fn a_custom_policy_retries_chosen_4xx_and_honours_retry_after(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::with_script(vec![
            Reply::status(409),
            Reply::status(429).header("Retry-After", "1"),
        ])
        .await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(trigger_with("OrderChanged", action(&receiver.url("/h"), json!({
            "retryPolicy": {"maxRetries": 3, "initialDelay": 0.1, "retryOn4xx": [409]}
        }))))
        .await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;
        let got = receiver.wait_for_requests(3, WAIT).await;
        assert!(got[2].at - got[1].at >= Duration::from_millis(950), "Retry-After waited {:?}", got[2].at - got[1].at);
        let item = app.only_item("").await;
        let item = app.wait_for_queue_status(id(&item), "succeeded").await;
        assert_eq!((item["attempts"].as_i64(), item["maxAttempts"].as_i64()), (Some(3), Some(4)));
    }

    async fn presets_set_the_schedule_and_bad_policies_are_refused(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::always(Reply::status(503)).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(trigger_with("OrderChanged", action(&receiver.url("/s"), json!({"retryPolicy": "skladon"})))).await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;
        let item = app.only_item("").await;
        let item = app.wait_for_item(id(&item), "an attempt failed", |i| i["attempts"] == 1).await;
        assert_eq!(item["maxAttempts"], 21, "skladon: up to 20 retries");
        assert_eq!(item["status"], "pending");
        // The next attempt is about a minute away (Skladon's backoff), not the server's 100 ms.
        let next = time::OffsetDateTime::parse(item["nextAttemptAt"].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap();
        assert!(next - time::OffsetDateTime::now_utc() > time::Duration::seconds(30), "{item:#}");

        for (policy, field) in [
            (json!({"maxRetries": 3, "retryOn4xx": [500]}), "actions[0].retryPolicy.retryOn4xx"),
            (json!({"initialDelay": -1}), "actions[0].retryPolicy.initialDelay"),
        ] {
            let answer = app.post_json("/api/v1/triggers", trigger_with("OrderChanged", action(&receiver.url("/x"), json!({"retryPolicy": policy})))).await;
            assert!(assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").starts_with(field));
        }
        let answer = app.post_json("/api/v1/triggers", trigger_with("OrderChanged", action(&receiver.url("/x"), json!({"retryPolicy": "nope"})))).await;
        assert_eq!(answer.0, StatusCode::BAD_REQUEST, "{}", answer.1);
        for priority in [0, 11] {
            let answer = app.post_json("/api/v1/triggers", webhook_trigger("OrderChanged", &receiver.url("/x")).with(json!({"priority": priority}))).await;
            assert!(assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").starts_with("priority"));
        }
    }

    async fn a_retry_an_event_resend_and_a_bulk_resend_each_give_the_actions_budget_again(backend: Backend) {
        // The server allows 10 retries; the action 2. Every way of sending a failed call again
        // gives it 3 more attempts, counted at the receiver, not the server's 11.
        let app = spawn_app(backend).await;
        let receiver = Receiver::always(Reply::status(503)).await;
        let shop = app.create_shop("Main").await;
        let trigger = app
            .create_trigger(trigger_with("OrderChanged", action(&receiver.url("/h"), json!({
                "retryPolicy": {"maxRetries": 2, "initialDelay": 0.05}
            }))))
            .await;
        let posted = app.post_event(event("OrderChanged", shop, 1, json!({}))).await;
        let call = id(&app.only_item("").await);
        let failed_after = async |attempts: i64| {
            let item = app.wait_for_item(call, "the call failed for good", |i| i["status"] == "failed").await;
            assert_eq!((item["attempts"].as_i64(), item["maxAttempts"].as_i64()), (Some(attempts), Some(attempts)), "{item:#}");
            assert_eq!(receiver.count() as i64, attempts, "the receiver got exactly the attempts the call made");
        };
        failed_after(3).await;

        let (status, retried) = app.post_json(&format!("/api/v1/queue/{call}/retry"), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{retried}");
        assert_eq!(retried["maxAttempts"], 6, "{retried:#}");
        failed_after(6).await;

        let (status, resent) = app.post_json(&format!("/api/v1/events/{}/resend", posted["eventId"].as_i64().expect("an event id")), json!({})).await;
        assert_eq!((status, resent["requeued"].as_i64()), (StatusCode::OK, Some(1)), "{resent}");
        failed_after(9).await;

        let (status, resent) = app.post_json("/api/v1/queue/resend", json!({"triggerId": id(&trigger)})).await;
        assert_eq!((status, resent["requeued"].as_i64()), (StatusCode::OK, Some(1)), "{resent}");
        failed_after(12).await;
    }

    async fn each_preset_treats_301_404_408_429_and_503_as_its_platform_documents(backend: Backend) {
        // One receiver per status; each preset's trigger calls its own path on every one.
        let app = spawn_app_with(backend, &["--retry-max-ms", "300"]).await;
        let statuses = [301u16, 404, 408, 429, 503];
        let mut receivers = Vec::new();
        for status in statuses {
            receivers.push(Receiver::always(Reply::status(status)).await);
        }
        let shop = app.create_shop("Main").await;
        // ShopCtrl and Flow Retail run on the server's schedule (100 to 300 ms here);
        // Skladon's hours-long one is shortened through the API, the rest of it kept.
        let presets = [
            ("shopctrl", json!("shopctrl")),
            ("flowretail", json!("flowretail")),
            ("skladon", json!({"preset": "skladon", "maxRetries": 3, "initialDelay": 0.05, "maxDelay": 0.2})),
        ];
        let mut triggers = Vec::new();
        for (name, policy) in &presets {
            for (status, receiver) in statuses.iter().zip(&receivers) {
                let trigger = app
                    .create_trigger(trigger_with("OrderChanged", action(&receiver.url(&format!("/{name}")), json!({"retryPolicy": policy}))))
                    .await;
                triggers.push((*name, *status, trigger));
            }
        }
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;

        let mut got = Vec::new();
        for (name, status, trigger) in &triggers {
            let item = app.wait_for_queue_count(&format!("triggerId={}&status=failed", id(trigger)), 1).await.remove(0);
            let receiver = &receivers[statuses.iter().position(|s| s == status).unwrap()];
            let sent = receiver.requests().iter().filter(|r| r.path == format!("/{name}")).count();
            assert_eq!(item["attempts"].as_u64(), Some(sent as u64), "{name} {status}: {item:#}");
            assert_eq!(item["lastStatusCode"].as_u64(), Some(u64::from(*status)), "{name} {status}: {item:#}");
            got.push((*name, *status, sent));
        }
        let expected = [
            // Any unsuccessful answer: 1 attempt and 10 retries.
            ("shopctrl", 301, 11), ("shopctrl", 404, 11), ("shopctrl", 408, 11), ("shopctrl", 429, 11), ("shopctrl", 503, 11),
            // 4xx is an error, never retried, 408 and 429 included; every other status is.
            ("flowretail", 301, 11), ("flowretail", 404, 1), ("flowretail", 408, 1), ("flowretail", 429, 1), ("flowretail", 503, 11),
            // No successful status: retried (here 3 times), then the webhook is deactivated.
            ("skladon", 301, 4), ("skladon", 404, 4), ("skladon", 408, 4), ("skladon", 429, 4), ("skladon", 503, 4),
        ];
        assert_eq!(got, expected);
        for (name, _, trigger) in &triggers {
            let (_, shown) = app.get_json(&format!("/api/v1/triggers/{}", id(trigger))).await;
            assert_eq!(shown["actions"][0]["active"], json!(*name != "skladon"), "{name}: {shown:#}");
        }
    }

    async fn a_custom_policy_chooses_which_classes_are_retried(backend: Backend) {
        let app = spawn_app(backend).await;
        let moved = Receiver::always(Reply::status(301)).await;
        let busy = Receiver::always(Reply::status(429)).await;
        let shop = app.create_shop("Main").await;
        let policy = json!({"maxRetries": 2, "initialDelay": 0.05, "retryOn": ["3xx", "5xx"]});
        let redirect = app.create_trigger(trigger_with("OrderChanged", action(&moved.url("/m"), json!({"retryPolicy": policy})))).await;
        let throttled = app.create_trigger(trigger_with("OrderChanged", action(&busy.url("/b"), json!({"retryPolicy": policy})))).await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;
        app.wait_for_queue_count(&format!("triggerId={}&status=failed", id(&redirect)), 1).await;
        app.wait_for_queue_count(&format!("triggerId={}&status=failed", id(&throttled)), 1).await;
        assert_eq!((moved.count(), busy.count()), (3, 1), "3xx chosen, 429 left out");

        let (_, shown) = app.get_json(&format!("/api/v1/triggers/{}", id(&redirect))).await;
        assert_eq!(shown["actions"][0]["retryPolicy"]["retryOn"], json!(["3xx", "5xx"]));
        let bad = app.post_json("/api/v1/triggers", trigger_with("OrderChanged", action(&moved.url("/x"), json!({"retryPolicy": {"retryOn": ["5xx", "6xx"]}})))).await;
        let message = assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.starts_with("actions[0].retryPolicy.retryOn[1]") && message.contains("3xx"), "{message}");
    }

    async fn failures_raise_one_alert_and_deactivate_until_an_admin_reactivates(backend: Backend) {
        let app = spawn_app_with(backend, &["--max-retries", "0"]).await;
        let receiver = Receiver::with_script(vec![Reply::status(500), Reply::status(500)]).await;
        let shop = app.create_shop("Main").await;
        let trigger = app
            .create_trigger(trigger_with("OrderChanged", action(&receiver.url("/h"), json!({
                "retryPolicy": {"deactivateAfterFailures": 2}
            }))))
            .await;
        for n in 1..=2 {
            app.post_event(event("OrderChanged", shop, n, json!({}))).await;
        }
        app.wait_for_queue_count("status=failed", 2).await;
        // One alert counts both failures, and the action is down.
        let alerts = wait_for(WAIT, "alerts are raised", || async {
            let (_, body) = app.get_json("/api/v1/alerts?acknowledged=false").await;
            let items = body["items"].as_array().cloned().unwrap_or_default();
            (items.len() == 2).then_some(items)
        })
        .await;
        let failed = alerts.iter().find(|a| a["kind"] == "callFailed").unwrap();
        assert_eq!(failed["count"], 2);
        assert_eq!(failed["lastStatusCode"], 500);
        assert!(alerts.iter().any(|a| a["kind"] == "actionDeactivated"));
        let (_, shown) = app.get_json(&format!("/api/v1/triggers/{}", id(&trigger))).await;
        assert_eq!(shown["actions"][0]["active"], false, "{shown:#}");

        // While down, matching events are recorded as skipped, not sent.
        app.post_event(event("OrderChanged", shop, 3, json!({}))).await;
        let skipped = app.wait_for_queue_count("status=skipped", 1).await;
        assert_eq!(skipped[0]["entityId"], "3");
        assert_eq!(receiver.count(), 2);

        // Acknowledging closes the alert; reactivating with requeue sends what failed or was
        // skipped while the action was down (the receiver has recovered).
        let (status, _) = app.post_json(&format!("/api/v1/alerts/{}/ack", failed["id"]), json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let (_, open) = app.get_json("/api/v1/alerts?acknowledged=false").await;
        assert_eq!(open["items"].as_array().unwrap().len(), 1);
        let (status, answer) = app
            .request(reqwest::Method::PUT, &format!("/api/v1/triggers/{}/actions/0/activate?requeueFailed=true", id(&trigger)), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["requeued"], 1, "the skipped call (the failures came before the deactivation)");
        receiver.wait_for_requests(3, WAIT).await;
        app.post_event(event("OrderChanged", shop, 4, json!({}))).await;
        receiver.wait_for_requests(4, WAIT).await;
    }

    async fn a_deactivated_trigger_fires_no_calls_until_activated(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        let trigger = app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/h"))).await;
        let path = format!("/api/v1/triggers/{}", id(&trigger));
        let (status, off) = app.request(reqwest::Method::PUT, &format!("{path}/deactivate"), None).await;
        assert_eq!((status, off["enabled"].clone()), (StatusCode::OK, json!(false)));
        assert_eq!(app.post_event(event("OrderChanged", shop, 1, json!({}))).await["callsQueued"], 0);
        let (status, on) = app.request(reqwest::Method::PUT, &format!("{path}/activate"), None).await;
        assert_eq!((status, on["enabled"].clone()), (StatusCode::OK, json!(true)));
        assert_eq!(app.post_event(event("OrderChanged", shop, 2, json!({}))).await["callsQueued"], 1);
        receiver.wait_for_requests(1, WAIT).await;
        let (status, _) = app.request(reqwest::Method::PUT, "/api/v1/triggers/999/activate", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

both_backends! {
    async fn a_deactivation_is_announced_to_the_operator(backend: Backend) {
        let operator = Receiver::start().await;
        let app = spawn_app_with(backend, &["--max-retries", "0", "--notify-webhook-url", &operator.url("/notices")]).await;
        let receiver = Receiver::always(Reply::status(500)).await;
        let shop = app.create_shop("Main").await;
        let trigger = app
            .create_trigger(trigger_with("OrderChanged", action(&receiver.url("/h"), json!({
                "retryPolicy": {"deactivateAfterFailures": 1}
            }))))
            .await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;
        let notices = operator.wait_for_requests(2, WAIT).await;
        let kinds: Vec<Value> = notices.iter().map(|n| n.json()["kind"].clone()).collect();
        assert!(kinds.contains(&json!("callFailed")) && kinds.contains(&json!("actionDeactivated")), "{kinds:?}");
        let deactivated = notices.iter().map(|n| n.json()).find(|n| n["kind"] == "actionDeactivated").unwrap();
        assert_eq!(deactivated["triggerId"], trigger["id"]);
        assert_eq!(deactivated["actionIndex"], 0);
        assert_eq!(deactivated["lastStatusCode"], 500);
    }
}
