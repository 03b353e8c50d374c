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
    /// Worth another try under the action's policy.
    Retry,
    /// The policy does not retry this outcome (or trying again cannot help: refused targets).
    Fail,
}

/// A class of unsuccessful outcomes, as a policy names it (`retryOn` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// `3xx`: redirects (hookflow never follows them).
    Redirect,
    /// `4xx`: every 4xx status, 408 and 429 included.
    ClientError,
    /// `408`: Request Timeout.
    RequestTimeout,
    /// `429`: Too Many Requests (its `Retry-After` is honoured).
    TooManyRequests,
    /// `5xx`: server errors, and any other status that is neither 2xx, 3xx nor 4xx.
    ServerError,
    /// `timeout`: no answer within the attempt's timeout.
    Timeout,
    /// `connectionError`: the connection failed (refused, reset, TLS).
    ConnectionError,
}

impl RetryClass {
    pub const ALL: [RetryClass; 7] = [
        RetryClass::Redirect,
        RetryClass::ClientError,
        RetryClass::RequestTimeout,
        RetryClass::TooManyRequests,
        RetryClass::ServerError,
        RetryClass::Timeout,
        RetryClass::ConnectionError,
    ];

    /// The name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryClass::Redirect => "3xx",
            RetryClass::ClientError => "4xx",
            RetryClass::RequestTimeout => "408",
            RetryClass::TooManyRequests => "429",
            RetryClass::ServerError => "5xx",
            RetryClass::Timeout => "timeout",
            RetryClass::ConnectionError => "connectionError",
        }
    }

    pub fn parse(name: &str) -> Option<RetryClass> {
        RetryClass::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// Which unsuccessful outcomes a policy retries. 2xx always succeeds; a target the SSRF
/// guard refused always fails (no retry can change the address it resolves to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOn {
    pub classes: Vec<RetryClass>,
    /// Single 4xx statuses retried besides the classes (`retryOn4xx`).
    pub codes: Vec<u16>,
}

impl Default for RetryOn {
    /// hookflow's own classification (the server's default and custom policies'): timeouts,
    /// connection errors, 5xx, 408 and 429 are retried; redirects and other 4xx fail at once.
    fn default() -> Self {
        RetryOn {
            classes: vec![
                RetryClass::RequestTimeout,
                RetryClass::TooManyRequests,
                RetryClass::ServerError,
                RetryClass::Timeout,
                RetryClass::ConnectionError,
            ],
            codes: Vec::new(),
        }
    }
}

impl RetryOn {
    /// Every unsuccessful outcome (ShopCtrl, Skladon).
    pub fn everything() -> RetryOn {
        RetryOn {
            classes: RetryClass::ALL.to_vec(),
            codes: Vec::new(),
        }
    }

    /// Everything but 4xx, which is an error never retried, 408 and 429 included (Flow Retail).
    pub fn all_but_4xx() -> RetryOn {
        RetryOn {
            classes: vec![
                RetryClass::Redirect,
                RetryClass::ServerError,
                RetryClass::Timeout,
                RetryClass::ConnectionError,
            ],
            codes: Vec::new(),
        }
    }

    fn has(&self, class: RetryClass) -> bool {
        self.classes.contains(&class)
    }

    fn retries_status(&self, code: u16) -> bool {
        match code {
            300..=399 => self.has(RetryClass::Redirect),
            400..=499 => {
                self.has(RetryClass::ClientError)
                    || (code == 408 && self.has(RetryClass::RequestTimeout))
                    || (code == 429 && self.has(RetryClass::TooManyRequests))
                    || self.codes.contains(&code)
            }
            _ => self.has(RetryClass::ServerError),
        }
    }
}

/// Classifies an attempt under the outcome classes its action's policy retries.
pub fn classify(delivery: &Delivery, retry_on: &RetryOn) -> Verdict {
    let retried = |yes: bool| if yes { Verdict::Retry } else { Verdict::Fail };
    match (delivery.status, &delivery.failure) {
        (_, Some((FailureKind::Refused, _))) => Verdict::Fail,
        (_, Some((FailureKind::Timeout, _))) => retried(retry_on.has(RetryClass::Timeout)),
        (_, Some((FailureKind::Connection, _))) => {
            retried(retry_on.has(RetryClass::ConnectionError))
        }
        (Some(200..=299), None) => Verdict::Success,
        (Some(code), None) => retried(retry_on.retries_status(code)),
        (None, None) => retried(retry_on.has(RetryClass::ConnectionError)),
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

    fn verdicts(retry_on: &RetryOn) -> Vec<(u16, Verdict)> {
        [200, 204, 301, 400, 404, 408, 409, 429, 500, 503]
            .into_iter()
            .map(|code| (code, classify(&delivery(Some(code), None), retry_on)))
            .collect()
    }

    #[test]
    fn hookflows_own_classification_retries_5xx_408_429_and_failed_connections() {
        use Verdict::*;
        let own = RetryOn::default();
        assert_eq!(
            verdicts(&own),
            [
                (200, Success),
                (204, Success),
                (301, Fail),
                (400, Fail),
                (404, Fail),
                (408, Retry),
                (409, Fail),
                (429, Retry),
                (500, Retry),
                (503, Retry)
            ]
        );
        for (kind, verdict) in [
            (FailureKind::Timeout, Retry),
            (FailureKind::Connection, Retry),
            (FailureKind::Refused, Fail),
        ] {
            assert_eq!(classify(&delivery(None, Some(kind)), &own), verdict);
        }
        let with_409 = RetryOn {
            codes: vec![409],
            ..RetryOn::default()
        };
        assert_eq!(classify(&delivery(Some(409), None), &with_409), Retry);
    }

    #[test]
    fn shopctrl_and_skladon_retry_every_unsuccessful_answer() {
        use Verdict::*;
        let all = RetryOn::everything();
        for (code, verdict) in verdicts(&all) {
            assert_eq!(verdict, if code < 300 { Success } else { Retry }, "{code}");
        }
        assert_eq!(
            classify(&delivery(None, Some(FailureKind::Timeout)), &all),
            Retry
        );
        assert_eq!(
            classify(&delivery(None, Some(FailureKind::Refused)), &all),
            Fail,
            "a refused target is never sent, whatever the policy"
        );
    }

    #[test]
    fn flow_retail_never_retries_4xx_but_retries_redirects_5xx_and_timeouts() {
        use Verdict::*;
        let flow = RetryOn::all_but_4xx();
        for (code, verdict) in verdicts(&flow) {
            let expected = match code {
                200..=299 => Success,
                400..=499 => Fail,
                _ => Retry,
            };
            assert_eq!(verdict, expected, "{code}");
        }
        assert_eq!(
            classify(&delivery(None, Some(FailureKind::Timeout)), &flow),
            Retry
        );
    }

    #[test]
    fn class_names_round_trip() {
        for class in RetryClass::ALL {
            assert_eq!(RetryClass::parse(class.as_str()), Some(class));
        }
        assert_eq!(RetryClass::parse("6xx"), None);
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
