//! The per-caller rate limit: each caller (the client and the subject its
//! verified access token names) has a bucket per instance of the service
//! (GCRA, [`governor`]), refilled at `RATE_LIMIT_PER_SECOND` and holding
//! `RATE_LIMIT_BURST`; a request that finds it empty is answered 429 with
//! `Retry-After` and never reaches its handler. Keyed by who the caller
//! is, not by its token (a new token is no new bucket) nor by its address
//! (the gateway limits addresses). The other services of the system are
//! exempt (`RATE_LIMIT_EXEMPT_CLIENTS`).

use std::{
    num::NonZeroU32,
    sync::{Arc, Weak},
    time::Duration,
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

use super::verify::Principal;
use kit_config::RateLimitConfig;
use kit_http::problem::ApiError;

/// How often the buckets of callers that have been quiet long enough to
/// be full again are dropped, so that the map holds only recent callers.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct CallerLimit {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
    exempt: Arc<[String]>,
    per_second: u32,
}

impl std::fmt::Debug for CallerLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerLimit")
            .field("per_second", &self.per_second)
            .field("exempt", &self.exempt)
            .finish_non_exhaustive()
    }
}

impl CallerLimit {
    /// The limit of `config`. Inside a tokio runtime, a task sweeps the
    /// buckets of quiet callers away while the limit is in use.
    pub fn new(config: &RateLimitConfig) -> Self {
        let per_second = NonZeroU32::new(config.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.burst).unwrap_or(NonZeroU32::MIN);
        let limiter = Arc::new(RateLimiter::dashmap(
            Quota::per_second(per_second).allow_burst(burst),
        ));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sweep(Arc::downgrade(&limiter)));
        }
        Self {
            limiter,
            exempt: config.exempt_clients.iter().cloned().collect(),
            per_second: config.per_second,
        }
    }

    /// Takes one request from `caller`'s bucket, or tells the 429.
    pub fn check(&self, caller: &Principal) -> Result<(), ApiError> {
        if self.exempt.contains(&caller.client_id) {
            return Ok(());
        }
        let key = format!("{}\u{1f}{}", caller.client_id, caller.subject);
        self.limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let retry_after_secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            tracing::info!(client_id = %caller.client_id, sub = %caller.subject, "rate limit reached");
            ApiError::TooManyRequests {
                detail: format!(
                    "This caller made more than {} requests a second (client `{}`); please retry later.",
                    self.per_second, caller.client_id
                ),
                retry_after_secs,
            }
        })
    }
}

async fn sweep(limiter: Weak<DefaultKeyedRateLimiter<String>>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(limiter) = limiter.upgrade() else {
            return;
        };
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn caller(client_id: &str, subject: &str) -> Principal {
        Principal {
            subject: subject.into(),
            client_id: client_id.into(),
            scopes: HashSet::new(),
            expires_at: 0,
        }
    }

    fn limit(per_second: u32, burst: u32) -> CallerLimit {
        CallerLimit::new(&RateLimitConfig {
            per_second,
            burst,
            exempt_clients: vec!["order_service".into()],
        })
    }

    #[test]
    fn each_caller_has_its_own_bucket() {
        let limit = limit(1, 3);
        let (a, b) = (caller("app", "app"), caller("other", "other"));
        for _ in 0..3 {
            limit.check(&a).unwrap();
        }
        let refused = limit.check(&a).unwrap_err();
        assert!(
            matches!(
                refused,
                ApiError::TooManyRequests {
                    retry_after_secs: 1,
                    ..
                }
            ),
            "{refused:?}"
        );
        limit.check(&b).unwrap();
        // The same client for another person (subject) is another caller.
        limit.check(&caller("app", "user-7")).unwrap();
    }

    #[test]
    fn the_other_services_are_not_limited() {
        let limit = limit(1, 1);
        let service = caller("order_service", "order_service");
        for _ in 0..100 {
            limit.check(&service).unwrap();
        }
    }
}
