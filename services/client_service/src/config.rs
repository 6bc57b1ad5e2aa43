//! client_service's settings, from environment variables (every one of them:
//! docs/src/how-it-works/configuration.md).

use std::net::SocketAddr;

use service_kit::config::{
    AuthConfig, CommonConfig, DependencyConfig, RateLimitConfig, parse_listen_addr,
};

/// client_service: clients and their membership cards.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "client_service",
    version,
    after_help = "Calls to order_service (asked before a client is deleted) are set by ORDER_SERVICE_URL, \
        ORDER_SERVICE_TIMEOUT_MS, ORDER_SERVICE_DEADLINE_MS, ORDER_SERVICE_CONNECT_TIMEOUT_MS, ORDER_SERVICE_RETRIES, \
        ORDER_SERVICE_MAX_CONCURRENT, ORDER_SERVICE_BREAKER_FAILURES and \
        ORDER_SERVICE_BREAKER_OPEN_MS: see docs/src/how-it-works/configuration.md."
)]
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
}

/// The calls to order_service, from the ORDER_SERVICE_* variables.
pub fn order_service_from_env() -> Result<DependencyConfig, String> {
    DependencyConfig::from_env("ORDER_SERVICE", "http://127.0.0.1:8001")
}
