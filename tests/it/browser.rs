//! The web UI in a real headless Chromium against a real hookflow: signing in, building a
//! trigger in the editor with a merge field from the list, following its call to the Webhook
//! Queue page, retrying a failed call, shop scoping, CSRF, and a screenshot of every page at
//! 1280 and 390 px under `target/screenshots/` (each checked for sideways scrolling and
//! console errors). Every page runs under the server's Content-Security-Policy, and a
//! violation the browser reports fails the test (`browser::driver`; `browser::hardening`
//! proves the check sees one, and checks the headers of every route).
//!
//! SQLite only: the API tests cover PostgreSQL, and the pages read through the same engine.
//! Needs Debian's `chromium` and `chromium-driver` (see `browser::driver`).

mod controls;
mod driver;
mod editor;
mod events;
mod hardening;
mod pages;
mod phones;
mod rules;
mod send_test;
mod timing;

use reqwest::StatusCode;
use serde_json::json;
use tokio::process::Command;

use crate::common::{event, id, spawn_app, spawn_app_with, wait_until, Backend, Receiver, Reply};
use crate::common::{TestApp, WAIT};
use driver::Browser;

/// A plain HTTP client for pages: no proxy, redirects returned rather than followed.
fn page_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
pub(crate) use timing::{http_session, post_login};

