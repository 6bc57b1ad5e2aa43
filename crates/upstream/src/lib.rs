//! Synchronous calls to another service: one pooled keep-alive HTTP client per
//! process, built once and cloned into handlers, with the standard
//! resilience around every call:
//!
//! 1. **instances**: the other service may have several (`*_URL` lists
//!    them); calls take turns over them (round robin);
//! 2. **circuit breaker per instance** ([`breaker`]): after
//!    `breaker_failures` failures in a row an instance's breaker opens, and
//!    for `breaker_open` that instance gets no call; then calls go through
//!    again (half-open), the first success closes it, the first failure
//!    opens it again. When every instance's breaker is open, a call fails at
//!    once with the shortest time left as `Retry-After`;
//! 3. **bulkhead** (a [`tokio::sync::Semaphore`]): at most `max_concurrent`
//!    calls in flight; past that a call fails at once instead of queueing;
//! 4. **timeouts** (reqwest): to connect, and for the whole call;
//! 5. **failover**, for idempotent calls (GET, DELETE): an attempt that did
//!    not reach its instance (refused, reset, timed out) is made again at
//!    once on another instance, at most once per other instance (after a
//!    timeout only while the retry budget allows);
//! 6. **retries**, for reads only (GET is safe to repeat): at most `retries`
//!    more attempts after a refused connection or a 5xx (not after a timeout:
//!    a hung service would only make the caller wait twice), each on the
//!    next instance, with exponential backoff and jitter, and only while the
//!    retry budget ([`TpsBudget`]: at most 20 % of recent calls, plus a
//!    small floor) allows, so retries can never multiply the load on a
//!    service that is down.
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
mod metrics;
pub mod token;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tower::retry::{
    backoff::{Backoff, ExponentialBackoffMaker, MakeBackoff},
    budget::{Budget, TpsBudget},
};
use tracing::{Instrument, field::Empty};

pub use self::{
    breaker::BreakerState,
    error::{Outcome, RETRY_AFTER_SECS, UpstreamError},
};
use self::{
    breaker::{Breaker, Breakers, Permit},
    metrics::UpstreamMetrics,
    token::ServiceToken,
};
use kit_config::DependencyConfig;
use kit_observability::{context, metrics as recorder, telemetry};

/// The HTTP client could not be built (e.g. no TLS backend).
pub type BuildError = reqwest::Error;

