//! What survives a crash or a stop: pending calls, scheduled retries, calls on the wire at a
//! SIGTERM, and two nodes sharing one PostgreSQL database.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

both_backends! {
    async fn pending_calls_are_delivered_after_a_kill_9(backend: Backend) {
        // One delivery slot, held by a call whose receiver never answers: the events posted
        // behind it are committed and pending, never attempted, when the process is killed.
        let db = TestDb::new(backend).await;
        let app = TestApp::spawn_binary_with(
            &db,
            &["--concurrency", "1", "--delivery-timeout-ms", "60000"],
        )
        .await;
        let gate = Gate::new();
        let stuck = Receiver::always(Reply::held(&gate)).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("ProductChanged", &stuck.url("/stuck"))).await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        app.post_event(event("ProductChanged", shop, 1, json!({}))).await;
        stuck.wait_for_requests(1, WAIT).await;

        let mut event_ids = HashSet::new();
        for n in 1..=5 {
            let answer = app.post_event(event("OrderChanged", shop, n, json!({"OrderId": n}))).await;
            assert_eq!(answer["callsQueued"], 1);
            event_ids.insert(answer["eventId"].as_i64().unwrap());
        }
        let pending = app.queue_items("eventType=OrderChanged&status=pending").await;
        assert_eq!(pending.len(), 5, "{pending:#?}");
        app.kill9().await;
        assert_eq!(receiver.count(), 0);

        let app = TestApp::start_with(&db, &[]).await;
        let requests = receiver.wait_for_requests(5, WAIT).await;
        let delivered: HashSet<i64> =
            requests.iter().map(|r| r.json()["eventId"].as_i64().unwrap()).collect();
        assert_eq!(delivered, event_ids);
        for item in pending {
            let item = app.wait_for_queue_status(id(&item), "succeeded").await;
            assert_eq!(item["attempts"], 1);
        }
        assert_eq!(receiver.count(), 5);
    }

    async fn a_scheduled_retry_is_sent_after_a_kill_9(backend: Backend) {
        let db = TestDb::new(backend).await;
        // The retry is due 1.5–2.5 s after the failure: well after the kill.
        let app = TestApp::spawn_binary_with(&db, &["--retry-base-ms", "2000"]).await;
        let receiver = Receiver::with_script(vec![Reply::status(503)]).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;
        let item = app.only_item("").await;
        app.wait_for_item(id(&item), "the first attempt is recorded", |item| {
            item["status"] == "pending" && item["attempts"] == 1
        })
        .await;
        app.kill9().await;

        let app = TestApp::start_with(&db, &[]).await;
        let item = app.wait_for_queue_status(id(&item), "succeeded").await;
        assert_eq!(item["attempts"], 2);
        let log = item["attemptLog"].as_array().unwrap();
        assert_eq!(log[0]["statusCode"], 503);
        assert_eq!(log[1]["statusCode"], 200);
        let requests = receiver.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].webhook_id(), requests[1].webhook_id());
    }

    async fn sigterm_lets_an_in_flight_call_finish(backend: Backend) {
        let db = TestDb::new(backend).await;
        let mut app = TestApp::spawn_binary_with(&db, &["--delivery-timeout-ms", "10000"]).await;
        let gate = Gate::new();
        let receiver = Receiver::always(Reply::held(&gate)).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/slow"))).await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;
        receiver.wait_for_requests(1, WAIT).await;
        let item = app.only_item("").await;

        app.terminate();
        // The API has stopped and the dispatcher is draining: only now does the receiver answer.
        wait_until(WAIT, "hookflow starts draining", async || {
            app.log_contains("draining in-flight calls")
        })
        .await;
        gate.open();
        let status = app.wait_exit(WAIT).await;
        assert!(status.success(), "hookflow exited with {status}; log:\n{}", app.log());
        drop(app);

        let app = TestApp::start_with(&db, &[]).await;
        let item = app.queue_item(id(&item)).await;
        assert_eq!(item["status"], "succeeded", "{item:#}");
        assert_eq!(item["attempts"], 1);
        assert_eq!(item["attemptLog"][0]["statusCode"], 200);
        assert_eq!(receiver.count(), 1);
    }
}

