//! Webhooks out: payload templates, GET calls, retries and their limits, timeouts, priority
//! and the SSRF guard.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

/// A trigger with one POST action whose JSON payload is `body`.
fn templated(event_type: &str, url: &str, body: &str) -> Value {
    webhook_trigger(event_type, url).with(json!({"actions": [{
        "type": "callWebhook",
        "url": url,
        "method": "POST",
        "payload": {"mimeType": "application/json", "body": body}
    }]}))
}

both_backends! {
    async fn a_templated_payload_keeps_tricky_strings_exact(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Shop \"Zürich\" \\ 1").await;
        app.create_trigger(templated(
            "OrderChanged",
            &receiver.url("/orders"),
            r#"{"order": {{ entity.OrderCode }}, "note": {{ entity.Note }}, "total": {{ entity.Total }},
 "shop": {{ shop.name }}, "shopId": {{ shop.id }}, "event": {{ event.id }}, "type": {{ event.type }},
 "entity": {{ entityId }}, "lines": {{ entity.Lines }}, "missing": {{ entity.Nope is defined }}}"#,
        ))
        .await;
        let tricky = "say \"hi\" \\ back\\slash\nnew line\ttab ünïcødé ☃ 😀 </script> {{ not a tag }}";
        let answer = app
            .post_event(event(
                "OrderChanged",
                shop,
                "A-7",
                json!({
                    "OrderCode": "O-\"7\"",
                    "Note": tricky,
                    "Total": 12.5,
                    "Lines": [{"Sku": "S\"1", "Qty": 2}]
                }),
            ))
            .await;
        assert_eq!(answer["callsQueued"], 1);

        let request = receiver.wait_for_requests(1, WAIT).await.remove(0);
        assert_eq!(request.header("content-type"), Some("application/json; charset=utf-8"));
        assert_eq!(
            request.json(),
            json!({
                "order": "O-\"7\"",
                "note": tricky,
                "total": 12.5,
                "shop": "Shop \"Zürich\" \\ 1",
                "shopId": shop,
                "event": answer["eventId"],
                "type": "OrderChanged",
                "entity": "A-7",
                "lines": [{"Sku": "S\"1", "Qty": 2}],
                "missing": false
            })
        );
    }

    async fn xml_and_text_payloads_get_their_own_escaping(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        let action = |path: &str, mime: &str, body: &str| {
            json!({"type": "callWebhook", "url": receiver.url(path),
                   "payload": {"mimeType": mime, "body": body}})
        };
        app.create_trigger(webhook_trigger("OrderChanged", "http://unused/").with(json!({"actions": [
            action("/xml", "application/xml", r#"<order code="{{ entity.OrderCode }}">{{ entity.Note }}</order>"#),
            action("/text", "text/plain", "Order {{ entity.OrderCode }}: {{ entity.Note }}"),
        ]})))
        .await;
        app.post_event(event(
            "OrderChanged",
            shop,
            1,
            json!({"OrderCode": "A\"&<B>", "Note": "x < y & z"}),
        ))
        .await;

        let requests = receiver.wait_for_requests(2, WAIT).await;
        let xml = requests.iter().find(|r| r.path == "/xml").unwrap();
        assert_eq!(xml.header("content-type"), Some("application/xml; charset=utf-8"));
        let body = xml.text();
        assert!(body.starts_with("<order code=\"A&quot;&amp;&lt;B&gt;\">"), "{body}");
        assert!(body.contains(">x &lt; y &amp; z</order>"), "{body}");
        let text = requests.iter().find(|r| r.path == "/text").unwrap();
        assert_eq!(text.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(text.text(), "Order A\"&<B>: x < y & z");
    }

    async fn get_webhooks_carry_the_entity_id_in_the_url_and_no_body(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        let get = |url: String| json!({"type": "callWebhook", "method": "GET", "url": url});
        app.create_trigger(webhook_trigger("OrderChanged", "http://unused/").with(json!({"actions": [
            get(receiver.url("/orders?expand=lines")),
            get(receiver.url("/items/")),
            get(receiver.url("/o/{{ entityId }}/detail")),
        ]})))
        .await;

        let answer = app.post_event(event("OrderChanged", shop, 5, json!({"OrderId": 5}))).await;
        assert_eq!(answer["callsQueued"], 3);

        let requests = receiver.wait_for_requests(3, WAIT).await;
        let paths: HashSet<&str> = requests.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            HashSet::from(["/orders/5?expand=lines", "/items/5", "/o/5/detail"])
        );
        for request in &requests {
            assert_eq!(request.method, "GET");
            assert!(request.body.is_empty(), "GET with a body: {request:?}");
            assert_eq!(request.header("content-type"), None);
            assert!(request.webhook_id().starts_with("msg_"));
        }
        for item in app.queue_items("").await {
            assert_eq!(item["method"], "GET");
            assert_eq!(item["body"], Value::Null);
        }

        // An entity id is one path segment, whatever it holds.
        app.post_event(event("OrderChanged", shop, "A 1/b?c", json!({}))).await;
        let requests = receiver.wait_for_requests(6, WAIT).await;
        let paths: HashSet<&str> = requests[3..].iter().map(|r| r.path.as_str()).collect();
        assert_eq!(
            paths,
            HashSet::from([
                "/orders/A%201%2Fb%3Fc?expand=lines",
                "/items/A%201%2Fb%3Fc",
                "/o/A%201%2Fb%3Fc/detail"
            ])
        );
    }

    async fn a_5xx_is_retried_with_the_same_webhook_id(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::with_script(vec![Reply::status(500).body("oops")]).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;

        let item = app.only_item("").await;
        let item = app.wait_for_queue_status(id(&item), "succeeded").await;
        assert_eq!(item["attempts"], 2);
        assert_eq!(item["lastStatusCode"], 200);
        let log = item["attemptLog"].as_array().unwrap();
        assert_eq!(log.len(), 2, "{item:#}");
        assert_eq!(log[0]["statusCode"], 500);
        assert_eq!(log[0]["responseBody"], "oops");
        assert_eq!(log[1]["statusCode"], 200);

        let requests = receiver.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].webhook_id(), item["webhookId"].as_str().unwrap());
        assert_eq!(requests[1].webhook_id(), requests[0].webhook_id());
        assert_eq!(requests[1].body, requests[0].body);
        // --retry-base-ms 100 with ±25 % jitter: the retry waits at least 75 ms.
        let gap = requests[1].at - requests[0].at;
        assert!(gap >= Duration::from_millis(70), "retried after {gap:?}");
    }

    async fn a_404_is_not_retried(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::always(Reply::status(404)).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/gone"))).await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;

        let item = app.only_item("").await;
        let item = app.wait_for_queue_status(id(&item), "failed").await;
        assert_eq!(item["attempts"], 1);
        assert_eq!(item["lastStatusCode"], 404);
        assert_eq!(item["attemptLog"].as_array().unwrap().len(), 1);
        assert_eq!(receiver.count(), 1);
    }

    async fn a_408_and_a_429_are_retried(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::with_script(vec![Reply::status(408), Reply::status(429)]).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;

        let item = app.only_item("").await;
        let item = app.wait_for_queue_status(id(&item), "succeeded").await;
        assert_eq!(item["attempts"], 3);
        let codes: Vec<&Value> = item["attemptLog"].as_array().unwrap().iter().map(|a| &a["statusCode"]).collect();
        assert_eq!(codes, [&json!(408), &json!(429), &json!(200)]);
        assert_eq!(receiver.count(), 3);
    }

    async fn a_connection_error_is_retried(backend: Backend) {
        let app = spawn_app_with(backend, &["--max-retries", "1"]).await;
        // A port nobody listens on.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &format!("http://127.0.0.1:{closed}/hook")))
            .await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;

        let item = app.only_item("").await;
        let item = app.wait_for_queue_status(id(&item), "failed").await;
        assert_eq!(item["attempts"], 2, "{item:#}");
        assert_eq!(item["lastStatusCode"], Value::Null);
        for attempt in item["attemptLog"].as_array().unwrap() {
            let error = attempt["error"].as_str().unwrap_or_default().to_lowercase();
            assert!(error.contains("connect"), "{attempt:#}");
        }
    }

    async fn retries_follow_the_exponential_backoff_schedule(backend: Backend) {
        // Nominal delays 200, 400, 800 (capped), 800 ms, each ±25 % but never above the cap.
        // Delays this long keep the schedule's shape (doubling, then the cap) well apart from
        // what a loaded machine adds to each retry (recording, claiming, sending).
        let app = spawn_app_with(
            backend,
            &["--max-retries", "4", "--retry-base-ms", "200", "--retry-max-ms", "800"],
        )
        .await;
        let receiver = Receiver::always(Reply::status(503)).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;

        let item = app.only_item("").await;
        app.wait_for_queue_status(id(&item), "failed").await;
        let requests = receiver.requests();
        assert_eq!(requests.len(), 5);
        // A retry is never early; it may be late by what a busy machine adds.
        let slack = Duration::from_millis(300);
        let mut report = Vec::new();
        let mut ok = true;
        for (retry, nominal_ms) in [200u64, 400, 800, 800].into_iter().enumerate() {
            let gap = requests[retry + 1].at - requests[retry].at;
            let nominal = Duration::from_millis(nominal_ms);
            let low = nominal.mul_f64(0.75) - Duration::from_millis(5);
            let high = nominal.mul_f64(1.25).min(Duration::from_millis(800)) + slack;
            ok &= gap >= low && gap <= high;
            report.push(format!("retry {}: {gap:?} (expected {low:?}..={high:?})", retry + 1));
        }
        assert!(ok, "retries off schedule:\n{}", report.join("\n"));
    }

    async fn calls_that_fail_together_are_each_retried_on_schedule(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::with_script(vec![Reply::status(503); 3]).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        let batch: Vec<Value> = (1..=3).map(|n| event("OrderChanged", shop, n, json!({}))).collect();
        let (status, answer) = app.post_events(Value::Array(batch)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");

        let requests = receiver.wait_for_requests(6, WAIT).await;
        // Each call's retry is due 75–125 ms after its own failure, whatever the others do.
        let high = Duration::from_millis(125 + 150);
        let mut report = Vec::new();
        let mut ok = true;
        for id in requests.iter().map(|r| r.webhook_id()).collect::<HashSet<_>>() {
            let mine: Vec<&Recorded> = requests.iter().filter(|r| r.webhook_id() == id).collect();
            assert_eq!(mine.len(), 2, "{id} was sent {} times", mine.len());
            let gap = mine[1].at - mine[0].at;
            ok &= gap >= Duration::from_millis(70) && gap <= high;
            report.push(format!("{id}: retried after {gap:?}"));
        }
        assert!(ok, "retries off schedule (expected 70 ms..={high:?}):\n{}", report.join("\n"));
    }

    async fn a_payload_that_renders_invalid_json_is_failed_instead_of_sent(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        // Valid JSON for the sample entity; `safe` lets a quote in a real value break it.
        app.create_trigger(templated(
            "OrderChanged",
            &receiver.url("/hook"),
            r#"{"order": "{{ entity.OrderCode | safe }}"}"#,
        ))
        .await;
        let answer = app
            .post_event(event("OrderChanged", shop, 1, json!({"OrderCode": "O\"1"})))
            .await;
        assert_eq!(answer["callsQueued"], 1);

        let item = app.only_item("").await;
        assert_eq!(item["status"], "failed", "{item:#}");
        assert_eq!(item["attempts"], 0);
        let error = item["lastError"].as_str().unwrap_or_default();
        assert!(error.contains("payload could not be rendered"), "{item:#}");

        // A well-behaved value still goes out, so the dispatcher has looked at the queue.
        app.post_event(event("OrderChanged", shop, 2, json!({"OrderCode": "O-2"}))).await;
        let requests = receiver.wait_for_requests(1, WAIT).await;
        assert_eq!(requests[0].json(), json!({"order": "O-2"}));
        let newest = app.queue_items("limit=1").await.remove(0);
        app.wait_for_queue_status(id(&newest), "succeeded").await;
        assert_eq!(receiver.count(), 1, "the broken payload was never sent");
    }

    async fn a_timeout_is_retried(backend: Backend) {
        let app = spawn_app_with(backend, &["--delivery-timeout-ms", "500"]).await;
        let receiver = Receiver::with_script(vec![Reply::delay(Duration::from_millis(1500))]).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/slow"))).await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;

        let item = app.only_item("").await;
        let item = app.wait_for_queue_status(id(&item), "succeeded").await;
        assert_eq!(item["attempts"], 2);
        let first = &item["attemptLog"][0];
        assert_eq!(first["statusCode"], Value::Null);
        let error = first["error"].as_str().unwrap_or_default().to_lowercase();
        assert!(error.contains("timed out") || error.contains("timeout"), "{first:#}");
        let took = first["durationMs"].as_i64().unwrap();
        assert!((400..1500).contains(&took), "the attempt took {took} ms: {first:#}");
        assert_eq!(item["attemptLog"][1]["statusCode"], 200);
        let requests = receiver.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].webhook_id(), requests[1].webhook_id());
    }

    async fn a_call_fails_when_its_retries_run_out(backend: Backend) {
        let app = spawn_app_with(backend, &["--max-retries", "2"]).await;
        let receiver = Receiver::always(Reply::status(500)).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/down"))).await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;

        let item = app.only_item("").await;
        assert_eq!(item["maxAttempts"], 3);
        let item = app.wait_for_queue_status(id(&item), "failed").await;
        assert_eq!(item["attempts"], 3);
        assert_eq!(item["lastStatusCode"], 500);
        assert!(item["lastError"].as_str().unwrap_or_default().contains("500"), "{item:#}");
        let log = item["attemptLog"].as_array().unwrap();
        assert_eq!(log.iter().map(|a| a["attempt"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(log.iter().all(|a| a["statusCode"] == 500));
        let requests = receiver.requests();
        assert_eq!(requests.len(), 3);
        assert!(requests.iter().all(|r| r.webhook_id() == item["webhookId"]));
    }

    async fn loopback_targets_are_refused_unless_allowed(backend: Backend) {
        let receiver = Receiver::start().await;
        let port = receiver.port();
        // A trigger saved while loopback was allowed...
        let db = TestDb::new(backend).await;
        let app = TestApp::start_with(&db, &[]).await;
        let shop = app.create_shop("Main").await;
        let by_ip = app
            .create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook")))
            .await;
        app.stop().await;
        // ...and hookflow restarted without the allowance.
        let app = TestApp::start_with(&db, &["--allow-private-targets", ""]).await;

        // Literal loopback addresses, however spelled, are refused when saved.
        for url in [
            receiver.url("/hook"),
            format!("http://[::1]:{port}/hook"),
            format!("http://2130706433:{port}/hook"),
        ] {
            let answer = app.post_json("/api/v1/triggers", webhook_trigger("OrderChanged", &url)).await;
            let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
            assert!(message.starts_with("actions[0].url"), "{url}: {message}");
            assert!(message.contains("loopback"), "{url}: {message}");
            assert!(message.contains("--allow-private-targets"), "{url}: {message}");
        }
        // A name is checked on the addresses it resolves to, when the call is sent.
        let by_name = app
            .create_trigger(webhook_trigger("OrderChanged", &format!("http://localhost:{port}/hook")))
            .await;

        let answer = app.post_event(event("OrderChanged", shop, 1, json!({}))).await;
        assert_eq!(answer["callsQueued"], 2);
        for trigger in [by_ip, by_name] {
            let item = app.only_item(&format!("triggerId={}", id(&trigger))).await;
            let item = app.wait_for_queue_status(id(&item), "failed").await;
            assert_eq!(item["attempts"], 1, "a refused target is not retried: {item:#}");
            let error = item["lastError"].as_str().unwrap_or_default();
            assert!(error.contains("loopback"), "{item:#}");
            assert!(error.contains("--allow-private-targets"), "{item:#}");
        }
        assert_eq!(receiver.count(), 0, "the receiver must not be reached");
    }

    async fn ipv6_forms_of_loopback_are_refused_when_sent_naming_the_range(backend: Backend) {
        let receiver = Receiver::start().await;
        let port = receiver.port();
        // Saved while 127.0.0.0/8 was allowed, which opens its IPv6 forms too...
        let db = TestDb::new(backend).await;
        let app = TestApp::start_with(&db, &[]).await;
        let shop = app.create_shop("Main").await;
        let forms = [
            ("64:ff9b::7f00:1", "64:ff9b::/96"),
            ("::ffff:127.0.0.1", "::ffff:0:0/96"),
            ("2002:7f00:1::1", "2002::/16"),
            ("::127.0.0.1", "::/96 IPv4-compatible"),
        ];
        let mut triggers = Vec::new();
        for (addr, range) in forms {
            let url = format!("http://[{addr}]:{port}/hook");
            triggers.push((app.create_trigger(webhook_trigger("OrderChanged", &url)).await, range));
        }
        app.stop().await;
        // ...and sent after a restart without the allowance: refused before connecting.
        let app = TestApp::start_with(&db, &["--allow-private-targets", ""]).await;
        let answer = app.post_event(event("OrderChanged", shop, 1, json!({}))).await;
        assert_eq!(answer["callsQueued"], forms.len());
        for (trigger, range) in triggers {
            let item = app.only_item(&format!("triggerId={}", id(&trigger))).await;
            let item = app.wait_for_queue_status(id(&item), "failed").await;
            assert_eq!(item["attempts"], 1, "a refused target is not retried: {item:#}");
            let error = item["lastError"].as_str().unwrap_or_default();
            assert!(error.contains(range), "{range}: {item:#}");
            assert!(error.contains("--allow-private-targets"), "{item:#}");
            if range != "::/96 IPv4-compatible" {
                assert!(error.contains("127.0.0.0/8 loopback"), "{item:#}");
            }
        }
        assert_eq!(receiver.count(), 0, "the receiver must not be reached");
        // The same addresses are refused when a trigger is saved.
        let url = format!("http://[64:ff9b::7f00:1]:{port}/hook");
        let answer = app.post_json("/api/v1/triggers", webhook_trigger("OrderChanged", &url)).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.contains("127.0.0.0/8 loopback"), "{message}");
    }

    async fn a_localhost_url_is_reached_when_loopback_is_allowed(backend: Backend) {
        // The default test flags allow 127.0.0.0/8 (not ::1): localhost must still work.
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger(
            "OrderChanged",
            &format!("http://localhost:{}/hook", receiver.port()),
        ))
        .await;
        app.post_event(event("OrderChanged", shop, 1, json!({}))).await;
        let item = app.only_item("").await;
        let item = app.wait_for_queue_status(id(&item), "succeeded").await;
        assert_eq!(item["attempts"], 1, "{item:#}");
        assert_eq!(receiver.count(), 1);
    }

    async fn higher_priority_calls_are_delivered_first(backend: Backend) {
        // One delivery slot, held busy by a call the receiver answers only when told to:
        // everything queued meanwhile waits, and then goes out by priority.
        let app = spawn_app_with(backend, &["--concurrency", "1"]).await;
        let gate = Gate::new();
        let blocker_receiver = Receiver::always(Reply::held(&gate)).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        let blocker = app
            .create_trigger(webhook_trigger("ProductChanged", &blocker_receiver.url("/block")))
            .await;
        app.create_trigger(
            webhook_trigger("OrderCreated", &receiver.url("/low")).with(json!({"priority": 1})),
        )
        .await;
        app.create_trigger(
            webhook_trigger("OrderChanged", &receiver.url("/high")).with(json!({"priority": 9})),
        )
        .await;
        app.create_trigger(
            webhook_trigger("OrderChanged", &receiver.url("/middle")).with(json!({"priority": 5})),
        )
        .await;

        app.post_event(event("ProductChanged", shop, 1, json!({}))).await;
        blocker_receiver.wait_for_requests(1, WAIT).await;
        // Oldest first would be /low, /high, /middle.
        app.post_event(event("OrderCreated", shop, 2, json!({}))).await;
        app.post_event(event("OrderChanged", shop, 3, json!({}))).await;

        let blocked = app.only_item(&format!("triggerId={}", id(&blocker))).await;
        assert_eq!(blocked["status"], "in_flight");
        // While it is on the wire it can be neither retried nor resent.
        let answer = app.post_json(&format!("/api/v1/queue/{}/retry", id(&blocked)), json!({})).await;
        assert_error(&answer, StatusCode::CONFLICT, "conflict");

        gate.open();
        let requests = receiver.wait_for_requests(3, WAIT).await;
        let order: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(order, ["/high", "/middle", "/low"]);
        app.wait_for_queue_status(id(&blocked), "succeeded").await;
    }
}

