//! The hardening headers on every page: each route of the web UI (as the router lists them),
//! signed in and signed out, its static files, `/docs`, error pages and the API's JSON carry the
//! exact Content-Security-Policy and its companions; no page has inline script or style; and in
//! Chromium the policy refuses an injected inline script, `eval`, an inline event handler and
//! a `style` attribute, each reported where the browser tests look for violations.

use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::driver::Browser;
use super::{add_user, http_session};
use crate::common::{event, id, spawn_app, wait_until, Backend, Receiver, TestApp, WAIT};

/// The headers every answer must carry, spelt out here rather than taken from the code, so
/// that a weakened policy fails this test.
const HARDENING: [(&str, &str); 6] = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; \
         base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    ),
];

/// A GET (or `method`) of `path`, with the session cookie when there is one.
async fn fetch(app: &TestApp, method: Method, path: &str, session: Option<&str>) -> Answer {
    let mut request = super::page_client().request(method.clone(), app.url(path));
    if let Some(cookie) = session {
        request = request.header(COOKIE, cookie);
    }
    let answer = request.send().await.unwrap();
    let what = format!("{method} {path} ({})", answer.status());
    for (name, value) in HARDENING {
        let got = answer.headers().get(name).map(|v| v.to_str().unwrap());
        assert_eq!(got, Some(value), "{what}: {name}");
    }
    let html = answer
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"));
    let status = answer.status();
    let body = answer.text().await.unwrap();
    if html {
        assert_no_inline_code(&what, &body);
    }
    Answer { status, html, body }
}

struct Answer {
    status: StatusCode,
    html: bool,
    body: String,
}

/// Fails when a page has what the policy would refuse: a `<script>` without `src` (other than
/// a JSON data block), a `<style>` block, a `style=""` attribute, an `on…=` handler or a
/// `javascript:` URL. The browser would refuse them; this says which page has one.
fn assert_no_inline_code(what: &str, html: &str) {
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("javascript:"), "{what}: a javascript: URL");
    for tag in lower.split('<').skip(1) {
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        let name = tag.split_whitespace().next().unwrap_or_default();
        if name == "script" {
            assert!(
                tag.contains(" src=") || tag.contains("type=\"application/json\""),
                "{what}: an inline script <{tag}>"
            );
        }
        assert!(name != "style", "{what}: a <style> block");
        for attribute in tag.split_whitespace().skip(1) {
            let attribute = attribute.split('=').next().unwrap_or_default();
            assert!(
                attribute != "style"
                    && !(attribute.starts_with("on")
                        && attribute.len() > 2
                        && attribute.chars().all(|c| c.is_ascii_alphabetic())
                        && tag.contains(&format!("{attribute}="))),
                "{what}: an inline style or event handler in <{tag}>"
            );
        }
    }
}

/// A route with its parameters filled in from the test's things; a parameter this test does
/// not know fails it, so that a new kind of page is added here.
fn concrete(route: &str, ids: &Ids) -> String {
    let id = match route.split('/').nth(1).unwrap_or_default() {
        "triggers" => ids.trigger,
        "queue" => ids.call,
        "events" => ids.event,
        "users" => ids.user,
        "shops" => ids.shop,
        _ => 1,
    };
    let path = route
        .replace("{id}", &id.to_string())
        .replace("{index}", "0")
        .replace("{name}", "OrderChanged")
        .replace("{file}", "app.css");
    assert!(
        !path.contains('{'),
        "a parameter this test cannot fill in: {route}"
    );
    path
}

