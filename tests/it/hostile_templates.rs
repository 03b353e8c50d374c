//! Hostile templates against a running server: the known template bombs through previews (any
//! role may preview) and through saved triggers, one that only explodes on real data, and the
//! server's peak memory across all of them.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

/// How far above its resting peak the server's memory may go while it refuses every bomb: the
/// render budget is 64 MiB of values, and a string may hold up to twice its length while it
/// grows.
const MEMORY_BOUND_MIB: u64 = 256;

/// Each bomb, a phrase of its error, and the line it is stopped at.
fn bombs() -> Vec<(String, &'static str, usize)> {
    let doubling = format!(
        "{{% set s = \"0123456789abcdef\" %}}\n{}{{{{ s | length }}}}",
        "{% set s = s ~ s %}\n".repeat(28)
    );
    vec![
        (doubling, "joining two strings", 23),
        ("{{ (\"x\" * 100000000) | length }}".into(), "repeating a string", 1),
        ("{{ \"x\" * 10000000000 }}".into(), "repeating a string", 1),
        (
            "{% set ns = namespace(l=[1]) %}\n{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}".into(),
            "adding two lists",
            2,
        ),
        (
            "{% set ns = namespace(s=\"ab\") %}\n{% for i in range(40) %}{% set t %}{{ ns.s }}{{ ns.s }}{% endset %}{% set ns.s = t %}{% endfor %}{{ ns.s | length }}".into(),
            "more than 64 MiB",
            2,
        ),
        (
            "{% set s = \"x\" * 5000000 %}\n{{ [s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s] | tojson | length }}".into(),
            "tojson",
            2,
        ),
        (
            "{% set s = \"x\" * 1000000 %}\n{{ ([s] * 100) | join(\",\") | length }}".into(),
            "join",
            2,
        ),
        (
            "{{ (\"x\" * 100000) | replace(\"\", \"y\" * 1000) | length }}".into(),
            "replace",
            1,
        ),
        (
            "{% set ns = namespace(x=[]) %}\n{% for i in range(99999) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x | length }}".into(),
            "more than 100 deep",
            2,
        ),
        (
            "{{ \"%100000000s\" | format(\"x\") | length }}".into(),
            "format",
            1,
        ),
    ]
}

/// The peak resident memory of a process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc is readable");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

fn preview(body: &str) -> Value {
    json!({"eventType": "OrderChanged", "mimeType": "text/plain", "body": body})
}

fn templated(url: &str, body: &str) -> Value {
    webhook_trigger("OrderChanged", url).with(json!({"actions": [{
        "type": "callWebhook", "url": url,
        "payload": {"mimeType": "text/plain", "body": body}
    }]}))
}

both_backends! {
    async fn template_bombs_are_refused_with_their_line_and_memory_stays_bounded(backend: Backend) {
        let app = spawn_binary(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        // A first preview and trigger so the resting peak includes what every request needs.
        let answer = app.post_json("/api/v1/payloads/preview", preview("{{ entity.OrderCode }}")).await;
        assert_eq!(answer.0, StatusCode::OK, "{answer:?}");
        let resting = peak_rss_kib(app.pid());

        // The lowest role may preview: the bombs come from a viewer.
        let (_, viewer) = app.user_with_token("viewer@example.com", "viewer", &[]).await;
        for (i, (bomb, phrase, line)) in bombs().into_iter().enumerate() {
            // Through a preview (10 fit in one caller's burst) ...
            let started = Instant::now();
            let answer = app
                .request_as(
                    Some(&viewer),
                    reqwest::Method::POST,
                    "/api/v1/payloads/preview",
                    Some(RequestBody::Json(preview(&bomb))),
                )
                .await;
            let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
            assert!(message.starts_with(&format!("body: line {line}")), "bomb {i}: {message}");
            assert!(message.contains(phrase), "bomb {i}: {message}");
            assert!(started.elapsed() < Duration::from_secs(10), "bomb {i} took {:?}", started.elapsed());
            // ... and saved as a trigger: refused, nothing stored.
            let answer = app.post_json("/api/v1/triggers", templated(&receiver.url("/bomb"), &bomb)).await;
            let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
            assert!(message.starts_with("actions[0].payload.body:"), "bomb {i}: {message}");
            assert!(message.contains(&format!("line {line}")) && message.contains(phrase), "bomb {i}: {message}");
        }
        let (status, triggers) = app.get_json("/api/v1/triggers").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(triggers["items"].as_array().map(Vec::len), Some(0), "{triggers}");

        // A template that is harmless on the sample and explodes on real data: saved, then its
        // call fails at delivery with the budget's message, and the next event still flows.
        let data_bomb = "{% set ns = namespace(s=\"0123456789abcdef\") %}\n{% for c in entity.OrderCode %}\n{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}";
        app.create_trigger(templated(&receiver.url("/data-bomb"), data_bomb)).await;
        app.post_event(event("OrderChanged", shop, 1, json!({"OrderId": 1, "OrderCode": "x".repeat(40)}))).await;
        app.post_event(event("OrderChanged", shop, 2, json!({"OrderId": 2, "OrderCode": "short"}))).await;
        let failed = app.wait_for_queue_count("status=failed", 1).await;
        let error = failed[0]["lastError"].as_str().unwrap_or_default();
        assert!(error.contains("line 3") && error.contains("more than 64 MiB"), "{error}");
        let requests = receiver.wait_for_requests(1, WAIT).await;
        assert_eq!(requests[0].text().trim(), (16 * 32).to_string());

        let peak = peak_rss_kib(app.pid());
        assert!(
            peak.saturating_sub(resting) < MEMORY_BOUND_MIB * 1024,
            "peak memory grew from {resting} KiB to {peak} KiB"
        );
        let answer = app.get_json("/healthz").await;
        assert_eq!(answer.0, StatusCode::OK);
    }

    async fn previews_are_rate_limited_per_caller(backend: Backend) {
        let app = spawn_app(backend).await;
        for _ in 0..10 {
            let answer = app.post_json("/api/v1/payloads/preview", preview("{{ entity.OrderCode }}")).await;
            assert_eq!(answer.0, StatusCode::OK, "{answer:?}");
        }
        let answer = reqwest::Client::new()
            .post(app.url("/api/v1/payloads/preview"))
            .bearer_auth(TEST_ADMIN_TOKEN)
            .json(&preview("x"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = answer.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry), "Retry-After {retry}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        // Another caller (a viewer: previews are open to every role) is not held back.
        let (_, token) = app.user_with_token("viewer@example.com", "viewer", &[]).await;
        let answer = app
            .request_as(
                Some(&token),
                reqwest::Method::POST,
                "/api/v1/payloads/preview",
                Some(RequestBody::Json(preview("{{ entity.OrderCode }}"))),
            )
            .await;
        assert_eq!(answer.0, StatusCode::OK, "{answer:?}");
    }
}
