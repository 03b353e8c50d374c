//! Talking to a [`TestApp`] over its HTTP API: requests as its admin or as someone else, and
//! helpers for what most tests do (make a shop and a trigger, post events, read and wait on
//! the queue), so a test reads as the story it tells.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::fixtures::id;
use crate::common::wait::{poll, WAIT};
use crate::common::TestApp;

/// A request body: JSON, or text sent as JSON as it is (for malformed JSON).
pub enum RequestBody {
    Json(Value),
    Raw(String),
}

/// A response's status and body: JSON, the text when it is not JSON, `null` when empty.
pub async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

impl TestApp {
    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request; the answer body is parsed as JSON (`Null` when empty, a string when not
    /// JSON).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<RequestBody>,
    ) -> (StatusCode, Value) {
        self.request_as(self.token.as_deref(), method, path, body)
            .await
    }

    /// [`TestApp::request`] presenting `token` (or none) instead of the app's admin token.
    pub async fn request_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<RequestBody>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method.clone(), self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        match body {
            Some(RequestBody::Json(value)) => request = request.json(&value),
            Some(RequestBody::Raw(text)) => {
                request = request
                    .header("content-type", "application/json")
                    .body(text)
            }
            None => {}
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        answer(response).await
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, None).await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(RequestBody::Json(body)))
            .await
    }

    /// POSTs a body as-is (for malformed JSON).
    pub async fn post_raw(&self, path: &str, body: &str) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(RequestBody::Raw(body.to_owned())))
            .await
    }

    pub async fn put_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::PUT, path, Some(RequestBody::Json(body)))
            .await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::DELETE, path, None).await
    }

    /// Creates a shop and returns its id.
    pub async fn create_shop(&self, name: &str) -> i64 {
        let (status, body) = self
            .post_json("/api/v1/shops", json!({ "name": name }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "creating shop {name}: {body}");
        body["id"].as_i64().expect("a shop has an id")
    }

    /// Creates a trigger (asserting 201) and returns it.
    pub async fn create_trigger(&self, trigger: Value) -> Value {
        let (status, body) = self.post_json("/api/v1/triggers", trigger.clone()).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "creating trigger {trigger}: {body}"
        );
        body
    }

    /// POSTs one event or an array to `/api/v1/events`.
    pub async fn post_events(&self, events: Value) -> (StatusCode, Value) {
        self.post_json("/api/v1/events", events).await
    }

    /// POSTs one event, asserting 202; returns the answer.
    pub async fn post_event(&self, event: Value) -> Value {
        let (status, body) = self.post_events(event.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "posting {event}: {body}");
        body
    }

    /// `GET /api/v1/queue?<query>` (asserting 200): `{"items", "next"}`.
    pub async fn queue(&self, query: &str) -> Value {
        let path = if query.is_empty() {
            "/api/v1/queue".to_owned()
        } else {
            format!("/api/v1/queue?{query}")
        };
        let (status, body) = self.get_json(&path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// The items of one queue page.
    pub async fn queue_items(&self, query: &str) -> Vec<Value> {
        self.queue(query).await["items"]
            .as_array()
            .expect("a queue page has items")
            .clone()
    }

    /// Calls pending or on the wire, as `hookflow_queue_depth` on `/metrics` counts them: one
    /// grouped query, so one snapshot (two list queries can miss a call moving between them).
    pub async fn unfinished_calls(&self) -> u64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("scraping /metrics")
            .text()
            .await
            .expect("the metrics text");
        text.lines()
            .filter(|l| l.starts_with("hookflow_queue_depth{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// `GET /api/v1/queue/{id}` (asserting 200): the item with its `attemptLog`.
    pub async fn queue_item(&self, id: i64) -> Value {
        let (status, body) = self.get_json(&format!("/api/v1/queue/{id}")).await;
        assert_eq!(status, StatusCode::OK, "GET queue item {id}: {body}");
        body
    }

    /// Waits until queue item `id` has `status`; returns it (with its attempt log).
    pub async fn wait_for_queue_status(&self, id: i64, status: &str) -> Value {
        poll(
            WAIT,
            async || self.queue_item(id).await,
            |item| item["status"] == status,
        )
        .await
        .unwrap_or_else(|last| {
            panic!("queue item {id} did not become {status} within {WAIT:?}; it is {last:#}")
        })
    }

    /// Waits until queue item `id` satisfies `check`; returns it (with its attempt log).
    pub async fn wait_for_item(
        &self,
        id: i64,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        poll(WAIT, async || self.queue_item(id).await, check)
            .await
            .unwrap_or_else(|last| {
                panic!("timed out after {WAIT:?} waiting until {what}; queue item {id} is {last:#}")
            })
    }

    /// Waits until the queue listing for `query` holds exactly `count` items; returns them.
    pub async fn wait_for_queue_count(&self, query: &str, count: usize) -> Vec<Value> {
        poll(
            WAIT,
            async || self.queue_items(query).await,
            |items| items.len() == count,
        )
        .await
        .unwrap_or_else(|last| {
            panic!(
                "queue?{query} did not reach {count} items within {WAIT:?}; it has {}: {:#}",
                last.len(),
                Value::Array(last)
            )
        })
    }

    /// The one queue item of the only call an event queued.
    pub async fn only_item(&self, query: &str) -> Value {
        let items = self.queue_items(query).await;
        assert_eq!(
            items.len(),
            1,
            "expected one queue item for {query}: {items:#?}"
        );
        items.into_iter().next().unwrap()
    }

    /// A user of `role` for `shops`, made over the API as the admin, and an API token of
    /// theirs: `(user id, token)`.
    pub async fn user_with_token(&self, email: &str, role: &str, shops: &[i64]) -> (i64, String) {
        let (status, user) = self
            .post_json(
                "/api/v1/users",
                json!({"email": email, "role": role, "shops": shops}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{user}");
        let (status, token) = self
            .post_json(
                "/api/v1/tokens",
                json!({"name": "tests", "userId": id(&user)}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{token}");
        (id(&user), token["token"].as_str().unwrap().to_owned())
    }
}
