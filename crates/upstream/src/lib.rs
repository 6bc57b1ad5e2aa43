//! Synchronous calls to another service: one pooled keep-alive HTTP client per
//! process, built once and cloned into handlers, with the standard
//! resilience around every call, as a stack of layers, from the outside in:
//!
//! 1. **bulkhead** (tower's `load_shed` over `concurrency_limit`): at most
//!    `max_concurrent` calls in flight; past that a call fails at once
//!    instead of queueing;
//! 2. **deadline** (tower's `timeout`): one time limit for the whole call,
//!    all its attempts together, whatever the number of instances (each
//!    attempt gets at most what is left of it, and ends by its own timeout:
//!    this layer is the net under them);
//! 3. **retries** of reads ([`retry`], tower's `retry` with its
//!    `TpsBudget`): after a refused connection or a 5xx, with backoff, while
//!    the budget and the deadline allow;
//! 4. **failover** across the instances ([`failover`], the part that is
//!    this project's own): round robin over the instances whose **circuit
//!    breaker** ([`breaker`]) lets calls through, an idempotent call that
//!    did not reach its instance tried at once on the next one. A breaker
//!    opens after `breaker_failures` failures in a row (a timed-out attempt
//!    is one), lets one probe through after `breaker_open`, and closes when
//!    it succeeds; when every instance's breaker is open a call fails at
//!    once with the shortest time left as `Retry-After`.
//!
//! Every way the other service can fail to answer becomes [`UpstreamError`],
//! which the caller turns into a 503 with `Retry-After`.
//!
//! Each call is observed: a span `upstream` (an OpenTelemetry client span,
//! a child of the request that makes the call), the request's
//! `X-Request-ID` and trace context sent along, and the metrics
//! `upstream_calls_total{target, outcome}` and
//! `upstream_call_duration_seconds{target, outcome}` (see [`Outcome`]).

mod breaker;
mod error;
mod failover;
mod metrics;
mod retry;
pub mod token;

