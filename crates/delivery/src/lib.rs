//! Delivery: the engine's [`Transport`] over real HTTP (reqwest + rustls).
//!
//! # Layout
//! - [`guard`]: which addresses a webhook may reach (the SSRF guard), checked on the resolved
//!   IPs at connect time so DNS cannot sneak past it.
//! - [`HttpTransport`]: sends a claimed call, no redirects, with a timeout, and captures the
//!   response (status, headers, body capped at [`MAX_RESPONSE_BODY`]); adds basic auth and
//!   signatures, and presents client certificates.
//! - `signing`: Standard Webhooks and hub-style HMAC signatures.
//! - [`notify`]: notices to people (email over SMTP, an operator's webhook), off the hot path.
//! - `tls`: checking client certificates and CA bundles.

pub mod guard;
pub mod notify;
mod signing;
mod tls;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use hookflow_engine::model::{ClaimedCall, Method, Secret, Timestamp};
use hookflow_engine::redact;
use hookflow_engine::security::ActionSecurity;
use hookflow_engine::transport::{CertificateInfo, Delivery, FailureKind, Transport, MASKED};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

pub use guard::{Blocked, TargetPolicy};

/// Most response body bytes kept in the attempt log; the rest is not read.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// Who hookflow says it is.
const USER_AGENT: &str = concat!("hookflow/", env!("CARGO_PKG_VERSION"));

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
    /// For actions without a client certificate or private CA.
    client: reqwest::Client,
    /// One pooled client per distinct TLS identity (client certificate and CA), so connections
    /// are reused across calls and never shared between identities.
    tls_clients: Mutex<HashMap<TlsKey, reqwest::Client>>,
    policy: Arc<TargetPolicy>,
    timeout: Duration,
}

/// What makes a TLS client distinct: its certificate, key and trusted CAs.
#[derive(PartialEq, Eq, Hash)]
struct TlsKey {
    identity: Option<(String, Secret)>,
    ca_pem: Option<String>,
}

impl HttpTransport {
    pub fn new(config: DeliveryConfig) -> Result<HttpTransport, BuildError> {
        let policy = Arc::new(config.policy);
        let client = Self::builder(&policy, config.timeout).build()?;
        Ok(HttpTransport {
            client,
            tls_clients: Mutex::new(HashMap::new()),
            policy,
            timeout: config.timeout,
        })
    }

    fn builder(policy: &Arc<TargetPolicy>, timeout: Duration) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            // A redirect could lead anywhere, including past the SSRF guard's intent; receivers
            // must answer at the URL they gave.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .dns_resolver(Arc::new(guard::GuardedResolver::new(policy.clone())))
            .user_agent(USER_AGENT)
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
    }

    /// The client for an action's TLS settings, built on first use.
    fn client_for(
        &self,
        security: Option<&ActionSecurity>,
    ) -> Result<reqwest::Client, (FailureKind, String)> {
        let Some(security) = security.filter(|s| s.identity.is_some() || s.ca_pem.is_some()) else {
            return Ok(self.client.clone());
        };
        let key = TlsKey {
            identity: security.identity.clone(),
            ca_pem: security.ca_pem.clone(),
        };
        let mut clients = self
            .tls_clients
            .lock()
            .expect("client map lock is never poisoned: no panics while held");
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let mut builder = Self::builder(&self.policy, self.timeout);
        if let Some((cert, key_pem)) = &key.identity {
            let mut pem = key_pem.expose().as_bytes().to_vec();
            pem.push(b'\n');
            pem.extend_from_slice(cert.as_bytes());
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                (
                    FailureKind::Refused,
                    format!("client certificate unusable: {}", error_chain(&e)),
                )
            })?;
            builder = builder.identity(identity);
        }
        if let Some(ca) = &key.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(ca.as_bytes()).map_err(|e| {
                (
                    FailureKind::Refused,
                    format!("CA certificates unusable: {}", error_chain(&e)),
                )
            })?;
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| {
            (
                FailureKind::Refused,
                format!("TLS client could not be built: {}", error_chain(&e)),
            )
        })?;
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// IP literals never reach the resolver, so the guard checks them here.
    fn check_ip_literal(&self, url: &reqwest::Url) -> Result<(), (FailureKind, String)> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
            Some(url::Host::Domain(_)) | None => return Ok(()),
        };
        self.policy
            .check(ip)
            .map_err(|b| (FailureKind::Refused, b.to_string()))
    }

    async fn send(
        &self,
        call: &ClaimedCall,
        security: Option<&ActionSecurity>,
        timeout: Option<Duration>,
        sent: &mut Vec<(String, String)>,
    ) -> Result<reqwest::Response, (FailureKind, String)> {
        let (url, headers) = prepare(call, security, Timestamp::now())?;
        self.check_ip_literal(&url)?;
        let method = match call.method {
            Method::Post => reqwest::Method::POST,
            Method::Get => reqwest::Method::GET,
        };
        *sent = sent_headers(&url, &headers, call.body.as_deref());
        let client = self.client_for(security)?;
        let mut request = client.request(method, url).headers(headers);
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        // reqwest's errors quote the URL, which may carry a credential (`?apikey=`, `user:pw@`):
        // the attempt log and the log line do not need it, they belong to the call.
        request
            .send()
            .await
            .map_err(|e| classify_error(&e.without_url()))
    }
}

