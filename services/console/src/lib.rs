//! console: the web console at `/` (issue 26), server-rendered, a
//! confidential OAuth client of auth_service ("backend for frontend"). The
//! guide's chapter `docs/src/how-it-works/console.md` tells the whole story.
//!
//! - The service on the kit like the others: its settings from the
//!   environment, checked at start ([`config`]); `main.rs` hands [`build`]
//!   to `kit_server::main` (telemetry, request logging, `/healthz`,
//!   `/readyz`, `/metrics`, graceful shutdown).
//! - The sign-in ([`sign_in`], [`provider`]): PKCE and a state kept
//!   server-side under a random `console_login` cookie, the provider found
//!   through its RFC 8414 metadata, a session under a fresh id at each
//!   sign-in, sign-out with the refresh token revoked.
//! - The person of a request ([`person`]): an extractor that calls the API
//!   ([`api`], through the gateway) with the person's token, refreshed when
//!   it is about to expire, one refresh at a time per session.
//! - The pages ([`clients`], [`orders`]), askama templates ([`pages`]), the
//!   forms' CSRF check and the API's errors next to their fields
//!   ([`forms`]); every answer with the security headers, the kit's own
//!   errors included ([`routes::outer`]).
//! - The stores ([`session`]) and cookies ([`cookie`]): in memory, bounded
//!   in time and size; per instance, so the console runs as one.

pub mod api;
pub mod clients;
pub mod config;
pub mod cookie;
pub mod forms;
pub mod orders;
pub mod pages;
pub mod person;
pub mod provider;
pub mod records;
pub mod routes;
pub mod session;
pub mod sign_in;
pub mod state;
pub mod system;

use std::{sync::Arc, time::Duration};

use kit_server::{BoundServer, Server, StartupError};

use crate::{
    api::Api,
    config::Config,
    cookie::Cookies,
    provider::Provider,
    session::Store,
    state::{AppState, LOGIN_TTL},
    system::{Monitor, monitor::system_resolver},
};

/// Sign-ins under way kept at most (each lives [`LOGIN_TTL`]).
pub const MAX_PENDING_LOGINS: usize = 10_000;

/// Reads the client secret, builds the HTTP client and the stores, and
/// binds the listener. The provider is not called yet: the console starts
/// whether auth_service answers or not.
pub async fn build(config: Config) -> Result<BoundServer, StartupError> {
    let secret = config.client_secret()?;
    let http = reqwest::Client::builder()
        // The oauth2 crate's advice: no redirects on the token endpoint.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(5))
        .build()?;
    let provider = Provider::new(
        config.issuer.clone(),
        config.client_id.clone(),
        secret,
        config.redirect_uri(),
        http,
    )
    .with_internal_origin(config.auth_internal_url.clone());
    let session_ttl = Duration::from_secs(config.session_secs);
    let api_http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_millis(500))
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()?;
    let state = AppState {
        api: Api::new(api_http, &config.api_url),
        provider: Arc::new(provider),
        sessions: Arc::new(Store::new(session_ttl, config.max_sessions as usize)),
        logins: Arc::new(Store::new(LOGIN_TTL, MAX_PENDING_LOGINS)),
        cookies: Cookies::new(config.is_https()),
        origin: config.public_url.clone(),
        session_ttl,
    };
    let monitor = Monitor::new(config.instances.0.clone(), system_resolver())?;
    let app = routes::router(state.clone()).layer(axum::Extension(monitor.clone()));
    let server = Server::new("console", app)
        .wrap(move |app| routes::outer(app, state))
        .shutdown(&config.shutdown);
    let bound = server.bind(config.listen_addr).await?;
    // The System page's poller, from now on.
    monitor.spawn();
    Ok(bound)
}
