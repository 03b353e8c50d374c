//! How calls leave hookflow, as a trait; `hookflow-delivery` implements it over HTTP.

use std::time::Duration;

use async_trait::async_trait;

use crate::model::{ClaimedCall, Timestamp};
use crate::security::ActionSecurity;

/// Why an attempt got no HTTP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No response within the timeout: retried.
    Timeout,
    /// Could not connect, or the connection broke: retried.
    Connection,
    /// The target is not allowed (private address, bad URL): never retried.
    Refused,
}

/// The result of one attempt.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub started_at: Timestamp,
    /// The request headers as they went out (hookflow's own `webhook-id`, timestamp and
    /// signatures included), with credentials replaced by [`MASKED`]: what the call page
    /// shows of an attempt. Empty when nothing was sent (a refused URL).
    pub request_headers: Vec<(String, String)>,
    pub duration: Duration,
    pub status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    /// Capped response body (lossy UTF-8).
    pub response_body: String,
    pub failure: Option<(FailureKind, String)>,
    /// The receiver's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

/// What the attempt log holds in place of a credential's value.
pub const MASKED: &str = "••••••";

/// What is known about a client certificate once it has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub subject: String,
    pub issuer: String,
    /// RFC 3339.
    pub not_after: String,
}

#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Sends one call, authenticated with its action's credentials, within `timeout` (the
    /// transport's own when `None`).
    async fn deliver(
        &self,
        call: &ClaimedCall,
        security: Option<&ActionSecurity>,
        timeout: Option<Duration>,
    ) -> Delivery;

    /// The headers `call` would go out with if sent at `now` (hookflow's own, signatures
    /// included), credentials masked: what a dry run shows. Nothing is sent.
    fn outgoing_headers(
        &self,
        call: &ClaimedCall,
        _security: Option<&ActionSecurity>,
        _now: Timestamp,
    ) -> Result<Vec<(String, String)>, String> {
        Ok(call.headers.clone())
    }

    /// Refuses, at save time, a URL that can never be reached (a literal address the target
    /// policy forbids). Names are checked again on their resolved addresses when sent.
    fn check_url(&self, _url: &str) -> Result<(), String> {
        Ok(())
    }

    /// Checks a client certificate chain and key (PEM): parseable, matching, not expired.
    fn inspect_identity(&self, _cert_pem: &str, _key_pem: &str) -> Result<CertificateInfo, String> {
        Err("client certificates are not supported by this transport".into())
    }

    /// Checks CA certificates (PEM).
    fn check_ca(&self, _ca_pem: &str) -> Result<(), String> {
        Err("custom CAs are not supported by this transport".into())
    }
}
