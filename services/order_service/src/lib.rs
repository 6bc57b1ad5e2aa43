//! order_service: orders, each belonging to one client of client_service.
//!
//! `main.rs` only reads the configuration and hands [`build`] to the kit's
//! `main`; tests build the same service on port 0.

pub mod clients;
pub mod config;
pub mod domain;
pub mod openapi;
pub mod routes;
pub mod schema;
pub mod store;

use kit_auth::{CallerLimit, Scopes, Verifier, protect};
use kit_config::DependencyConfig;
use kit_data::Db;
use kit_http::{api_doc::Resource, idempotency::IdempotencyKeys};
use kit_server::{BoundServer, Server, StartupError};
use kit_upstream::token::ServiceToken;

use crate::{clients::ClientService, config::Config, routes::AppState, store::OrderStore};

// ANCHOR: build
/// Connects the database (running migrations), builds the client for
/// client_service and binds the listener.
pub async fn build(config: Config) -> Result<BoundServer, StartupError> {
    let url = config.common.database_url("order_service")?;
    let db = Db::connect(&url, &store::MIGRATIONS).await?;
    let calls = DependencyConfig::from(&config.client_service);
    let token = ServiceToken::new(&config.auth, ClientService::SCOPE, calls.timeout)?;
    let state = AppState {
        orders: OrderStore::new(db.clone()),
        keys: IdempotencyKeys::new(db.clone()),
        clients: ClientService::new(&calls, token)?,
    };
    let verifier = Verifier::new(&config.auth, "order_service")?;
    let api = protect(
        routes::router(state),
        verifier,
        SCOPES,
        CallerLimit::new(&config.rate_limit),
        "order_service",
    );
    let document = kit_http::api_doc::route("/order/openapi.json", &openapi::document());
    let server = Server::new("order_service", api.merge(document))
        .depends_on(db, kit_config::redact_url(&url))
        .shutdown(&config.common.shutdown);
    Ok(server.bind(config.listen_addr).await?)
}
// ANCHOR_END: build

/// The scopes of the API: `Order::READ_SCOPE` to read, `Order::WRITE_SCOPE`
/// for the rest (the OpenAPI document declares the same).
pub const SCOPES: Scopes = Scopes {
    read: domain::Order::READ_SCOPE,
    write: domain::Order::WRITE_SCOPE,
};
