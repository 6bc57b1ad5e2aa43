//! auth_service: the OAuth 2.0 authorization server of the system. Programs
//! get tokens with their client credentials (RFC 6749 §4.4); people sign
//! in through the authorization code grant with PKCE (`authorize`, the
//! sign-in form) and their applications keep refresh tokens (`grants`).
//! It signs access tokens (RFC 9068 JWTs, Ed25519) with a key that never
//! leaves it, publishes the public keys as a JWKS and its metadata (RFC
//! 8414). The other services check the tokens themselves (kit-auth); they
//! never call auth_service per request. The people are in its own
//! database (`users`), managed by its commands (`cli`, `init`).
//!
//! `main.rs` only reads the configuration (or runs one of the commands)
//! and hands [`build`] to the kit's `main`.

pub mod attempts;
pub mod authorize;
pub mod cli;
pub mod clients;
pub mod config;
pub mod grants;
pub mod init;
pub mod keys;
pub mod pages;
pub mod token;
pub mod users;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    routing::{get, post},
};
use kit_data::Db;
use kit_server::{BoundServer, Server, StartupError};

use crate::{
    authorize::Cookies, clients::Clients, config::Config, grants::GrantStore, keys::Keys,
    users::UserStore,
};

/// How many client secrets are checked (argon2) at the same time.
const HASHING_AT_ONCE: usize = 4;

/// What every handler gets.
#[derive(Clone, Debug)]
pub struct AppState {
    pub issuer: Arc<str>,
    pub keys: Arc<Keys>,
    pub clients: Clients,
    pub token_ttl: Duration,
    pub hashing: Arc<tokio::sync::Semaphore>,
    pub users: UserStore,
    pub grants: GrantStore,
    pub cookies: Cookies,
    /// The issuer's origin (`scheme://host[:port]`): the `Origin` of the
    /// sign-in form's POST.
    pub origin: Arc<str>,
    /// The failed sign-ins of each user name (a lock after too many).
    pub attempts: attempts::Attempts,
}

impl AppState {
    pub fn new(issuer: &str, keys: Keys, clients: Clients, token_ttl: Duration, db: Db) -> Self {
        Self {
            issuer: issuer.into(),
            keys: Arc::new(keys),
            clients,
            token_ttl,
            hashing: Arc::new(tokio::sync::Semaphore::new(HASHING_AT_ONCE)),
            users: UserStore::new(db.clone()),
            grants: GrantStore::new(db),
            cookies: Cookies {
                secure: issuer.starts_with("https://"),
            },
            origin: clients::origin_of(issuer).into(),
            attempts: attempts::Attempts::default(),
        }
    }
}

/// Reads the keys and the clients (a bad file stops the start with a
/// message that names it), opens the database (running its migrations)
/// and binds the listener.
pub async fn build(config: Config) -> Result<BoundServer, StartupError> {
    let signing = config
        .signing_key_file
        .as_deref()
        .ok_or("AUTH_SIGNING_KEY_FILE is not set")?;
    let keys = Keys::load(signing, &config.published_key_files.0)
        .map_err(|e| format!("AUTH_SIGNING_KEY_FILE / AUTH_PUBLISHED_KEY_FILES: {e}"))?;
    let clients_file = config
        .clients_file
        .as_deref()
        .ok_or("AUTH_CLIENTS_FILE is not set")?;
    let clients = Clients::load(clients_file).map_err(|e| format!("AUTH_CLIENTS_FILE: {e}"))?;
    tracing::info!(kid = %keys.kid, published = keys.jwks["keys"].as_array().map_or(0, Vec::len), "signing keys loaded");
    let url = config.database.url()?;
    let db = Db::connect(&url, &users::MIGRATIONS).await?;
    users::prepare_decoy().await?;
    let state = AppState::new(&config.issuer, keys, clients, config.token_ttl, db.clone());
    tokio::spawn(purge_expired_grants(state.grants.clone()));
    let server = Server::new("auth_service", router(state, &config.issuer))
        .depends_on(db, kit_config::redact_url(&url))
        .shutdown(&config.shutdown);
    Ok(server.bind(config.listen_addr).await?)
}

/// How often an instance deletes the expired sign-in sessions, codes and
/// refresh tokens ([`GrantStore::purge`]).
const PURGE_EVERY: Duration = Duration::from_secs(10 * 60);

/// Deletes the expired grants now, then every [`PURGE_EVERY`], for as long
/// as the process runs. (Every instance does it; a second purge in a row
/// finds nothing to delete.)
async fn purge_expired_grants(grants: GrantStore) {
    let mut every = tokio::time::interval(PURGE_EVERY);
    loop {
        every.tick().await;
        match grants.purge().await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(
                rows,
                "expired sign-in sessions, codes and refresh tokens deleted"
            ),
            Err(err) => {
                tracing::warn!(error = %err, "could not delete the expired grants; trying again later")
            }
        }
    }
}

/// The routes: the authorization endpoint and its sign-in form, sign-out,
/// the token and revocation endpoints, the JWKS and the metadata, at
/// `/auth/…` and (the metadata) at RFC 8414's well-known place for the
/// issuer's path.
pub fn router(state: AppState, issuer: &str) -> Router {
    let issuer_path = issuer
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    let well_known = format!("/.well-known/oauth-authorization-server{issuer_path}");
    let mut router = Router::new()
        .route("/auth/authorize", get(authorize::authorize))
        .route("/auth/sign-in", post(authorize::sign_in))
        .route(
            "/auth/logout",
            get(authorize::logout).post(authorize::logout),
        )
        .route("/auth/token", post(token::token))
        .route("/auth/revoke", post(token::revoke))
        .route("/auth/jwks.json", get(token::jwks))
        .route(
            "/auth/.well-known/oauth-authorization-server",
            get(token::metadata),
        );
    if well_known != "/auth/.well-known/oauth-authorization-server" {
        router = router.route(&well_known, get(token::metadata));
    }
    router.with_state(state)
}
