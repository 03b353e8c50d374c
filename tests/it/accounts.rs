//! Accounts: users and roles, API tokens, shop scoping of every API route, the first admin.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::*;

async fn as_user(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.request_as(Some(token), method, path, body.map(RequestBody::Json))
        .await
}

both_backends! {
    async fn a_shop_owner_admin_sees_and_changes_only_their_shops(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let mine = app.create_shop("Mine").await;
        let theirs = app.create_shop("Theirs").await;
        let their_trigger = app
            .create_trigger(
                webhook_trigger("OrderChanged", &receiver.url("/theirs")).with(json!({"shopId": theirs})),
            )
            .await;
        app.post_event(event("OrderChanged", theirs, 1, json!({"OrderId": 1}))).await;
        let their_call = app.wait_for_queue_count("", 1).await[0]["id"].as_i64().unwrap();
        let (_, token) = app.user_with_token("owner@shop.example", "shop_owner_admin", &[mine]).await;

        // Their own shop: a trigger, an event, a call.
        let (status, trigger) = as_user(&app, &token, Method::POST, "/api/v1/triggers", Some(
            webhook_trigger("OrderChanged", &receiver.url("/mine")).with(json!({"shopId": mine})),
        )).await;
        assert_eq!(status, StatusCode::CREATED, "{trigger}");
        let (status, _) = as_user(&app, &token, Method::POST, "/api/v1/events",
            Some(event("OrderChanged", mine, 2, json!({"OrderId": 2})))).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        receiver.wait_for_requests(1, std::time::Duration::from_secs(10)).await;

        // The other shop does not exist for them: 404 on its things, absent from listings.
        let their_trigger_path = format!("/api/v1/triggers/{}", id(&their_trigger));
        for (method, path) in [
            (Method::GET, their_trigger_path.clone()),
            (Method::DELETE, their_trigger_path.clone()),
            (Method::GET, format!("/api/v1/queue/{their_call}")),
            (Method::POST, format!("/api/v1/queue/{their_call}/retry")),
            (Method::GET, format!("/api/v1/shops/{theirs}")),
        ] {
            let answer = as_user(&app, &token, method.clone(), &path, None).await;
            assert_error(&answer, StatusCode::NOT_FOUND, "not_found");
        }
        let answer = as_user(&app, &token, Method::PUT, &their_trigger_path,
            Some(webhook_trigger("OrderChanged", &receiver.url("/x")).with(json!({"shopId": mine})))).await;
        assert_error(&answer, StatusCode::NOT_FOUND, "not_found");
        let (_, triggers) = as_user(&app, &token, Method::GET, "/api/v1/triggers", None).await;
        let names: Vec<_> = triggers["items"].as_array().unwrap().iter().map(|t| t["shopId"].clone()).collect();
        assert_eq!(names, vec![json!(mine)]);
        let (_, queue) = as_user(&app, &token, Method::GET, "/api/v1/queue", None).await;
        assert!(queue["items"].as_array().unwrap().iter().all(|c| c["shopId"] == json!(mine)), "{queue}");
        assert_eq!(queue["items"].as_array().unwrap().len(), 1);
        let (_, events) = as_user(&app, &token, Method::GET, "/api/v1/events", None).await;
        assert!(events["items"].as_array().unwrap().iter().all(|e| e["shopId"] == json!(mine)), "{events}");
        let (_, shops) = as_user(&app, &token, Method::GET, "/api/v1/shops", None).await;
        assert_eq!(shops["items"].as_array().unwrap().len(), 1);

        // Nor can they put anything into it.
        let answer = as_user(&app, &token, Method::POST, "/api/v1/triggers", Some(
            webhook_trigger("OrderChanged", &receiver.url("/x")).with(json!({"shopId": theirs})),
        )).await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        let answer = as_user(&app, &token, Method::POST, "/api/v1/events",
            Some(json!([event("OrderChanged", mine, 3, json!({})), event("OrderChanged", theirs, 3, json!({}))]))).await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "unknown_shop");
        // The refused batch stored nothing, not even its event for their own shop.
        let (_, events) = as_user(&app, &token, Method::GET, "/api/v1/events", None).await;
        assert_eq!(events["items"].as_array().unwrap().len(), 1, "{events}");
        // A trigger for every shop would fire for others' shops too.
        let answer = as_user(&app, &token, Method::POST, "/api/v1/triggers",
            Some(webhook_trigger("OrderChanged", &receiver.url("/x")))).await;
        assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        // Shops and users are the admins'.
        let answer = as_user(&app, &token, Method::POST, "/api/v1/shops", Some(json!({"name": "New"}))).await;
        assert_error(&answer, StatusCode::FORBIDDEN, "forbidden");
        let answer = as_user(&app, &token, Method::GET, "/api/v1/users", None).await;
        assert_error(&answer, StatusCode::FORBIDDEN, "forbidden");
    }

    async fn a_viewer_reads_but_changes_nothing(backend: Backend) {
        let app = spawn_app(backend).await;
        let receiver = Receiver::start().await;
        let shop = app.create_shop("Main").await;
        let trigger = app
            .create_trigger(webhook_trigger("OrderChanged", &receiver.url("/hook")).with(json!({"shopId": shop})))
            .await;
        let (_, token) = app.user_with_token("viewer@shop.example", "viewer", &[]).await;
        let (status, triggers) = as_user(&app, &token, Method::GET, "/api/v1/triggers", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(triggers["items"].as_array().unwrap().len(), 1);
        for (method, path, body) in [
            (Method::POST, "/api/v1/events".to_owned(), Some(event("OrderChanged", shop, 1, json!({})))),
            (Method::DELETE, format!("/api/v1/triggers/{}", id(&trigger)), None),
            (Method::PUT, format!("/api/v1/triggers/{}/deactivate", id(&trigger)), None),
            (Method::POST, "/api/v1/queue/resend".to_owned(), Some(json!({"status": "failed"}))),
        ] {
            let answer = as_user(&app, &token, method, &path, body).await;
            let message = assert_error(&answer, StatusCode::FORBIDDEN, "forbidden");
            assert!(message.contains("read-only"), "{message}");
        }
        // Nothing changed.
        let (status, _) = app.get_json(&format!("/api/v1/triggers/{}", id(&trigger))).await;
        assert_eq!(status, StatusCode::OK);
        let (_, events) = app.get_json("/api/v1/events").await;
        assert_eq!(events["items"], json!([]));
    }

    async fn a_revoked_or_unknown_token_is_refused(backend: Backend) {
        let app = spawn_app(backend).await;
        let (user, token) = app.user_with_token("ops@shop.example", "admin", &[]).await;
        let (status, me) = as_user(&app, &token, Method::GET, "/api/v1/me", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["email"], "ops@shop.example");
        assert_eq!(me["role"], "admin");
        // The token is listed by its prefix, never in full.
        let (_, tokens) = as_user(&app, &token, Method::GET, "/api/v1/tokens", None).await;
        let listed = &tokens["items"][0];
        assert_eq!(listed["userId"], user);
        assert!(token.starts_with(listed["prefix"].as_str().unwrap()));
        assert!(!tokens.to_string().contains(&token));
        assert!(listed["lastUsedAt"].is_string(), "{listed}");

        let (status, _) = as_user(&app, &token, Method::DELETE, &format!("/api/v1/tokens/{}", id(listed)), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let answer = as_user(&app, &token, Method::GET, "/api/v1/me", None).await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
        let answer = as_user(&app, "hf_not-a-token", Method::GET, "/api/v1/me", None).await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
    }

    async fn users_are_validated_and_the_last_admin_stays(backend: Backend) {
        let app = spawn_app(backend).await;
        let answer = app.post_json("/api/v1/users", json!({"email": "nope", "role": "admin"})).await;
        let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(message.starts_with("email:"), "{message}");
        assert_eq!(answer.1["error"]["field"], "email");
        let answer = app.post_json("/api/v1/users", json!({"email": "a@b.example", "role": "owner"})).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "bad_request");
        let answer = app.post_json("/api/v1/users", json!({"email": "a@b.example", "role": "viewer", "password": "short"})).await;
        assert_eq!(answer.1["error"]["field"], "password", "{}", answer.1);
        let answer = app.post_json("/api/v1/users", json!({"email": "a@b.example", "role": "viewer", "shops": [42]})).await;
        assert_eq!(answer.1["error"]["field"], "shops[0]", "{}", answer.1);

        let (status, admin) = app.post_json("/api/v1/users", json!({"email": "Boss@Shop.example", "role": "admin"})).await;
        assert_eq!(status, StatusCode::CREATED, "{admin}");
        assert_eq!(admin["email"], "boss@shop.example");
        assert!(admin["password"].as_str().is_some_and(|p| p.len() >= 16), "a generated password is shown once: {admin}");
        let answer = app.post_json("/api/v1/users", json!({"email": "boss@shop.example", "role": "viewer"})).await;
        assert_error(&answer, StatusCode::CONFLICT, "conflict");
        // Listings never show passwords or hashes.
        let (_, users) = app.get_json("/api/v1/users").await;
        assert!(!users.to_string().contains("argon2"), "{users}");
        assert!(users["items"][0].get("password").is_none());

        let path = format!("/api/v1/users/{}", id(&admin));
        let answer = app.put_json(&path, json!({"role": "viewer"})).await;
        assert_error(&answer, StatusCode::CONFLICT, "conflict");
        let answer = app.delete(&path).await;
        assert_error(&answer, StatusCode::CONFLICT, "conflict");
    }

    async fn the_cli_adds_a_user_who_can_then_use_the_api(backend: Backend) {
        let app = spawn_app(backend).await;
        let shop = app.create_shop("Main").await;
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookflow"))
            .args(["user", "add", "--email", "cli@shop.example", "--role", "shop_owner_admin",
                   "--shop", &shop.to_string(), "--database-url", &app.db().url])
            .env_remove("HOOKFLOW_USER_PASSWORD")
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        let password = stdout
            .lines()
            .find_map(|l| l.strip_prefix("password: "))
            .unwrap_or_else(|| panic!("no generated password printed: {stdout}"));
        assert_eq!(password.len(), 16);
        let (_, users) = app.get_json("/api/v1/users").await;
        let user = &users["items"][0];
        assert_eq!(user["email"], "cli@shop.example");
        assert_eq!(user["role"], "shop_owner_admin");
        assert_eq!(user["shops"], json!([shop]));

        // A wrong role is refused with the roles named.
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookflow"))
            .args(["user", "add", "--email", "x@shop.example", "--role", "owner", "--database-url", &app.db().url])
            .output()
            .await
            .unwrap();
        assert!(!output.status.success());
        assert!(String::from_utf8_lossy(&output.stderr).contains("shop_owner_admin"));
    }
}