/// A typed base for calls to one other service.
#[derive(Clone)]
pub struct Upstream {
    name: &'static str,
    /// The instances' base URLs.
    urls: Arc<[String]>,
    /// Where the next call starts its turn over the instances.
    next: Arc<AtomicUsize>,
    config: Arc<DependencyConfig>,
    http: reqwest::Client,
    breakers: Breakers,
    bulkhead: Arc<Semaphore>,
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
            // Retries are this module's own (on its budget, see `call`).
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
        let metrics = Arc::new(UpstreamMetrics::new(name));
        Ok(Self {
            metrics,
            name,
            urls,
            next: Arc::new(AtomicUsize::new(0)),
            config: Arc::new(config.clone()),
            http,
            breakers,
            bulkhead: Arc::new(Semaphore::new(config.max_concurrent)),
            // Retries may add 20 % to the calls of the last 10 s, plus 5 a second.
            budget: Arc::new(TpsBudget::new(Duration::from_secs(10), 5, 0.2)),
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
            response
                .json::<T>()
                .await
                .map(Some)
                .map_err(|source| self.classify(source, self.config.deadline))
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
        let outcome = Outcome::of(&result);
        span.record("outcome", outcome.as_str());
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        self.metrics.record(outcome, started.elapsed());
        result
    }

    /// One logical call: bulkhead, then attempts, each on the next
    /// instance whose breaker lets it through (see the module's list), all
    /// within the call's deadline.
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
    ) -> Result<Option<reqwest::Response>, UpstreamError> {
        let deadline = Instant::now() + self.config.deadline;
        let mut turn = self.next.fetch_add(1, Ordering::Relaxed);
        let Some(mut instance) = self.pick(&mut turn) else {
            return Err(self.circuit_open());
        };
        let Ok(_permit) = self.bulkhead.try_acquire() else {
            return Err(UpstreamError::Saturated { service: self.name });
        };
        let authorization = match &self.token {
            Some(token) => Some(token.authorization().await?),
            None => None,
        };
        self.budget.deposit();
        let idempotent = method == Method::GET || method == Method::DELETE;
        let retries = if method == Method::GET {
            self.config.retries
        } else {
            0
        };
        let mut backoff = None;
        let (mut attempt, mut failovers) = (0, 0);
        loop {
            let (index, permit) = instance;
            let timeout = self
                .config
                .timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            let result = self
                .attempt(
                    index,
                    method.clone(),
                    path_and_query,
                    authorization.as_ref(),
                    timeout,
                )
                .await;
            match &result {
                Ok(_) => permit.succeeded(),
                Err(_) => permit.failed(),
            }
            let err = match result {
                Ok(response) => return Ok(response),
                Err(err) => err,
            };
            let failover = idempotent
                && err.is_unreached()
                && failovers + 1 < self.urls.len()
                && (err.is_retryable() || self.budget.withdraw());
            let pause = if failover {
                failovers += 1;
                Duration::ZERO
            } else if err.is_retryable() && attempt < retries && self.budget.withdraw() {
                attempt += 1;
                let backoff = backoff.get_or_insert_with(|| {
                    ExponentialBackoffMaker::new(
                        Duration::from_millis(25),
                        Duration::from_millis(250),
                        1.0,
                        tower::util::rng::HasherRng::default(),
                    )
                    .map(|mut maker| maker.make_backoff())
                    .ok()
                });
                backoff.as_mut().map_or(Duration::ZERO, |b| {
                    let started = tokio::time::Instant::now();
                    let sleep = b.next_backoff();
                    sleep.deadline().saturating_duration_since(started)
                })
            } else {
                return Err(err);
            };
            // Another attempt only when the deadline leaves it room: at
            // least the time to connect, after the pause.
            let left = deadline.saturating_duration_since(Instant::now());
            if left < pause + self.config.connect_timeout {
                return Err(err);
            }
            tokio::time::sleep(pause).await;
            let Some(next) = self.pick(&mut turn) else {
                return Err(err);
            };
            instance = next;
            self.metrics.record_retry();
            tracing::debug!(service = self.name, attempt, failovers, error = %err, "retrying");
        }
    }

    /// The error of a call that no instance's breaker lets through.
    fn circuit_open(&self) -> UpstreamError {
        UpstreamError::CircuitOpen {
            service: self.name,
            retry_after: self.breakers.open_time_left(),
        }
    }

    /// The next instance, from `turn` on, whose breaker lets a call through.
    fn pick(&self, turn: &mut usize) -> Option<(usize, Permit<'_>)> {
        (0..self.urls.len()).find_map(|_| {
            let index = *turn % self.urls.len();
            *turn = turn.wrapping_add(1);
            self.breakers
                .get(index)
                .and_then(Breaker::permit)
                .map(|permit| (index, permit))
        })
    }

    async fn attempt(
        &self,
        instance: usize,
        method: Method,
        path_and_query: &str,
        authorization: Option<&reqwest::header::HeaderValue>,
        timeout: Duration,
    ) -> Result<Option<reqwest::Response>, UpstreamError> {
        let base = self.urls.get(instance).map_or("", String::as_str);
        let url = format!("{base}{path_and_query}");
        let mut request = self
            .http
            .request(method, url)
            .timeout(timeout)
            .build()
            .map_err(|source| self.classify(source, timeout))?;
        if let Some(authorization) = authorization {
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
            .map_err(|source| self.classify(source, timeout))?;
        span.record(
            "http.response.status_code",
            i64::from(response.status().as_u16()),
        );
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::UNAUTHORIZED => {
                // Our token was refused (a key rotated away, say): the next
                // call asks for a new one.
                if let Some(token) = &self.token {
                    token.forget();
                }
                Err(UpstreamError::Status {
                    service: self.name,
                    status: StatusCode::UNAUTHORIZED,
                })
            }
            status if status.is_success() => Ok(Some(response)),
            status => Err(UpstreamError::Status {
                service: self.name,
                status,
            }),
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

    fn classify(&self, source: reqwest::Error, timeout: Duration) -> UpstreamError {
        if source.is_timeout() {
            UpstreamError::Timeout {
                service: self.name,
                timeout,
            }
        } else if source.is_decode() || source.is_body() {
            UpstreamError::Body {
                service: self.name,
                source,
            }
        } else {
            UpstreamError::Unreachable {
                service: self.name,
                source,
            }
        }
    }
}
