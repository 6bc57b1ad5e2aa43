//! The authorization server, as the console uses it: found through its
//! metadata (RFC 8414), so that another OAuth 2.0 / OpenID Connect
//! provider is configuration, not code; the code exchange with the
//! `oauth2` crate; the revocation of a refresh token (RFC 7009).

use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
    basic::BasicClient,
};
use std::time::{Duration, Instant};

use oauth2::RefreshToken;
use serde::Deserialize;
use tokio::sync::OnceCell;

/// The scopes the console asks for; a person gets those of their role.
pub const SCOPES: [&str; 4] = [
    "clients:read",
    "clients:write",
    "orders:read",
    "orders:write",
];

/// What the console reads of the provider's metadata.
#[derive(Clone, Debug, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub revocation_endpoint: Option<String>,
    /// Where the browser ends its session at the provider (OpenID Connect
    /// RP-Initiated Logout; auth_service's `/auth/logout`).
    pub end_session_endpoint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot read the authorization server's metadata at {url}")]
    Metadata {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the metadata at {url} names the issuer {found}, not {expected}")]
    WrongIssuer {
        url: String,
        found: String,
        expected: String,
    },
    #[error("the authorization server's metadata has an invalid endpoint")]
    Endpoint(#[source] oauth2::url::ParseError),
    #[error("the code exchange failed: {0}")]
    Exchange(String),
    #[error("the refresh failed: {0}")]
    Refresh(String),
    #[error("the revocation failed")]
    Revoke(#[source] reqwest::Error),
}

/// The tokens of a sign-in or a refresh.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// When the access token expires, by the token response's `expires_in`
    /// (`None` when the provider did not say).
    pub expires_at: Option<Instant>,
}

impl Tokens {
    /// Whether the access token expires within `margin` (and so should be
    /// refreshed before it is sent: a page makes a few calls in a row).
    pub fn expires_within(&self, margin: Duration) -> bool {
        self.expires_at
            .is_some_and(|at| at.saturating_duration_since(Instant::now()) < margin)
    }

    fn from_response(response: &oauth2::basic::BasicTokenResponse) -> Self {
        Self {
            access_token: response.access_token().secret().clone(),
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            expires_at: response
                .expires_in()
                .map(|lifetime| Instant::now() + lifetime),
        }
    }
}

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The console's registration at the provider, and the provider's
/// metadata once read (at the first sign-in: the console starts whether
/// the provider answers or not).
pub struct Provider {
    issuer: String,
    client_id: String,
    secret: String,
    redirect_uri: String,
    http: reqwest::Client,
    metadata: OnceCell<Metadata>,
    /// Where the console's own calls reach the issuer's origin
    /// (`CONSOLE_AUTH_INTERNAL_URL`), when not at the issuer's origin itself.
    internal_origin: Option<String>,
}

/// The start of a sign-in: where to send the browser, and what to keep
/// until it comes back.
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub verifier: String,
}

impl Provider {
    pub fn new(
        issuer: String,
        client_id: String,
        secret: String,
        redirect_uri: String,
        http: reqwest::Client,
    ) -> Self {
        Self {
            issuer,
            client_id,
            secret,
            redirect_uri,
            http,
            metadata: OnceCell::new(),
            internal_origin: None,
        }
    }

    /// The console's own (server-to-server) calls to URLs at the issuer's
    /// origin go to `origin` instead, at the same path: in compose and
    /// Kubernetes the issuer is the browser's `http://localhost:8080/auth`,
    /// which inside the console's container is the console itself, and the
    /// gateway is `http://gateway:8080`. The browser's URLs (authorization,
    /// end-session) stay the issuer's.
    pub fn with_internal_origin(mut self, origin: Option<String>) -> Self {
        self.internal_origin = origin.map(|o| o.trim_end_matches('/').to_owned());
        self
    }