postgres_only! {
    async fn two_nodes_on_one_database_deliver_every_call_exactly_once(backend: Backend) {
        const EVENTS: i64 = 300;
        let db = TestDb::new(backend).await;
        let receiver = Receiver::start().await;
        let a = TestApp::start_with(&db, &[]).await;
        let shop = a.create_shop("Main").await;
        a.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        // Started after the trigger exists: a node reloads other nodes' trigger edits only
        // every few seconds.
        let b = TestApp::start_with(&db, &[]).await;

        let nodes = [&a, &b];
        let answers: Vec<(StatusCode, Value)> = futures::stream::iter(1..=EVENTS)
            .map(|n| {
                let node = nodes[(n % 2) as usize];
                async move { node.post_events(event("OrderChanged", shop, n, json!({"OrderId": n}))).await }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        for (status, body) in &answers {
            assert_eq!(*status, StatusCode::ACCEPTED, "{body}");
            assert_eq!(body["callsQueued"], 1, "{body}");
        }

        receiver.wait_for_requests(EVENTS as usize, Duration::from_secs(60)).await;
        let succeeded = a.wait_for_queue_count("status=succeeded&limit=500", EVENTS as usize).await;
        let requests = receiver.requests();
        let webhook_ids: HashSet<&str> = requests.iter().map(|r| r.webhook_id()).collect();
        assert_eq!(
            requests.len(),
            EVENTS as usize,
            "{} requests for {} distinct calls",
            requests.len(),
            webhook_ids.len()
        );
        let expected: HashSet<&str> =
            succeeded.iter().map(|i| i["webhookId"].as_str().unwrap()).collect();
        assert_eq!(webhook_ids, expected);
        let orders: HashSet<i64> = requests
            .iter()
            .map(|r| r.json()["entityData"]["OrderId"].as_i64().unwrap())
            .collect();
        assert_eq!(orders.len(), EVENTS as usize);
        assert!(succeeded.iter().all(|i| i["attempts"] == 1), "no call needed a second attempt");
    }

    async fn a_key_posted_to_two_nodes_at_once_is_one_event(backend: Backend) {
        const KEYS: i64 = 20;
        let db = TestDb::new(backend).await;
        let receiver = Receiver::start().await;
        let a = TestApp::start_with(&db, &[]).await;
        let shop = a.create_shop("Main").await;
        a.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        let b = TestApp::start_with(&db, &[]).await;

        let mut problems = Vec::new();
        for n in 1..=KEYS {
            let keyed = event("OrderChanged", shop, n, json!({"OrderId": n}))
                .with(json!({"idempotencyKey": format!("order-{n}")}));
            let (from_a, from_b) = tokio::join!(a.post_events(keyed.clone()), b.post_events(keyed));
            let fine = from_a.0 == StatusCode::ACCEPTED
                && from_b.0 == StatusCode::ACCEPTED
                && from_a.1["eventId"] == from_b.1["eventId"]
                && from_a.1["callsQueued"] == 1
                && from_b.1["callsQueued"] == 1
                && [&from_a.1, &from_b.1].iter().filter(|r| r["duplicate"] == false).count() == 1;
            if !fine {
                problems.push(format!("key order-{n}: A {from_a:?}, B {from_b:?}"));
            }
        }
        assert!(
            problems.is_empty(),
            "{} of {KEYS} keys posted to both nodes at once were not answered as one event:\n{}",
            problems.len(),
            problems.join("\n")
        );
        receiver.wait_for_requests(KEYS as usize, WAIT).await;
        a.wait_for_queue_count("status=succeeded&limit=500", KEYS as usize).await;
        assert_eq!(receiver.count(), KEYS as usize);
    }
}
