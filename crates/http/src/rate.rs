//! Per-caller rate limits for requests that cost the server real work whatever their answer
//! (template previews: a render may use its whole time budget).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket per caller: `burst` requests at once, then one per `every`.
#[derive(Debug)]
pub struct RateLimiter {
    burst: u32,
    every: Duration,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Callers remembered at most; past it, full buckets (callers at rest) are forgotten first.
const MAX_CALLERS: usize = 10_000;

impl RateLimiter {
    pub fn new(burst: u32, every: Duration) -> RateLimiter {
        RateLimiter {
            burst,
            every,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The preview limit: 10 at once, then one every 2 seconds (30 a minute) per caller.
    pub fn previews() -> RateLimiter {
        RateLimiter::new(10, Duration::from_secs(2))
    }

    /// Takes one request for `caller`, or says after how many seconds one is free again.
    pub fn take(&self, caller: &str) -> Result<(), u64> {
        self.take_at(caller, Instant::now())
    }

    fn take_at(&self, caller: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let rate = 1.0 / self.every.as_secs_f64();
        let burst = f64::from(self.burst);
        if buckets.len() >= MAX_CALLERS && !buckets.contains_key(caller) {
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = buckets.entry(caller.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_interval_per_caller() {
        let limiter = RateLimiter::new(3, Duration::from_secs(2));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take_at("ada", t0), Ok(()));
        }
        assert_eq!(limiter.take_at("ada", t0), Err(2));
        // Another caller has a bucket of their own.
        assert_eq!(limiter.take_at("bob", t0), Ok(()));
        assert_eq!(limiter.take_at("ada", t0 + Duration::from_secs(1)), Err(1));
        assert_eq!(limiter.take_at("ada", t0 + Duration::from_secs(2)), Ok(()));
        assert_eq!(limiter.take_at("ada", t0 + Duration::from_secs(2)), Err(2));
    }
}
