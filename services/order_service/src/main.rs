use clap::Parser;
use order_service::config::{Config, client_service_from_env};
use shared::server::StartError;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let telemetry = match shared::telemetry::init(config.common.log_format, "order_service") {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("error: {}", shared::problem::cause_chain(&err));
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = async {
        let client_service = client_service_from_env().map_err(StartError::Config)?;
        order_service::build(&config, &client_service)
            .await?
            .run()
            .await
    }
    .await;
    telemetry.shutdown().await;
    shared::server::exit_code(result)
}
