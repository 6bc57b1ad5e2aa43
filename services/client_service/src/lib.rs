//! client_service: clients, each with a name and a membership card.
//!
//! `main.rs` only reads the configuration and hands [`build`] to the kit's
//! `main`; tests build the same service on port 0.

pub mod config;
pub mod domain;
pub mod openapi;
pub mod orders;
pub mod routes;
pub mod schema;
pub mod store;

use kit_auth::{CallerLimit, Scopes, Verifier, protect};
use kit_config::DependencyConfig;
use kit_data::Db;
use kit_http::{api_doc::Resource, idempotency::IdempotencyKeys};
use kit_server::{BoundServer, Server, StartupError};
use kit_upstream::token::ServiceToken;

use crate::{config::Config, orders::OrderService, routes::AppState, store::ClientStore};

/// Connects the database (running migrations), builds the client for
/// order_service and binds the listener.
pub async fn build(config: Config) -> Result<BoundServer, StartupError> {
    let url = config.common.database_url("client_service")?;
    let db = Db::connect(&url, &store::MIGRATIONS).await?;
    let calls = DependencyConfig::from(&config.order_service);
    let token = ServiceToken::new(&config.auth, OrderService::SCOPE, calls.timeout)?;
    let state = AppState {
        clients: ClientStore::new(db.clone()),
        keys: IdempotencyKeys::new(db.clone()),
        orders: OrderService::new(&calls, token)?,
    };
    let verifier = Verifier::new(&config.auth, "client_service")?;
    let api = protect(
        routes::router(state),
        verifier,
        SCOPES,
        CallerLimit::new(&config.rate_limit),
        "client_service",
    );
    let document = kit_http::api_doc::route("/client/openapi.json", &openapi::document());
    let server = Server::new("client_service", api.merge(document))
        .depends_on(db, kit_config::redact_url(&url))
        .shutdown(&config.common.shutdown);
    Ok(server.bind(config.listen_addr).await?)
}

/// The scopes of the API: `Client::READ_SCOPE` to read, `Client::WRITE_SCOPE`
/// for the rest (the OpenAPI document declares the same).
pub const SCOPES: Scopes = Scopes {
    read: domain::Client::READ_SCOPE,
    write: domain::Client::WRITE_SCOPE,
};
