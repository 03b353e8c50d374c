//! The fault suite of the queue core: the real binary killed with calls on the wire, two nodes
//! on one PostgreSQL database used at once, a receiver down while a backlog builds up, and
//! unique items against a failing receiver. Each test breaks hookflow the way production will
//! and asserts what an operator relies on: nothing acknowledged is lost, duplicates only for
//! calls that were on the wire at a kill (and then with the same `webhook-id`), and backlogs
//! drain at the pace of their slots. (Poison input and a database going away: `faults_ingest`.)

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

/// How long a drained queue may take to deliver everything in these tests.
const DRAIN: Duration = Duration::from_secs(90);

fn unique_trigger(event_type: &str, url: &str) -> Value {
    json!({
        "name": format!("{event_type} unique"),
        "eventType": event_type,
        "actions": [{"type": "callWebhook", "url": url, "uniqueQueueItems": true}],
    })
}

/// Posts events for fresh entities to whichever node `target` names, until `stop`; records
/// the event ids answered 202 (acknowledged) in `acked`.
async fn post_until(
    target: Arc<Mutex<String>>,
    shop: i64,
    next: Arc<AtomicI64>,
    acked: Arc<Mutex<HashSet<i64>>>,
    stop: Arc<AtomicBool>,
    pause: Duration,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    while !stop.load(Ordering::Relaxed) {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let url = target.lock().unwrap().clone();
        let answer = client
            .post(url)
            .bearer_auth(TEST_ADMIN_TOKEN)
            .json(&event(
                "OrderChanged",
                shop,
                format!("order-{n}"),
                json!({"OrderId": n}),
            ))
            .send()
            .await;
        if let Ok(response) = answer {
            if response.status() == StatusCode::ACCEPTED {
                let body: Value = response.json().await.unwrap_or_default();
                if let Some(id) = body["eventId"].as_i64() {
                    acked.lock().unwrap().insert(id);
                }
            }
        }
        tokio::time::sleep(pause).await;
    }
}

/// Waits until no call is pending or on the wire.
async fn wait_until_settled(app: &TestApp, deadline: Duration) {
    wait_until(deadline, "no call is left unfinished", async || {
        app.unfinished_calls().await == 0
    })
    .await;
}

