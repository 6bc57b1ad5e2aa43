//! order_service's settings, from environment variables (every one of them:
//! docs/src/how-it-works/configuration.md).

use std::net::SocketAddr;

use service_kit::config::{
    AuthConfig, CommonConfig, DependencyConfig, RateLimitConfig, parse_listen_addr,
};

/// order_service: orders, each of one client of client_service.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "order_service",
    version,
    after_help = "Calls to client_service (asked whether a client exists and for its details) are set by CLIENT_SERVICE_URL, \
        CLIENT_SERVICE_TIMEOUT_MS, CLIENT_SERVICE_DEADLINE_MS, CLIENT_SERVICE_CONNECT_TIMEOUT_MS, CLIENT_SERVICE_RETRIES, \
        CLIENT_SERVICE_MAX_CONCURRENT, CLIENT_SERVICE_BREAKER_FAILURES and \
        CLIENT_SERVICE_BREAKER_OPEN_MS: see docs/src/how-it-works/configuration.md."
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8001", value_parser = parse_listen_addr)]
    pub listen_addr: SocketAddr,

    #[command(flatten)]
    pub common: CommonConfig,

    #[command(flatten)]
    pub auth: AuthConfig,

    #[command(flatten)]
    pub rate_limit: RateLimitConfig,
}

/// The calls to client_service, from the CLIENT_SERVICE_* variables.
pub fn client_service_from_env() -> Result<DependencyConfig, String> {
    DependencyConfig::from_env("CLIENT_SERVICE", "http://127.0.0.1:8000")
}