/// The call's URL and every header it goes out with at `now`: its own, the client's
/// defaults, `webhook-id`, `webhook-timestamp`, credentials and signatures.
fn prepare(
    call: &ClaimedCall,
    security: Option<&ActionSecurity>,
    now: Timestamp,
) -> Result<(reqwest::Url, HeaderMap), (FailureKind, String)> {
    let url = reqwest::Url::parse(&call.url)
        .map_err(|e| (FailureKind::Refused, format!("invalid URL: {e}")))?;
    let mut headers = call_headers(call)?;
    headers.insert(
        HeaderName::from_static("webhook-timestamp"),
        HeaderValue::from(now.0 / 1000),
    );
    if let Some(security) = security {
        let body = call.body.as_deref().unwrap_or("");
        add_credentials(&mut headers, security, &call.webhook_id, body, now)?;
    }
    Ok((url, headers))
}

/// The call's own headers, then the client's defaults unless the call sets its own, and the
/// `webhook-id`.
fn call_headers(call: &ClaimedCall) -> Result<HeaderMap, (FailureKind, String)> {
    let mut headers = HeaderMap::with_capacity(call.headers.len() + 6);
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
    // The client's defaults, unless the action sets its own; set here rather than left to
    // the client, so that the attempt log records every header the receiver gets.
    for (name, value) in [
        (reqwest::header::ACCEPT, "*/*"),
        (reqwest::header::USER_AGENT, USER_AGENT),
    ] {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    // Stable across retries, so receivers can de-duplicate (Standard Webhooks).
    headers.insert(
        HeaderName::from_static("webhook-id"),
        HeaderValue::from_str(&call.webhook_id)
            .map_err(|e| (FailureKind::Refused, e.to_string()))?,
    );
    Ok(headers)
}

/// An action's basic auth (marked sensitive, so the attempt log masks it) and signatures.
fn add_credentials(
    headers: &mut HeaderMap,
    security: &ActionSecurity,
    webhook_id: &str,
    body: &str,
    now: Timestamp,
) -> Result<(), (FailureKind, String)> {
    if let Some((user, password)) = &security.basic_auth {
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", password.expose()));
        let mut value = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|e| (FailureKind::Refused, format!("invalid basic auth: {e}")))?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    if let Some(signing) = &security.signing {
        // GET calls are signed too, over an empty body.
        for (name, value) in
            signing::signature_headers(signing, webhook_id, now.0 / 1000, body.as_bytes(), now)
        {
            let value =
                HeaderValue::from_str(&value).map_err(|e| (FailureKind::Refused, e.to_string()))?;
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    Ok(())
}

/// The headers of a request as the receiver gets them, for the attempt log: `host` and
/// `content-length` as the HTTP client adds them, then the request's own in order. A
/// credential (a header marked sensitive: basic auth) is recorded as its scheme and
/// [`MASKED`], never its value.
fn sent_headers(
    url: &reqwest::Url,
    headers: &HeaderMap,
    body: Option<&str>,
) -> Vec<(String, String)> {
    let mut sent = Vec::with_capacity(headers.len() + 2);
    if let Some(host) = url.host_str() {
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        sent.push(("host".to_owned(), host));
    }
    if let Some(body) = body {
        sent.push(("content-length".to_owned(), body.len().to_string()));
    }
    for (name, value) in headers {
        let value = if value.is_sensitive() {
            let text = String::from_utf8_lossy(value.as_bytes());
            match text.split_once(' ') {
                Some((scheme, _)) => format!("{scheme} {MASKED}"),
                None => MASKED.to_owned(),
            }
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        sent.push((name.as_str().to_owned(), value));
    }
    sent
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110).
fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
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
    async fn deliver(
        &self,
        call: &ClaimedCall,
        security: Option<&ActionSecurity>,
        timeout: Option<Duration>,
    ) -> Delivery {
        let started_at = Timestamp::now();
        let start = Instant::now();
        let mut delivery = Delivery {
            started_at,
            request_headers: Vec::new(),
            duration: Duration::ZERO,
            status: None,
            response_headers: Vec::new(),
            response_body: String::new(),
            failure: None,
            retry_after: None,
        };
        match self
            .send(call, security, timeout, &mut delivery.request_headers)
            .await
        {
            Ok(mut response) => {
                delivery.status = Some(response.status().as_u16());
                delivery.retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(retry_after);
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
                                let err = err.without_url();
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
        // Whatever a cause quoted: no URL credentials in the attempt log.
        if let Some((_, message)) = &mut delivery.failure {
            if let Cow::Owned(redacted) = redact::urls_in(message) {
                *message = redacted;
            }
        }
        delivery.duration = start.elapsed();
        delivery
    }

    fn outgoing_headers(
        &self,
        call: &ClaimedCall,
        security: Option<&ActionSecurity>,
        now: Timestamp,
    ) -> Result<Vec<(String, String)>, String> {
        let (url, headers) = prepare(call, security, now).map_err(|(_, message)| message)?;
        Ok(sent_headers(&url, &headers, call.body.as_deref()))
    }

    fn check_url(&self, url: &str) -> Result<(), String> {
        let probe = url
            .replace("{{ entityId }}", "1")
            .replace("{{entityId}}", "1");
        let Ok(parsed) = reqwest::Url::parse(&probe) else {
            return Ok(());
        };
        let ip = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => std::net::IpAddr::V6(ip),
            _ => return Ok(()),
        };
        self.policy.check(ip).map_err(|b| b.to_string())
    }

    fn inspect_identity(&self, cert_pem: &str, key_pem: &str) -> Result<CertificateInfo, String> {
        tls::inspect_identity(cert_pem, key_pem)
    }

    fn check_ca(&self, ca_pem: &str) -> Result<(), String> {
        tls::check_ca(ca_pem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(retry_after("120"), Some(Duration::from_secs(120)));
        let later = std::time::SystemTime::now() + Duration::from_secs(90);
        let d = retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(
            d > Duration::from_secs(85) && d <= Duration::from_secs(90),
            "{d:?}"
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
