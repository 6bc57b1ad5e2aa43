use clap::Parser;
use client_service::config::{Config, order_service_from_env};
use service_kit::server::StartError;

/// mimalloc rather than the system's malloc: see docs/src/performance/profile.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    let telemetry = match service_kit::observability::telemetry::init(
        config.common.log_format,
        "client_service",
    ) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("error: {}", service_kit::http::problem::cause_chain(&err));
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = async {
        let order_service = order_service_from_env().map_err(StartError::Config)?;
        client_service::build(&config, &order_service)
            .await?
            .run()
            .await
    }
    .await;
    // Logged before the log writer stops.
    let code = service_kit::server::exit_code(result);
    telemetry.shutdown().await;
    code
}
