//! How calls leave hookflow, as a trait; `hookflow-delivery` implements it over HTTP.

use std::time::Duration;

use async_trait::async_trait;

use crate::model::{ClaimedCall, Timestamp};

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
    pub duration: Duration,
    pub status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    /// Capped response body (lossy UTF-8).
    pub response_body: String,
    pub failure: Option<(FailureKind, String)>,
    /// The receiver's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

#[async_trait]
pub trait Transport: Send + Sync + 'static {
    async fn deliver(&self, call: &ClaimedCall) -> Delivery;
}
