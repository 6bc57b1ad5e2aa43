//! The one part of a call that is this project's own: **failover across
//! the other service's instances**. [`Instances`] is the innermost service
//! of the call's stack (see the crate's documentation): it takes the
//! instances in turn (round robin), skips those whose circuit breaker
//! refuses calls, and, for an idempotent call (GET, DELETE) whose attempt
//! did not reach its instance (refused, reset, timed out), tries the next
//! instance at once, each at most once, while the call's deadline leaves
//! room (at least the time to connect) and, after a timeout, while the
//! retry budget allows. Each attempt gets at most what is left of the
//! deadline, and its outcome is its instance's breaker's to count.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode, header::HeaderValue};
use tower::retry::budget::{Budget, TpsBudget};

use crate::{
    breaker::{Breaker, Breakers, Permit},
    error::UpstreamError,
    metrics::UpstreamMetrics,
};
use kit_observability::context;

/// One call: what to send, and by when it must be done.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub method: Method,
    pub path_and_query: Arc<str>,
    pub authorization: Option<HeaderValue>,
    pub deadline: Instant,
}

impl Call {
    /// Whether there is time left for another attempt after `pause`: at
    /// least the time to connect.
    pub fn has_room(&self, pause: Duration, connect_timeout: Duration) -> bool {
        self.deadline.saturating_duration_since(Instant::now()) >= pause + connect_timeout
    }
}

/// The other service's instances, each with its breaker.
#[derive(Clone)]
pub(crate) struct Instances {
    pub name: &'static str,
    pub urls: Arc<[String]>,
    pub breakers: Breakers,
    /// Where the next attempt starts its turn over the instances.
    pub next: Arc<AtomicUsize>,
    pub http: reqwest::Client,
    pub attempt_timeout: Duration,
    pub connect_timeout: Duration,
    pub budget: Arc<TpsBudget>,
    pub metrics: Arc<UpstreamMetrics>,
}

impl tower::Service<Call> for Instances {
    type Response = Option<reqwest::Response>;
    type Error = UpstreamError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, UpstreamError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), UpstreamError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, call: Call) -> Self::Future {
        let instances = self.clone();
        Box::pin(async move { instances.fail_over(call).await })
    }
}

impl Instances {
    async fn fail_over(&self, call: Call) -> Result<Option<reqwest::Response>, UpstreamError> {
        let idempotent = call.method == Method::GET || call.method == Method::DELETE;
        let mut failed = None;
        for _ in 0..self.urls.len() {
            let Some((index, permit)) = self.pick() else {
                break;
            };
            let result = self.attempt(index, &call).await;
            match &result {
                Ok(_) => permit.succeeded(),
                Err(_) => permit.failed(),
            }
            let err = match result {
                Ok(response) => return Ok(response),
                Err(err) => err,
            };
            let again = idempotent
                && err.is_unreached()
                && call.has_room(Duration::ZERO, self.connect_timeout)
                && (err.is_retryable() || self.budget.withdraw());
            if !again {
                return Err(err);
            }
            tracing::debug!(service = self.name, error = %err, "failing over to another instance");
            self.metrics.record_retry();
            failed = Some(err);
        }
        Err(failed.unwrap_or_else(|| UpstreamError::CircuitOpen {
            service: self.name,
            retry_after: self.breakers.open_time_left(),
        }))
    }

    /// The next instance whose breaker lets a call through.
    fn pick(&self) -> Option<(usize, Permit<'_>)> {
        (0..self.urls.len()).find_map(|_| {
            let index = self.next.fetch_add(1, Ordering::Relaxed) % self.urls.len();
            self.breakers
                .get(index)
                .and_then(Breaker::permit)
                .map(|permit| (index, permit))
        })
    }

    /// One attempt on instance `index`, within what is left of the deadline.
    async fn attempt(
        &self,
        index: usize,
        call: &Call,
    ) -> Result<Option<reqwest::Response>, UpstreamError> {
        let timeout = self
            .attempt_timeout
            .min(call.deadline.saturating_duration_since(Instant::now()));
        let base = self.urls.get(index).map_or("", String::as_str);
        let mut request = self
            .http
            .request(
                call.method.clone(),
                format!("{base}{}", call.path_and_query),
            )
            .timeout(timeout)
            .build()
            .map_err(|source| UpstreamError::from_reqwest(self.name, source, timeout))?;
        if let Some(authorization) = &call.authorization {
            request
                .headers_mut()
                .insert(reqwest::header::AUTHORIZATION, authorization.clone());
        }
        let span = tracing::Span::current();
        context::inject(request.headers_mut(), &span);
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|source| UpstreamError::from_reqwest(self.name, source, timeout))?;
        span.record(
            "http.response.status_code",
            i64::from(response.status().as_u16()),
        );
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => Ok(Some(response)),
            status => Err(UpstreamError::Status {
                service: self.name,
                status,
            }),
        }
    }
}
