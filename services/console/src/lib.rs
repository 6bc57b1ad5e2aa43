//! console: the web console at `/` (issue 26), server-rendered, a
//! confidential OAuth client of auth_service ("backend for frontend").
//!
//! # What exists
//!
//! - The service on the kit like the others: its settings from the
//!   environment, checked at start ([`config`]); `main.rs` hands [`build`]
//!   to `kit_server::main` (telemetry, request logging, `/healthz`,
//!   `/readyz`, `/metrics`, graceful shutdown).
//! - The sign-in ([`routes`], [`provider`]): `GET /console/sign-in` reads
//!   the provider's RFC 8414 metadata (once, at the first sign-in, its
//!   issuer checked) and sends the browser to its authorization endpoint
//!   with PKCE (S256) and a random state, both kept server-side under a
//!   random `console_login` cookie (10 minutes, single use);
//!   `GET /console/callback` checks the state and the `iss` (RFC 9207),
//!   exchanges the code (the `oauth2` crate, the client's secret from
//!   `CONSOLE_CLIENT_SECRET_FILE`) and opens a session under a fresh random
//!   id (a session the browser had before is ended: no fixation);
//!   `POST /console/sign-out` (same origin, the session's CSRF token)
//!   ends the session, revokes its refresh token (RFC 7009) and sends the
//!   browser to the provider's end-session endpoint, back to `/console/`.
//! - The stores ([`session`]): sessions and sign-ins under way, in memory,
//!   each entry living a fixed time after its creation, with a cap past
//!   which the oldest entry goes: a flood of sign-ins cannot exhaust memory.
//! - The cookies ([`cookie`]): opaque ids, HttpOnly, SameSite=Lax, Path=/,
//!   `__Host-` and Secure when `CONSOLE_PUBLIC_URL` is https.
//! - One page, `/` ([`pages`]): the layout, its navigation bar with "Sign
//!   in" or the person's `sub` and "Sign out"; askama templates, every
//!   value escaped; on every answer a Content-Security-Policy without
//!   `unsafe-inline` or `unsafe-eval` and with `frame-ancestors 'none'`,
//!   Referrer-Policy, X-Content-Type-Options and `Cache-Control: no-store`.
//!
//! # What is to come (issue 26)
//!
//! - Refreshing access tokens before they expire (the refresh token is
//!   kept for it), and the API client for `/client/` and `/order/` calls
//!   through `CONSOLE_API_URL` (with `X-Request-ID` shown per action).
//! - The pages: clients (keyset paging, search, card, orders, `If-Match`
//!   edits with conflicts explained, the cascade delete), orders, System;
//!   problem+json errors next to their fields; the viewer without write
//!   controls; a CSRF synchroniser token on every form (sign-out has one).
//! - HTML for the kit's own errors: the kit's 404 fallback and its
//!   request-target checks still answer problem+json, without the headers.
//! - The display name: the page shows the `sub` (a user id); a name needs
//!   a claim or a userinfo endpoint from auth_service.
//! - A store shared between replicas (sticky sessions meanwhile), the
//!   gateway's routes, `make run`, compose, Kubernetes, the browser tests
//!   (Chromium, axe-core), `make bench`, the README.

pub mod config;
pub mod cookie;
pub mod pages;
pub mod provider;
pub mod routes;
pub mod session;

use std::{sync::Arc, time::Duration};

use kit_server::{BoundServer, Server, StartupError};

use crate::{
    config::Config,
    cookie::Cookies,
    provider::Provider,
    routes::{AppState, LOGIN_TTL},
    session::Store,
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
    let state = AppState {
        provider: Arc::new(provider),
        sessions: Arc::new(Store::new(session_ttl, config.max_sessions as usize)),
        logins: Arc::new(Store::new(LOGIN_TTL, MAX_PENDING_LOGINS)),
        cookies: Cookies::new(config.is_https()),
        origin: config.public_url.clone(),
        session_ttl,
    };
    let server = Server::new("console", routes::router(state)).grace(config.shutdown_grace);
    Ok(server.bind(config.listen_addr).await?)
}
