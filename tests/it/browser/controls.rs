//! Controls of the Webhook Queue page and the editor not driven elsewhere: *Cancel* of a
//! pending call, the bulk resend of the filtered failed calls, and the merge-field dialog for
//! an entity id and *Show all available merge fields* — in Chromium at 1280 and 390 px. (The
//! trigger list's on/off switch is driven in `editor.rs`.)

use serde_json::json;

use crate::browser::add_user;
use crate::browser::driver::Browser;
use crate::common::{event, id, spawn_app_with, Backend, Receiver, Reply, WAIT};

/// The pages' buttons ask first; the tests say yes.
const CONFIRM_YES: &str = "window.confirm = () => true; return null";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_call_is_cancelled_and_failed_calls_are_resent_from_the_queue_page() {
    // Retries an hour away: a failed first attempt leaves the call pending, not on the wire.
    let app = spawn_app_with(
        Backend::Sqlite,
        &["--max-retries", "1", "--retry-base-ms", "3600000"],
    )
    .await;
    let receiver = Receiver::always(Reply::status(500)).await;
    let shop = app.create_shop("Main").await;
    let trigger = app
        .create_trigger(json!({
            "name": "Orders", "eventType": "OrderChanged", "shopId": shop,
            "actions": [{"type": "callWebhook", "url": receiver.url("/erp")}]
        }))
        .await;
    let tid = id(&trigger);
    let first = app
        .post_event(event("OrderChanged", shop, 1, json!({})))
        .await;
    receiver.wait_for_requests(1, WAIT).await;
    let (_, logged) = app
        .get_json(&format!("/api/v1/events/{}", first["eventId"]))
        .await;
    let call = id(&logged["calls"][0]);
    app.wait_for_item(call, "the call waits for its retry", |item| {
        item["status"] == "pending" && item["attempts"] == 1
    })
    .await;

    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    let browser = Browser::start(&app).await;
    browser.sign_in("admin@example.com", &password).await;

    // Cancel on the call's page: it is cancelled and never sent again.
    browser.goto(&format!("/queue/{call}")).await;
    browser.run(CONFIRM_YES).await;
    browser.click("#cancel-button").await;
    browser.wait_for_text(".notice", "Cancelled").await;
    browser.screenshots("queue-call-cancelled").await;
    app.wait_for_item(call, "the call is cancelled", |item| {
        item["status"] == "cancelled"
    })
    .await;
    assert_eq!(receiver.count(), 1, "a cancelled call is not sent again");

    // Two calls that fail for good (a 404 is not retried); the receiver recovers; the bulk
    // resend of the filtered failed calls sends both again.
    receiver.set_default(Reply::status(404));
    for n in 2..=3 {
        app.post_event(event("OrderChanged", shop, n, json!({})))
            .await;
    }
    app.wait_for_queue_count(&format!("triggerId={tid}&status=failed"), 2)
        .await;
    receiver.set_default(Reply::status(200));
    browser
        .goto(&format!("/queue?status=failed&trigger={tid}"))
        .await;
    browser.screenshots("queue-failed-filter").await;
    browser.run(CONFIRM_YES).await;
    browser.click("#bulk-resend button[type=submit]").await;
    browser
        .wait_for_text(".notice", "2 failed call(s) queued again")
        .await;
    browser.screenshots("queue-bulk-resent").await;
    let requests = receiver.wait_for_requests(5, WAIT).await;
    assert_eq!(
        requests.len(),
        5,
        "1 + 2 failed + 2 resent; the cancelled call stays unsent"
    );
    app.wait_for_queue_count(&format!("triggerId={tid}&status=succeeded"), 2)
        .await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merge_field_dialog_lists_a_stored_entity_and_then_all_fields_of_the_type() {
    let app = spawn_app_with(Backend::Sqlite, &[]).await;
    let receiver = Receiver::start().await;
    let shop = app.create_shop("Main").await;
    let trigger = app
        .create_trigger(json!({
            "name": "Orders", "eventType": "OrderChanged", "shopId": shop,
            "actions": [{"type": "callWebhook", "url": receiver.url("/erp")}]
        }))
        .await;
    app.post_event(event(
        "OrderChanged",
        shop,
        "4711",
        json!({"OrderCode": "A-4711", "Customer": {"Email": "ann@example.com"}}),
    ))
    .await;
    receiver.wait_for_requests(1, WAIT).await;
    let password = add_user(&app, "admin@example.com", "admin", &[]).await;
    let browser = Browser::start(&app).await;
    browser.sign_in("admin@example.com", &password).await;

    browser.goto(&format!("/triggers/{}", id(&trigger))).await;
    browser.click("#a0-tab-payload").await;
    browser.click("#a0-payload [data-merge-fields]").await;
    browser
        .wait_for_text("#merge-status", "fields of OrderChanged")
        .await;
    // An entity id of a stored event: that entity's paths with their values.
    browser.fill("#merge-entity", "4711").await;
    browser.click("#merge-load").await;
    browser
        .wait_for_text("#merge-status", "for entity 4711")
        .await;
    let listed = browser.find("#merge-list").await.text().await.unwrap();
    assert!(
        listed.contains("entity.OrderCode") && listed.contains("\"A-4711\""),
        "{listed}"
    );
    assert!(
        listed.contains("entity.Customer.Email") && listed.contains("ann@example.com"),
        "{listed}"
    );
    browser.screenshots("merge-fields-entity").await;

    // Show all available merge fields: the type's whole list again, without values.
    browser.click("#merge-all").await;
    browser
        .wait_for_text("#merge-status", "fields of OrderChanged.")
        .await;
    let all = browser.find("#merge-list").await.text().await.unwrap();
    assert!(all.contains("entity.OrderCode"), "{all}");
    assert!(
        !all.contains("A-4711"),
        "the generic list shows no entity's values: {all}"
    );
    let entity = browser
        .run("return document.getElementById('merge-entity').value")
        .await;
    assert_eq!(entity, "");
    browser.screenshots("merge-fields-all").await;
    browser.close().await;
}