/// Creates a user with `hookflow user add` on the app's database; returns the password.
async fn add_user(app: &TestApp, email: &str, role: &str, shops: &[i64]) -> String {
    let password = format!("Pw-{}-x7!", email.replace('@', "-"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookflow"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HOOKFLOW_") {
            command.env_remove(key);
        }
    }
    command.args([
        "user",
        "add",
        "--database-url",
        &app.db().url,
        "--email",
        email,
        "--role",
        role,
        "--password",
        &password,
    ]);
    for shop in shops {
        command.args(["--shop", &shop.to_string()]);
    }
    let output = command.output().await.expect("running hookflow user add");
    assert!(
        output.status.success(),
        "hookflow user add {email} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    password
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_builds_a_trigger_in_the_editor_and_follows_its_call_to_the_queue() {
    let app = spawn_app(Backend::Sqlite).await;
    let receiver = Receiver::start().await;
    let shop = app.create_shop("Main shop").await;
    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    let browser = Browser::start(&app).await;
    browser.sign_in("admin@example.com", &password).await;
    browser.screenshots("dashboard-empty").await;

    // The ShopCtrl flow: event and shop, Add action → Call Webhook, General, Payload.
    browser.goto("/triggers/new").await;
    browser.fill("#t-name", "Orders to ERP").await;
    browser.select("#t-event", "OrderChanged").await;
    browser.select("#t-shop", &shop.to_string()).await;
    browser.click("#add-action").await;
    browser.fill("#a0-url", &receiver.url("/erp/orders")).await;
    browser.click("#a0-tab-payload").await;
    browser.select("#a0-mime", "application/json").await;
    // A broken template is refused beside the body, with its line and column, on its tab.
    browser
        .fill("#a0-body", "{\"order\":\n  {{ entity.OrderCode }")
        .await;
    browser.click("#a0-tab-general").await;
    browser.click("#save").await;
    let error = browser
        .wait_for_text("#a0-payload .field-error", "line 2")
        .await;
    assert!(
        error.is_displayed().await.unwrap(),
        "the Payload tab is shown again"
    );
    assert_eq!(
        browser
            .find("#a0-body")
            .await
            .attr("aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    // The browser logs the refused request itself (a network entry, not a script error).
    let errors = browser.console_errors().await;
    assert!(
        errors.len() == 1 && errors[0].contains("422"),
        "{errors:#?}"
    );
    browser.screenshots("trigger-editor-error").await;
    browser.fill("#a0-body", "{\"order\": ").await;
    // Available merge fields: the list for the event type; a field goes in at the cursor.
    browser.click("#a0-payload [data-merge-fields]").await;
    browser
        .wait_for_text("#merge-status", "fields of OrderChanged")
        .await;
    browser.screenshots("trigger-merge-fields").await;
    browser
        .click("#merge-list [data-merge-path='entity.OrderCode']")
        .await;
    browser.find("#a0-body").await.send_keys("}").await.unwrap();
    let body = browser
        .run("return document.getElementById('a0-body').value")
        .await;
    assert_eq!(body, "{\"order\": {{ entity.OrderCode }}}");

    // Preview renders the template against the type's sample entity.
    browser.click("#a0-payload [data-preview]").await;
    browser
        .wait_for_text(
            "#a0-payload [data-preview-output]",
            "\"order\": \"OrderCode-1001\"",
        )
        .await;
    // Send test delivers one call now, shows the answer, and queues nothing.
    browser.click("#a0-payload [data-send-test]").await;
    browser.find("#a0-payload [data-test-status='200']").await;
    assert_eq!(receiver.count(), 1, "send test delivers exactly one call");
    assert_eq!(
        receiver.requests()[0].json(),
        json!({"order": "OrderCode-1001"})
    );
    assert!(
        app.queue_items("").await.is_empty(),
        "send test queues nothing"
    );
    browser.screenshots("trigger-editor-new").await;

    browser.click("#save").await;
    browser.wait_for_path("/triggers/1").await;
    browser.wait_for_text(".notice", "Saved.").await;
    let (_, trigger) = app.get_json("/api/v1/triggers/1").await;
    assert_eq!(trigger["shopId"], shop);
    assert_eq!(
        trigger["actions"][0]["payload"]["body"],
        "{\"order\": {{ entity.OrderCode }}}"
    );
    browser.screenshots("trigger-editor").await;

    // The queue page refreshes itself: the call of an event posted now shows up succeeded.
    browser.goto("/queue").await;
    browser.wait_for_text("#queue-rows", "No calls match").await;
    app.post_event(event(
        "OrderChanged",
        shop,
        42,
        json!({"OrderId": 42, "OrderCode": "ORD-42"}),
    ))
    .await;
    browser
        .find("#queue-rows tr[data-status='succeeded']")
        .await;
    let delivered = receiver.requests();
    assert_eq!(delivered.last().unwrap().json(), json!({"order": "ORD-42"}));
    browser.screenshots("queue").await;

    browser
        .click("#queue-rows tr[data-status='succeeded'] a")
        .await;
    browser.wait_for_text("h1", "Call #").await;
    browser.wait_for_text("h1", "succeeded").await;
    browser.wait_for_text("#main", "ORD-42").await;
    browser.wait_for_text("details.attempt", "HTTP 200").await;
    browser.screenshots("queue-call").await;

    browser.goto("/").await;
    browser.wait_for_text("h1", "Dashboard").await;
    browser.screenshots("dashboard").await;
    browser.goto("/triggers").await;
    browser
        .wait_for_text("table.triggers", "Orders to ERP")
        .await;
    browser.screenshots("triggers").await;
    for (path, name) in [
        ("/alerts", "alerts"),
        ("/users", "users"),
        ("/shops", "shops"),
        ("/tokens", "tokens"),
    ] {
        browser.goto(path).await;
        browser.find("h1").await;
        browser.screenshots(name).await;
    }
    // Sign out; the login page says so.
    browser.click("form.signout button").await;
    browser.wait_for_text(".notice", "Signed out").await;
    browser.screenshots("login").await;
    browser.goto("/queue").await;
    browser.wait_for_path("/login").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_failed_is_retried_from_its_page_and_its_alert_acknowledged() {
    let app = spawn_app_with(Backend::Sqlite, &["--max-retries", "0"]).await;
    let receiver =
        Receiver::scripted(vec![Reply::status(500).body("down")], Reply::status(200)).await;
    let shop = app.create_shop("Main shop").await;
    app.create_trigger(json!({
        "name": "Orders to ERP", "eventType": "OrderChanged", "shopId": shop,
        "actions": [{"type": "callWebhook", "url": receiver.url("/erp")}]
    }))
    .await;
    app.post_event(event("OrderChanged", shop, 7, json!({"OrderId": 7})))
        .await;
    let call = app.wait_for_queue_count("status=failed", 1).await;
    let call_id = id(&call[0]);

    let password = add_user(&app, "ops@example.com", "shop_owner_admin", &[shop]).await;
    let browser = Browser::start(&app).await;
    browser.sign_in("ops@example.com", &password).await;
    browser.goto("/queue?status=failed").await;
    browser
        .click(&format!("#queue-rows tr[data-id='{call_id}'] a"))
        .await;
    browser.wait_for_text("h1", "failed").await;
    browser.wait_for_text("details.attempt", "HTTP 500").await;
    browser.screenshots("queue-call-failed").await;

    browser.click("#retry-button").await;
    browser.wait_for_text(".notice", "Queued again").await;
    app.wait_for_queue_status(call_id, "succeeded").await;
    // The page shows it once reloaded (the detail page does not poll).
    wait_until(WAIT, "the call page shows the call succeeded", async || {
        browser.client.refresh().await.is_ok() && browser.body_text().await.contains("succeeded")
    })
    .await;
    assert_eq!(receiver.count(), 2);

    // The failure raised an alert; acknowledging it from the Alerts page closes it.
    browser.goto("/alerts").await;
    browser.wait_for_text("#main table", "Orders to ERP").await;
    browser.screenshots("alerts-open").await;
    browser.click("#main table form button").await;
    browser.wait_for_text(".notice", "acknowledged").await;
    browser.wait_for_text("#main", "No open alerts").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_owner_admin_sees_nothing_of_another_shop() {
    let app = spawn_app(Backend::Sqlite).await;
    let receiver = Receiver::start().await;
    let mine = app.create_shop("My shop").await;
    let theirs = app.create_shop("Their shop").await;
    for (shop, name) in [(mine, "Mine to ERP"), (theirs, "Theirs to ERP")] {
        app.create_trigger(json!({
            "name": name, "eventType": "OrderChanged", "shopId": shop,
            "actions": [{"type": "callWebhook", "url": receiver.url("/erp")}]
        }))
        .await;
        app.post_event(event("OrderChanged", shop, 1, json!({"OrderId": 1})))
            .await;
    }
    let calls = app.wait_for_queue_count("status=succeeded", 2).await;
    let their_call = calls
        .iter()
        .find(|c| c["shopId"] == theirs)
        .map(id)
        .unwrap();
    let their_trigger = calls
        .iter()
        .find(|c| c["shopId"] == theirs)
        .map(|c| c["triggerId"].as_i64().unwrap())
        .unwrap();

    let password = add_user(&app, "owner@example.com", "shop_owner_admin", &[mine]).await;
    let browser = Browser::start(&app).await;
    browser.sign_in("owner@example.com", &password).await;
    browser.goto("/triggers").await;
    let list = browser.wait_for_text("table.triggers", "Mine to ERP").await;
    assert!(!list.text().await.unwrap().contains("Theirs"));
    browser.goto("/queue").await;
    browser
        .find("#queue-rows tr[data-status='succeeded']")
        .await;
    let rows = browser.find("#queue-rows").await.text().await.unwrap();
    assert!(
        rows.contains("My shop") && !rows.contains("Their shop"),
        "{rows}"
    );
    let shop_filter = browser.find("#f-shop").await.text().await.unwrap();
    assert!(!shop_filter.contains("Their shop"), "{shop_filter}");

    // Another shop's call and trigger do not exist for them; admin pages are not theirs.
    browser.goto(&format!("/queue/{their_call}")).await;
    browser.wait_for_text("h1", "404").await;
    browser.goto(&format!("/triggers/{their_trigger}")).await;
    browser.wait_for_text("h1", "404").await;
    browser.goto("/users").await;
    browser.wait_for_text("h1", "403").await;
    // Those answers were the browser's only errors.
    let errors = browser.console_errors().await;
    assert!(
        errors.len() == 3
            && errors
                .iter()
                .all(|e| e.contains("404") || e.contains("403")),
        "{errors:#?}"
    );
    browser.goto("/").await;
    let nav = browser.find("header nav").await.text().await.unwrap();
    assert!(!nav.contains("Users") && !nav.contains("Shops"), "{nav}");
    // Their own pages, from a phone as well.
    browser.goto("/queue").await;
    browser.find("#queue-rows tr").await;
    browser.screenshots("queue-shop-owner").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_posts_without_the_csrf_token_are_refused() {
    let app = spawn_app_with(Backend::Sqlite, &["--max-retries", "0"]).await;
    let receiver = Receiver::always(Reply::status(500)).await;
    let shop = app.create_shop("Main shop").await;
    app.create_trigger(json!({
        "name": "Orders", "eventType": "OrderChanged", "shopId": shop,
        "actions": [{"type": "callWebhook", "url": receiver.url("/erp")}]
    }))
    .await;
    app.post_event(event("OrderChanged", shop, 7, json!({"OrderId": 7})))
        .await;
    let call = id(&app.wait_for_queue_count("status=failed", 1).await[0]);
    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    let browser = Browser::start(&app).await;

    // The login form: a wrong password is said to be wrong.
    browser.goto("/login").await;
    browser.fill("#email", "admin@example.com").await;
    browser.fill("#password", "not the password").await;
    browser.click("form[action='/login'] button").await;
    browser
        .wait_for_text("#login-error", "Wrong email or password")
        .await;
    browser.screenshots("login-wrong-password").await;
    browser.sign_in("admin@example.com", &password).await;

    // A signed-in browser posting a form without the token (as another site's page would),
    // or with a wrong one, gets 403 and nothing happens.
    browser.goto(&format!("/queue/{call}")).await;
    let statuses = browser
        .run(&format!(
            "return Promise.all([
                fetch('/queue/{call}/retry', {{method: 'POST', body: new URLSearchParams({{}})}}).then(r => r.status),
                fetch('/queue/{call}/retry', {{method: 'POST', body: new URLSearchParams({{_csrf: 'forged'}})}}).then(r => r.status),
                fetch('/logout', {{method: 'POST', body: new URLSearchParams({{}})}}).then(r => r.status),
                fetch('/api/v1/queue/{call}/retry', {{method: 'POST'}}).then(r => r.status),
            ])"
        ))
        .await;
    assert_eq!(statuses, json!([403, 403, 403, 403]));
    // A real form without its hidden field, submitted by the browser: a 403 page.
    browser
        .run(
            "document.querySelector('#retry-button').form.querySelector('[name=_csrf]').remove();
             document.querySelector('#retry-button').click(); return null;",
        )
        .await;
    browser
        .wait_for_text("body", "CSRF token missing or wrong")
        .await;
    assert_eq!(
        app.queue_item(call).await["attempts"],
        1,
        "nothing was retried"
    );
    // With the token, the same form works.
    browser.goto(&format!("/queue/{call}")).await;
    browser.click("#retry-button").await;
    browser.wait_for_text(".notice", "Queued again").await;

    // Over plain HTTP too: a login post without the login form's token is refused.
    let answer = reqwest::Client::new()
        .post(app.url("/login"))
        .form(&[
            ("email", "admin@example.com"),
            ("password", password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    browser.close().await;
}

/// `GET /compat/skladon/v21/webhooks` with a shop's API key: the status.
async fn skladon_webhooks_status(app: &TestApp, key: &str) -> StatusCode {
    reqwest::Client::new()
        .get(app.url("/compat/skladon/v21/webhooks"))
        .header("x-api-key", key)
        .send()
        .await
        .expect("calling the Skladon API")
        .status()
}

/// The browser logs a page answered with an error status as a console error: checks that
/// the one refusal just seen is the only one, so that the screenshots after it see none.
async fn expect_refused(browser: &Browser, status: &str) {
    let errors = browser.console_errors().await;
    assert!(
        errors.len() == 1 && errors[0].contains(status),
        "{errors:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_a_custom_event_type_and_rotates_a_skladon_shops_api_key() {
    let app = spawn_app(Backend::Sqlite).await;
    let receiver = Receiver::start().await;
    let main_shop = app.create_shop("Main shop").await;
    app.create_trigger(json!({
        "name": "Orders", "eventType": "OrderChanged", "shopId": main_shop,
        "actions": [{"type": "callWebhook", "url": receiver.url("/erp")}]
    }))
    .await;
    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    let browser = Browser::start(&app).await;
    browser.sign_in("admin@example.com", &password).await;
    // The pages' delete and rotate buttons ask first; this test says yes.
    let confirm_yes = "window.confirm = () => true; return null";

    // A Skladon shop, made on the Shops page: its API key is shown once.
    browser.goto("/shops").await;
    browser.fill("#new-shop-name", "Warehouse").await;
    browser.select("#new-shop-catalog", "skladon").await;
    browser
        .click("form[action='/shops'] button[type=submit]")
        .await;
    browser
        .wait_for_text(".notice", "Shop Warehouse created")
        .await;
    let first_key = browser.find("#shown-api-key").await.text().await.unwrap();
    let (_, shops) = app.get_json("/api/v1/shops").await;
    let warehouse = shops["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Warehouse")
        .cloned()
        .expect("the shop made in the UI");
    assert_eq!(warehouse["catalog"], "skladon");
    let warehouse_id = id(&warehouse);
    assert_eq!(
        skladon_webhooks_status(&app, &first_key).await,
        StatusCode::OK
    );
    // The list shows the key's first characters only.
    browser.goto("/shops").await;
    let row = browser
        .wait_for_text("table", &first_key[..8])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !row.contains(&first_key),
        "the whole key is never shown again"
    );

    // Rotating it shows the new key once; the old one stops working on the Skladon API.
    browser.run(confirm_yes).await;
    browser
        .click(&format!(
            "form[action='/shops/{warehouse_id}/api-key'] button"
        ))
        .await;
    browser
        .wait_for_text(".secret-box", "old key has stopped working")
        .await;
    let new_key = browser.find("#shown-api-key").await.text().await.unwrap();
    assert_ne!(new_key, first_key);
    assert_eq!(
        skladon_webhooks_status(&app, &first_key).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        skladon_webhooks_status(&app, &new_key).await,
        StatusCode::OK
    );
    browser.screenshots("shops-key-rotated").await;

    // A shop with triggers of its catalog cannot move: said beside the catalog field.
    browser.goto("/shops").await;
    browser
        .select(&format!("#shop-catalog-{main_shop}"), "skladon")
        .await;
    browser
        .click(&format!("form[action='/shops/{main_shop}'] button"))
        .await;
    browser
        .wait_for_text(&format!("#shop-error-{main_shop}"), "has triggers")
        .await;
    expect_refused(&browser, "409").await;
    browser.screenshots("shops-catalog-refused").await;

    // Event types: the shipped ones are read-only.
    browser.goto("/event-types").await;
    // The list is long: the first catalog is open, the others collapsed; the search box finds
    // a type in any of them and opens its catalog.
    let skladon_open = browser
        .run("return document.getElementById('catalog-section-skladon').open")
        .await;
    assert_eq!(
        skladon_open,
        json!(false),
        "only the first catalog starts open"
    );
    browser.fill("#type-search", "create_receiving").await;
    browser
        .wait_for_text("#type-search-count", "1 type matches")
        .await;
    browser
        .wait_for_text("table[data-catalog='skladon']", "CREATE_RECEIVING")
        .await;
    let hidden = browser
        .run("return document.getElementById('catalog-section-shopctrl').hidden")
        .await;
    assert_eq!(hidden, json!(true), "catalogs without a match are hidden");
    browser.screenshots("event-types-search").await;
    let builtin = browser
        .find("tr[data-type='CREATE_RECEIVING']")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        builtin.contains("built-in") && builtin.contains("read-only"),
        "{builtin}"
    );
    // A schema that is not a JSON Schema is refused beside the schema field.
    browser.fill("#et-name", "PALLET_MOVED").await;
    browser.select("#et-catalog", "skladon").await;
    browser
        .fill("#et-description", "A pallet moved to another dock")
        .await;
    browser
        .fill("#et-schema", r#"{"type": "no such type"}"#)
        .await;
    browser.click("#add-event-type").await;
    browser.wait_for_text("#et-schema-error", "schema").await;
    assert_eq!(
        browser
            .find("#et-schema")
            .await
            .attr("aria-invalid")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    expect_refused(&browser, "422").await;
    browser.screenshots("event-types-error").await;
    // The form kept what was typed; with a valid schema the type is added.
    browser
        .fill(
            "#et-schema",
            r#"{"type": "object", "properties": {"PalletId": {"type": "integer"}, "Dock": {"type": "string"}}, "required": ["PalletId"]}"#,
        )
        .await;
    browser.click("#add-event-type").await;
    browser
        .wait_for_text(".notice", "PALLET_MOVED added to the skladon catalog")
        .await;
    let custom = browser
        .find("tr[data-type='PALLET_MOVED']")
        .await
        .text()
        .await
        .unwrap();
    assert!(custom.contains("custom"), "{custom}");
    browser.screenshots("event-types").await;
    // The same name again is a clash, said beside the name.
    browser.fill("#et-name", "PALLET_MOVED").await;
    browser.click("#add-event-type").await;
    browser.wait_for_text("#et-name-error", "exists").await;
    expect_refused(&browser, "409").await;

    // The trigger editor offers it, and its merge fields are the schema's properties.
    browser.goto("/triggers/new").await;
    browser.fill("#t-name", "Pallets").await;
    browser.select("#t-event", "PALLET_MOVED").await;
    browser.select("#t-shop", &warehouse_id.to_string()).await;
    browser.click("#add-action").await;
    browser.fill("#a0-url", &receiver.url("/pallets")).await;
    browser.click("#a0-tab-payload").await;
    browser.select("#a0-mime", "application/json").await;
    browser.fill("#a0-body", "{\"pallet\": ").await;
    browser.click("#a0-payload [data-merge-fields]").await;
    browser
        .wait_for_text("#merge-status", "fields of PALLET_MOVED")
        .await;
    browser
        .find("#merge-list [data-merge-path='entity.Dock']")
        .await;
    browser.screenshots("trigger-merge-fields-custom").await;
    browser
        .click("#merge-list [data-merge-path='entity.PalletId']")
        .await;
    browser.find("#a0-body").await.send_keys("}").await.unwrap();
    browser.click("#save").await;
    browser.wait_for_path("/triggers/2").await;

    // In use by that trigger, it cannot be deleted: said on the list.
    browser.goto("/event-types").await;
    browser.run(confirm_yes).await;
    browser
        .click("form[action='/event-types/PALLET_MOVED/delete'] button")
        .await;
    browser.wait_for_text("#delete-error", "PALLET_MOVED").await;
    expect_refused(&browser, "409").await;
    // Its page edits it: a new description is saved.
    browser.goto("/event-types/PALLET_MOVED").await;
    browser
        .fill("#et-description", "A pallet changed docks")
        .await;
    browser.click("#save-event-type").await;
    browser.wait_for_text(".notice", "Saved").await;
    let (_, ty) = app.get_json("/api/v1/event-types/PALLET_MOVED").await;
    assert_eq!(ty["description"], "A pallet changed docks", "{ty}");
    browser.screenshots("event-type-edit").await;
    browser.close().await;

    // A shipped type's page shows its fields, its example payload and schemas, and no build
    // file's name is shown anywhere (descriptions come from the catalogs).
    let browser = Browser::start(&app).await;
    browser.sign_in("admin@example.com", &password).await;
    browser.goto("/event-types/OrderChanged").await;
    browser.wait_for_text("#type-fields", "OrderCode").await;
    let example = browser.find("#type-example").await.text().await.unwrap();
    let example: serde_json::Value = serde_json::from_str(&example).unwrap();
    assert_eq!(example["eventType"], "OrderChanged", "{example}");
    assert!(
        example["entityData"].get("OrderCode").is_some(),
        "{example}"
    );
    browser.wait_for_text("main", "shopctrl retry preset").await;
    browser.screenshots("event-type-builtin").await;
    for page in ["/event-types", "/event-types/CREATE_RECEIVING", "/shops"] {
        browser.goto(page).await;
        let html = browser
            .run("return document.documentElement.outerHTML")
            .await;
        assert!(
            !html.as_str().unwrap().contains("seeds/"),
            "{page} names a build file"
        );
    }
    browser.close().await;
    let (_, catalogs) = app.get_json("/api/v1/catalogs").await;
    assert!(!catalogs.to_string().contains("seeds/"), "{catalogs}");

    // Both pages are for admins only, like the other admin pages.
    let viewer = add_user(&app, "viewer@example.com", "viewer", &[main_shop]).await;
    let session = timing::http_session(&app, "viewer@example.com", &viewer).await;
    for page in ["/event-types", "/event-types/PALLET_MOVED", "/shops"] {
        let answer = reqwest::Client::new()
            .get(app.url(page))
            .header(reqwest::header::COOKIE, &session)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_manage_their_own_password_and_tokens_and_the_users_page_fits_a_phone() {
    let app = spawn_app(Backend::Sqlite).await;
    let shop = app.create_shop("Main shop").await;
    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    add_user(&app, "second-admin@example.com", "admin", &[]).await;
    add_user(&app, "owner@example.com", "shop_owner_admin", &[shop]).await;
    // A user added without a password gets a generated one, to be changed at first sign-in.
    let (status, fresh) = app
        .post_json(
            "/api/v1/users",
            json!({"email": "fresh@example.com", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{fresh}");
    let browser = Browser::start(&app).await;
    browser.sign_in("admin@example.com", &password).await;
    browser
        .run("window.confirm = () => true; return null")
        .await;

    // The users page: no Delete on one's own row, the generated password said.
    browser.goto("/users").await;
    let own = browser
        .find("tr[data-user='admin@example.com']")
        .await
        .text()
        .await
        .unwrap();
    assert!(own.contains("you") && !own.contains("Delete"), "{own}");
    let other = browser
        .find("tr[data-user='second-admin@example.com']")
        .await
        .text()
        .await
        .unwrap();
    assert!(other.contains("Delete"), "{other}");
    let newcomer = browser
        .find("tr[data-user='fresh@example.com']")
        .await
        .text()
        .await
        .unwrap();
    assert!(newcomer.contains("must change password"), "{newcomer}");
    browser.screenshots("users").await;
    // Deleting oneself (a stale form) is refused on the users page, not a bare error page.
    browser
        .run(&format!(
            "const f = document.createElement('form'); f.method = 'post'; \
             f.action = '/users/{}/delete'; \
             f.innerHTML = '<input name=_csrf value=' + document.querySelector('input[name=_csrf]').value + '>'; \
             document.body.appendChild(f); f.submit(); return null",
            me_id(&app, "admin@example.com").await
        ))
        .await;
    browser
        .wait_for_text("#users-refused", "cannot delete your own account")
        .await;
    expect_refused(&browser, "400").await;
    browser.find("tr[data-user='admin@example.com']").await;

    // Their own password: the current one is checked, the two new ones must agree.
    browser.goto("/account/password").await;
    browser
        .wait_for_text("#account-facts", "admin@example.com")
        .await;
    browser.fill("#pw-current", "not my password").await;
    browser.fill("#pw-new", "A-brand-new-pass-1").await;
    browser.fill("#pw-repeat", "A-brand-new-pass-1").await;
    browser.click("#change-password-submit").await;
    browser
        .wait_for_text("#pw-current-error", "not your current password")
        .await;
    expect_refused(&browser, "422").await;
    browser.fill("#pw-current", &password).await;
    browser.fill("#pw-new", "A-brand-new-pass-1").await;
    browser.fill("#pw-repeat", "A-different-pass-1").await;
    browser.click("#change-password-submit").await;
    browser.wait_for_text("#pw-repeat-error", "differ").await;
    expect_refused(&browser, "422").await;
    browser.screenshots("account-password-error").await;
    browser.fill("#pw-current", &password).await;
    browser.fill("#pw-new", "A-brand-new-pass-1").await;
    browser.fill("#pw-repeat", "A-brand-new-pass-1").await;
    browser.click("#change-password-submit").await;
    browser.wait_for_text(".notice", "Password changed").await;
    // Still signed in here (a fresh session), and the new password is the one that works.
    browser.goto("/triggers").await;
    browser.wait_for_path("/triggers").await;
    browser.screenshots("account").await;

    // An API token that expires: the choice is on the form, the date in the list.
    browser.goto("/tokens").await;
    browser.fill("#token-name", "Nightly export").await;
    browser.select("#token-expires", "7").await;
    browser
        .click("form[action='/tokens'] button[type=submit]")
        .await;
    browser.find("#created-token").await;
    let (_, tokens) = app.get_json("/api/v1/tokens?all=true").await;
    let token = tokens["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Nightly export")
        .unwrap();
    let expires = crate::common::parse_time(&token["expiresAt"]);
    let week = std::time::SystemTime::now() + std::time::Duration::from_secs(7 * 86_400);
    assert!(
        expires <= week && expires > week - std::time::Duration::from_secs(120),
        "{token}"
    );
    browser.screenshots("tokens-expiry").await;
    browser.close().await;
    let old = timing::post_login(&app, "admin@example.com", &password).await;
    assert_eq!(
        old.status(),
        StatusCode::OK,
        "the old password no longer signs in"
    );
}

/// The id of the user with this email.
async fn me_id(app: &TestApp, email: &str) -> i64 {
    let (_, users) = app.get_json("/api/v1/users").await;
    users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .map(id)
        .unwrap()
}
