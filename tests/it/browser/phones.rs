//! Every list page at 390 px with data in it: nothing scrolls sideways, and each cell of a
//! table stacked into cards keeps its column's name as a label (an action-button cell, marked
//! `actions`, holds only its controls). Event types are named in words beside their ids, on
//! the lists, their filters, the call and event pages and in the editor's event picker.

use serde_json::{json, Value};

use super::add_user;
use crate::browser::driver::Browser;
use crate::common::{event, spawn_app_with, Backend, Receiver, Reply};

/// The width of a phone held upright.
const PHONE: u32 = 390;

/// Cells of stacked tables that show without a label: `[page, row text]` of each offender.
/// A label counts only if the browser draws it (the `::before` content at this width), and an
/// `actions` cell counts only if it holds a control.
const UNLABELLED: &str = r#"
const out = [];
for (const td of document.querySelectorAll("table.stack-sm td")) {
  if (td.getClientRects().length === 0 || td.classList.contains("empty")) continue;
  if (td.classList.contains("actions")) {
    if (!td.querySelector("button, a")) out.push("actions cell without a control: " + td.outerHTML.slice(0, 120));
    continue;
  }
  const label = (td.getAttribute("data-label") || "").trim();
  const drawn = getComputedStyle(td, "::before").content;
  if (!label || drawn === "none" || drawn === "normal") out.push(td.outerHTML.slice(0, 120));
}
return out;
"#;

async fn unlabelled_cells(browser: &Browser) -> Vec<Value> {
    match browser.run(UNLABELLED).await {
        Value::Array(cells) => cells,
        other => panic!("the label check returned {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_fits_a_phone_with_labelled_cards_and_event_types_in_words() {
    let app = spawn_app_with(Backend::Sqlite, &["--max-retries", "0"]).await;
    let receiver = Receiver::always(Reply::status(500).body("down")).await;
    let shop = app.create_shop("Main shop").await;
    app.create_trigger(json!({
        "name": "Orders to ERP", "eventType": "OrderChanged", "shopId": shop,
        "actions": [{"type": "callWebhook", "url": receiver.url("/erp/orders/with/a/rather/long/path")}]
    }))
    .await;
    app.post_event(event(
        "OrderChanged",
        shop,
        "ORD-1001",
        json!({"OrderId": 1001}),
    ))
    .await;
    // The failed call raises an alert: the dashboard's failing actions and the Alerts page.
    app.wait_for_queue_count("status=failed", 1).await;
    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    add_user(&app, "viewer@example.com", "viewer", &[shop]).await;

    let browser = Browser::start(&app).await;
    browser.sign_in("admin@example.com", &password).await;
    browser.goto("/tokens").await;
    browser.fill("#token-name", "Nightly export").await;
    browser
        .click("form[action='/tokens'] button[type=submit]")
        .await;
    browser.find("#created-token").await;

    let pages = [
        ("/", "phone-dashboard"),
        ("/triggers", "phone-triggers"),
        ("/queue", "phone-queue"),
        ("/events", "phone-events"),
        ("/alerts", "phone-alerts"),
        ("/users", "phone-users"),
        ("/shops", "phone-shops"),
        ("/tokens", "phone-tokens"),
        ("/event-types", "phone-event-types"),
    ];
    for (path, name) in pages {
        browser.goto(path).await;
        browser.find("table.stack-sm tbody td").await;
        // Sideways scrolling at 1280 and 390 px, with a picture of each.
        browser.screenshots(name).await;
        browser
            .client
            .set_window_size(PHONE, 900)
            .await
            .expect("resizing the window");
        let width = browser.run("return window.innerWidth").await;
        assert_eq!(width, json!(PHONE), "{path}: the viewport is a phone's");
        let cells = unlabelled_cells(&browser).await;
        assert!(
            cells.is_empty(),
            "{path}: stacked cells without a label at {PHONE} px: {cells:#?}"
        );
        browser
            .client
            .set_window_size(1280, 900)
            .await
            .expect("resizing the window");
    }

    // The API reference has no stacked tables; it must only fit.
    browser.goto("/docs").await;
    browser.find("main h1").await;
    browser.screenshots("phone-docs").await;

    // Event types in words beside their ids: lists, filters, the call page and the editor.
    for path in ["/triggers", "/queue", "/events", "/"] {
        browser.goto(path).await;
        let shown = browser.wait_for_text("#main", "Order changed").await;
        let id = shown
            .find(fantoccini::Locator::Css("code.event-id"))
            .await
            .unwrap_or_else(|e| panic!("{path}: no event id beside its name: {e}"));
        assert_eq!(id.text().await.unwrap(), "OrderChanged", "{path}");
    }
    for (path, select) in [("/queue", "#f-event"), ("/events", "#ev-type")] {
        browser.goto(path).await;
        let label = browser
            .run(&format!(
                "return document.querySelector(\"{select} option[value='OrderChanged']\").textContent"
            ))
            .await;
        assert_eq!(label, json!("Order changed · OrderChanged"), "{path}");
    }
    // The call page names its event's type in words, and so does the event page it links to.
    browser.goto("/queue").await;
    browser.click("#queue-rows tr a").await;
    browser
        .wait_for_text("#event-link", "Order changed · OrderChanged")
        .await;
    browser.screenshots("phone-call").await;
    browser.click("#event-link").await;
    browser
        .wait_for_text("h1", "Order changed · OrderChanged")
        .await;
    browser.find("#event-calls tbody td").await;
    browser.screenshots("phone-event").await;
    browser
        .client
        .set_window_size(PHONE, 900)
        .await
        .expect("resizing the window");
    let cells = unlabelled_cells(&browser).await;
    assert!(cells.is_empty(), "the event page's calls: {cells:#?}");
    browser
        .client
        .set_window_size(1280, 900)
        .await
        .expect("resizing the window");

    browser.goto("/triggers").await;
    browser.click("#main table a[href^='/triggers/']").await;
    let label = browser
        .run("return document.querySelector('#t-event').selectedOptions[0].textContent")
        .await;
    assert_eq!(label, json!("Order changed · OrderChanged"));
    browser.close().await;
}