/// Every acknowledged event reached the receiver; a call reached it more than once only when
/// its attempt log says an attempt was interrupted (it was on the wire at a kill), and every
/// repeat carried the same `webhook-id` and event.
async fn assert_nothing_lost_and_repeats_explained(
    app: &TestApp,
    receiver: &Receiver,
    acked: &HashSet<i64>,
) {
    wait_until(DRAIN, "every acknowledged event is delivered", async || {
        let got: HashSet<i64> = receiver
            .requests()
            .iter()
            .filter_map(|r| r.json()["eventId"].as_i64())
            .collect();
        acked.is_subset(&got)
    })
    .await;
    // And the queue settles: calls a dead process had on the wire are sent again (after their
    // lease on PostgreSQL) before repeats are counted.
    wait_until_settled(app, DRAIN).await;
    let mut by_webhook: HashMap<String, Vec<i64>> = HashMap::new();
    for r in receiver.requests() {
        by_webhook
            .entry(r.webhook_id().to_owned())
            .or_default()
            .push(r.json()["eventId"].as_i64().unwrap());
    }
    let mut events_per_call: HashMap<i64, usize> = HashMap::new();
    for (webhook_id, events) in &by_webhook {
        assert!(
            events.iter().all(|e| *e == events[0]),
            "{webhook_id} carried different events: {events:?}"
        );
        *events_per_call.entry(events[0]).or_default() += 1;
        if events.len() > 1 {
            // The call behind this webhook-id: its entity is `order-<OrderId>`.
            let entity = receiver
                .requests()
                .iter()
                .find(|r| r.webhook_id() == webhook_id)
                .map(|r| r.json()["entityData"]["OrderId"].as_i64().unwrap())
                .unwrap();
            let items = app.queue_items(&format!("q=order-{entity}")).await;
            let item = items
                .iter()
                .find(|i| i["webhookId"] == webhook_id.as_str())
                .unwrap_or_else(|| panic!("no queue item for {webhook_id}: {items:#?}"));
            let item = app.queue_item(id(item)).await;
            let interrupted = item["attemptLog"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| {
                    a["error"]
                        .as_str()
                        .is_some_and(|e| e.starts_with("interrupted"))
                })
                .count();
            assert!(
                interrupted >= events.len() - 1,
                "{webhook_id} reached the receiver {} times but only {interrupted} attempts were \
                 interrupted: {item:#}",
                events.len()
            );
        }
    }
    // One call per event: a repeat is always the same call, never a second one.
    assert!(
        events_per_call.values().all(|n| *n == 1),
        "an event made more than one call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_on_the_wire_at_a_kill_9_are_sent_again_with_their_webhook_id() {
    // SQLite: the restarted process recovers what the dead one had on the wire, at once.
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::spawn_binary_with(&db, &[]).await;
    let gate = Gate::new();
    let receiver = Receiver::always(Reply::held(&gate)).await;
    let shop = app.create_shop("Main").await;
    app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook")))
        .await;
    for n in 1..=5 {
        app.post_event(event("OrderChanged", shop, n, json!({"OrderId": n})))
            .await;
    }
    let first = receiver.wait_for_requests(5, WAIT).await;
    app.kill9().await;
    gate.open();

    let app = TestApp::spawn_binary_with(&db, &[]).await;
    let all = receiver.wait_for_requests(10, WAIT).await;
    let first_ids: HashSet<&str> = first.iter().map(|r| r.webhook_id()).collect();
    let again_ids: HashSet<&str> = all[5..].iter().map(|r| r.webhook_id()).collect();
    assert_eq!(first_ids.len(), 5);
    assert_eq!(first_ids, again_ids, "sent again under the same webhook-id");
    assert!(
        app.log_contains("calls left in flight by the previous run are queued again"),
        "{}",
        app.log()
    );
    for item in app.queue_items("").await {
        let item = app.wait_for_queue_status(id(&item), "succeeded").await;
        assert_eq!(
            item["attempts"], 2,
            "the interrupted attempt counts: {item:#}"
        );
        let log = item["attemptLog"].as_array().unwrap();
        assert_eq!(log.len(), 2, "{item:#}");
        assert!(
            log[0]["error"].as_str().unwrap().starts_with("interrupted"),
            "{item:#}"
        );
        assert!(log[0]["statusCode"].is_null(), "{item:#}");
        assert_eq!(log[1]["statusCode"], 200, "{item:#}");
    }
    assert_eq!(receiver.count(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_every_2_s_during_a_burst_to_a_slow_receiver_loses_nothing() {
    const ROUNDS: usize = 8;
    let db = TestDb::new(Backend::Sqlite).await;
    let receiver = Receiver::always(Reply::delay(Duration::from_millis(200))).await;
    let mut app = TestApp::spawn_binary_with(&db, &[]).await;
    let shop = app.create_shop("Main").await;
    app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/slow")))
        .await;
    let target = Arc::new(Mutex::new(app.url("/api/v1/events")));
    let next = Arc::new(AtomicI64::new(1));
    let acked = Arc::new(Mutex::new(HashSet::new()));
    for _ in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn(post_until(
                    target.clone(),
                    shop,
                    next.clone(),
                    acked.clone(),
                    stop.clone(),
                    Duration::from_millis(100),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(2)).await;
        // Killed while clients post and calls are on the wire to the slow receiver.
        app.kill9().await;
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.await.unwrap();
        }
        app = TestApp::spawn_binary_with(&db, &[]).await;
        *target.lock().unwrap() = app.url("/api/v1/events");
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > ROUNDS * 10,
        "only {} events were acknowledged",
        acked.len()
    );
    assert_nothing_lost_and_repeats_explained(&app, &receiver, &acked).await;
}

both_backends! {
    async fn a_backlog_drains_at_the_pace_of_its_slots_not_of_the_poll(backend: Backend) {
        // 8 slots per endpoint (fewer than the default, so the poll bound below is long), the
        // default 500 ms poll. The receiver holds the first 8 calls (it is "down"), 600 more
        // queue up behind them; then it comes back.
        const BACKLOG: usize = 600;
        let db = TestDb::new(backend).await;
        // A long delivery timeout: the held calls must not time out (and be sent again) while
        // the backlog is posted on a loaded machine.
        let app = TestApp::start_with(&db, &["--per-endpoint-concurrency", "8", "--delivery-timeout-ms", "60000"]).await;
        let gate = Gate::new();
        let receiver = Receiver::scripted((0..8).map(|_| Reply::held(&gate)).collect(), Reply::status(200)).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        for n in 0..8 {
            app.post_event(event("OrderChanged", shop, n, json!({}))).await;
        }
        receiver.wait_for_requests(8, WAIT).await;
        for batch in 0..(BACKLOG / 100) {
            let events: Vec<Value> = (0..100)
                .map(|i| event("OrderChanged", shop, 1000 + batch * 100 + i, json!({})))
                .collect();
            let (status, body) = app.post_events(Value::Array(events)).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(receiver.count(), 8, "every slot is held: the backlog waits");

        let back = Instant::now();
        gate.open();
        receiver.wait_for_requests(8 + BACKLOG, Duration::from_secs(60)).await;
        let took = back.elapsed();
        // Claiming only on the poll would take BACKLOG / 8 polls of 500 ms (37.5 s); freed
        // slots claim at once, so even a debug build is far faster. Half of it is the bound.
        let poll_bound = Duration::from_millis(500) * (BACKLOG / 8) as u32;
        assert!(took < poll_bound / 2, "{BACKLOG} calls drained in {took:?}: paced by the poll ({poll_bound:?})");
        wait_until_settled(&app, WAIT).await;
        assert_eq!(receiver.count(), 8 + BACKLOG, "each call sent once");
    }

    async fn unique_items_against_a_failing_receiver_keep_one_pending_call_and_send_the_newest(backend: Backend) {
        let db = TestDb::new(backend).await;
        let app = TestApp::start_with(&db, &[]).await;
        let receiver = Receiver::always(Reply::status(503)).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(unique_trigger("ProductChanged", &receiver.url("/p"))).await;
        for v in 1..=30 {
            app.post_event(event("ProductChanged", shop, 7, json!({"ProductCode": format!("v{v}")}))).await;
            let pending = app.queue_items("status=pending").await;
            assert!(pending.len() <= 1, "after event {v}: {} pending calls for one entity: {pending:#?}", pending.len());
            if v % 10 == 0 {
                // Let attempts fail and retries come due between events.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        assert!(receiver.count() > 1, "the receiver was tried while events came");
        receiver.set_default(Reply::status(200));
        // Delivered means answered 200: the receiver has seen v30 already, answering 503.
        wait_until(DRAIN, "the newest payload is delivered", async || {
            let sent = app.queue_items("status=succeeded").await;
            sent.iter().any(|i| i["body"].as_str().is_some_and(|b| b.contains("\"v30\"")))
        })
        .await;
        wait_until_settled(&app, WAIT).await;
        let last = receiver.requests().pop().unwrap();
        assert_eq!(last.json()["entityData"]["ProductCode"], "v30", "the newest payload is the last one sent");
        // Every other call was superseded and names its successor, or was sent before v30.
        let items = app.queue_items("limit=100").await;
        assert_eq!(items.len(), 30, "one call per event, in the event log too");
        let superseded: Vec<&Value> = items.iter().filter(|i| i["status"] == "superseded").collect();
        assert!(!superseded.is_empty());
        for item in &superseded {
            let by = item["supersededBy"].as_i64().unwrap_or_else(|| panic!("{item:#}"));
            assert!(by > id(item), "{item:#}");
        }
        let succeeded: Vec<&Value> = items.iter().filter(|i| i["status"] == "succeeded").collect();
        assert!(succeeded.iter().any(|i| i["body"].as_str().unwrap().contains("\"v30\"")), "{items:#?}");
        assert_eq!(superseded.len() + succeeded.len(), 30, "{items:#?}");
    }
}

postgres_only! {
    async fn a_trigger_saved_on_one_node_is_matched_at_once_on_the_other(backend: Backend) {
        let db = TestDb::new(backend).await;
        let a = TestApp::start_with(&db, &[]).await;
        let b = TestApp::start_with(&db, &[]).await;
        let receiver = Receiver::start().await;
        let shop = a.create_shop("Main").await;
        for round in 0..5 {
            // Saved on A; an event posted to B right after matches it.
            let trigger = a.create_trigger(webhook_trigger("OrderChanged", &receiver.url(&format!("/r{round}")))).await;
            let answer = b.post_event(event("OrderChanged", shop, round, json!({}))).await;
            assert_eq!(answer["callsQueued"], 1, "round {round}: B ignored the trigger saved on A: {answer}");

            // An action deactivated on A: B records the next call as skipped, sends nothing.
            let path = format!("/api/v1/triggers/{}/actions/0/deactivate", id(&trigger));
            let (status, body) = a.put_json(&path, json!({})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let answer = b.post_event(event("OrderChanged", shop, 100 + round, json!({}))).await;
            let items = b.queue_items(&format!("triggerId={}", id(&trigger))).await;
            let call = items.iter().find(|i| i["eventId"] == answer["eventId"]).unwrap_or_else(|| panic!("{items:#?}"));
            assert_eq!(call["status"], "skipped", "round {round}: B still sends for an action deactivated on A: {call:#}");

            // Deleted on A: B queues nothing for it.
            let (status, body) = a.delete(&format!("/api/v1/triggers/{}", id(&trigger))).await;
            assert!(status.is_success(), "{body}");
            let answer = b.post_event(event("OrderChanged", shop, 200 + round, json!({}))).await;
            assert_eq!(answer["callsQueued"], 0, "round {round}: B matched a trigger deleted on A: {answer}");
        }
        // Only the calls made while each trigger was active reached the receiver.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let paths: Vec<String> = receiver.requests().iter().map(|r| r.path.clone()).collect();
        assert_eq!(paths.len(), 5, "{paths:?}");
    }

    async fn one_of_two_nodes_killed_mid_burst_loses_nothing(backend: Backend) {
        let db = TestDb::new(backend).await;
        let receiver = Receiver::always(Reply::delay(Duration::from_millis(50))).await;
        // Both nodes are processes, as in production: the test measures their throughput.
        let a = TestApp::spawn_binary_with(&db, &[]).await;
        let b = TestApp::spawn_binary_with(&db, &[]).await;
        let shop = a.create_shop("Main").await;
        a.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        let next = Arc::new(AtomicI64::new(1));
        let acked = Arc::new(Mutex::new(HashSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let to_a = Arc::new(Mutex::new(a.url("/api/v1/events")));
        let to_b = Arc::new(Mutex::new(b.url("/api/v1/events")));
        let clients: Vec<_> = [to_a.clone(), to_b.clone(), to_a, to_b.clone()]
            .into_iter()
            .map(|target| {
                tokio::spawn(post_until(target, shop, next.clone(), acked.clone(), stop.clone(), Duration::from_millis(20)))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let killed_at = next.load(Ordering::Relaxed);
        b.kill9().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let b = TestApp::spawn_binary_with(&db, &[]).await;
        *to_b.lock().unwrap() = b.url("/api/v1/events");
        let restarted_at = next.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.await.unwrap();
        }
        let acked = acked.lock().unwrap().clone();
        // Traffic went on around the kill: events were acknowledged before it and after the
        // restart (how many depends on the machine's load, not on hookflow).
        let before = acked.iter().filter(|n| **n < killed_at).count();
        let after = acked.iter().filter(|n| **n >= restarted_at).count();
        assert!(before >= 10 && after >= 10, "acknowledged {before} events before the kill and {after} after the restart");
        // Calls the killed node had on the wire come back when their lease ends (30 s).
        assert_nothing_lost_and_repeats_explained(&a, &receiver, &acked).await;
    }
}
