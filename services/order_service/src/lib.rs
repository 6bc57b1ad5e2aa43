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
    config::DependencyConfig, data::db::Db, data::idempotency::IdempotencyKeys, server::Started,
};

use crate::{clients::ClientService, config::Config, routes::AppState, store::OrderStore};

/// Connects the database (running migrations), builds the client for
/// client_service and binds the listener.
pub async fn build(
    config: &Config,
    client_service: &DependencyConfig,
) -> Result<Started, service_kit::server::StartError> {
    let url = config.common.database_url("order_service")?;
    let db = Db::connect(&url, &store::MIGRATIONS).await?;
    let state = AppState {
        orders: OrderStore::new(db.clone()),
        keys: IdempotencyKeys::new(db.clone()),
        clients: ClientService::new(client_service)?,
    };
    let document = service_kit::http::api_doc::route("/order/openapi.json", &openapi::document());
    Started::bind(
        "order_service",
        config.listen_addr,
        routes::router(state).merge(document),
        db,
        &url,
        &config.common,
    )
    .await
}
