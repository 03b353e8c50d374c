//! The call page against what a real receiver got (the body byte for byte, every request
//! header, credentials masked, the error in words, copy as curl), and the Events page: its
//! filters, an event that matched nothing found by filter, why each trigger did not fire,
//! and resending an event — in Chromium at 1280 and 390 px.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::browser::add_user;
use crate::browser::driver::Browser;
use crate::common::{event, id, spawn_app_with, wait_until, Backend, Receiver, Reply, WAIT};

/// The event id of an ingest answer.
fn event_id(answer: &serde_json::Value) -> i64 {
    answer["eventId"]
        .as_i64()
        .unwrap_or_else(|| panic!("no eventId in {answer}"))
}

/// A port nothing listens on: bound, then let go.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_page_shows_the_bytes_and_headers_the_receiver_got_and_errors_in_words() {
    let app = spawn_app_with(Backend::Sqlite, &["--max-retries", "0"]).await;
    let receiver = Receiver::start().await;
    let shop = app.create_shop("Main shop").await;
    // A body a re-serialiser would change: a leading newline, odd spacing, an escaped
    // character, non-ASCII text and markup.
    let template =
        "\n{\"order\":  {{ entity.OrderCode | tojson }},\n  \"note\": \"caf\\u00e9 & <b>ü</b>\" }";
    app.create_trigger(json!({
        "name": "Orders to ERP", "eventType": "OrderChanged", "shopId": shop,
        "actions": [{"type": "callWebhook", "url": receiver.url("/erp/orders"),
                     "basicAuth": {"username": "erp", "password": "s3cret-pw"},
                     "hmacSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                     "headers": {"X-Order": "{{ entity.OrderCode }}"},
                     "payload": {"mimeType": "application/json", "body": template}}]
    }))
    .await;
    // A receiver slower than its action's 1 s timeout.
    let slow = Receiver::always(Reply::status(200).after(Duration::from_secs(30))).await;
    app.create_trigger(json!({
        "name": "Orders to a slow ERP", "eventType": "OrderChanged", "shopId": shop,
        "actions": [{"type": "callWebhook", "url": slow.url("/slow"),
                     "retryPolicy": {"maxRetries": 0, "timeout": 1}}]
    }))
    .await;
    let port = closed_port();
    app.create_trigger(json!({
        "name": "Orders to nowhere", "eventType": "OrderChanged", "shopId": shop,
        "actions": [{"type": "callWebhook", "url": format!("http://127.0.0.1:{port}/hook")}]
    }))
    .await;
    app.post_event(event(
        "OrderChanged",
        shop,
        42,
        json!({"OrderId": 42, "OrderCode": "ORD-42"}),
    ))
    .await;
    let delivered = app.wait_for_queue_count("status=succeeded", 1).await;
    let failed = app.wait_for_queue_count("status=failed", 2).await;
    let call = id(&delivered[0]);
    let failed_to = |path: &str| {
        failed
            .iter()
            .find(|c| c["url"].as_str().is_some_and(|u| u.ends_with(path)))
            .map(id)
            .unwrap()
    };
    let (refused, timed_out) = (failed_to("/hook"), failed_to("/slow"));
    let got = receiver
        .requests()
        .pop()
        .expect("the receiver got the call");

    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    let browser = Browser::start(&app).await;
    browser.sign_in("admin@example.com", &password).await;
    browser.goto(&format!("/queue/{call}")).await;
    browser.wait_for_text("h1", "succeeded").await;

    // The body exactly as the receiver got it, on the page and as a download.
    let shown = browser
        .run("return document.getElementById('body-exact').textContent")
        .await;
    assert_eq!(shown.as_str(), Some(got.text().as_str()));
    assert!(
        got.text().starts_with('\n'),
        "the template's bytes were kept"
    );
    let downloaded = browser
        .run(&format!(
            "return fetch('/queue/{call}/body').then(r => r.text())"
        ))
        .await;
    assert_eq!(downloaded.as_str(), Some(got.text().as_str()));

    // Every header the receiver got, with its value, except the credential, which is masked.
    for (name, value) in &got.headers {
        let row = browser
            .find(&format!("#request-headers tr[data-header='{name}'] td"))
            .await
            .text()
            .await
            .unwrap();
        if name == "authorization" {
            assert!(value.starts_with("Basic "), "{value}");
            assert!(
                !row.contains(&value[6..]),
                "the credential is masked: {row}"
            );
            assert!(row.contains("••••••"), "{row}");
        } else {
            assert_eq!(&row, value, "header {name}");
        }
    }
    for name in [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-order",
    ] {
        assert!(got.header(name).is_some(), "the receiver got {name}");
    }

    // Copy as curl: the request without credentials.
    let curl = browser.find("#curl-command").await.text().await.unwrap();
    assert!(curl.starts_with("curl -X POST"), "{curl}");
    assert!(
        curl.contains(&format!("webhook-id: {}", got.webhook_id())),
        "{curl}"
    );
    assert!(curl.contains("x-order: ORD-42"), "{curl}");
    assert!(
        !curl.to_ascii_lowercase().contains("authorization") && !curl.contains("s3cret"),
        "{curl}"
    );
    browser.click("#copy-curl").await;
    browser.wait_for_text("#copy-curl-status", "C").await;
    browser.screenshots("call-page").await;

    // Its event is a link away.
    browser.click("#event-link").await;
    browser.wait_for_path("/events/").await;
    browser.wait_for_text("h1", "Event #").await;

    // A call that found nobody listening says so in words, above the raw error.
    browser.goto(&format!("/queue/{refused}")).await;
    browser
        .wait_for_text(
            "#call-error .plain-error",
            &format!("connection refused by 127.0.0.1:{port}"),
        )
        .await;
    let raw = browser
        .find("#call-error .raw-error")
        .await
        .text()
        .await
        .unwrap();
    assert!(raw.to_ascii_lowercase().contains("refused"), "{raw}");
    browser
        .wait_for_text("details.attempt .plain-error", "connection refused")
        .await;
    browser.screenshots("call-page-error").await;
    // One that waited too long says how long it waited.
    browser.goto(&format!("/queue/{timed_out}")).await;
    let plain = browser
        .wait_for_text("#call-error .plain-error", "timed out after ")
        .await
        .text()
        .await
        .unwrap();
    assert!(plain.ends_with(" s"), "{plain}");

    // The list shows when each call was last sent and what came back.
    browser.goto("/queue").await;
    browser
        .wait_for_text(
            &format!("#queue-rows tr[data-id='{call}'] .response"),
            "200 OK",
        )
        .await;
    let sent = browser
        .find(&format!("#queue-rows tr[data-id='{call}'] .last-sent"))
        .await
        .text()
        .await
        .unwrap();
    assert!(sent.starts_with("20"), "a date: {sent}");
    browser
        .wait_for_text(
            &format!("#queue-rows tr[data-id='{refused}'] .response"),
            "connection refused",
        )
        .await;
    browser.screenshots("queue-last-sent").await;
    // The event-type filter is grouped by catalog and follows the chosen shop's.
    let hidden = "return [...document.querySelectorAll('#f-event optgroup')].filter(g => g.hidden).map(g => g.dataset.catalog)";
    assert_eq!(browser.run(hidden).await, json!([]));
    browser.select("#f-shop", &shop.to_string()).await;
    let hidden: Vec<String> = serde_json::from_value(browser.run(hidden).await).unwrap();
    assert!(
        hidden.contains(&"skladon".to_owned()) && !hidden.contains(&"shopctrl".to_owned()),
        "{hidden:?}"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_page_finds_an_event_that_matched_nothing_and_says_why_and_resends() {
    let app = spawn_app_with(Backend::Sqlite, &[]).await;
    let receiver = Receiver::start().await;
    let main = app.create_shop("Main shop").await;
    let other = app.create_shop("Other shop").await;
    let shipped = "entity.Status == \"Shipped\"";
    let trigger = |name: &str, shop: i64, enabled: bool, condition: Option<&str>| {
        json!({
            "name": name, "eventType": "OrderChanged", "shopId": shop, "enabled": enabled,
            "condition": condition,
            "actions": [{"type": "callWebhook", "url": receiver.url(&format!("/{}", name.len()))}]
        })
    };
    let fires = id(&app
        .create_trigger(trigger("Shipped orders", main, true, Some(shipped)))
        .await);
    let elsewhere = id(&app
        .create_trigger(trigger("Other shop's orders", other, true, None))
        .await);
    let off = id(&app
        .create_trigger(trigger("Switched off", main, false, None))
        .await);
    let paused = id(&app
        .create_trigger(trigger("Paused receiver", main, true, Some(shipped)))
        .await);
    let (status, answer) = app
        .put_json(
            &format!("/api/v1/triggers/{paused}/actions/0/deactivate"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let shipped_order = event_id(
        &app.post_event(event(
            "OrderChanged",
            main,
            42,
            json!({"OrderId": 42, "Status": "Shipped"}),
        ))
        .await,
    );
    let new_order = event_id(
        &app.post_event(event(
            "OrderChanged",
            main,
            43,
            json!({"OrderId": 43, "Status": "New"}),
        ))
        .await,
    );
    let product = event_id(
        &app.post_event(event(
            "ProductCreated",
            main,
            7,
            json!({"ProductId": 7, "ProductCode": "P-7"}),
        ))
        .await,
    );
    receiver.wait_for_requests(1, WAIT).await;

    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    let browser = Browser::start(&app).await;
    browser.sign_in("admin@example.com", &password).await;
    // In the navigation, under System.
    browser.click("header nav a[href='/events']").await;
    browser.wait_for_text("h1", "Events").await;
    let nav = browser.find("header nav").await.text().await.unwrap();
    assert!(
        nav.find("System") < nav.find("Webhook Queue")
            && nav.find("Webhook Queue") < nav.find("Events"),
        "{nav}"
    );
    for e in [shipped_order, new_order, product] {
        browser
            .find(&format!("#event-rows tr[data-id='{e}']"))
            .await;
    }
    browser.screenshots("events").await;

    let rows = async |browser: &Browser| -> Vec<i64> {
        let ids = browser
            .run("return [...document.querySelectorAll('#event-rows tr[data-id]')].map(r => Number(r.dataset.id))")
            .await;
        serde_json::from_value(ids).unwrap()
    };
    // The event that matched nothing, found by filter.
    browser.select("#ev-calls", "without").await;
    browser.click("#events-filter button[type=submit]").await;
    browser.wait_for_path("/events?").await;
    browser
        .wait_for_text("#event-rows", "matched nothing")
        .await;
    assert_eq!(rows(&browser).await, vec![product, new_order]);
    browser.screenshots("events-without-calls").await;
    // By type (the select offers the chosen shop's catalog, grouped), and by entity.
    browser.goto("/events").await;
    browser.select("#ev-shop", &main.to_string()).await;
    browser.select("#ev-type", "ProductCreated").await;
    browser.click("#events-filter button[type=submit]").await;
    browser.wait_for_path("/events?").await;
    browser
        .find("#ev-type optgroup[data-catalog='shopctrl']")
        .await;
    assert_eq!(rows(&browser).await, vec![product]);
    browser.goto("/events").await;
    browser.fill("#ev-entity", "42").await;
    browser.click("#events-filter button[type=submit]").await;
    browser.wait_for_path("/events?").await;
    browser.wait_for_text("#event-rows", "42").await;
    assert_eq!(rows(&browser).await, vec![shipped_order]);
    browser.goto("/events?calls=with").await;
    browser.find("#event-rows tr[data-id]").await;
    assert_eq!(rows(&browser).await, vec![shipped_order]);

    // Why nothing fired: each trigger of the type, with its reason.
    browser.goto(&format!("/events/{new_order}")).await;
    browser.find("#no-calls").await;
    let verdict = async |browser: &Browser, trigger: i64| -> String {
        browser
            .find(&format!("#verdicts li[data-trigger='{trigger}']"))
            .await
            .text()
            .await
            .unwrap()
    };
    let condition_false = verdict(&browser, fires).await;
    assert!(
        condition_false.contains("its condition is false for this event")
            && condition_false.contains("entity.Status == \"Shipped\""),
        "{condition_false}"
    );
    assert!(verdict(&browser, elsewhere)
        .await
        .contains("another shop (Other shop)"));
    assert!(verdict(&browser, off)
        .await
        .contains("the trigger is disabled"));
    assert!(verdict(&browser, paused)
        .await
        .contains("its condition is false"));
    assert!(
        browser
            .client
            .find(fantoccini::Locator::Css("#resend-event"))
            .await
            .is_err(),
        "nothing to resend"
    );
    browser.screenshots("event-matched-nothing").await;

    // The event that fired: its call, the trigger that fires, the one whose action is paused.
    browser.goto(&format!("/events/{shipped_order}")).await;
    browser
        .find("#event-calls tr[data-status='succeeded']")
        .await;
    assert!(verdict(&browser, fires).await.contains("fires"));
    let paused_verdict = verdict(&browser, paused).await;
    assert!(
        paused_verdict.contains("its action is deactivated")
            && !paused_verdict.contains("changed since"),
        "{paused_verdict}"
    );
    assert!(verdict(&browser, off).await.contains("disabled"));
    browser.screenshots("event").await;

    // Resend from the event: the same engine call as the API's, so its calls go out again.
    let before = receiver.count();
    browser
        .run("window.confirm = () => true; return null")
        .await;
    browser.click("#resend-event").await;
    browser.wait_for_text(".notice", "queued again").await;
    receiver.wait_for_requests(before + 1, WAIT).await;
    wait_until(WAIT, "the resent call succeeded again", async || {
        let (_, e) = app
            .get_json(&format!("/api/v1/events/{shipped_order}"))
            .await;
        e["calls"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["status"] == "succeeded" && c["attempts"] == 2)
        })
    })
    .await;
    browser.click("form.signout button").await;
    browser.wait_for_text(".notice", "Signed out").await;

    // A viewer of the shop sees the event but cannot resend it; another shop's owner cannot
    // see it at all.
    let viewer = add_user(&app, "viewer@example.com", "viewer", &[main]).await;
    browser.sign_in("viewer@example.com", &viewer).await;
    browser.goto(&format!("/events/{shipped_order}")).await;
    browser.find("#event-calls").await;
    assert!(browser
        .client
        .find(fantoccini::Locator::Css("#resend-event"))
        .await
        .is_err());
    let refused = browser
        .run(&format!(
            "return fetch('/events/{shipped_order}/resend', {{method: 'POST', body: new URLSearchParams({{_csrf: document.querySelector('meta[name=csrf-token]').content}})}}).then(r => r.status)"
        ))
        .await;
    assert_eq!(refused, json!(403));
    browser.click("form.signout button").await;
    browser.wait_for_text(".notice", "Signed out").await;
    let owner = add_user(&app, "owner@example.com", "shop_owner_admin", &[other]).await;
    browser.sign_in("owner@example.com", &owner).await;
    browser.goto("/events").await;
    browser.find("#event-rows").await;
    assert!(
        rows(&browser).await.is_empty(),
        "none of Other shop's events exist"
    );
    browser.goto(&format!("/events/{shipped_order}")).await;
    browser.wait_for_text("h1", "404").await;
    browser.close().await;
}
