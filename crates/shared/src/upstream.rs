//! Synchronous calls to another service: one pooled keep-alive HTTP client per
//! process, built once and cloned into handlers, with the standard
//! resilience around every call:
//!
//! 1. **circuit breaker** ([`failsafe`]): after `breaker_failures` failures in
//!    a row it opens, and for `breaker_open` every call fails at once with the
//!    time left as `Retry-After`; then calls go through again (half-open), and
//!    the first success closes it, the first failure opens it again;
//! 2. **bulkhead** (a [`tokio::sync::Semaphore`]): at most `max_concurrent`
//!    calls in flight; past that a call fails at once instead of queueing;
//! 3. **timeouts** (reqwest): to connect, and for the whole call;
//! 4. **retries**, for reads only (GET is safe to repeat): at most `retries`
//!    more attempts after a refused connection or a 5xx (not after a timeout:
//!    a hung service would only make the caller wait twice), with exponential
//!    backoff and jitter, and only while the retry budget ([`TpsBudget`]: at
//!    most 20 % of recent calls, plus a small floor) allows, so retries can
//!    never multiply the load on a service that is down.
//!
//! Every way the other service can fail to answer becomes [`UpstreamError`],
//! which the caller turns into a 503 with `Retry-After`.
//!
//! Each call is observed: a span `upstream` (an OpenTelemetry client span,
//! a child of the request that makes the call), the request's
//! `X-Request-ID` and trace context sent along, and the metrics
//! `upstream_calls_total{target, outcome}` and
//! `upstream_call_duration_seconds{target, outcome}` (see [`Outcome`]).

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, Ordering},
    },
    time::{Duration, Instant},
};

use failsafe::{
    StateMachine,
    backoff::{self, Constant},
    failure_policy::{self, ConsecutiveFailures},
};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tower::retry::{
    backoff::{Backoff, ExponentialBackoffMaker, MakeBackoff},
    budget::{Budget, TpsBudget},
};
use tracing::{Instrument, field::Empty};

use crate::{config::DependencyConfig, correlation, problem::ApiError, prometheus, telemetry};

/// The HTTP client could not be built (e.g. no TLS backend).
pub type BuildError = reqwest::Error;

/// Why a call to another service gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{service} did not answer within {timeout:?}")]
    Timeout {
        service: &'static str,
        timeout: Duration,
    },
    #[error("{service} could not be reached")]
    Unreachable {
        service: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{service} answered {status}")]
    Status {
        service: &'static str,
        status: StatusCode,
    },
    #[error("{service} sent an answer that could not be read")]
    Body {
        service: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{service} is failing: its circuit breaker is open")]
    CircuitOpen {
        service: &'static str,
        retry_after: Duration,
    },
    #[error("too many calls to {service} are in flight")]
    Saturated { service: &'static str },
}

/// How long a caller is asked to wait before retrying after a failed call.
pub const RETRY_AFTER_SECS: u64 = 2;

/// How a call ended, as the `outcome` label of the metrics and the span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    NotFound,
    Timeout,
    Unreachable,
    Status4xx,
    Status5xx,
    InvalidBody,
    CircuitOpen,
    Saturated,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Self::Success,
        Self::NotFound,
        Self::Timeout,
        Self::Unreachable,
        Self::Status4xx,
        Self::Status5xx,
        Self::InvalidBody,
        Self::CircuitOpen,
        Self::Saturated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::NotFound => "not_found",
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::Status4xx => "status_4xx",
            Self::Status5xx => "status_5xx",
            Self::InvalidBody => "invalid_body",
            Self::CircuitOpen => "circuit_open",
            Self::Saturated => "saturated",
        }
    }

    fn of<T>(result: &Result<Option<T>, UpstreamError>) -> Self {
        match result {
            Ok(Some(_)) => Self::Success,
            Ok(None) => Self::NotFound,
            Err(err) => err.outcome(),
        }
    }
}

impl UpstreamError {
    /// The `outcome` label of this failure.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Timeout { .. } => Outcome::Timeout,
            Self::Unreachable { .. } => Outcome::Unreachable,
            Self::Status { status, .. } if status.is_server_error() => Outcome::Status5xx,
            Self::Status { .. } => Outcome::Status4xx,
            Self::Body { .. } => Outcome::InvalidBody,
            Self::CircuitOpen { .. } => Outcome::CircuitOpen,
            Self::Saturated { .. } => Outcome::Saturated,
        }
    }

    /// Whether another attempt may succeed: the service was not reached or
    /// answered 5xx. A timeout is not retried (the caller would wait twice).
    fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Status { status, .. } => status.is_server_error(),
            _ => false,
        }
    }
}

impl From<UpstreamError> for ApiError {
    fn from(err: UpstreamError) -> Self {
        let retry_after_secs = match &err {
            UpstreamError::CircuitOpen { retry_after, .. } => {
                retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0)
            }
            _ => RETRY_AFTER_SECS,
        };
        ApiError::Unavailable {
            detail: format!("{err}; nothing was changed, please retry."),
            retry_after_secs: retry_after_secs.max(1),
        }
    }
}

/// The circuit breaker's state, as logged and exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

/// Logs every change of the breaker's state and remembers when it opened,
/// for `Retry-After`. Shared between the breaker and the [`Upstream`].
#[derive(Clone, Debug)]
struct BreakerEvents(Arc<BreakerEventsInner>);

#[derive(Debug)]
struct BreakerEventsInner {
    service: &'static str,
    state: AtomicU8,
    opened_at: Mutex<Option<Instant>>,
}

