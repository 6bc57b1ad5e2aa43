use clap::Parser;
use order_service::config::{Config, client_service_from_env};
use shared::server::StartError;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    shared::telemetry::init(config.common.log_format);
    shared::server::exit_code(
        async {
            let client_service = client_service_from_env().map_err(StartError::Config)?;
            order_service::build(&config, &client_service)
                .await?
                .run()
                .await
        }
        .await,
    )
}