both_backends! {
    async fn each_attempt_records_the_request_headers_the_receiver_got_without_credentials(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main shop").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/erp")).with(json!({
            "actions": [{"type": "callWebhook", "url": receiver.url("/erp"),
                         "basicAuth": {"username": "erp", "password": "s3cret-pw"},
                         "hmacSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]
        })))
        .await;
        app.post_event(event("OrderChanged", shop, 42, json!({"OrderId": 42}))).await;
        let call = app.wait_for_queue_count("status=succeeded", 1).await;
        let got = receiver.requests().pop().unwrap();
        let item = app.queue_item(id(&call[0])).await;
        let logged: Vec<(String, String)> =
            serde_json::from_value(item["attemptLog"][0]["requestHeaders"].clone()).unwrap();
        // Every header the receiver got, in the log with the same value; the credential's
        // value is never stored.
        assert_eq!(logged.len(), got.headers.len(), "{logged:?} vs {:?}", got.headers);
        for (name, value) in &got.headers {
            let entry = logged.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
            if name == "authorization" {
                assert_eq!(entry, Some("Basic ••••••"));
            } else {
                assert_eq!(entry, Some(value.as_str()), "header {name}");
            }
        }
        assert!(!item.to_string().contains("s3cret"), "{item}");
    }
}