use std::{
    sync::{Arc, atomic::AtomicUsize},
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tower::{
    BoxError, ServiceBuilder, ServiceExt,
    retry::budget::{Budget, TpsBudget},
    util::BoxCloneSyncService,
};
use tracing::{Instrument, field::Empty};

pub use self::{
    breaker::BreakerState,
    error::{Outcome, RETRY_AFTER_SECS, UpstreamError},
};
use self::{
    breaker::Breakers,
    failover::{Call, Instances},
    metrics::UpstreamMetrics,
    retry::Retries,
    token::ServiceToken,
};
use kit_config::DependencyConfig;
use kit_observability::{metrics as recorder, telemetry};

/// The HTTP client could not be built (e.g. no TLS backend).
pub type BuildError = reqwest::Error;

/// How long after its deadline a call is cut short by the deadline layer:
/// its attempts end by their own timeouts, within the deadline, and count
/// against their instances' breakers; this is the net under them.
const DEADLINE_NET: Duration = Duration::from_millis(250);

/// A typed base for calls to one other service.
#[derive(Clone)]
pub struct Upstream {
    name: &'static str,
    urls: Arc<[String]>,
    config: Arc<DependencyConfig>,
    breakers: Breakers,
    stack: BoxCloneSyncService<Call, Option<reqwest::Response>, BoxError>,
    /// What retries and failovers after a timeout may spend: each call
    /// adds to it.
    budget: Arc<TpsBudget>,
    metrics: Arc<UpstreamMetrics>,
    /// This service's own access token, sent with every call.
    token: Option<ServiceToken>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("urls", &self.urls)
            .field("breakers", &self.breakers)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    pub fn new(name: &'static str, config: &DependencyConfig) -> Result<Self, BuildError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            // The other service's API answers; it never sends us elsewhere.
            // A redirect would be a bug to see (an error), not to follow.
            .redirect(reqwest::redirect::Policy::none())
            // The calls go straight to the URLs configured: an HTTP(S)_PROXY
            // in the environment (set for other tools) must not divert them.
            .no_proxy()
            // Retries are this crate's own (on its budget: see `retry`).
            .retry(reqwest::retry::never())
            .build()?;
        // Before the server starts: the series exist from the start.
        recorder::install();
        let urls: Arc<[String]> = config
            .urls
            .iter()
            .map(|url| url.trim_end_matches('/').to_owned())
            .collect();
        let breakers = Breakers::new(name, &urls, config.breaker_failures, config.breaker_open);
        // Retries and failovers after a timeout may add 20 % to the calls
        // of the last 10 s, plus 5 a second.
        let budget = Arc::new(TpsBudget::new(Duration::from_secs(10), 5, 0.2));
        let metrics = Arc::new(UpstreamMetrics::new(name));
        let instances = Instances {
            name,
            urls: urls.clone(),
            breakers: breakers.clone(),
            next: Arc::new(AtomicUsize::new(0)),
            http,
            attempt_timeout: config.timeout,
            connect_timeout: config.connect_timeout,
            budget: budget.clone(),
            metrics: metrics.clone(),
        };
        let stack = ServiceBuilder::new()
            .load_shed()
            .concurrency_limit(config.max_concurrent)
            .timeout(config.deadline + DEADLINE_NET)
            .retry(Retries::new(
                config.retries,
                budget.clone(),
                config.connect_timeout,
                metrics.clone(),
            ))
            .service(instances);
        Ok(Self {
            name,
            urls,
            config: Arc::new(config.clone()),
            breakers,
            stack: BoxCloneSyncService::new(stack),
            budget,
            metrics,
            token: None,
        })
    }

    /// Every call carries `token` (this service's own, never a caller's) in
    /// its `Authorization` header.
    pub fn with_token(mut self, token: ServiceToken) -> Self {
        self.token = Some(token);
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The target's breaker state: closed while any instance's is.
    pub fn breaker_state(&self) -> BreakerState {
        self.breakers.state()
    }

    /// `GET path`, retried where safe: the decoded body, or `None` on 404.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<Option<T>, UpstreamError> {
        let call = async {
            let Some(response) = self.call(Method::GET, path_and_query).await? else {
                return Ok(None);
            };
            response.json::<T>().await.map(Some).map_err(|source| {
                UpstreamError::from_reqwest(self.name, source, self.config.deadline)
            })
        };
        self.observed(Method::GET, path_and_query, call).await
    }

    /// `DELETE path` (not retried): `Ok(true)` when done, `Ok(false)` on 404.
    pub async fn delete(&self, path_and_query: &str) -> Result<bool, UpstreamError> {
        let call = self.call(Method::DELETE, path_and_query);
        let done = self.observed(Method::DELETE, path_and_query, call).await?;
        Ok(done.is_some())
    }

    /// Runs one logical call inside its span, and counts and times it.
    async fn observed<T>(
        &self,
        method: Method,
        path_and_query: &str,
        call: impl Future<Output = Result<Option<T>, UpstreamError>>,
    ) -> Result<Option<T>, UpstreamError> {
        // The path only: a batched query string can hold a thousand ids.
        let path = path_and_query.split('?').next().unwrap_or_default();
        // An OpenTelemetry client span while traces are exported; otherwise
        // at debug level, which the default log level does not pay for.
        let span = if telemetry::otel_enabled() {
            tracing::info_span!(
                "upstream",
                otel.kind = "client",
                otel.name = %format_args!("{method} {}", self.name),
                otel.status_code = Empty,
                peer.service = self.name,
                http.request.method = %method,
                url.path = path,
                http.response.status_code = Empty,
                outcome = Empty,
            )
        } else {
            tracing::debug_span!(
                "upstream",
                peer.service = self.name,
                http.request.method = %method,
                url.path = path,
                http.response.status_code = Empty,
                outcome = Empty,
            )
        };
        let started = Instant::now();
        let result = call.instrument(span.clone()).await;
        let outcome = Outcome::of_call(&result);
        span.record("outcome", outcome.as_str());
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        self.metrics.record(outcome, started.elapsed());
        result
    }

    /// One logical call through the stack (see the crate's documentation).
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
    ) -> Result<Option<reqwest::Response>, UpstreamError> {
        let deadline = Instant::now() + self.config.deadline;
        let authorization = match &self.token {
            Some(token) => Some(token.authorization().await?),
            None => None,
        };
        self.budget.deposit();
        let call = Call {
            method,
            path_and_query: path_and_query.into(),
            authorization,
            deadline,
        };
        let result = self
            .stack
            .clone()
            .oneshot(call)
            .await
            .map_err(|err| self.unboxed(err));
        if let Err(UpstreamError::Status {
            status: StatusCode::UNAUTHORIZED,
            ..
        }) = &result
            && let Some(token) = &self.token
        {
            // Our token was refused (a key rotated away, say): the next call
            // asks for a new one.
            token.forget();
        }
        result
    }

    /// A failure from the stack as what it is: the bulkhead's, the
    /// deadline's, or the call's own.
    fn unboxed(&self, err: BoxError) -> UpstreamError {
        match err.downcast::<UpstreamError>() {
            Ok(err) => *err,
            Err(err) if err.is::<tower::load_shed::error::Overloaded>() => {
                UpstreamError::Saturated { service: self.name }
            }
            Err(_) => UpstreamError::Timeout {
                service: self.name,
                timeout: self.config.deadline,
            },
        }
    }

    /// A 404 where the other service's API promises an answer: it is not
    /// the service it should be (or is misrouted).
    pub fn unexpected_not_found(&self) -> UpstreamError {
        UpstreamError::Status {
            service: self.name,
            status: StatusCode::NOT_FOUND,
        }
    }
}
