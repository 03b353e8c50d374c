//! Observability: `GET /metrics` after real deliveries (checked by `promtool`, counters moved by
//! the right amounts), a metrics listener of its own, structured JSON logs, and no secret in
//! the log.

use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

/// Checks the exposition with Prometheus's own linter. A missing `promtool` fails the test:
/// CI installs it, and a skipped check would look like a passing one.
fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "promtool is needed to check the metrics ({e}); install it with \
             `apt-get install -y prometheus` (Debian/Ubuntu), as .ci/run does"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics refused the exposition:\n{}{}\n---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn scrape(base: &str) -> String {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scraping /metrics");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

/// The value of the sample `series` (name with its labels, as written), if exposed.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| {
            v.split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap_or_else(|e| panic!("{series}: {v:?}: {e}"))
        })
}

#[track_caller]
fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("{series} is not exposed:\n{text}"))
}

/// The sum of every sample of `name` (`name{...}` or `name `) whose line contains all of
/// `labels` (`status="pending"`).
fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

both_backends! {
    async fn metrics_count_deliveries_that_succeed_retry_and_fail(backend: Backend) {
        // The counters are the process's: in a process of its own they count this test only.
        let app = spawn_binary(backend).await;
        let ok = Receiver::start().await;
        let flaky = Receiver::with_script(vec![Reply::status(503)]).await;
        let gone = Receiver::always(Reply::status(404)).await;
        let gate = Gate::new();
        let held = Receiver::always(Reply::held(&gate)).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &ok.url("/ok"))).await;
        app.create_trigger(json!({
            "name": "three receivers", "eventType": "OrderCreated",
            "actions": [
                {"type": "callWebhook", "url": flaky.url("/flaky")},
                {"type": "callWebhook", "url": gone.url("/gone")},
                {"type": "callWebhook", "url": held.url("/held")},
            ],
        }))
        .await;

        // Before any traffic every family is there, at zero.
        let before = scrape(&app.url("")).await;
        promtool_check(&before);
        assert_eq!(value(&before, "hookflow_calls_queued_total"), 0.0);
        assert_eq!(sum(&before, "hookflow_delivery_attempts_total", &[]), 0.0);

        app.post_event(event("OrderChanged", shop, 1, json!({"OrderId": 1}))).await;
        app.post_event(event("OrderChanged", shop, 2, json!({"OrderId": 2}))).await;
        app.post_event(event("OrderCreated", shop, 3, json!({"OrderId": 3}))).await;
        // A repeated idempotency key is not a new event.
        let keyed = event("OrderChanged", shop, 4, json!({})).with(json!({"idempotencyKey": "k-1"}));
        app.post_event(keyed.clone()).await;
        app.post_event(keyed).await;

        // The held call is on the wire: the queue shows it in flight.
        let during = wait_for(WAIT, "the held call to show in flight", async || {
            let text = scrape(&app.url("")).await;
            (sum(&text, "hookflow_queue_depth", &["status=\"in_flight\""]) == 1.0).then_some(text)
        })
        .await;
        promtool_check(&during);
        gate.open();
        app.wait_for_queue_count("status=succeeded", 5).await;
        app.wait_for_queue_count("status=failed", 1).await;

        let text = scrape(&app.url("")).await;
        promtool_check(&text);
        assert_eq!(value(&text, "hookflow_events_ingested_total{event_type=\"OrderChanged\"}"), 3.0);
        assert_eq!(value(&text, "hookflow_events_ingested_total{event_type=\"OrderCreated\"}"), 1.0);
        assert_eq!(value(&text, "hookflow_calls_queued_total"), 6.0);
        assert_eq!(value(&text, "hookflow_calls_coalesced_total"), 0.0, "no unique items here");
        let attempts = |outcome: &str, class: &str| {
            value(&text, &format!("hookflow_delivery_attempts_total{{outcome=\"{outcome}\",status_class=\"{class}\"}}"))
        };
        assert_eq!(attempts("succeeded", "2xx"), 5.0, "ok ×3, flaky's second attempt, held");
        assert_eq!(attempts("retry", "5xx"), 1.0, "flaky's first attempt");
        assert_eq!(attempts("failed", "4xx"), 1.0, "gone");
        assert_eq!(sum(&text, "hookflow_delivery_attempts_total", &[]), 7.0, "nothing else counted");
        assert_eq!(attempts("failed", "none"), 0.0);
        assert_eq!(value(&text, "hookflow_delivery_attempt_duration_seconds_count"), 7.0);
        assert_eq!(value(&text, "hookflow_delivery_latency_seconds_count"), 5.0);
        assert!(value(&text, "hookflow_delivery_latency_seconds_sum") > 0.0);
        assert_eq!(sum(&text, "hookflow_queue_depth", &[]), 0.0, "the queue is empty again");
        assert_eq!(value(&text, "hookflow_queue_oldest_due_age_seconds"), 0.0);
        assert_eq!(value(&text, "hookflow_open_alerts"), 1.0, "gone's failure raised an alert");
        assert_eq!(value(&text, "hookflow_deactivated_actions"), 0.0);
        assert!(value(&text, "process_resident_memory_bytes") > 1e6);
        assert!(value(&text, "process_open_fds") > 0.0);
        assert!(value(&text, "process_cpu_seconds_total") > 0.0);
        // Bounded labels only: no URL, host or entity id in any series.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(!line.contains("127.0.0.1") && !line.contains("/ok"), "{line}");
        }
    }

    async fn logs_are_json_lines_with_request_and_attempt_events_and_no_secrets(backend: Backend) {
        let db = TestDb::new(backend).await;
        // trace: the most the log can say, so "never logged" holds at every level.
        let token = "admin-t0ken-never-logged";
        let app = TestApp::spawn_binary_with(&db, &[
            "--log", "trace", "--log-format", "json", "--admin-token", token,
        ])
        .await;
        let receiver = Receiver::with_script(vec![Reply::status(503)]).await;
        let shop = app.create_shop("Main").await;
        let password = "pa55-w0rd-never-logged";
        let secret = "whsec_bG9nLXRlc3Qtc2VjcmV0LWJ5dGVzLW5ldmVyLWxvZ2dlZA==";
        let client = rcgen::generate_simple_self_signed(vec!["erp-client".to_owned()]).unwrap();
        let key_pem = client.key_pair.serialize_pem();
        let trigger = app
            .create_trigger(json!({
                "name": "secured", "eventType": "OrderChanged",
                "actions": [{
                    "type": "callWebhook", "url": receiver.url("/hook"),
                    "basicAuth": {"username": "erp", "password": password},
                    "hmacSecret": secret,
                    "clientCertificate": {"certPem": client.cert.pem(), "keyPem": key_pem},
                }],
            }))
            .await;
        app.post_event(event("OrderChanged", shop, 42, json!({"OrderId": 42}))).await;
        let item = app.only_item("").await;
        app.wait_for_queue_status(id(&item), "succeeded").await;
        receiver.wait_for_requests(2, WAIT).await;

        let log = app.log();
        let lines: Vec<Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        assert!(!lines.is_empty(), "no JSON log lines:\n{log}");

        // Every request: one event, with its route (not its URL) and status, in a span.
        let request = lines
            .iter()
            .find(|l| l["fields"]["message"] == "request" && l["span"]["route"] == "/api/v1/queue/{id}")
            .unwrap_or_else(|| panic!("no request event for the queue item route:\n{log}"));
        assert_eq!(request["span"]["method"], "GET");
        assert_eq!(request["fields"]["status"], 200);
        assert!(request["fields"]["duration_ms"].is_number(), "{request}");
        assert!(!log.contains(&format!("/api/v1/queue/{}", id(&item))), "request logs show routes, not URLs");

        // Every attempt: one event in the call's deliver span, with trigger and attempt number.
        let attempts: Vec<&Value> = lines
            .iter()
            .filter(|l| l["span"]["name"] == "deliver" && l["fields"]["attempt"].is_number())
            .collect();
        assert_eq!(attempts.len(), 2, "one event per attempt:\n{log}");
        for (n, event) in attempts.iter().enumerate() {
            assert_eq!(event["fields"]["attempt"], n as i64 + 1, "{event}");
            assert_eq!(event["fields"]["trigger_id"], id(&trigger), "{event}");
            assert_eq!(event["span"]["call_id"], id(&item).to_string(), "{event}");
            assert!(event["span"]["webhook_id"].as_str().is_some_and(|w| w.starts_with("msg_")), "{event}");
        }
        assert_eq!(attempts[0]["fields"]["status"], 503);
        assert_eq!(attempts[1]["fields"]["status"], 200);

        // No secret, in any form it travels in, reaches the log.
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("erp:{password}"));
        let key_body = key_pem.lines().nth(1).expect("a PEM has a body").to_owned();
        let mut needles = vec![
            token.to_owned(),
            password.to_owned(),
            secret.to_owned(),
            secret.trim_start_matches("whsec_").to_owned(),
            basic,
            key_body,
            "PRIVATE KEY".to_owned(),
        ];
        if backend == Backend::Postgres {
            needles.push("dGVzdCBrZXkgZm9yIGhvb2tmbG93IGUyZSB0ZXN0cyE".to_owned());
        }
        for needle in needles {
            assert!(!log.contains(&needle), "{needle} is in the log:\n{log}");
        }
    }
}

