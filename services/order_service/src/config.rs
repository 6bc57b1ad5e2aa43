//! order_service's settings: each a variable of the environment and a flag
//! (`order_service --help` lists them all), checked at start.

use std::net::SocketAddr;

use kit_config::{AuthConfig, CommonConfig, RateLimitConfig, parse_listen_addr};

kit_config::calls_to!(
    ClientServiceCalls,
    "CLIENT_SERVICE",
    "client-service",
    "http://127.0.0.1:8000"
);

/// order_service: orders, each of one client of client_service.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "order_service", version)]
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

    /// The calls to client_service (does a client exist, its details).
    #[command(flatten)]
    pub client_service: ClientServiceCalls,
}
