//! How a call to another service can fail ([`UpstreamError`]), how each
//! outcome is labelled ([`Outcome`]), and what the caller is answered: a
//! 503 with `Retry-After`.

use std::time::Duration;

use reqwest::StatusCode;

use kit_http::problem::ApiError;

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

    pub(super) fn of_call<T>(result: &Result<Option<T>, UpstreamError>) -> Self {
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

    /// What a failure of reqwest's was: a timeout (after `timeout`), an
    /// answer that could not be read, or no answer at all.
    pub(crate) fn from_reqwest(
        service: &'static str,
        source: reqwest::Error,
        timeout: std::time::Duration,
    ) -> Self {
        if source.is_timeout() {
            Self::Timeout { service, timeout }
        } else if source.is_decode() || source.is_body() {
            Self::Body { service, source }
        } else {
            Self::Unreachable { service, source }
        }
    }

    /// Whether the attempt did not reach its instance, or got no answer from
    /// it in time: another instance may answer.
    pub(super) fn is_unreached(&self) -> bool {
        matches!(self, Self::Unreachable { .. } | Self::Timeout { .. })
    }

    /// Whether another attempt may succeed: the service was not reached or
    /// answered 5xx. A timeout is not retried (the caller would wait twice).
    pub(super) fn is_retryable(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Status { status, .. } => status.is_server_error(),
            _ => false,
        }
    }
}

// ANCHOR: unavailable
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
// ANCHOR_END: unavailable
