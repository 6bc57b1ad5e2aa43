//! client_service: clients, each with a name and a membership card.
//!
//! `main.rs` only reads the configuration and calls [`build`]; tests build
//! the same service on port 0.

pub mod config;
pub mod domain;
pub mod openapi;
pub mod orders;
pub mod routes;
pub mod schema;
pub mod store;

use service_kit::{
    auth::{CallerLimit, Scopes, Verifier, protect},
    config::DependencyConfig,
    data::db::Db,
    data::idempotency::IdempotencyKeys,
    http::api_doc::Resource,
    server::{StartError, Started},
    upstream::token::ServiceToken,
};

use crate::{config::Config, orders::OrderService, routes::AppState, store::ClientStore};

/// Connects the database (running migrations), builds the client for
/// order_service and binds the listener.
pub async fn build(
    config: &Config,
    order_service: &DependencyConfig,
) -> Result<Started, StartError> {
    let url = config.common.database_url("client_service")?;
    let db = Db::connect(&url, &store::MIGRATIONS).await?;
    let state = AppState {
        clients: ClientStore::new(db.clone()),
        keys: IdempotencyKeys::new(db.clone()),
        orders: OrderService::new(
            order_service,
            ServiceToken::new(&config.auth, OrderService::SCOPE, order_service.timeout)
                .map_err(StartError::Config)?,
        )?,
    };
    let verifier = Verifier::new(&config.auth, "client_service")?;
    let document = service_kit::http::api_doc::route("/client/openapi.json", &openapi::document());
    Started::bind(
        "client_service",
        config.listen_addr,
        protect(
            routes::router(state),
            verifier,
            SCOPES,
            CallerLimit::new(&config.rate_limit),
            "client_service",
        )
        .merge(document),
        db,
        &url,
        &config.common,
    )
    .await
}

/// The scopes of the API: `Client::READ_SCOPE` to read, `Client::WRITE_SCOPE`
/// for the rest (the OpenAPI document declares the same).
pub const SCOPES: Scopes = Scopes {
    read: domain::Client::READ_SCOPE,
    write: domain::Client::WRITE_SCOPE,
};