#[tokio::test]
async fn the_first_start_without_an_admin_token_creates_an_admin_once() {
    let db = TestDb::new(Backend::Sqlite).await;
    let app = TestApp::spawn_binary_with(&db, &["--no-default", "--admin-token"]).await;
    // Printed before the address line, so it is there once the app has started.
    let line = app
        .stdout_line_containing("first start:")
        .expect("a first start prints the admin account it made");
    assert!(line.contains("admin@localhost"), "{line}");
    // Without a token the API is closed.
    let answer = app.get_json("/api/v1/shops").await;
    assert_error(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
    app.stop().await;
    // The second start finds the admin and creates nobody.
    let app = TestApp::spawn_binary_with(&db, &["--no-default", "--admin-token"]).await;
    assert_eq!(app.stdout_line_containing("first start:"), None);
}

both_backends! {
    async fn api_tokens_can_expire_and_are_refused_from_the_moment_they_do(backend: Backend) {
        let app = spawn_app(backend).await;
        let (user, _) = app.user_with_token("ops@shop.example", "admin", &[]).await;
        for days in [0, 3651] {
            let answer = app
                .post_json("/api/v1/tokens", json!({"name": "x", "userId": user, "expiresInDays": days}))
                .await;
            let message = assert_error(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
            assert!(message.contains("3650"), "{message}");
            assert_eq!(answer.1["error"]["field"], "expiresInDays", "{}", answer.1);
        }
        let (status, created) = app
            .post_json("/api/v1/tokens", json!({"name": "quarterly", "userId": user, "expiresInDays": 30}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let expires = parse_time(&created["expiresAt"]);
        let in_30_days = std::time::SystemTime::now() + std::time::Duration::from_secs(30 * 86_400);
        let off = in_30_days
            .duration_since(expires)
            .or_else(|_| expires.duration_since(in_30_days))
            .unwrap();
        assert!(off < std::time::Duration::from_secs(60), "{created}");
        let token = created["token"].as_str().unwrap().to_owned();
        let (_, listed) = app.get_json("/api/v1/tokens?all=true").await;
        let row = listed["items"].as_array().unwrap().iter().find(|t| t["id"] == created["id"]).unwrap();
        assert_eq!(row["expiresAt"], created["expiresAt"]);

        // Make it expire in a moment (as time would), use it while it lasts — it is cached then
        // — and it is refused from its expiry on, long before the cache would forget it (10 s).
        let db = sea_orm::Database::connect(app.db().url.as_str()).await.unwrap();
        let soon = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            + 1_500;
        sea_orm::ConnectionTrait::execute_unprepared(
            &db,
            &format!("UPDATE api_tokens SET expires_at = {soon} WHERE id = {}", id(&created)),
        )
        .await
        .unwrap();
        let (status, _) = as_user(&app, &token, Method::GET, "/api/v1/me", None).await;
        assert_eq!(status, StatusCode::OK, "valid until it expires");
        let started = std::time::Instant::now();
        wait_until(WAIT, "the expired token is refused", async || {
            as_user(&app, &token, Method::GET, "/api/v1/me", None).await.0 == StatusCode::UNAUTHORIZED
        })
        .await;
        assert!(started.elapsed() < std::time::Duration::from_secs(8), "refused only when the cache forgot it");
        // A token without expiry is listed without one.
        let (_, forever) = app.post_json("/api/v1/tokens", json!({"name": "ci", "userId": user})).await;
        assert!(forever.get("expiresAt").is_none(), "{forever}");
    }

    async fn a_generated_password_must_be_changed_before_anything_else(backend: Backend) {
        let app = spawn_app(backend).await;
        let (status, created) = app
            .post_json("/api/v1/users", json!({"email": "new@shop.example", "role": "viewer"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(created["mustChangePassword"], true, "{created}");
        let generated = created["password"].as_str().unwrap().to_owned();
        // A password the admin chose is the user's to keep.
        let (_, chosen) = app
            .post_json("/api/v1/users", json!({"email": "set@shop.example", "role": "viewer", "password": "Chosen-by-admin-1"}))
            .await;
        assert_eq!(chosen["mustChangePassword"], false, "{chosen}");

        let cookie = crate::browser::http_session(&app, "new@shop.example", &generated).await;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let get = |path: &str| client.get(app.url(path)).header(reqwest::header::COOKIE, &cookie).send();
        for page in ["/", "/triggers", "/queue"] {
            let answer = get(page).await.unwrap();
            assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{page}");
            assert_eq!(answer.headers()["location"], "/account/password", "{page}");
        }
        let answer = get("/api/v1/shops").await.unwrap();
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
        let body: Value = answer.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("password"), "{body}");
        let me: Value = get("/api/v1/me").await.unwrap().json().await.unwrap();
        assert_eq!(me["email"], "new@shop.example");
        let page = get("/account/password").await.unwrap().text().await.unwrap();
        assert!(page.contains("id=\"must-change\""), "{page}");

        // Changed on the form: the other pages open, and the old password no longer signs in.
        let csrf = page
            .split("name=\"_csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        let answer = client
            .post(app.url("/account/password"))
            .header(reqwest::header::COOKIE, &cookie)
            .form(&[("_csrf", csrf.as_str()), ("current", generated.as_str()), ("password", "My-own-password-1"), ("repeat", "My-own-password-1")])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        let fresh = answer
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next())
            .find(|c| c.starts_with("hookflow_session="))
            .expect("a new session for this browser")
            .to_owned();
        let answer = client.get(app.url("/triggers")).header(reqwest::header::COOKIE, &fresh).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        let (_, user) = app.get_json(&format!("/api/v1/users/{}", id(&created))).await;
        assert_eq!(user["mustChangePassword"], false, "{user}");
        let old = crate::browser::post_login(&app, "new@shop.example", &generated).await;
        assert_eq!(old.status(), StatusCode::OK, "the generated password is refused (the form again)");
    }
}