    /// `url` as the console itself calls it: at the internal origin when
    /// `url` is at the issuer's origin and one is set; else unchanged.
    pub fn back_channel(&self, url: &str) -> String {
        let Some(internal) = &self.internal_origin else {
            return url.to_owned();
        };
        let issuer_origin = origin_of(&self.issuer);
        match url.strip_prefix(issuer_origin) {
            Some(rest) if rest.is_empty() || rest.starts_with(['/', '?']) => {
                format!("{internal}{rest}")
            }
            _ => url.to_owned(),
        }
    }

    /// The issuer identifier the console trusts.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The metadata's address (RFC 8414 §3): the well-known path inserted
    /// between the issuer's host and its path.
    pub fn metadata_url(issuer: &str) -> String {
        let (scheme, rest) = issuer.split_once("://").unwrap_or(("https", issuer));
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let path = if path.is_empty() {
            String::new()
        } else {
            format!("/{path}")
        };
        format!("{scheme}://{host}/.well-known/oauth-authorization-server{path}")
    }

    async fn metadata(&self) -> Result<&Metadata, ProviderError> {
        self.metadata
            .get_or_try_init(|| async {
                let url = self.back_channel(&Self::metadata_url(&self.issuer));
                let read = |source| ProviderError::Metadata {
                    url: url.clone(),
                    source,
                };
                let metadata: Metadata = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(read)?
                    .json()
                    .await
                    .map_err(read)?;
                // RFC 8414 §3.3: the metadata must name the issuer asked.
                if metadata.issuer != self.issuer {
                    return Err(ProviderError::WrongIssuer {
                        url,
                        found: metadata.issuer,
                        expected: self.issuer.clone(),
                    });
                }
                Ok(metadata)
            })
            .await
    }

    async fn client(&self) -> Result<Client, ProviderError> {
        let metadata = self.metadata().await?;
        let endpoint = ProviderError::Endpoint;
        Ok(BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.secret.clone()))
            .set_auth_uri(AuthUrl::new(metadata.authorization_endpoint.clone()).map_err(endpoint)?)
            .set_token_uri(
                TokenUrl::new(self.back_channel(&metadata.token_endpoint)).map_err(endpoint)?,
            )
            .set_redirect_uri(RedirectUrl::new(self.redirect_uri.clone()).map_err(endpoint)?))
    }

    /// A new sign-in: the authorization URL with PKCE (S256) and a random state.
    pub async fn authorize(&self) -> Result<Authorization, ProviderError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state) = client
            .authorize_url(CsrfToken::new_random)
            .add_scopes(SCOPES.map(|s| Scope::new(s.into())))
            .set_pkce_challenge(challenge)
            .url();
        Ok(Authorization {
            url: url.into(),
            state: state.into_secret(),
            verifier: verifier.into_secret(),
        })
    }

    /// The code exchanged for tokens, with the sign-in's verifier.
    pub async fn exchange(&self, code: String, verifier: String) -> Result<Tokens, ProviderError> {
        let client = self.client().await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| ProviderError::Exchange(describe(&e)))?;
        Ok(Tokens::from_response(&tokens))
    }

    /// New tokens for a refresh token (RFC 6749 §6). The provider rotates
    /// refresh tokens: the answer's replaces the one sent, which is spent
    /// (sending it again would revoke the whole family, so the caller
    /// refreshes one session's tokens one at a time).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, ProviderError> {
        let client = self.client().await?;
        let response = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| ProviderError::Refresh(describe(&e)))?;
        let mut tokens = Tokens::from_response(&response);
        // A provider that does not rotate keeps the refresh token valid.
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = Some(refresh_token.to_owned());
        }
        Ok(tokens)
    }

    /// Revokes `refresh_token` (RFC 7009), the client authenticated by
    /// `client_secret_post`. By hand rather than with the `oauth2` crate,
    /// which refuses a revocation endpoint over plain HTTP (RFC 7009 §2),
    /// where `make run` has one: TLS ends in front of the gateway.
    pub async fn revoke(&self, refresh_token: &str) -> Result<(), ProviderError> {
        let Some(endpoint) = self.metadata().await?.revocation_endpoint.as_deref() else {
            return Ok(());
        };
        let endpoint = self.back_channel(endpoint);
        let form = [
            ("token", refresh_token),
            ("token_type_hint", "refresh_token"),
            ("client_id", &self.client_id),
            ("client_secret", &self.secret),
        ];
        let body = serde_urlencoded_form(&form);
        self.http
            .post(endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(ProviderError::Revoke)?;
        Ok(())
    }
}

