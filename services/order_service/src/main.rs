use clap::Parser;
use order_service::config::Config;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    shared::telemetry::init(config.common.log_format);
    shared::server::exit_code(async { order_service::build(&config).await?.run().await }.await)
}
