//! order_service: orders, each belonging to one client of client_service.
//!
//! `main.rs` only reads the configuration and calls [`build`]; tests build
//! the same service on port 0.

pub mod clients;
pub mod config;
pub mod domain;
pub mod openapi;
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

use crate::{clients::ClientService, config::Config, routes::AppState, store::OrderStore};

/// Connects the database (running migrations), builds the client for
/// client_service and binds the listener.
pub async fn build(
    config: &Config,
    client_service: &DependencyConfig,
) -> Result<Started, StartError> {
    let url = config.common.database_url("order_service")?;
    let db = Db::connect(&url, &store::MIGRATIONS).await?;
    let state = AppState {
        orders: OrderStore::new(db.clone()),
        keys: IdempotencyKeys::new(db.clone()),
        clients: ClientService::new(
            client_service,
            ServiceToken::new(&config.auth, ClientService::SCOPE, client_service.timeout)
                .map_err(StartError::Config)?,
        )?,
    };
    let verifier = Verifier::new(&config.auth, "order_service")?;
    let document = service_kit::http::api_doc::route("/order/openapi.json", &openapi::document());
    Started::bind(
        "order_service",
        config.listen_addr,
        protect(
            routes::router(state),
            verifier,
            SCOPES,
            CallerLimit::new(&config.rate_limit),
            "order_service",
        )
        .merge(document),
        db,
        &url,
        &config.common,
    )
    .await
}

/// The scopes of the API: `Order::READ_SCOPE` to read, `Order::WRITE_SCOPE`
/// for the rest (the OpenAPI document declares the same).
pub const SCOPES: Scopes = Scopes {
    read: domain::Order::READ_SCOPE,
    write: domain::Order::WRITE_SCOPE,
};