impl BreakerEvents {
    fn set(&self, state: BreakerState) {
        let before = self.0.state.swap(state as u8, Ordering::SeqCst);
        prometheus::set_breaker_state(self.0.service, state);
        if before != state as u8 {
            tracing::warn!(service = self.0.service, state = ?state, "circuit breaker changed state");
        }
    }
}

impl failsafe::Instrument for BreakerEvents {
    fn on_call_rejected(&self) {}

    fn on_open(&self) {
        if let Ok(mut opened_at) = self.0.opened_at.lock() {
            *opened_at = Some(Instant::now());
        }
        self.set(BreakerState::Open);
    }

    fn on_half_open(&self) {
        self.set(BreakerState::HalfOpen);
    }

    fn on_closed(&self) {
        self.set(BreakerState::Closed);
    }
}

type Breaker = StateMachine<ConsecutiveFailures<Constant>, BreakerEvents>;

/// A typed base for calls to one other service.
#[derive(Clone)]
pub struct Upstream {
    name: &'static str,
    base_url: String,
    config: Arc<DependencyConfig>,
    http: reqwest::Client,
    breaker: Breaker,
    events: BreakerEvents,
    bulkhead: Arc<Semaphore>,
    budget: Arc<TpsBudget>,
    metrics: Arc<prometheus::UpstreamMetrics>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("breaker", &self.breaker_state())
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
            .build()?;
        let events = BreakerEvents(Arc::new(BreakerEventsInner {
            service: name,
            state: AtomicU8::new(BreakerState::Closed as u8),
            opened_at: Mutex::new(None),
        }));
        let policy = failure_policy::consecutive_failures(
            config.breaker_failures,
            backoff::constant(config.breaker_open),
        );
        let breaker = failsafe::Config::new()
            .failure_policy(policy)
            .instrument(events.clone())
            .build();
        // Before the server starts: the series exist from the start.
        prometheus::install();
        prometheus::set_breaker_state(name, BreakerState::Closed);
        let metrics = Arc::new(prometheus::UpstreamMetrics::new(name));
        Ok(Self {
            metrics,
            name,
            base_url: config.url.trim_end_matches('/').to_owned(),
            config: Arc::new(config.clone()),
            http,
            breaker,
            events,
            bulkhead: Arc::new(Semaphore::new(config.max_concurrent)),
            // Retries may add 20 % to the calls of the last 10 s, plus 5 a second.
            budget: Arc::new(TpsBudget::new(Duration::from_secs(10), 5, 0.2)),
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn breaker_state(&self) -> BreakerState {
        match self.events.0.state.load(Ordering::SeqCst) {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
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
                .map_err(|source| self.classify(source))
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

    /// One logical call: breaker, bulkhead, then attempts.
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
    ) -> Result<Option<reqwest::Response>, UpstreamError> {
        if !self.breaker.is_call_permitted() {
            return Err(UpstreamError::CircuitOpen {
                service: self.name,
                retry_after: self.open_time_left(),
            });
        }
        let Ok(_permit) = self.bulkhead.try_acquire() else {
            return Err(UpstreamError::Saturated { service: self.name });
        };
        self.budget.deposit();
        let retries = if method == Method::GET {
            self.config.retries
        } else {
            0
        };
        let mut backoff = ExponentialBackoffMaker::new(
            Duration::from_millis(25),
            Duration::from_millis(250),
            1.0,
            tower::util::rng::HasherRng::default(),
        )
        .map(|mut maker| maker.make_backoff())
        .ok();
        let mut attempt = 0;
        loop {
            let result = self.attempt(method.clone(), path_and_query).await;
            match &result {
                Ok(_) => self.breaker.on_success(),
                Err(_) => self.breaker.on_error(),
            }
            let err = match result {
                Err(err) if err.is_retryable() && attempt < retries => err,
                other => return other,
            };
            if !self.breaker.is_call_permitted() || !self.budget.withdraw() {
                return Err(err);
            }
            attempt += 1;
            self.metrics.record_retry();
            tracing::debug!(service = self.name, attempt, error = %err, "retrying");
            if let Some(backoff) = backoff.as_mut() {
                backoff.next_backoff().await;
            }
        }
    }

    async fn attempt(
        &self,
        method: Method,
        path_and_query: &str,
    ) -> Result<Option<reqwest::Response>, UpstreamError> {
        let url = format!("{}{}", self.base_url, path_and_query);
        let mut request = self
            .http
            .request(method, url)
            .build()
            .map_err(|source| self.classify(source))?;
        let span = tracing::Span::current();
        correlation::inject(request.headers_mut(), &span);
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|source| self.classify(source))?;
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

    fn open_time_left(&self) -> Duration {
        let opened_at = self.events.0.opened_at.lock().ok().and_then(|at| *at);
        opened_at.map_or(self.config.breaker_open, |at| {
            self.config.breaker_open.saturating_sub(at.elapsed())
        })
    }

    /// A 404 where the other service's API promises an answer: it is not
    /// the service it should be (or is misrouted).
    pub fn unexpected_not_found(&self) -> UpstreamError {
        UpstreamError::Status {
            service: self.name,
            status: StatusCode::NOT_FOUND,
        }
    }

    fn classify(&self, source: reqwest::Error) -> UpstreamError {
        if source.is_timeout() {
            UpstreamError::Timeout {
                service: self.name,
                timeout: self.config.timeout,
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
