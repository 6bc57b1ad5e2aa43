//! This service's own access token, for its calls to another service: the
//! OAuth2 client-credentials grant (RFC 6749 §4.4) at the token endpoint,
//! with the one scope the calls need. The token is kept and asked for again
//! once three quarters of its lifetime have passed, so that calls never
//! wait for it but the first. A caller's own token is never passed on: a
//! call carries this service's identity, not the caller's.
//!
//! When the token endpoint cannot be reached, a token that has not expired
//! yet is still used; without one, the call fails as an [`UpstreamError`]
//! of `auth_service`, which the caller answers as a 503 with `Retry-After`.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use reqwest::header::HeaderValue;
use serde::Deserialize;

use super::error::UpstreamError;
use kit_config::AuthConfig;

/// The name the failures of the token endpoint are reported under.
pub const TOKEN_SERVICE: &str = "auth_service";

/// A token is used until this long before it expires, at most.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);

/// The client-credentials token of this service, cloned into the typed
/// clients of the services it calls.
#[derive(Clone)]
pub struct ServiceToken {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    client_secret: String,
    scope: String,
    timeout: Duration,
    current: RwLock<Option<Held>>,
    /// One request to the token endpoint at a time: the others wait for it.
    renewing: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Held {
    header: HeaderValue,
    renew_at: Instant,
    expires_at: Instant,
}

impl std::fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceToken")
            .field("token_url", &self.inner.token_url)
            .field("client_id", &self.inner.client_id)
            .field("scope", &self.inner.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    token_type: String,
    expires_in: u64,
}

impl ServiceToken {
    /// The token of the client `config` names, for `scope`; each request to
    /// the token endpoint takes at most `timeout`. Fails when the client
    /// secret cannot be read (the message says why) or no HTTP client can
    /// be built.
    pub fn new(config: &AuthConfig, scope: &str, timeout: Duration) -> Result<Self, String> {
        let client_secret = config.client_secret()?;
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_millis(500)))
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client for the token endpoint: {e}"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                token_url: config.token_url.clone(),
                client_id: config.client_id.clone(),
                client_secret,
                scope: scope.to_owned(),
                timeout,
                current: RwLock::new(None),
                renewing: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// `Bearer <token>`, for the `Authorization` header of a call.
    pub async fn authorization(&self) -> Result<HeaderValue, UpstreamError> {
        let now = Instant::now();
        if let Some(held) = self.held().filter(|h| now < h.renew_at) {
            return Ok(held.header);
        }
        let _turn = self.inner.renewing.lock().await;
        let now = Instant::now();
        let held = self.held();
        if let Some(held) = held.clone().filter(|h| now < h.renew_at) {
            return Ok(held.header);
        }
        match self.request().await {
            Ok(fresh) => {
                if let Ok(mut current) = self.inner.current.write() {
                    *current = Some(fresh.clone());
                }
                Ok(fresh.header)
            }
            Err(err) => match held.filter(|h| now < h.expires_at) {
                Some(still_valid) => {
                    tracing::warn!(error = %err, "cannot renew the service token yet: the current one is used until it expires");
                    Ok(still_valid.header)
                }
                None => Err(err),
            },
        }
    }

    /// Forgets the token (the other service refused it, e.g. after a key
    /// rotation): the next call asks for a new one.
    pub fn forget(&self) {
        if let Ok(mut current) = self.inner.current.write() {
            *current = None;
        }
    }

    fn held(&self) -> Option<Held> {
        self.inner.current.read().ok().and_then(|c| c.clone())
    }

    async fn request(&self) -> Result<Held, UpstreamError> {
        let inner = &self.inner;
        let asked = Instant::now();
        let response = inner
            .http
            .post(&inner.token_url)
            .basic_auth(
                form_encode(&inner.client_id),
                Some(form_encode(&inner.client_secret)),
            )
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", &inner.scope),
            ])
            .send()
            .await
            .map_err(|source| self.classify(source))?;
        if !response.status().is_success() {
            tracing::error!(status = %response.status(), client_id = %inner.client_id, "the token endpoint refused this service's credentials");
            return Err(UpstreamError::Status {
                service: TOKEN_SERVICE,
                status: response.status(),
            });
        }
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|source| self.classify(source))?;
        let header = HeaderValue::try_from(format!("Bearer {}", answer.access_token))
            .ok()
            .filter(|_| answer.token_type.eq_ignore_ascii_case("bearer") && answer.expires_in > 0)
            .ok_or(UpstreamError::Status {
                service: TOKEN_SERVICE,
                status: reqwest::StatusCode::BAD_GATEWAY,
            })?;
        let lifetime = Duration::from_secs(answer.expires_in);
        Ok(Held {
            header,
            renew_at: asked + lifetime * 3 / 4,
            expires_at: asked + lifetime.saturating_sub(EXPIRY_MARGIN),
        })
    }

    fn classify(&self, source: reqwest::Error) -> UpstreamError {
        if source.is_timeout() {
            UpstreamError::Timeout {
                service: TOKEN_SERVICE,
                timeout: self.inner.timeout,
            }
        } else if source.is_decode() || source.is_body() {
            UpstreamError::Body {
                service: TOKEN_SERVICE,
                source,
            }
        } else {
            UpstreamError::Unreachable {
                service: TOKEN_SERVICE,
                source,
            }
        }
    }
}

/// RFC 6749 §2.3.1: the client id and secret are form-encoded before they
/// go into HTTP Basic.
fn form_encode(value: &str) -> String {
    serde_urlencoded::to_string([("", value)])
        .map(|pair| pair.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::form_encode;

    #[test]
    fn credentials_are_form_encoded_for_basic() {
        assert_eq!(form_encode("order_service"), "order_service");
        assert_eq!(form_encode("a b:c/d+e"), "a+b%3Ac%2Fd%2Be");
    }
}
