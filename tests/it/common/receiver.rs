//! A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records every request and
//! answers from a script of [`Reply`]s, so a test can make an endpoint fail, hang or recover
//! exactly when it wants to.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;

use crate::common::wait::poll;

/// Opens held replies when the test says so (see [`Reply::held`]).
#[derive(Clone)]
pub struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

impl Gate {
    pub fn new() -> Gate {
        Gate(Arc::new(tokio::sync::watch::channel(false).0))
    }

    /// Releases every reply waiting on this gate, now and later.
    pub fn open(&self) {
        self.0.send_replace(true);
    }

    async fn pass(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|open| *open).await;
    }
}

impl Default for Gate {
    fn default() -> Self {
        Gate::new()
    }
}

/// How the receiver answers one request.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub delay: Option<Duration>,
    pub gate: Option<Gate>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// Answers `status` at once.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            delay: None,
            gate: None,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// Answers 200 after `delay`.
    pub fn delay(delay: Duration) -> Reply {
        Reply::status(200).after(delay)
    }

    /// Answers 200 once `gate` is opened.
    pub fn held(gate: &Gate) -> Reply {
        Reply {
            gate: Some(gate.clone()),
            ..Reply::status(200)
        }
    }

    /// The same reply, sent only after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = Some(delay);
        self
    }

    pub fn body(mut self, body: &str) -> Reply {
        self.body = body.to_owned();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn webhook_id(&self) -> &str {
        self.header("webhook-id")
            .unwrap_or_else(|| panic!("request without webhook-id: {self:?}"))
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("the body is UTF-8")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }
}

struct ReceiverState {
    requests: Vec<Recorded>,
    script: VecDeque<Reply>,
    default: Reply,
}

/// A real HTTP server on 127.0.0.1 that records every request and answers from its script,
/// then with its default reply (200 unless set).
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Answers 200 to everything.
    pub async fn start() -> Receiver {
        Receiver::with_script(Vec::new()).await
    }

    /// Answers with `script` in order, then 200.
    pub async fn with_script(script: Vec<Reply>) -> Receiver {
        Receiver::scripted(script, Reply::status(200)).await
    }

    /// Answers `reply` to everything.
    pub async fn always(reply: Reply) -> Receiver {
        Receiver::scripted(Vec::new(), reply).await
    }

    /// Answers with `script` in order, then `default`.
    pub async fn scripted(script: Vec<Reply>, default: Reply) -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState {
            requests: Vec::new(),
            script: script.into(),
            default,
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the receiver");
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new()
            .fallback(receive)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver { addr, state, task }
    }

    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().unwrap().requests.len()
    }

    /// Appends replies to the script.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Changes the reply once the script is used up.
    pub fn set_default(&self, reply: Reply) {
        self.state.lock().unwrap().default = reply;
    }

    /// Waits until at least `n` requests arrived; returns all of them.
    pub async fn wait_for_requests(&self, n: usize, deadline: Duration) -> Vec<Recorded> {
        let requests = async || self.requests();
        poll(deadline, requests, |got| got.len() >= n)
            .await
            .unwrap_or_else(|got| {
                let seen: Vec<String> = got
                    .iter()
                    .map(|r| format!("{} {}", r.method, r.path))
                    .collect();
                panic!(
                    "the receiver got {} of {n} requests within {deadline:?}: {seen:#?}",
                    got.len()
                )
            })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    axum::extract::State(state): axum::extract::State<Arc<Mutex<ReceiverState>>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        at,
    };
    let reply = {
        let mut state = state.lock().unwrap();
        state.requests.push(recorded);
        match state.script.pop_front() {
            Some(reply) => reply,
            None => state.default.clone(),
        }
    };
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(gate) = &reply.gate {
        gate.pass().await;
    }
    let mut response = axum::response::Response::new(axum::body::Body::from(reply.body));
    *response.status_mut() = axum::http::StatusCode::from_u16(reply.status).expect("valid status");
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}
