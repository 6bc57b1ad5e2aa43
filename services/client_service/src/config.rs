//! client_service's settings: each a variable of the environment and a flag
//! (`client_service --help` lists them all; every one of them:
//! docs/src/how-it-works/configuration.md), checked at start.

use std::net::SocketAddr;

use kit_config::{AuthConfig, CommonConfig, RateLimitConfig, parse_listen_addr};

kit_config::calls_to!(
    OrderServiceCalls,
    "ORDER_SERVICE",
    "order-service",
    "http://127.0.0.1:8001"
);

/// client_service: clients and their membership cards.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "client_service", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8000", value_parser = parse_listen_addr)]
    pub listen_addr: SocketAddr,

    #[command(flatten)]
    pub common: CommonConfig,

    #[command(flatten)]
    pub auth: AuthConfig,

    #[command(flatten)]
    pub rate_limit: RateLimitConfig,

    /// The calls to order_service (before a client is deleted).
    #[command(flatten)]
    pub order_service: OrderServiceCalls,
}
