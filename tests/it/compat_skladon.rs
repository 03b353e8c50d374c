//! The Skladon v21 webhook API under `/compat/skladon/v21`, as a client written from
//! `seeds/001_31dec5362fbe551a.txt` uses it.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::catalogs::{compat_request, create_shop_in};
use crate::common::*;
use crate::notifications::SmtpSink;

const BASE: &str = "/compat/skladon/v21";

async fn skladon(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    compat_request(app, method, &format!("{BASE}{path}"), Some(key), &[], body).await
}

/// Asserts a `{statusCode, message}` error.
#[track_caller]
fn assert_skladon_error(answer: &(StatusCode, Value), status: StatusCode) -> String {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["statusCode"], status.as_u16(), "{}", answer.1);
    answer.1["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {}", answer.1))
        .to_owned()
}

both_backends! {
    async fn skladon_webhooks_are_triggers_edited_from_either_side(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let (shop, key) = create_shop_in(&app, "WMS", "skladon").await;
        let body = json!({"url": receiver.url("/orders"), "webhookType": "CREATE_ORDER", "active": true, "method": "POST"});
        let (status, created) = skladon(&app, Method::POST, "/webhooks", &key, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{created}");
        assert_eq!(created["statusCode"], 200);
        assert!(created["message"].is_string());
        let webhook = &created["data"];
        let id = webhook["id"].as_i64().expect("an integer id");
        assert_eq!((webhook["webhookType"].as_str(), webhook["method"].as_str(), webhook["active"].as_bool()), (Some("CREATE_ORDER"), Some("POST"), Some(true)));
        assert_eq!(webhook["url"], receiver.url("/orders"));
        parse_time(&webhook["registeredAt"]);
        assert!(webhook.get("unregisteredAt").is_none(), "{webhook}");

        // It is a trigger of the shop, with Skladon's retry preset.
        let (_, trigger) = app.get_json(&format!("/api/v1/triggers/{id}")).await;
        assert_eq!((trigger["shopId"].as_i64(), trigger["eventType"].as_str()), (Some(shop), Some("CREATE_ORDER")));
        assert_eq!(trigger["actions"][0]["retryPolicy"], "skladon");
        assert_eq!(trigger["actions"][0]["url"], receiver.url("/orders"));

        // Edited in hookflow, seen in Skladon's API; edited in Skladon's, seen in hookflow.
        let mut edited = trigger.clone();
        edited["actions"][0]["url"] = json!(receiver.url("/orders2"));
        for key in ["id", "createdAt", "updatedAt"] {
            edited.as_object_mut().unwrap().remove(key);
        }
        let (status, answer) = app.put_json(&format!("/api/v1/triggers/{id}"), edited).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let (_, got) = skladon(&app, Method::GET, &format!("/webhooks/{id}"), &key, None).await;
        assert_eq!(got["data"]["url"], receiver.url("/orders2"));
        let body = json!({"url": receiver.url("/changes/"), "webhookType": "UPDATE_ORDER_STATUS", "active": true, "method": "GET"});
        let (status, updated) = skladon(&app, Method::PUT, &format!("/webhooks/{id}"), &key, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{updated}");
        assert_eq!((updated["data"]["method"].as_str(), updated["data"]["webhookType"].as_str()), (Some("GET"), Some("UPDATE_ORDER_STATUS")));
        let (_, trigger) = app.get_json(&format!("/api/v1/triggers/{id}")).await;
        assert_eq!((trigger["eventType"].as_str(), trigger["actions"][0]["method"].as_str()), (Some("UPDATE_ORDER_STATUS"), Some("GET")));

        // A GET webhook is called with the entity id appended to its URL.
        app.post_event(event("UPDATE_ORDER_STATUS", shop, "123456", json!({"eshopOrderId": "123456", "status": "shipped"}))).await;
        let got = receiver.wait_for_requests(1, WAIT).await;
        assert_eq!((got[0].method.as_str(), got[0].path.as_str()), ("GET", "/changes/123456"));
        assert!(got[0].body.is_empty());

        // Listing, deactivating, activating, deleting.
        let (_, list) = skladon(&app, Method::GET, "/webhooks", &key, None).await;
        assert_eq!(list["statusCode"], 200);
        assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
        let (_, off) = skladon(&app, Method::PUT, &format!("/webhooks/{id}/deactivate"), &key, None).await;
        assert_eq!(off["data"]["active"], false, "{off}");
        parse_time(&off["data"]["unregisteredAt"]);
        assert_eq!(app.get_json(&format!("/api/v1/triggers/{id}")).await.1["enabled"], false);
        let (_, on) = skladon(&app, Method::PUT, &format!("/webhooks/{id}/activate"), &key, None).await;
        assert_eq!(on["data"]["active"], true, "{on}");
        let (status, deleted) = skladon(&app, Method::DELETE, &format!("/webhooks/{id}"), &key, None).await;
        assert_eq!((status, deleted["statusCode"].as_i64()), (StatusCode::OK, Some(200)), "{deleted}");
        assert!(deleted["data"].is_string());
        assert_skladon_error(&skladon(&app, Method::GET, &format!("/webhooks/{id}"), &key, None).await, StatusCode::NOT_FOUND);
        assert_error(&app.get_json(&format!("/api/v1/triggers/{id}")).await, StatusCode::NOT_FOUND, "not_found");
    }

    async fn skladon_refusals_come_in_skladons_error_shape(backend: Backend) {
        let app = spawn_app_with(backend, &["--admin-token", "admin-secret"]).await;
        let receiver = Receiver::start().await;
        let (shop, key) = create_shop_in(&app, "WMS", "skladon").await;
        let (other, other_key) = create_shop_in(&app, "Other WMS", "skladon").await;
        let (_, shopctrl_key) = create_shop_in(&app, "Shop", "shopctrl").await;
        let good = json!({"url": receiver.url("/h"), "webhookType": "CREATE_PRODUCT", "active": true, "method": "POST"});

        // Authentication: the shop's key, and a hookflow token when `authorization` is sent.
        let path = format!("{BASE}/webhooks");
        let answer = compat_request(&app, Method::GET, &path, None, &[], None).await;
        assert!(assert_skladon_error(&answer, StatusCode::UNAUTHORIZED).contains("x-api-key"));
        let answer = compat_request(&app, Method::GET, &path, Some("hfk_not-a-key"), &[], None).await;
        assert_skladon_error(&answer, StatusCode::UNAUTHORIZED);
        let answer = compat_request(&app, Method::GET, &path, Some(&key), &[("authorization", "Bearer wrong")], None).await;
        assert_skladon_error(&answer, StatusCode::UNAUTHORIZED);
        let answer = compat_request(&app, Method::GET, &path, Some(&key), &[("authorization", "Bearer admin-secret")], None).await;
        assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
        // A user's token acts only for the user's shops, and a viewer's only reads.
        let owner = app.user_with_token("owner@wms.example", "shop_owner_admin", &[shop]).await.1;
        let stranger = app.user_with_token("other@wms.example", "shop_owner_admin", &[other]).await.1;
        let viewer = app.user_with_token("viewer@wms.example", "viewer", &[shop]).await.1;
        let bearer = |t: &str| format!("Bearer {t}");
        let answer = compat_request(&app, Method::GET, &path, Some(&key), &[("authorization", &bearer(&stranger))], None).await;
        assert!(assert_skladon_error(&answer, StatusCode::FORBIDDEN).contains(&format!("shop {shop}")));
        let answer = compat_request(&app, Method::POST, &path, Some(&key), &[("authorization", &bearer(&viewer))], Some(good.clone())).await;
        assert!(assert_skladon_error(&answer, StatusCode::FORBIDDEN).contains("read-only"));
        let answer = compat_request(&app, Method::GET, &path, Some(&key), &[("authorization", &bearer(&viewer))], None).await;
        assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
        let answer = compat_request(&app, Method::POST, &path, Some(&key), &[("authorization", &bearer(&owner))], Some(good.clone())).await;
        assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);

        // Invalid bodies: 400 with a message.
        for (patch, word) in [
            (json!({"webhookType": null}), "webhookType"),
            (json!({"webhookType": "CREATE_INVOICE"}), "webhookType"),
            (json!({"method": "PUT"}), "method"),
            (json!({"url": ""}), "url"),
            (json!({"active": "yes"}), "invalid"),
            (json!({"url": "ftp://example.com/x"}), "url"),
        ] {
            let answer = skladon(&app, Method::POST, "/webhooks", &key, Some(good.clone().with(patch.clone()))).await;
            let message = assert_skladon_error(&answer, StatusCode::BAD_REQUEST);
            assert!(message.contains(word), "{patch}: {message}");
        }
        let answer = compat_request(&app, Method::POST, &path, Some(&key), &[("content-type", "application/json")], None).await;
        assert_skladon_error(&answer, StatusCode::BAD_REQUEST);

        // Unknown ids, other shops' webhooks, and a shop of another catalog.
        let (_, created) = skladon(&app, Method::POST, "/webhooks", &key, Some(good.clone())).await;
        let id = created["data"]["id"].as_i64().unwrap();
        for path in [format!("/webhooks/{}", id + 100), "/webhooks/abc".to_owned(), format!("/webhooks/{id}/activate")] {
            let method = if path.ends_with("activate") { Method::PUT } else { Method::GET };
            let answer = skladon(&app, method, &path, &other_key, None).await;
            assert_skladon_error(&answer, StatusCode::NOT_FOUND);
        }
        assert_eq!(skladon(&app, Method::GET, "/webhooks", &other_key, None).await.1["data"], json!([]));
        let answer = skladon(&app, Method::POST, "/webhooks", &shopctrl_key, Some(good.clone())).await;
        assert!(assert_skladon_error(&answer, StatusCode::BAD_REQUEST).contains("shopctrl"));
        assert_skladon_error(&skladon(&app, Method::PATCH, "/webhooks", &key, None).await, StatusCode::METHOD_NOT_ALLOWED);
        assert_skladon_error(&skladon(&app, Method::GET, "/nothing", &key, None).await, StatusCode::NOT_FOUND);
    }

    async fn a_skladon_login_gives_a_bearer_token_for_the_keys_shop_only(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let (shop, key) = create_shop_in(&app, "WMS", "skladon").await;
        let (other, other_key) = create_shop_in(&app, "Other WMS", "skladon").await;
        let password = "correct horse battery staple";
        let mut users = Vec::new();
        for (email, role, shops) in [
            ("owner@wms.example", "shop_owner_admin", vec![shop]),
            ("viewer@wms.example", "viewer", vec![shop]),
            ("admin@wms.example", "admin", vec![]),
        ] {
            let (status, user) = app.post_json("/api/v1/users", json!({"email": email, "role": role, "shops": shops, "password": password})).await;
            assert_eq!(status, StatusCode::CREATED, "{user}");
            users.push(id(&user));
        }
        let login = |key: String, body: Value| {
            let app = &app;
            async move { skladon(app, Method::POST, "/users/login", &key, Some(body)).await }
        };
        let webhooks = |key: String, token: String, method: Method, body: Option<Value>| {
            let app = &app;
            async move {
                compat_request(app, method, &format!("{BASE}/webhooks"), Some(&key), &[("authorization", &format!("Bearer {token}"))], body).await
            }
        };
        let good = json!({"url": receiver.url("/h"), "webhookType": "CREATE_ORDER", "active": true, "method": "POST"});

        // A login answers a JWT in Skladon's envelope; with it and the key, the webhook routes
        // read and write as that user.
        let (status, answer) = login(key.clone(), json!({"email": "owner@wms.example", "password": password})).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!((answer["statusCode"].as_u64(), answer["data"]["tokenType"].as_str()), (Some(200), Some("Bearer")), "{answer}");
        let token = answer["data"]["token"].as_str().unwrap().to_owned();
        assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
        assert!(parse_time(&answer["data"]["expiresAt"]) > std::time::SystemTime::now());
        let (status, made) = webhooks(key.clone(), token.clone(), Method::POST, Some(good.clone())).await;
        assert_eq!(status, StatusCode::OK, "{made}");
        let (status, listed) = webhooks(key.clone(), token.clone(), Method::GET, None).await;
        assert_eq!((status, listed["data"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{listed}");
        // `username` is read as the email, as Skladon's clients may send it.
        let (status, answer) = login(key.clone(), json!({"username": "owner@wms.example", "password": password})).await;
        assert_eq!(status, StatusCode::OK, "{answer}");

        // The token is scoped to the key's shop: with another shop's key it is refused, even
        // for an admin, whose credentials reach every shop.
        let answer = webhooks(other_key.clone(), token.clone(), Method::GET, None).await;
        assert!(assert_skladon_error(&answer, StatusCode::FORBIDDEN).contains(&format!("shop {shop}")));
        let (_, admin) = login(key.clone(), json!({"email": "admin@wms.example", "password": password})).await;
        let admin_token = admin["data"]["token"].as_str().unwrap().to_owned();
        assert_eq!(webhooks(key.clone(), admin_token.clone(), Method::GET, None).await.0, StatusCode::OK);
        let answer = webhooks(other_key.clone(), admin_token.clone(), Method::GET, None).await;
        assert!(assert_skladon_error(&answer, StatusCode::FORBIDDEN).contains(&format!("not for shop {other}")));
        // A user of one shop cannot log in for another; a viewer's token only reads.
        let answer = login(other_key.clone(), json!({"email": "owner@wms.example", "password": password})).await;
        assert!(assert_skladon_error(&answer, StatusCode::FORBIDDEN).contains(&format!("shop {other}")));
        let (_, viewer) = login(key.clone(), json!({"email": "viewer@wms.example", "password": password})).await;
        let viewer_token = viewer["data"]["token"].as_str().unwrap().to_owned();
        assert_eq!(webhooks(key.clone(), viewer_token.clone(), Method::GET, None).await.0, StatusCode::OK);
        let answer = webhooks(key.clone(), viewer_token, Method::POST, Some(good.clone())).await;
        assert!(assert_skladon_error(&answer, StatusCode::FORBIDDEN).contains("read-only"));

        // A login token is no hookflow API token.
        let (status, _) = app.request_as(Some(&token), reqwest::Method::GET, "/api/v1/triggers", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // Wrong logins come in Skladon's error shape.
        for (key, body, status) in [
            (key.clone(), json!({"email": "owner@wms.example", "password": "wrong"}), StatusCode::UNAUTHORIZED),
            (key.clone(), json!({"email": "nobody@wms.example", "password": password}), StatusCode::UNAUTHORIZED),
            (key.clone(), json!({"password": password}), StatusCode::BAD_REQUEST),
            (key.clone(), json!({"email": "owner@wms.example"}), StatusCode::BAD_REQUEST),
            ("hfk_not-a-key".to_owned(), json!({"email": "owner@wms.example", "password": password}), StatusCode::UNAUTHORIZED),
        ] {
            let answer = login(key, body.clone()).await;
            let message = assert_skladon_error(&answer, status);
            assert!(!message.is_empty(), "{body}");
        }
        let answer = compat_request(&app, Method::POST, &format!("{BASE}/users/login"), None, &[], Some(json!({"email": "owner@wms.example", "password": password}))).await;
        assert!(assert_skladon_error(&answer, StatusCode::UNAUTHORIZED).contains("x-api-key"));
        // A tampered token is refused.
        let mut forged = token.clone();
        forged.push('x');
        assert_skladon_error(&webhooks(key.clone(), forged, Method::GET, None).await, StatusCode::UNAUTHORIZED);

        // A new password ends the tokens issued before it.
        let (status, body) = app.put_json(&format!("/api/v1/users/{}/password", users[0]), json!({"password": "another long passphrase"})).await;
        assert!(status.is_success(), "{status}: {body}");
        assert_skladon_error(&webhooks(key.clone(), token, Method::GET, None).await, StatusCode::UNAUTHORIZED);
    }

    async fn a_skladon_webhook_is_delivered_in_skladons_shape_deactivated_and_mailed_when_retries_run_out_and_reactivated(backend: Backend) {
        let smtp = SmtpSink::start().await;
        let app = spawn_app_with(backend, &["--smtp-url", &smtp.url(), "--smtp-from", "alerts@hookflow.example"]).await;
        let receiver = Receiver::with_script(vec![Reply::status(500), Reply::status(404), Reply::status(301)]).await;
        let (status, made) = app
            .post_json("/api/v1/shops", json!({"name": "WMS", "catalog": "skladon", "notificationEmail": "wms@shop.example"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        let (shop, key) = (id(&made), made["apiKey"]["key"].as_str().unwrap().to_owned());
        let body = json!({"url": receiver.url("/receivings"), "webhookType": "CREATE_RECEIVING", "active": true, "method": "POST"});
        let (_, created) = skladon(&app, Method::POST, "/webhooks", &key, Some(body)).await;
        let id = created["data"]["id"].as_i64().unwrap();
        // A webhook made in a Skladon shop gets Skladon's preset. Its schedule (20 retries over
        // up to 48 hours) is too slow for a test: shortened through the API to two quick
        // retries, the rest of the preset (every unsuccessful status retried, deactivation
        // when retries run out) kept.
        let (_, mut trigger) = app.get_json(&format!("/api/v1/triggers/{id}")).await;
        assert_eq!(trigger["actions"][0]["retryPolicy"], "skladon", "{trigger:#}");
        trigger["actions"][0]["retryPolicy"] = json!({"preset": "skladon", "maxRetries": 2, "initialDelay": 0.05});
        for k in ["id", "createdAt", "updatedAt"] {
            trigger.as_object_mut().unwrap().remove(k);
        }
        assert_eq!(app.put_json(&format!("/api/v1/triggers/{id}"), trigger).await.0, StatusCode::OK);

        let (_, receiving_type) = app.get_json("/api/v1/event-types/CREATE_RECEIVING").await;
        let receiving = receiving_type["example"].clone();
        app.post_event(event("CREATE_RECEIVING", shop, "ESHOP_RECIVING_ID_123", receiving.clone())).await;
        // 500, 404 and 301 alike are "no successful status": three attempts in all.
        let got = receiver.wait_for_requests(3, WAIT).await;
        assert_eq!(got[0].json(), receiving, "the receiving itself, in its API shape");
        assert_eq!(got[2].json(), receiving);

        // Retries ran out: the webhook is inactive in Skladon's API, and events are not sent.
        let webhook = wait_for(WAIT, "the webhook to be deactivated", async || {
            let (_, got) = skladon(&app, Method::GET, &format!("/webhooks/{id}"), &key, None).await;
            (got["data"]["active"] == false).then(|| got["data"].clone())
        })
        .await;
        parse_time(&webhook["unregisteredAt"]);
        assert_eq!(receiver.count(), 3, "no attempt after the last retry");
        // … and a notification email is sent to the shop.
        let mail = wait_for(WAIT, "the deactivation email", async || {
            smtp.mails().into_iter().find(|m| {
                m.header("Subject").is_some_and(|s| s.contains("Webhook deactivated"))
            })
        })
        .await;
        assert_eq!(mail.to, vec!["<wms@shop.example>".to_owned()]);
        let text = mail.body();
        assert!(text.contains(&receiver.url("/receivings")) && text.contains(&format!("(id {id})")), "{text}");
        app.post_event(event("CREATE_RECEIVING", shop, "R2", receiving.clone())).await;
        app.wait_for_queue_count("status=skipped", 1).await;

        // Reactivated over Skladon's API: delivered again.
        let (status, on) = skladon(&app, Method::PUT, &format!("/webhooks/{id}/activate"), &key, None).await;
        assert_eq!((status, on["data"]["active"].as_bool()), (StatusCode::OK, Some(true)), "{on}");
        assert!(on["data"].get("unregisteredAt").is_none(), "{on}");
        app.post_event(event("CREATE_RECEIVING", shop, "R3", receiving.clone())).await;
        let got = receiver.wait_for_requests(4, WAIT).await;
        assert_eq!(got[3].json(), receiving);
        app.wait_for_queue_count("status=succeeded", 1).await;
    }
}
