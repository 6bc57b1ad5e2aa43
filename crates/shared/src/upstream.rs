//! Synchronous calls to another service: one pooled keep-alive HTTP client per
//! process, built once with its timeouts and cloned into handlers.
//!
//! Every way the other service can fail to answer (refused, hung past the
//! timeout, 5xx, an answer that is not what its API promises) becomes
//! [`UpstreamError`], which the caller turns into a 503 with `Retry-After`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::{config::DependencyConfig, problem::ApiError};

/// The HTTP client could not be built (e.g. no TLS backend).
pub type BuildError = reqwest::Error;

/// A typed base for calls to one other service.
#[derive(Clone, Debug)]
pub struct Upstream {
    name: &'static str,
    base_url: String,
    timeouts: Timeouts,
    http: reqwest::Client,
}

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
}

/// How long a caller is asked to wait before retrying after a failed call.
pub const RETRY_AFTER_SECS: u64 = 2;

impl From<UpstreamError> for ApiError {
    fn from(err: UpstreamError) -> Self {
        ApiError::Unavailable {
            detail: format!("{err}; nothing was changed, please retry."),
            retry_after_secs: RETRY_AFTER_SECS,
        }
    }
}

/// Timeouts of the calls to one service.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub total: Duration,
}

impl Upstream {
    pub fn new(name: &'static str, config: &DependencyConfig) -> Result<Self, BuildError> {
        let timeouts = Timeouts {
            connect: config.connect_timeout,
            total: config.timeout,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.total)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            name,
            base_url: config.url.trim_end_matches('/').to_owned(),
            timeouts,
            http,
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `GET path`: the decoded body, or `None` on 404.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path_and_query: &str,
    ) -> Result<Option<T>, UpstreamError> {
        let Some(response) = self.send(Method::GET, path_and_query).await? else {
            return Ok(None);
        };
        response
            .json::<T>()
            .await
            .map(Some)
            .map_err(|source| self.classify(source))
    }

    /// `DELETE path`: `Ok(true)` when done, `Ok(false)` on 404.
    pub async fn delete(&self, path_and_query: &str) -> Result<bool, UpstreamError> {
        Ok(self.send(Method::DELETE, path_and_query).await?.is_some())
    }

    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
    ) -> Result<Option<reqwest::Response>, UpstreamError> {
        let url = format!("{}{}", self.base_url, path_and_query);
        let response = self
            .http
            .request(method, url)
            .send()
            .await
            .map_err(|source| self.classify(source))?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
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

    fn classify(&self, source: reqwest::Error) -> UpstreamError {
        if source.is_timeout() {
            UpstreamError::Timeout {
                service: self.name,
                timeout: self.timeout(),
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

    fn timeout(&self) -> Duration {
        self.timeouts.total
    }
}