/// With `--metrics-listen`, `/metrics` moves to its own listener: the API port no longer
/// shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_have_a_listener_of_their_own() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::start_with(&db, &["--metrics-listen", &listen]).await;
    let text = scrape(&format!("http://{listen}")).await;
    promtool_check(&text);
    assert!(text.contains("hookflow_delivery_attempts_total"), "{text}");
    let (status, _) = app.get_json("/metrics").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

both_backends! {
    /// With `--log-format json` every line on stderr is a JSON object, from start to the
    /// shutdown after SIGTERM, with deliveries (a retry among them) on the way.
    async fn every_stderr_line_is_a_json_object_until_the_process_exits(backend: Backend) {
        let db = TestDb::new(backend).await;
        let mut app = TestApp::spawn_binary_with(&db, &["--log", "debug", "--log-format", "json"]).await;
        let receiver = Receiver::with_script(vec![Reply::status(503)]).await;
        let shop = app.create_shop("Main").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook"))).await;
        app.post_event(event("OrderChanged", shop, 1, json!({"OrderId": 1}))).await;
        let item = app.only_item("").await;
        app.wait_for_queue_status(id(&item), "succeeded").await;
        let (status, _) = app.get_json("/api/v1/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        app.terminate();
        assert!(app.wait_exit(WAIT).await.success());
        wait_until(WAIT, "the log has the shutdown", async || app.log_contains("shutting down")).await;
        let log = app.log();
        let mut levels = std::collections::BTreeSet::new();
        for line in log.lines() {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n{log}"));
            assert!(value.is_object(), "{line}");
            assert!(value["timestamp"].is_string() && value["level"].is_string(), "{line}");
            levels.insert(value["level"].as_str().unwrap().to_owned());
        }
        assert!(levels.contains("DEBUG") && levels.contains("INFO"), "{levels:?}");
        assert!(log.lines().any(|l| l.contains("shutting down")), "{log}");
    }
}

/// Pretty logs written to a file (not a terminal) carry no ANSI colour codes, even without
/// `NO_COLOR`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pretty_logs_to_a_file_have_no_colour_codes() {
    use tokio::io::AsyncBufReadExt;

    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookflow"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HOOKFLOW_") {
            command.env_remove(key);
        }
    }
    let mut child = command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            TEST_ADMIN_TOKEN,
        ])
        .arg("--database-url")
        .arg(format!(
            "sqlite://{}/hookflow.db?mode=rwc",
            dir.path().display()
        ))
        .args(["--log", "debug", "--log-format", "pretty"])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("starting hookflow");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = wait_for(WAIT, "the listening line", async || {
        let line = lines.next_line().await.ok()??;
        line.strip_prefix("hookflow listening on ")
            .map(str::to_owned)
    })
    .await;
    let answer = reqwest::get(format!("{addr}/healthz")).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.lines().count() > 3, "{log}");
    assert!(!log.contains("\x1b["), "ANSI codes in a log file:\n{log:?}");
}

/// A start that fails (its port taken) says why in one JSON object, like every other line.
#[test]
fn a_failed_start_is_a_json_error_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookflow"))
        .args([
            "serve",
            "--log-format",
            "json",
            "--admin-token",
            TEST_ADMIN_TOKEN,
        ])
        .arg("--listen")
        .arg(taken.local_addr().unwrap().to_string())
        .arg("--database-url")
        .arg(format!(
            "sqlite://{}/hookflow.db?mode=rwc",
            dir.path().display()
        ))
        .env_remove("HOOKFLOW_LOG")
        .env_remove("HOOKFLOW_DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let error = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no error event:\n{stderr}"));
    assert!(
        error["fields"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("binding")),
        "{error}"
    );
}