struct Ids {
    trigger: i64,
    call: i64,
    event: i64,
    user: i64,
    shop: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_static_file_error_and_api_answer_carries_the_security_headers() {
    let app = spawn_app(Backend::Sqlite).await;
    let receiver = Receiver::start().await;
    let shop = app.create_shop("Main shop").await;
    let trigger = id(&app
        .create_trigger(json!({
            "name": "Orders", "eventType": "OrderChanged", "shopId": shop,
            "actions": [{"type": "callWebhook", "url": receiver.url("/erp")}]
        }))
        .await);
    app.post_event(event("OrderChanged", shop, 7, json!({"OrderId": 7})))
        .await;
    let call = app.wait_for_queue_count("status=succeeded", 1).await;
    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    let (_, users) = app.get_json("/api/v1/users").await;
    let ids = Ids {
        trigger,
        call: id(&call[0]),
        event: call[0]["eventId"].as_i64().unwrap(),
        user: id(&users["items"][0]),
        shop,
    };
    let session = http_session(&app, "admin@example.com", &password).await;

    let routes = hookflow_http::page_routes();
    assert!(
        routes.contains(&"/triggers/{id}") && routes.contains(&"/docs"),
        "{routes:?}"
    );
    let mut pages = 0;
    for route in &routes {
        let path = concrete(route, &ids);
        // Signed in as an admin: every page shows (200); a form's target is POST only (405).
        let answer = fetch(&app, Method::GET, &path, Some(&session)).await;
        assert!(
            matches!(
                answer.status,
                StatusCode::OK | StatusCode::METHOD_NOT_ALLOWED
            ),
            "GET {path}: {}\n{}",
            answer.status,
            answer.body
        );
        pages += usize::from(answer.status == StatusCode::OK && answer.html);
        // Signed out: the sign-in page, a redirect to it, or the public files.
        let answer = fetch(&app, Method::GET, &path, None).await;
        assert!(
            matches!(
                answer.status,
                StatusCode::OK | StatusCode::SEE_OTHER | StatusCode::METHOD_NOT_ALLOWED
            ),
            "GET {path} signed out: {}",
            answer.status
        );
    }
    assert!(pages >= 15, "only {pages} pages answered");
    for file in ["app.js", "editor.js", "docs.css", "favicon.svg"] {
        let answer = fetch(&app, Method::GET, &format!("/static/{file}"), None).await;
        assert_eq!(answer.status, StatusCode::OK, "{file}");
    }

    // Error pages: a call that is not there, a route that is not there, a missing file, a
    // form post without its CSRF token, a page for admins seen by a viewer.
    let missing = fetch(&app, Method::GET, "/queue/999999", Some(&session)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.html && missing.body.contains("404"),
        "{}",
        missing.body
    );
    for path in ["/no-such-page", "/static/no-such-file.js"] {
        let answer = fetch(&app, Method::GET, path, Some(&session)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
    let forged = fetch(&app, Method::POST, "/logout", Some(&session)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let viewer = add_user(&app, "viewer@example.com", "viewer", &[shop]).await;
    let viewer = http_session(&app, "viewer@example.com", &viewer).await;
    let refused = fetch(&app, Method::GET, "/users", Some(&viewer)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // The API's JSON too (nosniff above all), with and without a caller.
    for (path, session, status) in [
        ("/api/v1/shops", Some(session.as_str()), StatusCode::OK),
        ("/api/v1/shops", None, StatusCode::UNAUTHORIZED),
        ("/api/v1/openapi.json", None, StatusCode::OK),
        ("/healthz", None, StatusCode::OK),
    ] {
        let answer = fetch(&app, Method::GET, path, session).await;
        assert_eq!(answer.status, status, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_refuses_inline_script_eval_handlers_and_styles_and_the_tests_see_it() {
    let app = spawn_app(Backend::Sqlite).await;
    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    let browser = Browser::start(&app).await;
    browser.sign_in("admin@example.com", &password).await;
    browser.goto("/").await;
    // What an attacker's injected markup would try. WebDriver's scripts themselves run as the
    // browser's own (the policy lets them, `eval` in them included), so the `eval` is left to
    // a timer that fires after the script, in the page's own turn.
    let ran = browser
        .run(
            "const script = document.createElement('script');
             script.textContent = 'window.inlineRan = true';
             document.head.append(script);
             window.evalRan = 'not yet';
             setTimeout(() => {
               try { window.evalRan = eval('true'); } catch (e) { window.evalRan = false; }
             }, 0);
             const button = document.createElement('button');
             button.setAttribute('onclick', 'window.handlerRan = true');
             document.body.append(button);
             button.click();
             const box = document.createElement('div');
             box.setAttribute('style', 'color: rgb(255, 0, 0)');
             document.body.append(box);
             return [window.inlineRan === true, window.handlerRan === true,
                     getComputedStyle(box).color === 'rgb(255, 0, 0)'];",
        )
        .await;
    assert_eq!(
        ran,
        json!([false, false, false]),
        "inline script, handler, style"
    );
    let mut eval_ran = json!("not yet");
    wait_until(WAIT, "the timer with eval has run", async || {
        eval_ran = browser.run("return window.evalRan").await;
        eval_ran != "not yet"
    })
    .await;
    assert_eq!(eval_ran, json!(false), "eval is refused");
    // Each refusal is reported, and the harness (which fails every other browser test on
    // one) sees all four.
    // Chromium's own reports ("Executing inline script violates …", once "Refused to execute
    // inline script because …"), and app.js's for the eval Chromium keeps out of the console.
    let expected = [
        "inline script",
        "inline event handler",
        "inline style",
        "Content Security Policy violation: script-src blocked eval",
    ];
    let reported = |seen: &[String]| expected.iter().all(|e| seen.iter().any(|v| v.contains(e)));
    let mut seen = Vec::new();
    let deadline = Instant::now() + WAIT;
    while !reported(&seen) && Instant::now() < deadline {
        seen.extend(browser.csp_violations().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        reported(&seen),
        "expected {expected:#?}, the browser reported {seen:#?}"
    );
    assert!(
        browser.console_errors().await.is_empty(),
        "violations are not counted as other console errors"
    );
    // The pages' own scripts work under the policy: an error page's "Go back" (once a
    // `javascript:` link) returns to the page before. (Not to the page above: restored from
    // the back-forward cache, it would report its violations again.)
    browser.goto("/triggers").await;
    browser.goto("/queue/999999").await;
    browser.wait_for_text("h1", "404").await;
    let errors = browser.console_errors().await;
    assert!(
        errors.len() == 1 && errors[0].contains("404"),
        "{errors:#?}"
    );
    browser.click("[data-history-back] button").await;
    browser.wait_for_path("/triggers").await;
    browser.wait_for_text("h1", "Triggers").await;
    browser.close().await;
}
