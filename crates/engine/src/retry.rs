//! The queue's outcome policy: what counts as success, what is retried, and when.

use std::time::Duration;

use rand::Rng;

use crate::transport::{Delivery, FailureKind};

/// How often and how soon a failed call is tried again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (ShopCtrl and Flow Retail: 10).
    pub max_retries: u32,
    /// Delay before the first retry; it doubles with every retry.
    pub base: Duration,
    /// No retry waits longer than this (also caps a receiver's `Retry-After`).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 10,
            base: Duration::from_secs(10),
            max_delay: Duration::from_secs(6 * 3600),
        }
    }
}

/// What an attempt means for its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Success,
    /// Worth another try (timeout, connection error, 5xx, 408, 429).
    Retry,
    /// Trying again cannot help (other 4xx, redirects, refused targets).
    Fail,
}

/// Classifies an attempt; `retry_on_4xx` are 4xx statuses an action's policy retries.
pub fn classify(delivery: &Delivery, retry_on_4xx: &[u16]) -> Verdict {
    match (delivery.status, &delivery.failure) {
        (_, Some((FailureKind::Refused, _))) => Verdict::Fail,
        (_, Some((FailureKind::Timeout | FailureKind::Connection, _))) => Verdict::Retry,
        (Some(code), None) => match code {
            200..=299 => Verdict::Success,
            408 | 429 | 500..=599 => Verdict::Retry,
            code if retry_on_4xx.contains(&code) => Verdict::Retry,
            _ => Verdict::Fail,
        },
        (None, None) => Verdict::Retry,
    }
}

impl RetryPolicy {
    /// Total attempts a new call may make.
    pub fn max_attempts(&self) -> i32 {
        i32::try_from(self.max_retries)
            .unwrap_or(i32::MAX - 1)
            .saturating_add(1)
    }

    /// Delay before retry number `retry` (1-based): exponential, with ±25 % jitter so that calls
    /// which failed together do not all come back at once; never below `retry_after`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, rng: &mut impl Rng) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let raw = self.base.saturating_mul(1u32 << exp).min(self.max_delay);
        let jitter = rng.gen_range(0.75..=1.25);
        let delay = raw.mul_f64(jitter).min(self.max_delay);
        match retry_after {
            Some(ra) => delay.max(ra.min(self.max_delay)),
            None => delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Timestamp;

    fn delivery(status: Option<u16>, failure: Option<FailureKind>) -> Delivery {
        Delivery {
            started_at: Timestamp(0),
            request_headers: vec![],
            duration: Duration::ZERO,
            status,
            response_headers: vec![],
            response_body: String::new(),
            failure: failure.map(|k| (k, "x".into())),
            retry_after: None,
        }
    }

    #[test]
    fn outcomes_are_classified_like_the_platforms_do() {
        assert_eq!(classify(&delivery(Some(200), None), &[]), Verdict::Success);
        assert_eq!(classify(&delivery(Some(204), None), &[]), Verdict::Success);
        assert_eq!(classify(&delivery(Some(500), None), &[]), Verdict::Retry);
        assert_eq!(classify(&delivery(Some(503), None), &[]), Verdict::Retry);
        assert_eq!(classify(&delivery(Some(408), None), &[]), Verdict::Retry);
        assert_eq!(classify(&delivery(Some(429), None), &[]), Verdict::Retry);
        assert_eq!(classify(&delivery(Some(404), None), &[]), Verdict::Fail);
        assert_eq!(classify(&delivery(Some(400), None), &[]), Verdict::Fail);
        assert_eq!(classify(&delivery(Some(301), None), &[]), Verdict::Fail);
        assert_eq!(
            classify(&delivery(None, Some(FailureKind::Timeout)), &[]),
            Verdict::Retry
        );
        assert_eq!(
            classify(&delivery(None, Some(FailureKind::Connection)), &[]),
            Verdict::Retry
        );
        assert_eq!(
            classify(&delivery(None, Some(FailureKind::Refused)), &[]),
            Verdict::Fail
        );
    }

    #[test]
    fn delays_grow_exponentially_within_jitter_and_cap() {
        let policy = RetryPolicy {
            max_retries: 10,
            base: Duration::from_secs(10),
            max_delay: Duration::from_secs(3600),
        };
        let mut rng = rand::thread_rng();
        for retry in 1..=10u32 {
            let nominal =
                Duration::from_secs(10 * (1 << (retry - 1))).min(Duration::from_secs(3600));
            let d = policy.delay(retry, None, &mut rng);
            assert!(
                d >= nominal.mul_f64(0.75) && d <= nominal.mul_f64(1.25).min(policy.max_delay),
                "{retry}: {d:?}"
            );
        }
        assert_eq!(policy.max_attempts(), 11);
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let policy = RetryPolicy {
            max_retries: 3,
            base: Duration::from_millis(10),
            max_delay: Duration::from_secs(60),
        };
        let mut rng = rand::thread_rng();
        assert!(
            policy.delay(1, Some(Duration::from_secs(30)), &mut rng) >= Duration::from_secs(30)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(9999)), &mut rng),
            Duration::from_secs(60)
        );
    }
}
