//! Page timings on a large queue: 100 000 calls spread over the last day (most finished,
//! some failed or pending), every page requested a few times, and the server's own time
//! (`Server-Timing`) reported. The queries behind the pages are index-backed, so a page must
//! not slow down with the queue's size.
//!
//! Also: sign-in over plain HTTP, as a script would drive the forms, and its rate limiting.

use std::time::Instant;

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::json;

use super::add_user;
use crate::common::{event, spawn_app, Backend, TestApp};

/// Calls in the queue while pages are timed.
const CALLS: i64 = 100_000;
/// Rows per INSERT statement.
const CHUNK: i64 = 1_000;
/// Requests per page; the median is reported.
const RUNS: usize = 5;
/// The target for release builds; test builds are unoptimised, so they get more room
/// (still far below what a scan of the whole queue would take).
const BUDGET_MS: f64 = if cfg!(debug_assertions) { 250.0 } else { 100.0 };

/// The value of `name` from a response's `Set-Cookie` headers.
fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, v)| k.trim() == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// Posts the login form as a browser would (its CSRF cookie and field); returns the answer.
pub(crate) async fn post_login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    let http = super::page_client();
    let form = http.get(app.url("/login")).send().await.unwrap();
    let login_cookie = cookie(&form, "hookflow_login_csrf");
    let html = form.text().await.unwrap();
    let token = html
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the login form has a _csrf field")
        .to_owned();
    let mut request = http.post(app.url("/login")).form(&[
        ("_csrf", token.as_str()),
        ("email", email),
        ("password", password),
        ("next", "/"),
    ]);
    if let Some(c) = login_cookie {
        request = request.header(COOKIE, format!("hookflow_login_csrf={c}"));
    }
    request.send().await.unwrap()
}

/// Signs in over HTTP; returns the `Cookie` header of the session.
pub(crate) async fn http_session(app: &TestApp, email: &str, password: &str) -> String {
    let answer = post_login(app, email, password).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER, "signing in {email}");
    let session = cookie(&answer, "hookflow_session").expect("a session cookie");
    format!("hookflow_session={session}")
}

