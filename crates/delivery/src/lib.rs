//! Delivery: the engine's [`Transport`] over real HTTP (reqwest + rustls).
//!
//! # Layout
//! - [`guard`]: which addresses a webhook may reach (the SSRF guard), checked on the resolved
//!   IPs at connect time so DNS cannot sneak past it.
//! - [`HttpTransport`]: sends a claimed call, no redirects, with a timeout, and captures the
//!   response (status, headers, body capped at [`MAX_RESPONSE_BODY`]).

pub mod guard;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hookflow_engine::model::{ClaimedCall, Method, Timestamp};
use hookflow_engine::transport::{Delivery, FailureKind, Transport};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

pub use guard::{Blocked, TargetPolicy};

/// Most response body bytes kept in the attempt log; the rest is not read.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// Transport settings, from the CLI.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Whole-request timeout (connect, send, headers and body).
    pub timeout: Duration,
    pub policy: TargetPolicy,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            timeout: Duration::from_secs(10),
            policy: TargetPolicy::default(),
        }
    }
}

/// Could not build the HTTP client.
#[derive(Debug, thiserror::Error)]
#[error("could not build the HTTP client: {0}")]
pub struct BuildError(#[from] reqwest::Error);

/// Sends calls over HTTP(S).
pub struct HttpTransport {
    client: reqwest::Client,
    policy: Arc<TargetPolicy>,
}

impl HttpTransport {
    pub fn new(config: DeliveryConfig) -> Result<HttpTransport, BuildError> {
        let policy = Arc::new(config.policy);
        let client = reqwest::Client::builder()
            // A redirect could lead anywhere, including past the SSRF guard's intent; receivers
            // must answer at the URL they gave.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .dns_resolver(Arc::new(guard::GuardedResolver::new(policy.clone())))
            .user_agent(concat!("hookflow/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()?;
        Ok(HttpTransport { client, policy })
    }

    async fn send(&self, call: &ClaimedCall) -> Result<reqwest::Response, (FailureKind, String)> {
        let url = reqwest::Url::parse(&call.url)
            .map_err(|e| (FailureKind::Refused, format!("invalid URL: {e}")))?;
        // IP literals never reach the resolver, so they are checked here.
        if let Some(host) = url.host() {
            let ip = match host {
                url::Host::Ipv4(ip) => Some(std::net::IpAddr::V4(ip)),
                url::Host::Ipv6(ip) => Some(std::net::IpAddr::V6(ip)),
                url::Host::Domain(_) => None,
            };
            if let Some(ip) = ip {
                self.policy
                    .check(ip)
                    .map_err(|b| (FailureKind::Refused, b.to_string()))?;
            }
        }
        let method = match call.method {
            Method::Post => reqwest::Method::POST,
            Method::Get => reqwest::Method::GET,
        };
        let mut headers = HeaderMap::with_capacity(call.headers.len() + 2);
        for (name, value) in &call.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                (
                    FailureKind::Refused,
                    format!("invalid header name {name:?}: {e}"),
                )
            })?;
            let value = HeaderValue::from_str(value).map_err(|e| {
                (
                    FailureKind::Refused,
                    format!("invalid header value for {name}: {e}"),
                )
            })?;
            headers.append(name, value);
        }
        // Stable across retries, so receivers can de-duplicate (Standard Webhooks).
        headers.insert(
            HeaderName::from_static("webhook-id"),
            HeaderValue::from_str(&call.webhook_id)
                .map_err(|e| (FailureKind::Refused, e.to_string()))?,
        );
        headers.insert(
            HeaderName::from_static("webhook-timestamp"),
            HeaderValue::from(Timestamp::now().0 / 1000),
        );
        let mut request = self.client.request(method, url).headers(headers);
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        request.send().await.map_err(|e| classify_error(&e))
    }
}

fn classify_error(err: &reqwest::Error) -> (FailureKind, String) {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(blocked) = e.downcast_ref::<Blocked>() {
            return (FailureKind::Refused, blocked.to_string());
        }
        source = e.source();
    }
    let kind = if err.is_timeout() {
        FailureKind::Timeout
    } else {
        FailureKind::Connection
    };
    (kind, error_chain(err))
}

/// The error and its causes on one line: reqwest's top-level message alone rarely says why.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

#[async_trait]
impl Transport for HttpTransport {
    async fn deliver(&self, call: &ClaimedCall) -> Delivery {
        let started_at = Timestamp::now();
        let start = Instant::now();
        let mut delivery = Delivery {
            started_at,
            duration: Duration::ZERO,
            status: None,
            response_headers: Vec::new(),
            response_body: String::new(),
            failure: None,
            retry_after: None,
        };
        match self.send(call).await {
            Ok(mut response) => {
                delivery.status = Some(response.status().as_u16());
                delivery.retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                delivery.response_headers = response
                    .headers()
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect();
                let mut body = Vec::new();
                loop {
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            let room = MAX_RESPONSE_BODY - body.len();
                            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                            if body.len() >= MAX_RESPONSE_BODY {
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(err) => {
                            // The status arrived; a body cut short only matters for the log,
                            // unless the whole request timed out.
                            if err.is_timeout() {
                                delivery.failure = Some((FailureKind::Timeout, error_chain(&err)));
                            }
                            break;
                        }
                    }
                }
                delivery.response_body = String::from_utf8_lossy(&body).into_owned();
            }
            Err(failure) => delivery.failure = Some(failure),
        }
        delivery.duration = start.elapsed();
        delivery
    }
}
