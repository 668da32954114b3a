//! The per-token rate limit: a token bucket per API token, in memory (each `crm serve` process
//! limits on its own).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// How many requests a token may make: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests allowed at once after a quiet spell.
    pub burst: f64,
}

pub(super) struct Limiter {
    limit: Option<RateLimit>,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Beyond this many tokens tracked, idle full buckets are dropped.
const MAX_TRACKED: usize = 10_000;

impl Limiter {
    pub(super) fn new(limit: Option<RateLimit>) -> Self {
        Self { limit, buckets: Mutex::default() }
    }

    /// Takes one request from `token`'s bucket, or the whole seconds until one is available.
    pub(super) fn check(&self, token: &str) -> Result<(), u64> {
        let Some(limit) = self.limit else { return Ok(()) };
        let rate = limit.per_second.max(f64::MIN_POSITIVE);
        let burst = limit.burst.max(1.0);
        let now = Instant::now();
        // A poisoned lock only means another request panicked mid-update; the map is usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(token) {
            buckets.retain(|_, (level, at)| *level + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (level, at) = buckets.entry(token.to_owned()).or_insert((burst, now));
        *level = (*level + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *level >= 1.0 {
            *level -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *level) / rate).ceil() as u64)
        }
    }
}