/// Fills the queue with `CALLS` calls of trigger 1 and event 1 in one transaction.
async fn fill_queue(app: &TestApp, shops: [i64; 2]) {
    let db = Database::connect(app.db().url.as_str())
        .await
        .expect("opening the test database");
    let backend = db.get_database_backend();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    db.execute_unprepared("BEGIN").await.unwrap();
    for start in (0..CALLS).step_by(CHUNK as usize) {
        let mut rows = Vec::with_capacity(CHUNK as usize);
        for i in start..start + CHUNK {
            let (status, attempts, code, next) = match i % 20 {
                0..=13 => ("succeeded", 1, "200", now),
                14..=17 => ("failed", 11, "500", now),
                18 => ("pending", 1, "503", now + 86_400_000),
                _ => ("cancelled", 0, "NULL", now),
            };
            let created = now - 86_400_000 + i * 86_400_000 / CALLS;
            let shop = shops[(i % 2) as usize];
            rows.push(format!(
                "('msg_{i:032x}', 1, 1, 0, {shop}, 'OrderChanged', 'E{i}', 'POST', \
                 'http://127.0.0.1:9/erp/orders/{i}', '[[\"content-type\",\"application/json\"]]', \
                 '{{\"order\": \"E{i}\"}}', 5, '{status}', {attempts}, 11, {next}, NULL, {code}, \
                 NULL, 0, '127.0.0.1:9', {ordered}, {created}, {created})",
                ordered = if backend == sea_orm::DbBackend::Postgres {
                    "true"
                } else {
                    "1"
                },
            ));
        }
        let sql = format!(
            "INSERT INTO queue_items (webhook_id, event_id, trigger_id, action_index, shop_id, \
             event_type, entity_id, method, url, headers, body, priority, status, attempts, \
             max_attempts, next_attempt_at, lease_until, last_status_code, last_error, coalesced, \
             target_host, ordered, created_at, updated_at) VALUES {}",
            rows.join(", ")
        );
        db.execute(Statement::from_string(backend, sql))
            .await
            .expect("inserting calls");
    }
    // One attempt per finished call, as the dashboard's chart reads them.
    db.execute_unprepared(
        "INSERT INTO attempts (queue_item_id, attempt, started_at, duration_ms, status_code, \
         response_headers, response_body, error) SELECT id, 1, created_at + 50, 50, \
         last_status_code, '[]', '', NULL FROM queue_items WHERE status IN ('succeeded', 'failed')",
    )
    .await
    .expect("inserting attempts");
    db.execute_unprepared("COMMIT").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_answers_quickly_with_100_000_calls_in_the_queue() {
    let app = spawn_app(Backend::Sqlite).await;
    let shops = [
        app.create_shop("Main shop").await,
        app.create_shop("Second shop").await,
    ];
    app.create_trigger(json!({
        "name": "Orders to ERP", "eventType": "OrderChanged", "shopId": shops[0],
        "actions": [{"type": "callWebhook", "url": "http://127.0.0.1:9/erp/orders"}]
    }))
    .await;
    // Event 1 (no trigger of the second shop matches, and the first's call is one more).
    app.post_event(event("OrderChanged", shops[1], 1, json!({"OrderId": 1})))
        .await;
    let filled = Instant::now();
    fill_queue(&app, shops).await;
    println!("filled {CALLS} calls in {:?}", filled.elapsed());

    let admin = add_user(&app, "admin@example.com", "admin", &[]).await;
    let owner = add_user(&app, "owner@example.com", "shop_owner_admin", &[shops[0]]).await;
    let sessions = [
        (
            "admin",
            http_session(&app, "admin@example.com", &admin).await,
        ),
        (
            "shop owner",
            http_session(&app, "owner@example.com", &owner).await,
        ),
    ];
    let pages = [
        "/",
        "/triggers",
        "/triggers/1",
        "/triggers/new",
        "/queue",
        "/queue?status=failed",
        "/queue?status=pending",
        "/queue?trigger=1",
        "/queue?event_type=OrderChanged",
        "/queue?shop=1",
        "/queue?before=50000",
        "/queue?from={hour_ago}",
        // A range around the whole queue, alone and with the other filters.
        "/queue?from={day_ago}&to={soon}",
        "/queue?status=failed&from={day_ago}&to={soon}",
        "/queue?status=pending&from={day_ago}&to={soon}",
        "/queue?shop=1&from={day_ago}&to={soon}",
        "/queue?before=50000&from={day_ago}&to={soon}",
        // The older half of the queue, and its oldest hour.
        "/queue?from={day_ago}&to={half_day_ago}",
        "/queue?from={day_ago}&to={day_ago_plus_hour}",
        "/queue?status=failed&from={day_ago}&to={day_ago_plus_hour}",
        "/queue?q=E99999",
        "/queue/50000",
        "/alerts",
        "/users",
        "/shops",
        "/tokens",
    ];
    // `datetime-local` values, as the page's filter form sends them.
    let local = |t: time::OffsetDateTime| {
        format!(
            "{:04}-{:02}-{:02}T{:02}%3A{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        )
    };
    let now = time::OffsetDateTime::now_utc();
    // The last hour of calls (about 4 000 of them).
    let hour_ago = local(now - time::Duration::hours(1));
    let day_ago = local(now - time::Duration::hours(25));
    let half_day_ago = local(now - time::Duration::hours(12));
    let day_ago_plus_hour = local(now - time::Duration::hours(23));
    let soon = local(now + time::Duration::hours(1));
    let http = super::page_client();
    let mut report = Vec::new();
    let mut slow = Vec::new();
    for (who, session) in &sessions {
        for page in pages {
            let page = page
                .replace("{hour_ago}", &hour_ago)
                .replace("{day_ago}", &day_ago)
                .replace("{half_day_ago}", &half_day_ago)
                .replace("{day_ago_plus_hour}", &day_ago_plus_hour)
                .replace("{soon}", &soon);
            let page = page.as_str();
            if *who == "shop owner" && matches!(page, "/users" | "/shops") {
                continue;
            }
            let mut server = Vec::with_capacity(RUNS);
            let mut wall = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                let started = Instant::now();
                let answer = http
                    .get(app.url(page))
                    .header(COOKIE, session)
                    .send()
                    .await
                    .unwrap();
                let status = answer.status();
                let timing = answer
                    .headers()
                    .get("server-timing")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("app;dur="))
                    .and_then(|v| v.parse::<f64>().ok())
                    .expect("pages carry Server-Timing");
                let _ = answer.bytes().await;
                wall.push(started.elapsed());
                assert!(
                    status == StatusCode::OK || (*who == "shop owner" && page == "/queue/50000"),
                    "{who} {page}: {status}"
                );
                server.push(timing);
            }
            server.sort_by(f64::total_cmp);
            wall.sort();
            let median = server[RUNS / 2];
            report.push(format!(
                "{who:>10} {page:<58} server {median:>7.1} ms (max {:>7.1})  wall {:>7.1} ms",
                server[RUNS - 1],
                wall[RUNS / 2].as_secs_f64() * 1000.0
            ));
            if median > BUDGET_MS {
                slow.push(format!("{who} {page}: {median:.1} ms"));
            }
        }
    }
    println!(
        "page timings with {CALLS} calls ({} build):\n{}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        report.join("\n")
    );
    assert!(
        slow.is_empty(),
        "pages slower than {BUDGET_MS} ms (median server time): {slow:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_passwords_are_rate_limited_with_a_clear_message() {
    let app = spawn_app(Backend::Sqlite).await;
    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    let first = post_login(&app, "admin@example.com", "wrong").await;
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first
        .text()
        .await
        .unwrap()
        .contains("Wrong email or password"));
    let mut limited = None;
    for _ in 0..50 {
        let answer = post_login(&app, "admin@example.com", "wrong").await;
        if answer.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(answer);
            break;
        }
        assert_eq!(answer.status(), StatusCode::OK);
    }
    let limited = limited.expect("50 wrong passwords in a row are rate limited");
    assert!(limited.headers().contains_key("retry-after"));
    let page = limited.text().await.unwrap();
    assert!(page.contains("Too many sign-in attempts"), "{page}");
    // Even the right password waits until the limit passes.
    let answer = post_login(&app, "admin@example.com", &password).await;
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
}
