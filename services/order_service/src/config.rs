//! order_service's settings, from environment variables (see the README).

use std::{net::SocketAddr, time::Duration};

use shared::config::{
    CommonConfig, DependencyConfig, parse_listen_addr, parse_millis, parse_service_url,
};

/// order_service: orders, each of one client of client_service.
#[derive(clap::Parser, Clone, Debug)]
#[command(name = "order_service", version)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8001", value_parser = parse_listen_addr)]
    pub listen_addr: SocketAddr,

    /// Base URL of client_service, asked whether a client exists and for its details.
    #[arg(long, env = "CLIENT_SERVICE_URL", default_value = "http://127.0.0.1:8000", value_parser = parse_service_url)]
    pub client_service_url: String,

    /// Total time allowed for one call to client_service, in milliseconds.
    #[arg(long, env = "CLIENT_SERVICE_TIMEOUT_MS", default_value = "2000", value_parser = parse_millis)]
    pub client_service_timeout: Duration,

    /// Time allowed to open a connection to client_service, in milliseconds.
    #[arg(long, env = "CLIENT_SERVICE_CONNECT_TIMEOUT_MS", default_value = "500", value_parser = parse_millis)]
    pub client_service_connect_timeout: Duration,

    #[command(flatten)]
    pub common: CommonConfig,
}

impl Config {
    pub fn client_service(&self) -> DependencyConfig {
        DependencyConfig {
            url: self.client_service_url.clone(),
            timeout: self.client_service_timeout,
            connect_timeout: self.client_service_connect_timeout,
        }
    }
}