impl Provider {
    /// Where to send the browser after a sign-out, to end its session at
    /// the provider too (else the next "Sign in" would need no password),
    /// coming back to `post_logout_redirect_uri`; `None` when the provider
    /// has no such endpoint.
    pub async fn logout_url(&self, post_logout_redirect_uri: &str) -> Option<String> {
        let endpoint = self.metadata().await.ok()?.end_session_endpoint.clone()?;
        let query = serde_urlencoded_form(&[
            ("client_id", &self.client_id),
            ("post_logout_redirect_uri", post_logout_redirect_uri),
        ]);
        Some(format!("{endpoint}?{query}"))
    }
}

/// `scheme://host[:port]` of a URL (the whole of it when it has no path).
fn origin_of(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    &url[..end]
}

/// The pairs as `application/x-www-form-urlencoded`.
fn serde_urlencoded_form(pairs: &[(&str, &str)]) -> String {
    oauth2::url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// An error of the `oauth2` crate in words: the provider's `error` code
/// when it sent one (never a token).
fn describe<E: std::error::Error>(
    error: &oauth2::RequestTokenError<E, oauth2::basic::BasicErrorResponse>,
) -> String {
    match error {
        oauth2::RequestTokenError::ServerResponse(response) => response.error().to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_is_at_the_well_known_path_before_the_issuers_path() {
        assert_eq!(
            Provider::metadata_url("http://127.0.0.1:8080/auth"),
            "http://127.0.0.1:8080/.well-known/oauth-authorization-server/auth"
        );
        assert_eq!(
            Provider::metadata_url("https://id.example"),
            "https://id.example/.well-known/oauth-authorization-server"
        );
    }

    fn provider(issuer: &str, internal: Option<&str>) -> Provider {
        Provider::new(
            issuer.into(),
            "dev-web".into(),
            "secret".into(),
            "http://localhost:8080/console/callback".into(),
            reqwest::Client::new(),
        )
        .with_internal_origin(internal.map(Into::into))
    }

    #[test]
    fn the_back_channel_goes_to_the_internal_origin_at_the_same_path() {
        let p = provider("http://localhost:8080/auth", Some("http://gateway:8080/"));
        let metadata = Provider::metadata_url(p.issuer());
        assert_eq!(
            p.back_channel(&metadata),
            "http://gateway:8080/.well-known/oauth-authorization-server/auth"
        );
        assert_eq!(
            p.back_channel("http://localhost:8080/auth/token"),
            "http://gateway:8080/auth/token"
        );
        assert_eq!(
            p.back_channel("http://localhost:8080/auth/revoke?x=1"),
            "http://gateway:8080/auth/revoke?x=1"
        );
        // Another origin (another port, a host that only starts the same)
        // is not the issuer's: left as it is.
        for other in [
            "http://localhost:8081/auth/token",
            "http://localhost:80800/auth/token",
            "https://localhost:8080/auth/token",
            "http://id.example/token",
        ] {
            assert_eq!(p.back_channel(other), other);
        }
    }

    #[test]
    fn without_an_internal_origin_every_url_is_the_issuers() {
        let p = provider("http://127.0.0.1:8080/auth", None);
        assert_eq!(
            p.back_channel("http://127.0.0.1:8080/auth/token"),
            "http://127.0.0.1:8080/auth/token"
        );
    }

    #[test]
    fn the_origin_of_a_url() {
        assert_eq!(
            origin_of("http://localhost:8080/auth"),
            "http://localhost:8080"
        );
        assert_eq!(origin_of("https://id.example"), "https://id.example");
        assert_eq!(origin_of("https://id.example?x"), "https://id.example");
    }
}
