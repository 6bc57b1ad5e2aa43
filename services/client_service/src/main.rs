use clap::Parser;
use client_service::config::Config;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    shared::telemetry::init(config.common.log_format);
    shared::server::exit_code(async { client_service::build(&config).await?.run().await }.await)
}
