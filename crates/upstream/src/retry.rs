//! Retries of reads, as a `tower::retry::Policy`: a `GET` (safe to repeat)
//! that failed with a refused connection or a 5xx is tried again, at most
//! `retries` times, each after a jittered exponential backoff (25 to
//! 250 ms), only while the retry budget allows (tower's `TpsBudget`: 20 %
//! of the calls of the last 10 s, plus 5 a second, so retries never
//! multiply the load on a service that is down) and while the call's
//! deadline leaves room. Not after a timeout: the caller would wait twice.
//! Each retry starts again at the next instance (failover runs inside it).

use std::{sync::Arc, time::Duration};

use reqwest::Method;
use tower::retry::{
    Policy,
    backoff::{Backoff, ExponentialBackoff, ExponentialBackoffMaker, MakeBackoff},
    budget::{Budget, TpsBudget},
};

use crate::{error::UpstreamError, failover::Call, metrics::UpstreamMetrics};

#[derive(Clone)]
pub(crate) struct Retries {
    pub left: u32,
    pub budget: Arc<TpsBudget>,
    pub connect_timeout: Duration,
    pub metrics: Arc<UpstreamMetrics>,
    backoff: Option<ExponentialBackoff>,
}

impl Retries {
    pub fn new(
        retries: u32,
        budget: Arc<TpsBudget>,
        connect_timeout: Duration,
        metrics: Arc<UpstreamMetrics>,
    ) -> Self {
        let backoff = ExponentialBackoffMaker::new(
            Duration::from_millis(25),
            Duration::from_millis(250),
            1.0,
            tower::util::rng::HasherRng::default(),
        )
        .map(|mut maker| maker.make_backoff())
        .ok();
        Self {
            left: retries,
            budget,
            connect_timeout,
            metrics,
            backoff,
        }
    }
}

impl Policy<Call, Option<reqwest::Response>, UpstreamError> for Retries {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        call: &mut Call,
        result: &mut Result<Option<reqwest::Response>, UpstreamError>,
    ) -> Option<Self::Future> {
        let Err(err) = result else { return None };
        if call.method != Method::GET || !err.is_retryable() || self.left == 0 {
            return None;
        }
        let pause = self.backoff.as_mut().map_or_else(
            || tokio::time::sleep(Duration::ZERO),
            |backoff| backoff.next_backoff(),
        );
        let wait = pause
            .deadline()
            .saturating_duration_since(tokio::time::Instant::now());
        if !call.has_room(wait, self.connect_timeout) || !self.budget.withdraw() {
            return None;
        }
        self.left -= 1;
        tracing::debug!(left = self.left, error = %err, "retrying");
        self.metrics.record_retry();
        Some(pause)
    }

    fn clone_request(&mut self, call: &Call) -> Option<Call> {
        Some(call.clone())
    }
}
