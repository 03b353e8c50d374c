//! The pages' own queries on both databases, over plain HTTP (the browser tests run on SQLite
//! only): the dashboard, the trigger list's last delivery, the queue page's filters, and a form
//! post with the session's CSRF token.

use reqwest::header::COOKIE;
use reqwest::StatusCode;
use serde_json::json;

use super::add_user;
use super::timing::http_session;
use crate::common::{event, id, spawn_app, webhook_trigger, Receiver, Reply, TestApp};

async fn page(app: &TestApp, session: &str, path: &str) -> (StatusCode, String) {
    let answer = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url(path))
        .header(COOKIE, session)
        .send()
        .await
        .unwrap();
    (answer.status(), answer.text().await.unwrap())
}

both_backends! {
    async fn the_pages_read_the_dashboard_last_deliveries_and_filtered_queue(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main shop").await;
        let other = app.create_shop("Other shop").await;
        for s in [shop, other] {
            app.create_trigger(json!({
                "name": format!("Orders of {s}"), "eventType": "OrderChanged", "shopId": s,
                "actions": [{"type": "callWebhook", "url": receiver.url("/erp")}]
            }))
            .await;
            app.post_event(event("OrderChanged", s, "ORD-77", json!({"OrderId": 77}))).await;
        }
        let calls = app.wait_for_queue_count("status=succeeded", 2).await;
        let mine = calls.iter().find(|c| c["shopId"] == shop).unwrap();
        let password = add_user(&app, "owner@example.com", "shop_owner_admin", &[shop]).await;
        let session = http_session(&app, "owner@example.com", &password).await;

        let (status, html) = page(&app, &session, "/").await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains("Answered 2xx: <strong>1</strong>"), "one call of their shop: {html}");
        assert!(html.contains("id=\"depth-pending\">0<"), "{html}");

        let (_, html) = page(&app, &session, "/triggers").await;
        assert!(html.contains("badge-succeeded") && html.contains(&format!("Orders of {shop}")));
        assert!(!html.contains(&format!("Orders of {other}")), "{html}");

        for query in ["status=succeeded", "q=ORD-77", "shop=", "event_type=OrderChanged"] {
            let (status, html) = page(&app, &session, &format!("/queue?{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query}: {html}");
            assert!(html.contains(&format!("data-id=\"{}\"", id(mine))), "{query}: {html}");
            assert_eq!(html.matches("<tr data-id=").count(), 1, "{query}: only their call");
        }

        // A form post carrying the page's token is done; the call goes out again.
        let (_, html) = page(&app, &session, &format!("/queue/{}", id(mine))).await;
        let token = html
            .split("name=\"_csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        let answer = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(app.url(&format!("/queue/{}/retry", id(mine))))
            .header(COOKIE, &session)
            .form(&[("_csrf", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        app.wait_for_item(id(mine), "the call was sent again", |c| c["attempts"] == 2 && c["status"] == "succeeded").await;
    }

    async fn the_dashboard_links_the_oldest_pending_call_and_the_trigger_list_its_last_answer(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::always(Reply::status(503)).await;
        let shop = app.create_shop("Main shop").await;
        app.create_trigger(webhook_trigger("OrderChanged", &receiver.url("/erp"))).await;
        app.post_event(event("OrderChanged", shop, "ORD-78", json!({"OrderId": 78}))).await;
        // The first attempt failed; at the defaults the retry waits 10 s, so the call pends.
        let item = app.only_item("").await;
        let item = app
            .wait_for_item(id(&item), "attempted once and pending", |c| {
                c["attempts"] == 1 && c["status"] == "pending"
            })
            .await;
        let password = add_user(&app, "admin@example.com", "admin", &[]).await;
        let session = http_session(&app, "admin@example.com", &password).await;

        let (_, html) = page(&app, &session, "/").await;
        let link = format!("<a href=\"/queue/{0}\">#{0}</a>", id(&item));
        assert!(html.contains(&link), "the oldest pending call is linked: {html}");
        assert!(html.contains("waiting ") && html.contains("id=\"depth-pending\">1<"), "{html}");
        assert!(html.contains("(queued 20"), "with the time it was queued: {html}");

        let (_, html) = page(&app, &session, "/triggers").await;
        let last = format!("<a href=\"/queue/{}\"><span class=\"badge badge-pending\">pending</span></a> HTTP 503", id(&item));
        assert!(html.contains(&last), "the last delivery shows its state and answer: {html}");
    }
}
