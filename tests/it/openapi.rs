//! The OpenAPI document: served without a token, equal to the committed `docs/openapi.json`,
//! complete (every operation with its errors, the bearer scheme, an example per request body),
//! true of real answers, and shown at `/docs` by a page that loads nothing from elsewhere.
//!
//! When the API changes, regenerate the committed copy with
//! `UPDATE_OPENAPI=1 cargo nextest run --workspace -E 'test(/openapi/)'` and review the diff.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::*;

const TOKEN: &str = "openapi-test-token";

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json")
}

/// GETs `path` without any credentials.
async fn get_anonymously(app: &TestApp, path: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(app.url(path))
        .send()
        .await
        .unwrap()
}

async fn served_document(app: &TestApp) -> (String, Value) {
    let answer = get_anonymously(app, "/api/v1/openapi.json").await;
    assert_eq!(
        answer.status(),
        StatusCode::OK,
        "the document needs no token"
    );
    assert!(answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let text = answer.text().await.unwrap();
    let value = serde_json::from_str(&text).expect("the document is JSON");
    (text, value)
}

/// Every operation of the document: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                out.push((method.clone(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// Validates `instance` against the document's response schema of an operation and status.
#[track_caller]
fn assert_matches_schema(doc: &Value, method: &str, path: &str, status: &str, instance: &Value) {
    let schema =
        &doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {path} documents no JSON body for {status}"
    );
    // The schema's references point into the document's components: validate from a root
    // that carries them.
    let mut root = schema.clone();
    root["components"] = doc["components"].clone();
    let validator = jsonschema::draft202012::new(&root)
        .unwrap_or_else(|e| panic!("{method} {path} {status}: the schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} answered {status} with a body its schema refuses:\n{}\nbody: {instance:#}",
        errors.join("\n")
    );
}

both_backends! {
    async fn the_served_document_is_the_committed_one(backend: Backend) {
        let app = spawn_app_with(backend, &["--admin-token", TOKEN]).await;
        let (served, _) = served_document(&app).await;
        let path = committed_path();
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if served == committed {
            return;
        }
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &served).unwrap();
            return;
        }
        let (line, (want, got)) = committed
            .lines()
            .zip(served.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, pair)| (i + 1, pair))
            .unwrap_or((committed.lines().count().min(served.lines().count()) + 1, ("(end)", "(end)")));
        panic!(
            "docs/openapi.json differs from the document the server generates (first at line \
             {line}: committed {want:?}, generated {got:?}).\nIf the API change is meant, \
             regenerate it with\n    UPDATE_OPENAPI=1 cargo nextest run --workspace -E \
             'test(/openapi/)'\nand commit the file."
        );
    }

    async fn the_document_describes_every_operation_with_auth_errors_and_examples(backend: Backend) {
        let app = spawn_app_with(backend, &["--admin-token", TOKEN]).await;
        let (_, doc) = served_document(&app).await;
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "OpenAPI 3.1");
        assert_eq!(
            doc["components"]["securitySchemes"]["bearerAuth"],
            json!({"type": "http", "scheme": "bearer", "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"]})
        );
        assert_eq!(doc["security"], json!([{"bearerAuth": []}]));
        let error = &doc["components"]["schemas"]["ErrorDetail"];
        assert_eq!(error["required"], json!(["code", "message"]), "{error}");
        assert!(error["properties"]["field"].is_object(), "{error}");

        let ops = operations(&doc);
        // The routes of the README's API table, at least.
        for (method, path) in [
            ("get", "/api/v1/shops"), ("post", "/api/v1/shops"), ("get", "/api/v1/shops/{id}"),
            ("put", "/api/v1/shops/{id}"), ("get", "/api/v1/event-types"),
            ("get", "/api/v1/event-types/{name}"), ("get", "/api/v1/event-types/{name}/merge-fields"),
            ("get", "/api/v1/event-types/{name}/schema"), ("post", "/api/v1/payloads/preview"),
            ("post", "/api/v1/events"), ("get", "/api/v1/events"), ("get", "/api/v1/events/{id}"),
            ("post", "/api/v1/events/{id}/resend"), ("get", "/api/v1/triggers"),
            ("post", "/api/v1/triggers"), ("get", "/api/v1/triggers/{id}"),
            ("put", "/api/v1/triggers/{id}"), ("delete", "/api/v1/triggers/{id}"),
            ("put", "/api/v1/triggers/{id}/activate"), ("put", "/api/v1/triggers/{id}/deactivate"),
            ("post", "/api/v1/triggers/{id}/actions/{index}/reveal-secret"),
            ("put", "/api/v1/triggers/{id}/actions/{index}/activate"),
            ("put", "/api/v1/triggers/{id}/actions/{index}/deactivate"),
            ("get", "/api/v1/queue"), ("get", "/api/v1/queue/{id}"), ("post", "/api/v1/queue/{id}/retry"),
            ("post", "/api/v1/queue/{id}/cancel"), ("post", "/api/v1/queue/resend"),
            ("get", "/api/v1/alerts"), ("post", "/api/v1/alerts/{id}/ack"),
            ("get", "/api/v1/me"), ("get", "/api/v1/users"), ("post", "/api/v1/users"),
            ("get", "/api/v1/users/{id}"), ("put", "/api/v1/users/{id}"),
            ("delete", "/api/v1/users/{id}"), ("put", "/api/v1/users/{id}/password"),
            ("get", "/api/v1/tokens"), ("post", "/api/v1/tokens"), ("delete", "/api/v1/tokens/{id}"),
            ("get", "/api/v1/catalogs"), ("post", "/api/v1/event-types"),
            ("put", "/api/v1/event-types/{name}"), ("delete", "/api/v1/event-types/{name}"),
            ("post", "/api/v1/shops/{id}/api-key"),
        ] {
            assert!(
                ops.iter().any(|(m, p, _)| m == method && p == path),
                "the document lacks {method} {path}"
            );
        }
        for (method, path, op) in &ops {
            let name = format!("{} {path}", method.to_uppercase());
            assert!(path.starts_with("/api/v1/"), "{name}: outside /api/v1");
            assert!(op["operationId"].is_string(), "{name}: no operationId");
            assert!(op["tags"][0].is_string(), "{name}: no tag");
            assert!(op["summary"].is_string(), "{name}: no summary");
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.keys().any(|s| s.starts_with('2')), "{name}: no success answer");
            for status in ["400", "401", "500"] {
                assert_eq!(
                    responses[status]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{name}: {status} is not the error body"
                );
            }
            // Every path parameter is described.
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let param = segment.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    op["parameters"].as_array().is_some_and(|ps| ps
                        .iter()
                        .any(|p| p["name"] == param && p["in"] == "path" && p["required"] == true)),
                    "{name}: path parameter {param} is not described"
                );
            }
            if let Some(body) = op.get("requestBody") {
                let media = &body["content"]["application/json"];
                assert!(media["schema"].is_object(), "{name}: request body without a schema");
                assert!(media["example"].is_object() || media["example"].is_array(), "{name}: request body without an example");
            }
        }
    }

    async fn real_answers_match_the_document(backend: Backend) {
        let app = spawn_app_with(backend, &["--admin-token", TOKEN]).await;
        let (_, doc) = served_document(&app).await;
        let receiver = Receiver::start().await;

        let (status, shop) = app.post_json("/api/v1/shops", json!({"name": "Main", "notificationEmail": "ops@example.com"})).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_matches_schema(&doc, "post", "/api/v1/shops", "201", &shop);
        let shop_id = id(&shop);
        let (_, shops) = app.get_json("/api/v1/shops").await;
        assert_matches_schema(&doc, "get", "/api/v1/shops", "200", &shops);

        // A trigger with every kind of secret, so the masked forms are checked too.
        let (status, trigger) = app.post_json("/api/v1/triggers", json!({
            "name": "Orders to ERP", "eventType": "OrderChanged", "shopId": shop_id,
            "condition": "entity.OrderId > 0",
            "actions": [{
                "type": "callWebhook", "url": receiver.url("/hook"), "hmacSecret": "generate",
                "basicAuth": {"username": "erp", "password": "s3cret"},
                "uniqueQueueItems": true, "retryPolicy": "shopctrl",
                "headers": {"X-Order": "{{ entity.OrderId }}"}
            }, {
                "type": "callWebhook", "url": receiver.url("/plain"), "method": "GET",
                "retryPolicy": {"maxRetries": 2, "initialDelay": 1.5, "retryOn4xx": [409]}
            }]
        })).await;
        assert_eq!(status, StatusCode::CREATED, "{trigger}");
        assert_matches_schema(&doc, "post", "/api/v1/triggers", "201", &trigger);
        let tid = id(&trigger);
        let (_, t) = app.put_json(&format!("/api/v1/triggers/{tid}/actions/1/deactivate"), json!({})).await;
        assert_matches_schema(&doc, "put", "/api/v1/triggers/{id}/actions/{index}/deactivate", "200", &t);
        let (_, t) = app.get_json(&format!("/api/v1/triggers/{tid}")).await;
        assert_eq!(t["actions"][1]["active"], false, "{t}");
        assert_matches_schema(&doc, "get", "/api/v1/triggers/{id}", "200", &t);
        let (_, list) = app.get_json("/api/v1/triggers").await;
        assert_matches_schema(&doc, "get", "/api/v1/triggers", "200", &list);
        let (_, t) = app.put_json(&format!("/api/v1/triggers/{tid}/activate?requeueFailed=true"), json!({})).await;
        assert_matches_schema(&doc, "put", "/api/v1/triggers/{id}/activate", "200", &t);
        let (_, secret) = app.post_json(&format!("/api/v1/triggers/{tid}/actions/0/reveal-secret"), json!({})).await;
        assert_matches_schema(&doc, "post", "/api/v1/triggers/{id}/actions/{index}/reveal-secret", "200", &secret);

        let (status, one) = app.post_events(event("OrderChanged", shop_id, 7, json!({"OrderId": 7}))).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_matches_schema(&doc, "post", "/api/v1/events", "202", &one);
        let (_, batch) = app.post_events(json!([event("OrderChanged", shop_id, 8, json!({"OrderId": 8})),
                                                 event("OrderChanged", shop_id, "x-9", json!({}))])).await;
        assert_matches_schema(&doc, "post", "/api/v1/events", "202", &batch);
        receiver.wait_for_requests(1, std::time::Duration::from_secs(10)).await;

        let (_, queue) = app.get_json("/api/v1/queue").await;
        assert_matches_schema(&doc, "get", "/api/v1/queue", "200", &queue);
        let call = queue["items"][0]["id"].as_i64().unwrap();
        let item = app.wait_for_queue_status(call, "succeeded").await;
        assert_matches_schema(&doc, "get", "/api/v1/queue/{id}", "200", &item);
        let (_, retried) = app.post_json(&format!("/api/v1/queue/{call}/retry"), json!({})).await;
        assert_matches_schema(&doc, "post", "/api/v1/queue/{id}/retry", "200", &retried);
        let (_, events) = app.get_json("/api/v1/events?includePayload=true&includeAttempts=true").await;
        assert_matches_schema(&doc, "get", "/api/v1/events", "200", &events);
        let eid = id(&events["items"][0]);
        let (_, ev) = app.get_json(&format!("/api/v1/events/{eid}?includeAttempts=true")).await;
        assert_matches_schema(&doc, "get", "/api/v1/events/{id}", "200", &ev);
        let (_, resent) = app.post_json("/api/v1/queue/resend", json!({"triggerId": tid})).await;
        assert_matches_schema(&doc, "post", "/api/v1/queue/resend", "200", &resent);

        let (_, types) = app.get_json("/api/v1/event-types").await;
        assert_matches_schema(&doc, "get", "/api/v1/event-types", "200", &types);
        let (_, catalogs) = app.get_json("/api/v1/catalogs").await;
        assert_matches_schema(&doc, "get", "/api/v1/catalogs", "200", &catalogs);
        let (status, custom) = app.post_json("/api/v1/event-types", json!({
            "name": "LoyaltyPointsChanged", "description": "Points changed.",
            "schema": {"type": "object", "properties": {"Points": {"type": "integer"}}}})).await;
        assert_eq!(status, StatusCode::CREATED, "{custom}");
        assert_matches_schema(&doc, "post", "/api/v1/event-types", "201", &custom);
        let (_, rotated) = app.post_json(&format!("/api/v1/shops/{shop_id}/api-key"), json!({})).await;
        assert_matches_schema(&doc, "post", "/api/v1/shops/{id}/api-key", "200", &rotated);
        let (_, fields) = app.get_json(&format!("/api/v1/event-types/OrderChanged/merge-fields?shopId={shop_id}&entityId=7")).await;
        assert_matches_schema(&doc, "get", "/api/v1/event-types/{name}/merge-fields", "200", &fields);
        let (_, preview) = app.post_json("/api/v1/payloads/preview", json!({
            "eventType": "OrderChanged", "mimeType": "application/xml", "body": "<o>{{ entity.OrderId }}</o>"})).await;
        assert_matches_schema(&doc, "post", "/api/v1/payloads/preview", "200", &preview);
        let (_, alerts) = app.get_json("/api/v1/alerts").await;
        assert_matches_schema(&doc, "get", "/api/v1/alerts", "200", &alerts);

        // Accounts: the caller, a user with a generated password, a token.
        let (_, me) = app.get_json("/api/v1/me").await;
        assert_matches_schema(&doc, "get", "/api/v1/me", "200", &me);
        let (status, user) = app.post_json("/api/v1/users", json!({"email": "ops@example.com", "role": "viewer"})).await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        assert_matches_schema(&doc, "post", "/api/v1/users", "201", &user);
        let (_, users) = app.get_json("/api/v1/users").await;
        assert_matches_schema(&doc, "get", "/api/v1/users", "200", &users);
        let (status, token) = app.post_json("/api/v1/tokens", json!({"name": "ERP sync", "userId": id(&user)})).await;
        assert_eq!(status, StatusCode::CREATED, "{token}");
        assert_matches_schema(&doc, "post", "/api/v1/tokens", "201", &token);
        let (_, tokens) = app.get_json("/api/v1/tokens?all=true").await;
        assert_matches_schema(&doc, "get", "/api/v1/tokens", "200", &tokens);

        // Errors, in the documented shape.
        let missing = app.get_json("/api/v1/triggers/999999").await;
        assert_matches_schema(&doc, "get", "/api/v1/triggers/{id}", "404", &missing.1);
        let invalid = app.post_json("/api/v1/triggers", json!({"name": "x", "eventType": "OrderChanged", "actions": [{"type": "callWebhook", "url": "not a url"}]})).await;
        assert_eq!(invalid.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", invalid.1);
        assert_matches_schema(&doc, "post", "/api/v1/triggers", "422", &invalid.1);
        let unauthorized = get_anonymously(&app, "/api/v1/shops").await;
        assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
        let body: Value = unauthorized.json().await.unwrap();
        assert_matches_schema(&doc, "get", "/api/v1/shops", "401", &body);
    }

    async fn the_reference_page_shows_every_operation_and_loads_nothing_from_elsewhere(backend: Backend) {
        let app = spawn_app_with(backend, &["--admin-token", TOKEN]).await;
        let (_, doc) = served_document(&app).await;
        let answer = get_anonymously(&app, "/docs").await;
        assert_eq!(answer.status(), StatusCode::OK, "the page needs no token");
        assert!(answer.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let page = answer.text().await.unwrap();
        for (method, path, _) in operations(&doc) {
            assert!(page.contains(&format!("<code>{path}</code>")), "the page lacks {method} {path}");
        }
        for schema in doc["components"]["schemas"].as_object().unwrap().keys() {
            assert!(page.contains(&format!("id=\"schema-{schema}\"")), "the page lacks schema {schema}");
        }
        // Nothing to fetch from elsewhere: no script, no image or font; its links are its
        // stylesheet and icon among the server's own static files (inline styles are refused
        // by the Content-Security-Policy).
        let lower = page.to_lowercase();
        assert!(!lower.contains("<script"), "the page runs no script");
        for attribute in ["src=", "@import", "url(", "<style"] {
            assert!(!lower.contains(attribute), "the page loads something ({attribute})");
        }
        for link in lower.split("<link").skip(1) {
            assert!(link.contains("href=\"/static/"), "the page links to something else: <link{}", &link[..link.find('>').unwrap_or(link.len())]);
        }
        assert!(!lower.contains("href=\"http") && !lower.contains("href=\"//"), "every link stays on the server");
    }
}

// The document says what the server enforces: requests it allows are accepted, requests it
// forbids are refused (what schemathesis's `--checks all` found, each as a sentence).
both_backends! {
    async fn integers_written_with_a_zero_fraction_are_integers(backend: Backend) {
        let app = spawn_app(backend).await;
        let shop = app.create_shop("Main shop").await;
        let trigger = json!({"name": "Orders", "eventType": "OrderChanged", "shopId": shop as f64,
            "priority": 7.0, "actions": [{"type": "callWebhook", "url": "https://erp.example.com/h",
            "retryPolicy": {"maxRetries": 3.0, "retryOn4xx": [409.0]}}]});
        let (status, saved) = app.post_json("/api/v1/triggers", trigger).await;
        assert_eq!(status, StatusCode::CREATED, "{saved}");
        assert_eq!(saved["priority"], json!(7));
        assert_eq!(saved["actions"][0]["retryPolicy"]["maxRetries"], json!(3));
        // An entity id and shop id as floats; the entity's own numbers stay as sent.
        let (status, ingested) = app.post_events(json!({"eventType": "OrderChanged",
            "shopId": 1.0, "entityId": 42.0, "entityData": {"OrderId": 42, "Total": 6.0}})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{ingested}");
        let (_, event) = app.get_json(&format!("/api/v1/events/{}?includePayload=true", ingested["eventId"])).await;
        assert_eq!(event["entityId"], json!("42"));
        assert_eq!(event["entityData"]["Total"].to_string(), "6.0");
        // A fraction is no integer.
        let (status, _) = app.post_json("/api/v1/tokens", json!({"name": "t", "userId": 1.5})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    async fn what_the_document_forbids_is_refused(backend: Backend) {
        let app = spawn_app(backend).await;
        app.create_shop("Main shop").await;
        // entityId is an int64.
        let (status, body) = app.post_events(json!({"eventType": "OrderChanged", "shopId": 1,
            "entityId": 9_223_372_036_854_775_808u64})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["field"], "entityId");
        // An event type's schema is an object, not a boolean schema.
        let (status, body) = app.post_json("/api/v1/event-types",
            json!({"name": "PointsChanged", "schema": false})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["field"], "schema");
        // Names need something besides blanks, and count characters as sent.
        let (status, body) = app.post_json("/api/v1/triggers",
            webhook_trigger("OrderChanged", "https://erp.example.com/h").with(json!({"name": " \t "}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (status, body) = app.post_json("/api/v1/triggers",
            webhook_trigger("OrderChanged", "https://erp.example.com/h").with(json!({"name": "é".repeat(200)}))).await;
        assert_eq!(status, StatusCode::CREATED, "200 characters are allowed, whatever their bytes: {body}");
        let (status, _) = app.post_json("/api/v1/tokens", json!({"name": "a".repeat(101), "userId": 1})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    async fn the_document_states_the_limits_the_server_checks(backend: Backend) {
        let app = spawn_app(backend).await;
        let (_, doc) = served_document(&app).await;
        let schemas = &doc["components"]["schemas"];
        let trigger = &schemas["TriggerIn"]["properties"];
        assert_eq!(trigger["name"]["maxLength"], 200);
        assert_eq!(trigger["actions"]["minItems"], 1);
        assert_eq!(trigger["actions"]["maxItems"], 20);
        assert_eq!(schemas["TokenIn"]["properties"]["name"]["maxLength"], 100);
        assert_eq!(schemas["PasswordIn"]["properties"]["password"]["minLength"], 10);
        assert_eq!(schemas["UserIn"]["properties"]["email"]["maxLength"], 254);
        assert!(schemas["ShopIn"]["properties"]["catalog"]["pattern"].as_str().unwrap().contains("skladon"));
        let entity_id = &schemas["EventIn"]["properties"]["entityId"]["oneOf"];
        assert_eq!(entity_id[0]["maxLength"], 255);
        assert_eq!(entity_id[1]["format"], "int64");
        // The 401 says what happens without a caller, with or without --admin-token.
        let unauthorized = doc["paths"]["/api/v1/triggers"]["get"]["responses"]["401"]["description"]
            .as_str().unwrap();
        assert!(unauthorized.contains("No caller"), "{unauthorized}");
    }

    async fn a_range_that_ends_before_it_starts_resends_nothing(backend: Backend) {
        let app = spawn_app(backend).await;
        let (status, body) = app.post_json("/api/v1/queue/resend",
            json!({"from": "2026-11-27T00:00:00Z", "to": "2000-01-01T00:00:00Z"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["requeued"], 0);
    }

    async fn the_admin_token_has_no_tokens_of_its_own(backend: Backend) {
        let app = spawn_app(backend).await;
        let (status, list) = app.get_json("/api/v1/tokens").await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["items"], json!([]));
        let (status, body) = app.post_json("/api/v1/tokens", json!({"name": "mine"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["field"], "userId");
    }
}
